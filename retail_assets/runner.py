"""``retail-etl run``: the whole graph for every business day with source data, through the Dagster instance.

The reference job (stores, catalog, customers, dimensions) runs first, then one run of the daily job per
business date, oldest first, so the runs, their materialisations and check results all show in the web UI.
The checks of ``retail-etl check`` come first: when one fails, nothing is written. The terminal gets one line per
day, per failure and per failed check; Dagster's own log (tracebacks, SQL) goes to the log file it names.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets import preflight
from retail_assets.checks import FAILED_RULES
from retail_assets.preflight import OK, LogFile, cause_of, short
from retail_assets.resources import Warehouse
from retail_assets.settings import Settings, load_settings

# The embedded default: SQLite storage, and one run at a time (the DuckDB warehouse admits one writing process),
# never two of the same business date. deploy/dagster.yaml is the PostgreSQL-backed equivalent.
DEFAULT_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_retries:  # a run whose process died (killed, out of memory, host restart) is started again by the daemon
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false  # a failed asset or check is not retried: the data would fail again
concurrency:
  runs:
    max_concurrent_runs: 1
    tag_concurrency_limits:
      - key: dagster/partition
        value: {applyLimitPerUniqueValue: true}
        limit: 1
"""
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunOutcome:
    label: str
    success: bool
    failures: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)


def instance_for(settings: Settings) -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME, made with SQLite storage when the folder is new."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML)
    return dg.DagsterInstance.get()


MAX_DETAIL = 240
_LOG_PREFIX = re.compile(r"^\S+ \S+ [+-]\d{4} - dagster - WARNING - ")
_ERROR_CHECK = re.compile(r"^[^:]+: \S+ / \S+ \(ERROR\)")
_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} - (\d+ - )?")


class _DagsterConsole(io.TextIOBase):
    """Dagster's console log during a run (it writes to sys.stderr): all of it to the log file, and the first line
    of each warning (a retry being scheduled, say) to the terminal. Errors are summed up after the run."""

    def __init__(self, log: LogFile, echo: Callable[[str], None]):
        self.log, self.echo = log, echo

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        lines = text.strip().splitlines()
        if lines and " - WARNING - " in lines[0]:
            self.echo("  warning: " + short(_RUN_ID.sub("", _LOG_PREFIX.sub("", lines[0]))))
        return len(text)


def _error_line(error) -> str:
    """The root cause of a step failure in one short line: a message ending in ':' goes on with its next lines
    (a blocking check's failure names the checks there), SQL statements are cut (the log file has them)."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "unknown error"
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else error.cls_name
    rest = lines[1:]
    while text.endswith(":") and rest and not rest[0].startswith("[SQL"):
        text = f"{text} {rest.pop(0)}"
    if error.cls_name.startswith("Dagster"):  # Dagster's own errors: the message says it all
        text = text.split(f"{error.cls_name}: ", 1)[-1]
    return short(text, MAX_DETAIL)


def check_details(metadata: Mapping[str, dg.MetadataValue]) -> str:
    """A failed check's metadata in one short line: the rules it broke with a sample of failing values
    (``checks.FAILED_RULES``, which every failed ERROR check carries), else the figures it reports."""
    values = {key: getattr(meta, "value", meta) for key, meta in metadata.items()}
    if values.get(FAILED_RULES):
        return short(values[FAILED_RULES], MAX_DETAIL)
    figures = [f"{key}={short(value, 40)}" for key, value in values.items()
               if key not in ("partition", "partitions_checked") and isinstance(value, bool | int | float | str)]
    return short("; ".join(figures), MAX_DETAIL)


def _outcome(label: str, result: dg.ExecuteInProcessResult) -> RunOutcome:
    out = RunOutcome(label, result.success)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            out.failures.append(f"{label}: asset {event.step_key} failed: "
                                f"{_error_line(event.step_failure_data.error)}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            severity = getattr(evaluation.severity, "value", str(evaluation.severity))
            details = check_details(evaluation.metadata or {})
            out.failed_checks.append(f"{label}: {evaluation.asset_key.to_user_string()} / "
                                     f"{evaluation.check_name} ({severity})" + (f": {details}" if details else ""))
    return out


def _rows_written(result: dg.ExecuteInProcessResult) -> int:
    total = 0
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            count = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            total += int(count.value) if count is not None else 0
    return total


def run_graph(start: date | None = None, end: date | None = None, *, echo=print, log: LogFile | None = None,
              day_tags: Mapping[str, str] | None = None) -> int:
    """Check, materialise everything, print progress and the summary; 0 when every run and ERROR check passed.
    ``day_tags`` go on every day's run (an operator's act, e.g. ``retail/accept_held``)."""
    settings = load_settings()
    log = log or LogFile()
    checks = preflight.run_checks(settings)
    for item in checks.items:
        # the days before RETAIL_PARTITION_START are told below for the run's own range
        if item.status != OK and item.name != preflight.DATES_ITEM:
            echo(item.line())
    if checks.failed:
        echo(f"retail-etl run: stopped before loading anything: {len(checks.failed)} check(s) failed; fix the "
             "variables named above (`retail-etl check` runs the checks alone)")
        return 1

    from retail_assets.definitions import build_definitions
    from retail_assets.jobs import DAILY_JOB, MARTS_JOB, REFERENCE_JOB

    defs = build_definitions()  # bound to the variables as load_settings left them, not as at the first import

    instance = instance_for(settings)
    started = time.monotonic()
    with_data = checks.days
    days = list(with_data)
    if start or end:
        lo = start or (days[0] if days else date.today())
        hi = end or (days[-1] if days else lo)
        days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
    first_partition = date.fromisoformat(settings.partition_start)
    early = [d for d in days if d < first_partition]
    if early:
        echo(f"warning: {len(early)} day(s) before RETAIL_PARTITION_START={settings.partition_start} are skipped "
             f"(first: {early[0]}); set the variable earlier to load them")
        days = [d for d in days if d >= first_partition]
    span = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)] if days else []
    found = set(with_data)
    no_data = [d for d in span if d not in found]
    echo(f"retail-etl run: {len(days)} business day(s) {days[0] if days else '-'} .. {days[-1] if days else '-'}, "
         f"warehouse {Warehouse(url=settings.warehouse_url).display_url}, DAGSTER_HOME {settings.dagster_home}, "
         f"{len(checks.items) - len(checks.failed)} checks passed")

    console = _DagsterConsole(log, echo)

    def execute(job: str, **kwargs) -> dg.ExecuteInProcessResult:
        with redirect_stderr(console):
            return defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False,
                                                                run_config=QUIET, **kwargs)

    outcomes = []
    result = execute(REFERENCE_JOB)
    outcomes.append(_outcome("reference", result))
    echo(f"[reference] {'ok' if result.success else 'FAILED'} ({time.monotonic() - started:.1f}s)")
    if result.success:
        for i, day in enumerate(days, 1):
            t0 = time.monotonic()
            result = execute(DAILY_JOB, partition_key=day.isoformat(), tags=dict(day_tags or {}))
            outcome = _outcome(day.isoformat(), result)
            outcomes.append(outcome)
            echo(f"[{i}/{len(days)}] {day} {'ok' if outcome.success else 'FAILED'}, {_rows_written(result):,} rows "
                 f"in {time.monotonic() - t0:.1f}s, "
                 f"elapsed {time.monotonic() - started:.1f}s")
        t0 = time.monotonic()
        result = execute(MARTS_JOB)
        outcomes.append(_outcome("marts", result))
        echo(f"[marts] {'ok' if result.success else 'FAILED'} in {time.monotonic() - t0:.1f}s")
    summary(settings, days, outcomes, echo, no_data=no_data, early=early, log=log)
    failed = [o for o in outcomes if not o.success]
    return 1 if failed else 0


def _dates(days: list[date], limit: int = 10) -> str:
    shown = ", ".join(d.isoformat() for d in days[:limit])
    return shown + (f", ... ({len(days) - limit} more)" if len(days) > limit else "")


def _cell(value: object) -> str:
    return "-" if value is None or pd.isna(value) else str(value)


def _history(warehouse: Warehouse, echo, sample: bool) -> None:
    """How many products and customers have more than one SCD2 version (the unknown member left out)."""
    from retail_assets.schemas.warehouse import DIM_CUSTOMER, DIM_PRODUCT

    parts, with_history = [], 0
    for label, spec, business_key, surrogate_key in (("products", DIM_PRODUCT, "sku_norm", "product_key"),
                                                    ("customers", DIM_CUSTOMER, "customer_id", "customer_key")):
        table = warehouse.table(spec)
        per_key = (sa.select(table.c[business_key], sa.func.count().label("n"))
                   .where(table.c[surrogate_key] != -1).group_by(table.c[business_key]).subquery())
        counts = warehouse.query(sa.select(sa.func.count().label("entities"),
                                           sa.func.sum(sa.case((per_key.c.n > 1, 1), else_=0)).label("changed"),
                                           sa.func.sum(per_key.c.n).label("versions")))
        row = counts.iloc[0]
        entities, changed, versions = (0 if pd.isna(row[c]) else int(row[c]) for c in ("entities", "changed",
                                                                                          "versions"))
        parts.append(f"{changed:,} of {entities:,} {label} ({versions:,} versions in {spec.name})")
        with_history += changed
    echo("\nhistory: " + " and ".join(parts) + " have more than one version; each fact points at the version "
         "valid when it was sold")
    if sample and not with_history:
        echo("  a warehouse loaded once knows only the sources' current rows: load the sample company as it stood "
             "when its period began first (`retail-etl generate --as-of-start`, `retail-etl run`), then generate "
             "and run again, and the period's changes become versions")


def _warehouse_summary(warehouse: Warehouse, days: list[date], echo, *, sample: bool = False) -> None:
    """Rows per table (those split by business date counted in the range, the others whole), the entities with
    history, rejected rows by reason (``sample``: said to be the sample company's planted dirt), and every POS
    file refused or held in the range."""
    from retail_assets.schemas import ALL_TABLES

    span = f"{days[0]} .. {days[-1]}" if days else None
    by_day, whole = [], []
    for name, spec in ALL_TABLES.items():
        table = warehouse.table(spec)
        query = sa.select(sa.func.count()).select_from(table)
        if spec.partition_column and span and name != "rejections":
            query = query.where(table.c[spec.partition_column].between(days[0], days[-1]))
            by_day.append((name, warehouse.scalar(query)))
        elif name != "rejections":
            whole.append((name, warehouse.scalar(query)))
    if by_day:
        echo(f"\nrows in the range {span} (tables by business date):"
             + "".join(f"\n  {name:<28} {n:>12,}" for name, n in by_day))
    echo("\nrows in the whole table (tables not split by business date):"
         + "".join(f"\n  {name:<28} {n:>12,}" for name, n in whole))
    _history(warehouse, echo, sample and bool(days))

    def in_range(table: sa.Table) -> list[sa.ColumnElement[bool]]:
        day = table.c.business_date
        return [day.between(days[0], days[-1]) | day.is_(None)] if span else []

    rejections = warehouse.table(ALL_TABLES["rejections"])
    by_reason = warehouse.query(
        sa.select(rejections.c.reason_code, sa.func.count().label("n")).where(*in_range(rejections))
        .group_by(rejections.c.reason_code).order_by(sa.desc("n"), rejections.c.reason_code))
    total = int(by_reason["n"].sum()) if len(by_reason) else 0
    echo(f"\nrejected rows: {total:,} ({f'{span} and undated' if span else 'whole table'})"
         + "".join(f"\n  {r.reason_code:<28} {int(r.n):>12,}" for r in by_reason.itertuples()))
    if sample and total:
        echo("  the sample company of `retail-etl generate` is dirty on purpose: it plants every one of these "
             "(manifest.json beside pos_drop lists them); with real sources, a bad line or file is one to fix at its "
             "source")

    ledger = warehouse.table(ALL_TABLES["pos_file_ledger"])
    files = warehouse.query(
        sa.select(ledger.c.store_code, ledger.c.business_date, ledger.c.path, ledger.c.status, ledger.c.reason)
        .distinct().where(ledger.c.status.in_(["rejected", "held"]), *in_range(ledger))
        .order_by(ledger.c.business_date, ledger.c.store_code, ledger.c.path))
    rows = [f"\n  {_cell(r.store_code)}, {_cell(r.business_date)[:10]}, {r.path}, {r.status}: "
            f"{short(_cell(r.reason), 160)}" for r in files.itertuples()]
    echo(f"\nPOS files refused or held: {len(rows)} ({f'{span} and undated' if span else 'all'})" + "".join(rows))


def summary(settings: Settings, days: list[date], outcomes: list[RunOutcome], echo=print, *,
            no_data: list[date] | None = None, early: list[date] | None = None, log: LogFile | None = None) -> None:
    """What the run did. The warehouse's counts are left out, in one line, when it cannot be read: the failures
    and the days loaded are what matters then."""
    warehouse = Warehouse(url=settings.warehouse_url)
    try:
        _warehouse_summary(warehouse, days, echo, sample=(settings.pos_drop_dir.parent / "manifest.json").is_file())
    except Exception as exc:  # noqa: BLE001 - the summary must reach the FAILED lines whatever the warehouse does
        if log is not None:
            log.exception(exc, "summary: reading the warehouse")
        echo(f"\nwarehouse {warehouse.display_url} cannot be read: {cause_of(exc)}; rows and rejections are left "
             "out (RETAIL_WAREHOUSE_URL; `retail-etl check` tries it)")
    finally:
        warehouse.dispose()
    if no_data:
        echo(f"\ndays in the range with no source data: {len(no_data)} ({_dates(no_data)})")
    if early:
        echo(f"\ndays skipped before RETAIL_PARTITION_START={settings.partition_start}: {len(early)} "
             f"({_dates(early)}); set it earlier to load them")
    checks = [c for o in outcomes for c in o.failed_checks]
    errors = sum(1 for c in checks if _ERROR_CHECK.search(c))
    echo(f"\nfailed checks: {len(checks)} ({errors} ERROR, {len(checks) - errors} WARN)"
         + "".join(f"\n  {c}" for c in checks))
    failures = [f for o in outcomes for f in o.failures]
    if failures:
        echo("\nFAILED:" + "".join(f"\n  {f}" for f in failures))
    days_ok = sum(1 for o in outcomes if o.success and o.label not in ("reference", "marts"))
    echo(f"\ndays loaded: {days_ok} of {len(days)}")
    if log is not None and log.used:
        echo(f"details (Dagster's log, tracebacks): {log.path}")
