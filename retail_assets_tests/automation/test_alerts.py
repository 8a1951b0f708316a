"""Alerts: a failed run and a failed ERROR check reach a real SMTP server and a real webhook on this machine.

The runs really run (the daily job of the real definitions, on a generated company, in a temporary instance) and
really fail: a source URL that cannot be opened, an order status the schema does not allow. The sensors are the
ones registered in the definitions, evaluated against that instance as the daemon evaluates them (their cursor
starts at the newest run, so the first tick only sets it). What the mail server and the HTTP server received is
read back: the day, the asset, the cause, the link to the run, and no password, token or webhook URL.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import sqlalchemy as sa

from retail_assets.jobs import DAILY_JOB
from retail_assets.partitions import daily_partitions
from retail_assets_tests.automation.test_online_and_daily import _order_placed_on

DAY = "2025-03-04"
SMTP_USER, SMTP_PASSWORD = "oncall-robot", "smtp-Pa55word-never-shown"
DB_PASSWORD = "db-Secret-never-shown"
WEBHOOK_TOKEN = "T0RETAIL/B0ALERTS/webhookTokenNeverShown"
UI = "http://dagster.retail.test:3000"
RECIPIENTS = ["oncall@retail.test", "lead@retail.test"]
SECRETS = (SMTP_PASSWORD, DB_PASSWORD, WEBHOOK_TOKEN, "webhookTokenNeverShown")
# The test server asks for a login without TLS on purpose: the client's STARTTLS is "auto", and this is loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[dict]:
    """aiosmtpd on localhost: it asks for a login (the password must be right) and keeps every message."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received: dict = {"messages": [], "logins": []}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received["messages"].append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        received["logins"].append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=(auth_data.login.decode(), auth_data.password.decode()) == (SMTP_USER,
                                                                                              SMTP_PASSWORD))

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    try:
        yield {**received, "port": port}
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[dict]:
    """An HTTP server on localhost that records each POST (path, content type, body)."""
    posts: list[tuple[str, str, bytes]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}/services/{WEBHOOK_TOKEN}", "posts": posts}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alerting(drop: dict, smtp: dict, webhook: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The company's platform with both channels configured, and a password in a database URL of the environment."""
    env = {
        "RETAIL_ALERT_SMTP_HOST": "127.0.0.1", "RETAIL_ALERT_SMTP_PORT": str(smtp["port"]),
        "RETAIL_ALERT_SMTP_USER": SMTP_USER, "RETAIL_ALERT_SMTP_PASSWORD": SMTP_PASSWORD,
        "RETAIL_ALERT_SMTP_FROM": "retail-etl@retail.test", "RETAIL_ALERT_SMTP_TO": ", ".join(RECIPIENTS),
        "RETAIL_ALERT_WEBHOOK_URL": webhook["url"], "RETAIL_UI_BASE_URL": UI + "/",
        "RETAIL_TRANSIENT_RETRIES": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**drop, "smtp": smtp, "webhook": webhook}


def _defs() -> dg.Definitions:
    """The definitions as the daemon would load them with the variables the test set (the alert channels are a
    resource bound to them when the definitions are built)."""
    from retail_assets.definitions import build_definitions

    return build_definitions()


def _tick(name: str, instance: dg.DagsterInstance, cursor: str | None):
    defs = _defs()
    sensor = next(s for s in defs.sensors if s.name == name)  # the registered sensor, not a copy
    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                 resources={"alerts": defs.resources["alerts"]}) as context:
        return sensor.evaluate_tick(context)


def _start(instance: dg.DagsterInstance) -> dict[str, str | None]:
    """Each alert sensor's first tick: it only sets its cursor at the newest run status change."""
    return {name: _tick(name, instance, None).cursor for name in ("alert_on_run_failure",
                                                                   "alert_on_failed_error_check")}


def _daily_run(instance: dg.DagsterInstance, *assets: str) -> dg.ExecuteInProcessResult:
    return _defs().resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=DAY, asset_selection=[dg.AssetKey(a) for a in assets], raise_on_error=False)


def _email(envelope) -> tuple[email.message.EmailMessage, str]:
    raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
    return email.message_from_bytes(raw, policy=email.policy.default), raw.decode()


def _webhook_text(body: bytes) -> str:
    """Every text a chat client shows of the Slack-style body."""
    payload = json.loads(body)
    texts = [payload["text"]]
    for block in payload["blocks"]:
        texts.append(block["text"]["text"])
    return "\n".join(texts)


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_a_failed_run_is_told_by_mail_and_webhook_with_day_asset_cause_and_link(alerting, instance):
    cursors = _start(instance)
    shop = f"postgresql://etl_reader:{DB_PASSWORD}@127.0.0.1:5432/no_such_shop"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETAIL_ONLINE_STORE_URL", shop)
        result = _daily_run(instance, "raw_online_orders")
    assert not result.success
    run_id, link = result.run_id, f"{UI}/runs/{result.run_id}"

    tick = _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"])
    assert [r.error for r in tick.dagster_run_reactions] == [None]

    [envelope] = alerting["smtp"]["messages"]
    assert envelope.rcpt_tos == RECIPIENTS
    assert alerting["smtp"]["logins"] == [(SMTP_USER, SMTP_PASSWORD)], "logged in with the password"
    message, raw = _email(envelope)
    assert DAY in message["Subject"] and "raw_online_orders" in message["Subject"]
    body = message.get_content()
    assert f"day:   {DAY}" in body and f"run:   {link}" in body
    [problem] = [line for line in body.splitlines() if line.startswith("asset ")]
    assert problem.startswith("asset raw_online_orders: RuntimeError: Reading the online shop database "
                              "RETAIL_ONLINE_STORE_URL="), problem
    assert "postgresql://etl_reader:***@127.0.0.1:5432/no_such_shop" in problem
    assert 'role "etl_reader" does not exist' in problem, problem
    _assert_no_secret(raw + body)  # the body as sent (quoted-printable may fold a line) and as read

    [(path, content_type, posted)] = alerting["webhook"]["posts"]
    assert path == f"/services/{WEBHOOK_TOKEN}" and content_type.startswith("application/json")
    text = _webhook_text(posted)
    assert DAY in text and "raw_online_orders" in text and link in text
    assert 'role "etl_reader" does not exist' in text
    _assert_no_secret(posted.decode())

    again = _tick("alert_on_run_failure", instance, tick.cursor)
    assert not again.dagster_run_reactions and len(alerting["smtp"]["messages"]) == 1, "each run is told once"
    quiet = _tick("alert_on_failed_error_check", instance, cursors["alert_on_failed_error_check"])
    assert not quiet.dagster_run_reactions, "a failed run is the failure sensor's"
    assert run_id in text


def test_a_failed_error_check_names_the_check_and_the_rules_it_broke(alerting, instance):
    cursors = _start(instance)
    shop = alerting["env"]["RETAIL_ONLINE_STORE_URL"].removeprefix("sqlite:///")
    engine = sa.create_engine(f"sqlite:///{shop}")
    order_id = _order_placed_on(engine, DAY)
    engine.dispose()
    with sqlite3.connect(shop) as conn:
        conn.execute("UPDATE orders SET status = 'lost_in_space' WHERE order_id = ?", (order_id,))
    result = _daily_run(instance, "raw_online_orders")
    assert not result.success, "the blocking schema check stops the run"

    tick = _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"])
    assert [r.error for r in tick.dagster_run_reactions] == [None]
    [envelope] = alerting["smtp"]["messages"]
    message, raw = _email(envelope)
    body = message.get_content()
    [problem] = [line for line in body.splitlines() if line.startswith("asset ")]
    assert problem.startswith("asset raw_online_orders: ERROR check schema failed: "), problem
    assert "status" in problem and "lost_in_space" in problem
    assert f"day:   {DAY}" in body and f"{UI}/runs/{result.run_id}" in body
    text = _webhook_text(alerting["webhook"]["posts"][0][2])
    assert "ERROR check schema failed" in text and "lost_in_space" in text and DAY in text
    _assert_no_secret(raw + body + text)


@dg.asset(partitions_def=daily_partitions, check_specs=[dg.AssetCheckSpec("tills_balance", asset="till_totals"),
                                                       dg.AssetCheckSpec("late_files", asset="till_totals")])
def till_totals():
    """An asset whose ERROR check is not blocking: its run succeeds although the check fails."""
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="tills_balance", passed=False, severity=dg.AssetCheckSeverity.ERROR,
                            metadata={"failed_rules": "net_amount: 2 store-days differ from the tills"}),
        dg.AssetCheckResult(check_name="late_files", passed=False, severity=dg.AssetCheckSeverity.WARN),
    ])


@dg.asset(partitions_def=daily_partitions, check_specs=[dg.AssetCheckSpec("late_files", asset="only_warned")])
def only_warned():
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="late_files", passed=False, severity=dg.AssetCheckSeverity.WARN)])


def test_a_run_that_succeeds_with_a_failed_error_check_is_told_and_a_warning_is_not(alerting, instance):
    cursors = _start(instance)
    assert dg.materialize([only_warned], instance=instance, partition_key=DAY).success
    checked = dg.materialize([till_totals], instance=instance, partition_key=DAY)
    assert checked.success

    tick = _tick("alert_on_failed_error_check", instance, cursors["alert_on_failed_error_check"])
    assert [r.error for r in tick.dagster_run_reactions] == [None, None], "both runs seen"
    [envelope] = alerting["smtp"]["messages"]
    body = _email(envelope)[0].get_content()
    assert [line for line in body.splitlines() if line.startswith("asset ")] == [
        "asset till_totals: ERROR check tills_balance failed: net_amount: 2 store-days differ from the tills"]
    assert f"day:   {DAY}" in body and f"{UI}/runs/{checked.run_id}" in body
    assert len(alerting["webhook"]["posts"]) == 1
    assert not _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"]).dagster_run_reactions


def test_without_alert_variables_nothing_is_sent_and_no_tick_fails(drop, instance, smtp, webhook, monkeypatch):
    for name in ("RETAIL_ALERT_SMTP_HOST", "RETAIL_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    cursors = _start(instance)
    monkeypatch.setenv("RETAIL_ONLINE_STORE_URL", f"sqlite:///{drop['root'] / 'no_such_shop.db'}")
    assert not _daily_run(instance, "raw_online_orders").success
    tick = _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"])
    assert [r.error for r in tick.dagster_run_reactions] == [None]
    assert not smtp["messages"] and not webhook["posts"]


def test_a_channel_that_fails_does_not_stop_the_other_and_the_tick_says_so_without_the_token(
        alerting, instance, monkeypatch):
    cursors = _start(instance)
    monkeypatch.setenv("RETAIL_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{_free_port()}/services/{WEBHOOK_TOKEN}")
    monkeypatch.setenv("RETAIL_ONLINE_STORE_URL", f"sqlite:///{alerting['root'] / 'no_such_shop.db'}")
    assert not _daily_run(instance, "raw_online_orders").success
    tick = _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"])
    [reaction] = tick.dagster_run_reactions
    assert reaction.error is not None
    error = reaction.error.to_string()
    assert "webhook at http://127.0.0.1:" in error and "could not be reached" in error
    _assert_no_secret(error)
    assert len(alerting["smtp"]["messages"]) == 1, "the e-mail went out all the same"


def test_the_link_goes_to_the_local_ui_by_default_and_passwords_are_masked(monkeypatch):
    from retail_assets.automation.alerts import AlertChannels, run_day, scrub

    monkeypatch.delenv("RETAIL_UI_BASE_URL", raising=False)
    assert AlertChannels.from_variables().link("abc") == "http://localhost:3000/runs/abc"
    monkeypatch.setenv("RETAIL_UI_BASE_URL", UI + "/")
    assert isinstance(AlertChannels.from_variables().ui_base_url, dg.EnvVar), "the UI shows the variable"
    monkeypatch.setenv("RETAIL_WAREHOUSE_URL", f"postgresql://etl:{DB_PASSWORD}@db/warehouse")
    text = scrub(f"login as x/{SMTP_PASSWORD} failed; server said {DB_PASSWORD}; mysql://u:pw12@h/db",
                 AlertChannels(smtp_password=SMTP_PASSWORD))
    assert text == "login as x/*** failed; server said ***; mysql://u:***@h/db"
    run = dg.DagsterRun(job_name="daily_load", tags={"dagster/asset_partition_range_start": "2025-03-03",
                                                     "dagster/asset_partition_range_end": "2025-03-05"})
    assert run_day(run) == "2025-03-03 .. 2025-03-05"
    assert run_day(dg.DagsterRun(job_name="refresh_reference")).startswith("none")


def test_starttls_required_but_not_offered_sends_no_password(alerting, instance, monkeypatch):
    cursors = _start(instance)
    monkeypatch.setenv("RETAIL_ALERT_SMTP_STARTTLS", "true")
    monkeypatch.setenv("RETAIL_ONLINE_STORE_URL", f"sqlite:///{alerting['root'] / 'no_such_shop.db'}")
    assert not _daily_run(instance, "raw_online_orders").success
    [reaction] = _tick("alert_on_run_failure", instance, cursors["alert_on_run_failure"]).dagster_run_reactions
    assert "e-mail: STARTTLS extension not supported by server" in reaction.error.to_string()
    assert not alerting["smtp"]["logins"] and not alerting["smtp"]["messages"]
    assert len(alerting["webhook"]["posts"]) == 1
