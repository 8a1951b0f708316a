"""Alerts to the people on call: a run that failed, or a run that finished with a failed ERROR check.

Two of Dagster's run-status sensors, so the daemon remembers (in its cursor) which finished runs were told, and a
daemon that was down catches up on the runs it missed:

- ``alert_on_run_failure`` (``dg.run_failure_sensor``): every failed step names its asset and its cause; a step
  stopped by its blocking ERROR check names the check and the rules it broke instead of Dagster's "blocking check
  failed". The checks of this project that are ERROR are blocking, so this is where a failed ERROR check lands.
- ``alert_on_failed_error_check`` (``dg.run_status_sensor`` on SUCCESS): a run that succeeded although an ERROR
  check of it failed (a non-blocking one).

So each finished run that needs a person gives one alert, sent by e-mail (``RETAIL_ALERT_SMTP_*``) and to a
webhook with a Slack-compatible JSON body (``RETAIL_ALERT_WEBHOOK_URL``). The channels are the resource
``AlertChannels`` (key ``alerts``), bound in ``definitions.py``. Each channel is off until its variables are set;
with none set the sensors do nothing and report no error. An alert names the business day, the asset, the cause in
one line and the link to the run in the web UI (``RETAIL_UI_BASE_URL``).

Both sensors watch every code location's runs: the runs ``retail-etl run`` executes in-process have no code
location, and a sensor watching only its own would never see them.

No secret reaches an alert or a log line: passwords in URLs are masked, and the values of the secret variables
(the SMTP password, the webhook URL, the passwords of the database URLs in the environment) are replaced wherever
they appear.
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from retail_assets.automation.common import DAILY_CHAIN_TAG
from retail_assets.preflight import short
from retail_assets.resources.urls import ConfigError, redact
from retail_assets.runner import check_details
from retail_assets.settings import DEFAULTS, bind

# The resource's field of each variable (definitions.py binds them by these names).
ALERT_VARIABLES = {
    "smtp_host": "RETAIL_ALERT_SMTP_HOST", "smtp_port": "RETAIL_ALERT_SMTP_PORT",
    "smtp_user": "RETAIL_ALERT_SMTP_USER", "smtp_password": "RETAIL_ALERT_SMTP_PASSWORD",
    "smtp_from": "RETAIL_ALERT_SMTP_FROM", "smtp_to": "RETAIL_ALERT_SMTP_TO",
    "smtp_starttls": "RETAIL_ALERT_SMTP_STARTTLS", "webhook_url": "RETAIL_ALERT_WEBHOOK_URL",
    "ui_base_url": "RETAIL_UI_BASE_URL",
}
WEBHOOK_VARIABLE = "RETAIL_ALERT_WEBHOOK_URL"
# Secrets of the process that are not the alerts' own: masked wherever they appear, whoever configured them (the
# instance's database password, and the passwords in the URLs of the platform and of Celery).
SECRET_VARIABLES = ("DAGSTER_PG_PASSWORD",)
URL_VARIABLES = ("RETAIL_ONLINE_STORE_URL", "RETAIL_CRM_URL", "RETAIL_WAREHOUSE_URL", "RETAIL_CELERY_BROKER_URL",
                 "RETAIL_CELERY_BACKEND_URL")
# A secret this short would be masked inside ordinary words and make the alert unreadable; the URL patterns
# still mask it where it sits in a URL.
MIN_SECRET_LENGTH = 4
SEND_TIMEOUT_SECONDS = 20  # a mail server or webhook that hangs must not hold the sensor's tick
MAX_CAUSE = 400  # longer than the terminal's line: a driver's reason often comes last, after where it connected
UNDATED = "none (the job is not split by business date)"


class AlertNotDelivered(RuntimeError):
    """A configured channel refused or could not be reached; the message names it, never its secrets."""


@dataclass(frozen=True)
class Problem:
    asset: str
    cause: str


@dataclass(frozen=True)
class Alert:
    what: str  # "failed", "finished with a failed ERROR check"
    job: str
    run_id: str
    day: str
    problems: tuple[Problem, ...]
    link: str

    @property
    def assets(self) -> str:
        names = list(dict.fromkeys(p.asset for p in self.problems))
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    @property
    def subject(self) -> str:
        return short(f"[retail-etl] {self.day}: {self.job} {self.what}: {self.assets}", 200)

    def text(self) -> str:
        lines = [f"A {self.job} run {self.what}.", "", f"day:   {self.day}", f"job:   {self.job}",
                 f"run:   {self.link}", ""]
        lines += [f"asset {p.asset}: {p.cause}" for p in self.problems]
        return "\n".join(lines) + "\n"

    def slack_body(self) -> dict:
        """A Slack incoming-webhook message (also read by Mattermost, Rocket.Chat and others): ``text`` for
        notifications and clients without blocks, ``blocks`` for the layout."""
        def esc(text: str) -> str:  # Slack's mrkdwn treats &, < and > as markup
            return html.escape(text, quote=False)

        problems = "\n".join(f"• *{esc(p.asset)}*: {esc(p.cause)}" for p in self.problems)
        fields = f"*day* {esc(self.day)}   *job* {esc(self.job)}   <{self.link}|open the run in Dagster>"
        return {
            "text": esc(f"{self.subject}: {self.problems[0].cause} {self.link}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": fields}},
                {"type": "section", "text": {"type": "mrkdwn", "text": problems[:2900]}},
            ],
        }


# --- what an alert says ---------------------------------------------------------------------------------------

def _environment(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def secrets(channels: AlertChannels | None = None) -> list[str]:
    """The secret values of the alert channels and of the environment, longest first (a password inside a URL is
    replaced whole)."""
    found = [v for v in (_environment(n) for n in SECRET_VARIABLES) if v]
    if channels is not None:
        found += [v for v in (channels.smtp_password, channels.webhook_url) if v]
    if channels is not None and channels.webhook_url:
        parts = urlsplit(channels.webhook_url)
        found += [parts.path, parts.query]  # the token is in the path (Slack) or the query (others)
    for name in URL_VARIABLES:
        value = _environment(name)
        if value and "://" in value:
            try:
                password = sa.make_url(value).password
            except Exception:  # noqa: BLE001 - an unparsable URL: the regex in redact() still masks it
                password = None
            if password:
                found.append(str(password))
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def scrub(text: str, channels: AlertChannels | None = None) -> str:
    """``text`` with passwords in URLs masked and every secret value of the channels and the environment replaced
    by ***."""
    text = redact(text)
    for secret in secrets(channels):
        text = text.replace(secret, "***")
    return text


def run_day(run: dg.DagsterRun) -> str:
    """The business day(s) a run loaded, from its tags."""
    tags = run.tags
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start:
        return start if start == end or not end else f"{start} .. {end}"
    if tags.get(DAILY_CHAIN_TAG):  # the scheduled reference refresh that comes before a day's load
        return f"{tags[DAILY_CHAIN_TAG]} (reference refresh before the day's load)"
    return UNDATED


def _events(instance: dg.DagsterInstance, run_id: str, *types: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    return [e.dagster_event for e in instance.all_logs(run_id, of_type=set(types)) if e.dagster_event]


def error_cause(error, channels: AlertChannels | None = None) -> str:
    """The root cause of a failure in one line: a message ending in ':' goes on with its next lines, SQL
    statements are left out, and Dagster's own errors lose their class name (their message says it all)."""
    while error.cause is not None:
        error = error.cause
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    text, rest = (lines[0] if lines else error.cls_name), lines[1:]
    while text.endswith(":") and rest and not rest[0].startswith("[SQL"):
        text = f"{text} {rest.pop(0)}"
    if error.cls_name.startswith("Dagster"):
        text = text.split(f"{error.cls_name}: ", 1)[-1]
    return scrub(short(" ".join(text.split()), MAX_CAUSE), channels)


def _failed_error_checks(events: list[dg.DagsterEvent]) -> list[tuple[str | None, dg.AssetCheckEvaluation]]:
    """(step key, evaluation) of each ERROR check that failed."""
    out = []
    for event in events:
        if event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.event_specific_data
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            out.append((event.step_key, evaluation))
    return out


def _check_problem(evaluation: dg.AssetCheckEvaluation, channels: AlertChannels | None = None) -> Problem:
    details = check_details(evaluation.metadata or {}) or "no details recorded"
    return Problem(evaluation.asset_key.to_user_string(),
                   scrub(short(f"ERROR check {evaluation.check_name} failed: {details}", MAX_CAUSE), channels))


def failed_run_alert(instance: dg.DagsterInstance, run: dg.DagsterRun,
                     failure_event: dg.DagsterEvent | None = None, channels: AlertChannels | None = None) -> Alert:
    """What to tell about a failed run: each failed step's asset and cause, and each failed ERROR check."""
    events = _events(instance, run.run_id, dg.DagsterEventType.STEP_FAILURE,
                     dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assets_of_step: dict[str, list[str]] = {}
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED and event.step_key:
            assets_of_step.setdefault(event.step_key, []).append(event.asset_key.to_user_string())
    checks = _failed_error_checks(events)
    problems: list[Problem] = []
    told: set[int] = set()
    for event in events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        error = event.step_failure_data.error
        stopped_by = [(i, ev) for i, (step, ev) in enumerate(checks) if step == event.step_key]
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError" and stopped_by:
            problems += [_check_problem(ev, channels) for _, ev in stopped_by]
            told |= {i for i, _ in stopped_by}
            continue
        asset = ", ".join(assets_of_step.get(event.step_key or "", [])) or (event.step_key or "-")
        problems.append(Problem(asset, error_cause(error, channels) if error is not None else "the step failed"))
    problems += [_check_problem(ev, channels) for i, (_, ev) in enumerate(checks) if i not in told]
    if not problems:  # the run failed outside any step: it could not start, its process died, ...
        data = failure_event.event_specific_data if failure_event is not None else None
        error = getattr(data, "error", None)
        cause = error_cause(error, channels) if error is not None else (failure_event.message if failure_event else "")
        assets = sorted({a for names in assets_of_step.values() for a in names})
        problems.append(Problem(", ".join(assets[:3]) or "-",
                                scrub(short(cause or "the run failed", MAX_CAUSE), channels)))
    link = (channels or AlertChannels()).link(run.run_id)
    return Alert("failed", run.job_name, run.run_id, run_day(run), tuple(problems), link)


def failed_checks_alert(instance: dg.DagsterInstance, run: dg.DagsterRun,
                        channels: AlertChannels | None = None) -> Alert | None:
    """What to tell about a successful run: its failed ERROR checks, or None when there is none."""
    checks = _failed_error_checks(_events(instance, run.run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    if not checks:
        return None
    return Alert("finished with a failed ERROR check", run.job_name, run.run_id, run_day(run),
                 tuple(_check_problem(ev, channels) for _, ev in checks),
                 (channels or AlertChannels()).link(run.run_id))


# --- where it goes ----------------------------------------------------------------------------------------------

def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    recipients: tuple[str, ...]
    starttls: str  # auto: when the server offers it; true: required; false: never

    name = "e-mail"

    @classmethod
    def configured(cls, alerts: AlertChannels) -> EmailChannel | None:
        host = (alerts.smtp_host or "").strip()
        if not host:
            return None
        recipients = tuple(a.strip() for a in (alerts.smtp_to or "").split(",") if a.strip())
        if not recipients:
            raise ConfigError("e-mail alerts", "RETAIL_ALERT_SMTP_HOST is set but RETAIL_ALERT_SMTP_TO is not",
                              "set RETAIL_ALERT_SMTP_TO to the on-call addresses (comma-separated), or unset the host")
        mode = alerts.smtp_starttls.strip().lower()
        if mode not in ("auto", "true", "false"):
            raise ConfigError("e-mail alerts", f"RETAIL_ALERT_SMTP_STARTTLS={mode!r}", "set it to auto, true or false")
        user = (alerts.smtp_user or "").strip() or None
        fallback = user if user and "@" in user else "retail-etl@localhost"
        sender = (alerts.smtp_from or "").strip() or fallback
        return cls(host, alerts.smtp_port, user, alerts.smtp_password or None, sender, recipients, mode)

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="retail-etl")
        msg.set_content(alert.text())
        return msg

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            encrypted = False
            if self.starttls == "true" or (self.starttls == "auto" and smtp.has_extn("starttls")):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                encrypted = True
            if self.user:
                # A password crosses the network in the clear only to this machine, or when the operator said so.
                if not encrypted and self.starttls != "false" and not _loopback(self.host):
                    raise AlertNotDelivered(
                        f"the mail server {self.host} offers no STARTTLS, so the password is not sent; use a server "
                        "that does, or set RETAIL_ALERT_SMTP_STARTTLS=false to send it unencrypted")
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(alert))


@dataclass(frozen=True)
class WebhookChannel:
    url: str

    name = "webhook"

    @classmethod
    def configured(cls, alerts: AlertChannels) -> WebhookChannel | None:
        url = (alerts.webhook_url or "").strip()
        if not url:
            return None
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError("webhook alerts", f"{WEBHOOK_VARIABLE} is not an http(s) URL",
                              "set it to the incoming webhook's URL")
        return cls(url)

    @property
    def shown(self) -> str:
        """Where it posts, without the path and query that carry the webhook's token."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/..."

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.slack_body()).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:
                response.read()
        except urllib.error.HTTPError as exc:  # its text holds the URL, whose path is the token
            raise AlertNotDelivered(f"the webhook at {self.shown} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AlertNotDelivered(f"the webhook at {self.shown} could not be reached: {reason}") from None


class AlertChannels(dg.ConfigurableResource):
    """Where alerts go and the web UI they link to: one resource with the alert sensors' run-time settings, bound
    in ``definitions.py`` (``dg.EnvVar`` for each variable that is set, so the UI shows the name and never the
    webhook's token or the password). A channel whose variables are unset is off."""

    smtp_host: str | None = Field(default=None, description="RETAIL_ALERT_SMTP_HOST: the mail server; unset: no "
                                                             "e-mail")
    smtp_port: int = Field(default=int(DEFAULTS["RETAIL_ALERT_SMTP_PORT"]), description="RETAIL_ALERT_SMTP_PORT")
    smtp_user: str | None = Field(default=None, description="RETAIL_ALERT_SMTP_USER: login; unset: none")
    smtp_password: str | None = Field(default=None, description="RETAIL_ALERT_SMTP_PASSWORD")
    smtp_from: str | None = Field(default=None, description="RETAIL_ALERT_SMTP_FROM: the sender")
    smtp_to: str | None = Field(default=None, description="RETAIL_ALERT_SMTP_TO: recipients, comma-separated")
    smtp_starttls: str = Field(default=DEFAULTS["RETAIL_ALERT_SMTP_STARTTLS"],
                               description="RETAIL_ALERT_SMTP_STARTTLS: auto, true or false")
    webhook_url: str | None = Field(default=None, description="RETAIL_ALERT_WEBHOOK_URL: a secret; unset: no "
                                                               "webhook")
    ui_base_url: str = Field(default=DEFAULTS["RETAIL_UI_BASE_URL"],
                             description="RETAIL_UI_BASE_URL: the web UI the alerts link to")

    @classmethod
    def from_variables(cls) -> AlertChannels:
        """Bound to the variables as ``settings.bind`` says (the definitions' binding)."""
        return cls(**{field: bind(variable, int if field == "smtp_port" else str)
                      for field, variable in ALERT_VARIABLES.items()})

    def link(self, run_id: str) -> str:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

    def channels(self) -> list[EmailChannel | WebhookChannel]:
        """The channels whose variables are set."""
        return [c for c in (EmailChannel.configured(self), WebhookChannel.configured(self)) if c is not None]


def deliver(alert: Alert, log, alerts: AlertChannels) -> list[str]:
    """Send ``alert`` by every configured channel; the names of those that took it. One channel failing does not
    keep the others from trying; then the sensor's tick fails, naming it, so the UI shows the alert was lost."""
    try:
        targets = alerts.channels()
    except ConfigError as exc:
        raise AlertNotDelivered(scrub(str(exc), alerts)) from None
    if not targets:
        log.info(f"run {alert.run_id[:8]} {alert.what}; no alert channel is configured "
                 f"(RETAIL_ALERT_SMTP_HOST, {WEBHOOK_VARIABLE})")
        return []
    sent, failed = [], []
    for channel in targets:
        try:
            channel.send(alert)
            sent.append(channel.name)
        except Exception as exc:  # noqa: BLE001 - whatever the channel raised, the next one still tries
            failed.append(f"{channel.name}: {scrub(short(exc, MAX_CAUSE), alerts) or type(exc).__name__}")
    if sent:
        log.info(f"alert for run {alert.run_id[:8]} ({alert.day}) sent by {', '.join(sent)}")
    if failed:
        raise AlertNotDelivered(f"the alert for run {alert.run_id[:8]} ({alert.day}) was not delivered by "
                                + "; ".join(failed))
    return sent


@dg.run_failure_sensor(
    name="alert_on_run_failure", monitor_all_code_locations=True, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells the people on call when a run fails (e-mail: RETAIL_ALERT_SMTP_*; webhook: "
                "RETAIL_ALERT_WEBHOOK_URL): the business day, each failed asset with its cause (a failed ERROR "
                "check with the rules it broke) and the link to the run. No channel set: nothing is sent.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertChannels) -> None:
    deliver(failed_run_alert(context.instance, context.dagster_run, context.failure_event, alerts), context.log,
            alerts)


@dg.run_status_sensor(
    name="alert_on_failed_error_check", run_status=dg.DagsterRunStatus.SUCCESS, monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells the people on call when a run succeeded although one of its ERROR checks failed (a "
                "non-blocking one; a blocking one fails the run, which alert_on_run_failure tells).",
)
def alert_on_failed_error_check(context: dg.RunStatusSensorContext, alerts: AlertChannels) -> None:
    alert = failed_checks_alert(context.instance, context.dagster_run, alerts)
    if alert is not None:
        deliver(alert, context.log, alerts)


alert_sensors = [alert_on_run_failure, alert_on_failed_error_check]

