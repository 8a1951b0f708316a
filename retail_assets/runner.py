"""``retail-etl run``: the whole graph for every business day with source data, through the Dagster instance.

The reference job (stores, catalog, customers, dimensions) runs first, then one run of the daily job per
business date, oldest first, so the runs, their materialisations and check results all show in the web UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.resources import PosDropFolder, SqlSource, Warehouse
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


def _local_dates(stamps: pd.Series, timezone: str) -> set[date]:
    stamps = pd.to_datetime(stamps.dropna())
    if stamps.empty:
        return set()
    local = stamps.dt.tz_localize("UTC").dt.tz_convert(timezone)
    return set(local.dt.date.unique())


def source_days(settings: Settings) -> list[date]:
    """Every business date for which some source holds data."""
    days: set[date] = set()
    drop = PosDropFolder(path=str(settings.pos_drop_dir), layouts_dir=str(settings.pos_layouts_dir))
    days |= {f.business_date for f in drop.scan() if f.business_date}
    shop = SqlSource(url=settings.online_store_url, name="online shop")
    try:
        for table_name, column in (("orders", "placed_at"), ("returns", "returned_at")):
            table = shop.table(table_name)
            frame = shop.read(sa.select(table.c[column]))
            days |= _local_dates(frame[column], settings.timezone)
    except sa.exc.NoSuchTableError as exc:
        raise SystemExit(f"retail-etl: the online shop database has no table {exc}; is RETAIL_ONLINE_STORE_URL "
                         "right?") from None
    finally:
        shop.engine.dispose()
    return sorted(days)


def _outcome(label: str, result: dg.ExecuteInProcessResult) -> RunOutcome:
    out = RunOutcome(label, result.success)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            cause = error.message.strip().splitlines()[0] if error else "unknown error"
            out.failures.append(f"{label}: asset {event.step_key} failed: {cause}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            severity = getattr(evaluation.severity, "value", str(evaluation.severity))
            out.failed_checks.append(f"{label}: {evaluation.asset_key.to_user_string()} / "
                                     f"{evaluation.check_name} ({severity})")
    return out


def _rows_written(result: dg.ExecuteInProcessResult) -> int:
    total = 0
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            count = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            total += int(count.value) if count is not None else 0
    return total


def run_graph(start: date | None = None, end: date | None = None, *, echo=print) -> int:
    """Materialise everything; print progress and the summary; 0 when every run and ERROR check passed."""
    from retail_assets.definitions import defs
    from retail_assets.jobs import DAILY_JOB, MARTS_JOB, REFERENCE_JOB

    settings = load_settings()
    instance = instance_for(settings)
    started = time.monotonic()
    days = source_days(settings)
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
    echo(f"retail-etl run: {len(days)} business day(s) {days[0] if days else '-'} .. {days[-1] if days else '-'}, "
         f"warehouse {Warehouse(url=settings.warehouse_url).display_url}, DAGSTER_HOME {settings.dagster_home}")

    outcomes = []
    reference = defs.resolve_job_def(REFERENCE_JOB)
    result = reference.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
    outcomes.append(_outcome("reference", result))
    echo(f"[reference] {'ok' if result.success else 'FAILED'} ({time.monotonic() - started:.1f}s)")
    daily = defs.resolve_job_def(DAILY_JOB)
    if result.success:
        for i, day in enumerate(days, 1):
            t0 = time.monotonic()
            result = daily.execute_in_process(instance=instance, partition_key=day.isoformat(), raise_on_error=False,
                                        run_config=QUIET)
            outcome = _outcome(day.isoformat(), result)
            outcomes.append(outcome)
            echo(f"[{i}/{len(days)}] {day} {'ok' if outcome.success else 'FAILED'}, {_rows_written(result):,} rows "
                 f"in {time.monotonic() - t0:.1f}s, "
                 f"elapsed {time.monotonic() - started:.1f}s")
        t0 = time.monotonic()
        result = defs.resolve_job_def(MARTS_JOB).execute_in_process(instance=instance, raise_on_error=False,
                                                                     run_config=QUIET)
        outcomes.append(_outcome("marts", result))
        echo(f"[marts] {'ok' if result.success else 'FAILED'} in {time.monotonic() - t0:.1f}s")
    summary(settings, days, outcomes, echo)
    failed = [o for o in outcomes if not o.success]
    return 1 if failed else 0


def summary(settings: Settings, days: list[date], outcomes: list[RunOutcome], echo=print) -> None:
    from retail_assets.schemas import ALL_TABLES

    warehouse = Warehouse(url=settings.warehouse_url)
    try:
        echo("\nrows per table" + (f" ({days[0]} .. {days[-1]})" if days else "") + ":")
        for name, spec in ALL_TABLES.items():
            table = warehouse.table(spec)
            query = sa.select(sa.func.count()).select_from(table)
            if spec.partition_column and days and name != "rejections":
                query = query.where(table.c[spec.partition_column].between(days[0], days[-1]))
            echo(f"  {name:<28} {warehouse.scalar(query):>12,}")
        rejections = warehouse.query(
            sa.select(ALL_TABLES["rejections"].sql_table(sa.MetaData()).c.reason_code, sa.func.count().label("n"))
            .group_by("reason_code").order_by(sa.desc("n"))
        )
        total = int(rejections["n"].sum()) if len(rejections) else 0
        echo(f"\nrejected rows: {total:,}" + ("".join(f"\n  {r.reason_code:<28} {int(r.n):>12,}"
                                                      for r in rejections.itertuples())))
    finally:
        warehouse.dispose()
    checks = [c for o in outcomes for c in o.failed_checks]
    errors = sum(1 for c in checks if c.endswith("(ERROR)"))
    echo(f"\nfailed checks: {len(checks)} ({errors} ERROR, {len(checks) - errors} WARN)"
         + "".join(f"\n  {c}" for c in checks))
    failures = [f for o in outcomes for f in o.failures]
    if failures:
        echo("\nFAILED:" + "".join(f"\n  {f}" for f in failures))
    days_ok = sum(1 for o in outcomes if o.success and o.label not in ("reference", "marts"))
    echo(f"\ndays loaded: {days_ok} of {len(days)}")

