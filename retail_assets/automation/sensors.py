"""Sensors: the POS drop folder, late changes in the online shop, and the loads after a reference refresh.

Every sensor targets a job by name (``daily_load`` or ``refresh_reference``); runs of one business date carry its
partition key in the ``dagster/partition`` tag, which the instance's run queue uses to serialise them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.sources.pos import UNKNOWN_ROW_STORE
from retail_assets.automation.config import automation_settings
from retail_assets.automation.drop_watch import DropCursor, LedgerEntry, file_key, fingerprint, plan_tick
from retail_assets.automation.instance_queries import EXECUTING_STATUSES, active_run, loaded_at, partition_busy
from retail_assets.automation.recheck import RECHECK_DAYS, changed_days
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets.partitions import business_dates, daily_partitions
from retail_assets.resources import PosDropFolder, SqlSource, Warehouse
from retail_assets.resources.urls import WarehouseBusy
from retail_assets.schemas.sources import POS_FILE_LEDGER, RAW_ONLINE_RETURNS, RAW_STORES, REJECTIONS
from retail_assets.settings import load_settings

TRIGGER_TAG = "retail/trigger"
DAILY_CHAIN_TAG = "retail/daily_chain"  # on the scheduled reference run: the business date to load after it
UNRECOGNISED_ASSET = "pos_unrecognised_files"
ONLINE_LOOKBACK = timedelta(days=7)  # first tick: order updates older than this are taken as loaded
ONLINE_OVERLAP = timedelta(minutes=5)  # re-read a little before the watermark: commits land out of order
HASH_BUDGET_SECONDS = 20  # of hashing per tick; Dagster gives a sensor tick 60 seconds
LOG_DATES = 20  # per tick, in the sensor's log: a first tick over years of files names a few, then counts

_settings = automation_settings()


def partition_bounds() -> tuple[date, date]:
    """First and last business date that has a partition (the last is today in the reporting timezone)."""
    return (date.fromisoformat(daily_partitions.get_first_partition_key()),
            date.fromisoformat(daily_partitions.get_last_partition_key()))


def reference_not_ready(instance: dg.DagsterInstance) -> str | None:
    """Why a day must not load yet: the stores reference it validates against is missing or being refreshed."""
    if instance.get_latest_materialization_event(dg.AssetKey("raw_stores")) is None:
        return "raw_stores has never been materialised; the days load after the first refresh_reference run"
    run = active_run(instance, REFERENCE_JOB)
    if run is not None:
        return f"refresh_reference run {run.dagster_run.run_id[:8]} is {run.dagster_run.status.value.lower()}"
    return None


def _duckdb_held(warehouse: Warehouse, instance: dg.DagsterInstance) -> bool:
    """Whether the warehouse is one a single process may open and a run is executing against: leave it alone."""
    return warehouse.single_process and active_run(instance, statuses=EXECUTING_STATUSES) is not None


def _ledger_reader(warehouse: Warehouse, instance: dg.DagsterInstance):
    """Reads the ledger rows of some dates; None when the warehouse is an embedded DuckDB file a run holds."""
    if _duckdb_held(warehouse, instance):
        return None

    def read(days: Sequence[date]) -> dict[date, list[LedgerEntry]]:
        with warehouse.brief_read():
            frame = warehouse.read(POS_FILE_LEDGER, where={"business_date": list(days)},
                                   columns=["business_date", "path", "size", "mtime", "content_hash", "status"])
        out: dict[date, list[LedgerEntry]] = {}
        for row in frame.itertuples(index=False):
            day = pd.Timestamp(row.business_date).date()
            out.setdefault(day, []).append(LedgerEntry(row.path, int(row.size), float(row.mtime),
                                                       None if pd.isna(row.content_hash) else row.content_hash,
                                                       row.status))
        return out

    return read


@dg.sensor(
    name="pos_drop_sensor", job_name=DAILY_JOB, minimum_interval_seconds=_settings.pos_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches RETAIL_POS_DROP_DIR and requests one daily_load run per business date whose files are "
                "new or changed, once they have stopped changing (RETAIL_POS_SETTLE_SECONDS). Files are keyed by "
                "(path, size, mtime); only unknown ones are hashed, and bytes already loaded (pos_file_ledger) or "
                "requested (cursor) do not trigger again.",
)
def pos_drop_sensor(context: dg.SensorEvaluationContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    settings = automation_settings()
    cursor = DropCursor.from_json(context.cursor)
    now = time.time()
    files = pos_drop.scan()
    first, last = partition_bounds()
    blocked = reference_not_ready(context.instance)
    reader = None if blocked else _ledger_reader(warehouse, context.instance)
    plan = plan_tick(
        files, cursor, now=now, settle_seconds=settings.settle_seconds, first_day=first, last_day=last,
        read_ledger=reader, content_hash=lambda path: pos_drop.digest(path).content_hash,
        budget_seconds=HASH_BUDGET_SECONDS,
    )
    for iso, paths in list(plan.waiting.items())[:LOG_DATES]:
        context.log.info(f"{iso}: waiting for {len(paths)} file(s) still being written, e.g. {paths[0]}")
    if plan.duplicates:
        context.log.info(f"{len(plan.duplicates)} new file(s) with bytes already loaded or requested, not "
                         f"loaded again: {', '.join(plan.duplicates[:5])}")
    if plan.out_of_range:
        context.log.warning(f"{len(plan.out_of_range)} file(s) dated outside the partitions ({first} .. {last}), "
                            f"e.g. {plan.out_of_range[0]}; set RETAIL_PARTITION_START earlier to load them")
    requests = [
        dg.RunRequest(
            run_key=r.run_key, partition_key=r.day.isoformat(),
            tags={TRIGGER_TAG: "pos_drop", "retail/new_files": str(len(r.new_files))},
        )
        for r in plan.requests
    ]
    for r in plan.requests[:LOG_DATES]:
        context.log.info(f"{r.day}: {len(r.new_files)} new file(s) of {r.files}, e.g. {r.new_files[0]}")
    if len(plan.requests) > LOG_DATES:
        context.log.info(f"... and {len(plan.requests) - LOG_DATES} more business date(s), "
                         f"{plan.requests[LOG_DATES].day} .. {plan.requests[-1].day}")
    skip = None
    if not requests:
        if plan.deferred:
            why = blocked or ("the warehouse is busy (the embedded DuckDB file is held by a run)"
                              if plan.ledger_unavailable else "hashing their files takes more than one tick")
            skip = f"{len(plan.deferred)} business date(s) ready, waiting: {why}"
        elif plan.waiting:
            skip = f"{len(plan.waiting)} business date(s) have files still being written"
        else:
            skip = "no new or changed POS files"
    return dg.SensorResult(run_requests=requests, cursor=plan.cursor.to_json(), skip_reason=skip)


@dg.sensor(
    name="pos_reference_sensor", job_name=REFERENCE_JOB, minimum_interval_seconds=_settings.pos_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes the reference (refresh_reference) when stores.csv changes or was never loaded, and "
                "materialises pos_unrecognised_files when the set of files whose name matches no layout changes.",
)
def pos_reference_sensor(context: dg.SensorEvaluationContext, pos_drop: PosDropFolder):
    settings = automation_settings()
    state = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    previous = {p: tuple(v) for p, v in state.get("p", {}).items()}
    pending: dict[str, list] = {}
    requests: list[dg.RunRequest] = []
    new_state: dict[str, object] = {"s": state.get("s"), "u": state.get("u")}

    def stable(path: str, size: int, mtime: float) -> bool:
        key = (int(size), round(mtime, 6))
        ok = mtime <= now - settings.settle_seconds and previous.get(path, key) == key
        if not ok:
            pending[path] = list(key)
        return ok

    try:
        st = os.stat(pos_drop.stores_csv())
    except FileNotFoundError:
        st = None
    if st is not None:
        key = [st.st_size, round(st.st_mtime, 6)]
        if key != state.get("s") and stable("stores.csv", st.st_size, st.st_mtime):
            loaded = loaded_at(context.instance, "raw_stores")
            if loaded is None or loaded < st.st_mtime:
                requests.append(dg.RunRequest(run_key=f"stores:{key[0]}:{key[1]}", tags={TRIGGER_TAG: "stores_csv"}))
                context.log.info("stores.csv changed since raw_stores was last loaded: refreshing the reference")
            new_state["s"] = key

    unrecognised = [f for f in pos_drop.scan() if f.layout is None]
    settled = [stable(f.path, f.size, f.mtime) for f in unrecognised]  # every unsettled file is recorded
    if all(settled):
        fp = fingerprint(file_key(f) for f in unrecognised)
        if fp != state.get("u"):
            if (unrecognised or state.get("u")) and not requests:
                requests.append(dg.RunRequest(run_key=f"unrecognised:{fp[:24]}",
                                              asset_selection=[dg.AssetKey(UNRECOGNISED_ASSET)],
                                              tags={TRIGGER_TAG: "pos_unrecognised"}))
                context.log.info(f"{len(unrecognised)} file(s) match no layout, e.g. "
                                 f"{unrecognised[0].path if unrecognised else '-'}: recording them")
            new_state["u"] = fp
    new_state["p"] = pending
    cursor = json.dumps(new_state, separators=(",", ":"))
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    return dg.SensorResult(cursor=cursor, skip_reason="stores.csv and unrecognised files unchanged")


@dg.sensor(
    name="online_orders_sensor", job_name=DAILY_JOB, minimum_interval_seconds=_settings.online_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs the daily_load of a business date when an order placed that day was updated (paid, "
                "cancelled, ...) after the date's raw_online_orders partition was loaded.",
)
def online_orders_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource):
    timezone = load_settings().timezone
    state = json.loads(context.cursor) if context.cursor else {}
    now = datetime.now(ZoneInfo("UTC")).replace(tzinfo=None)
    watermark = datetime.fromisoformat(state["wm"]) if state.get("wm") else now - ONLINE_LOOKBACK
    orders = online_store.table("orders")
    frame = online_store.read(
        sa.select(orders.c.placed_at, orders.c.updated_at)
        .where(orders.c.updated_at > watermark - ONLINE_OVERLAP, orders.c.placed_at.is_not(None))
    )
    if frame.empty:
        return dg.SensorResult(cursor=json.dumps({"wm": watermark.isoformat()}),
                               skip_reason=f"no order updated since {watermark:%Y-%m-%d %H:%M:%S} UTC")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"])
    frame["day"] = business_dates(frame["placed_at"], timezone)
    first, last = partition_bounds()
    requests = []
    for day, updated in frame.groupby("day")["updated_at"].max().sort_index().items():
        if not first <= day <= last:
            continue
        loaded = loaded_at(context.instance, "raw_online_orders", day.isoformat())
        changed = updated.tz_localize("UTC").timestamp()
        if loaded is None or changed <= loaded:
            continue  # never loaded (the daily schedule will), or loaded after the change
        requests.append(dg.RunRequest(
            run_key=f"online:{day.isoformat()}:{updated:%Y%m%dT%H%M%S%f}", partition_key=day.isoformat(),
            tags={TRIGGER_TAG: "online_orders"},
        ))
        context.log.info(f"{day}: orders updated until {updated} UTC, after the load at "
                         f"{datetime.fromtimestamp(loaded, ZoneInfo('UTC')):%Y-%m-%d %H:%M:%S} UTC")
    cursor = json.dumps({"wm": max(watermark, frame["updated_at"].max().to_pydatetime()).isoformat()})
    if not requests:
        return dg.SensorResult(cursor=cursor, skip_reason="every updated order's date was loaded after the update")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


RETURNS_BATCH = 50_000  # new returns looked at per tick; the next tick goes on from the last


def _returns_missing(warehouse: Warehouse, returns: pd.DataFrame) -> dict[date, list[int]]:
    """Of ``returns`` (return_id, day), those raw_online_returns does not hold, by business date."""
    with warehouse.brief_read():
        held = warehouse.read(RAW_ONLINE_RETURNS, where={"business_date": sorted(set(returns["day"]))},
                              columns=["return_id"])
    missing = returns[~returns["return_id"].isin(set(held["return_id"].astype(int)))]
    return {day: sorted(int(i) for i in ids) for day, ids in missing.groupby("day")["return_id"]}


def _recent_days(timezone: str) -> set[date]:
    """The business dates ``online_recheck_sensor`` compares with the warehouse: the last RECHECK_DAYS before today."""
    today = datetime.now(ZoneInfo(timezone)).date()
    return {today - timedelta(days=n) for n in range(1, RECHECK_DAYS + 1)}


def _loaded_days(instance: dg.DagsterInstance, days: set[date], asset: str) -> list[date]:
    """Of ``days``, those with a partition of ``asset`` materialised (a date never loaded is the schedule's)."""
    first, last = partition_bounds()
    return sorted(d for d in days if first <= d <= last and loaded_at(instance, asset, d.isoformat()) is not None)


@dg.sensor(
    name="online_returns_sensor", job_name=DAILY_JOB, minimum_interval_seconds=_settings.online_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs the daily_load of a business date when a return dated that day (returned_at) was entered "
                "after the date's raw_online_returns partition was loaded. The returns table has no updated_at: new "
                "rows are found by return_id, and the warehouse says which of them the load missed. The last "
                f"{RECHECK_DAYS} dates are online_recheck_sensor's.",
)
def online_returns_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource, warehouse: Warehouse):
    timezone = load_settings().timezone
    state = json.loads(context.cursor) if context.cursor else {}
    returns = online_store.table("returns")
    query = sa.select(returns.c.return_id, returns.c.returned_at).where(returns.c.returned_at.is_not(None))
    if "rid" in state:
        query = query.where(returns.c.return_id > state["rid"])
        last_id = state["rid"]
    else:  # first tick: returns of the last days may have come after their day's load; older ones are taken as loaded
        since = datetime.now(ZoneInfo("UTC")).replace(tzinfo=None) - ONLINE_LOOKBACK
        query = query.where(returns.c.returned_at >= since)
        last_id = online_store.read(sa.select(sa.func.max(returns.c.return_id).label("m")))["m"].iloc[0]
        last_id = int(last_id) if pd.notna(last_id) else 0
    frame = online_store.read(query.order_by(returns.c.return_id).limit(RETURNS_BATCH))
    if frame.empty:
        return dg.SensorResult(cursor=json.dumps({"rid": last_id}), skip_reason="no new return")
    frame["return_id"] = frame["return_id"].astype(int)
    frame["day"] = business_dates(frame["returned_at"], timezone)
    cursor = json.dumps({"rid": max(last_id, int(frame["return_id"].max()))})
    loaded = _loaded_days(context.instance, set(frame["day"]) - _recent_days(timezone), "raw_online_returns")
    if not loaded:
        return dg.SensorResult(cursor=cursor, skip_reason="no new return is dated on an older loaded date")
    busy = dg.SkipReason("the warehouse is busy (the embedded DuckDB file is held by a run); next tick")
    if _duckdb_held(warehouse, context.instance):
        return busy
    try:
        missing = _returns_missing(warehouse, frame[frame["day"].isin(loaded)])
    except WarehouseBusy:
        return busy
    requests = [dg.RunRequest(run_key=f"returns:{day.isoformat()}:{ids[-1]}", partition_key=day.isoformat(),
                              tags={TRIGGER_TAG: "online_returns"})
                for day, ids in sorted(missing.items())]
    for day, ids in sorted(missing.items())[:LOG_DATES]:
        context.log.info(f"{day}: {len(ids)} return(s) entered after the day was loaded, e.g. return_id {ids[0]}")
    if not requests:
        return dg.SensorResult(cursor=cursor, skip_reason="the loads of the new returns' dates include them")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


@dg.sensor(
    name="online_recheck_sensor", job_name=DAILY_JOB, minimum_interval_seconds=_settings.online_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Extracts the last {RECHECK_DAYS} loaded business dates' orders, order lines and returns again and "
                "re-runs a date whose rows differ from the warehouse's: a row deleted or edited in place, which no "
                "updated_at or id cursor shows. One run per state of the source.",
)
def online_recheck_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource, warehouse: Warehouse):
    timezone = load_settings().timezone
    days = [d for d in _loaded_days(context.instance, _recent_days(timezone), "raw_online_orders")
            if not partition_busy(context.instance, d.isoformat())]
    if not days:
        return dg.SkipReason(f"none of the last {RECHECK_DAYS} business dates is loaded and idle")
    busy = dg.SkipReason("the warehouse is busy (the embedded DuckDB file is held by a run); next tick")
    if _duckdb_held(warehouse, context.instance):
        return busy
    try:
        with warehouse.brief_read():
            changed = changed_days(online_store, warehouse, days, timezone)
    except WarehouseBusy:
        return busy
    for day in list(changed)[:LOG_DATES]:
        context.log.info(f"{day}: the online shop's rows differ from the loaded ones (entered, deleted or edited)")
    if not changed:
        return dg.SkipReason(f"the {len(days)} recent loaded date(s) hold the online shop's rows")
    return [dg.RunRequest(run_key=f"recheck:{day.isoformat()}:{state}", partition_key=day.isoformat(),
                          tags={TRIGGER_TAG: "online_recheck"}) for day, state in changed.items()]


@dg.sensor(
    name="daily_load_after_reference", job_name=DAILY_JOB, minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="The second half of the daily schedule: when the scheduled refresh_reference run succeeds, load "
                f"the business date in its {DAILY_CHAIN_TAG} tag.",
)
def daily_load_after_reference(context: dg.SensorEvaluationContext):
    since, records = _reference_runs_since(context)
    requests = []
    for record in records:
        run = record.dagster_run
        day = run.tags.get(DAILY_CHAIN_TAG)
        if day:
            requests.append(dg.RunRequest(run_key=f"daily:{day}:{run.run_id}", partition_key=day,
                                          tags={TRIGGER_TAG: "daily_schedule", "retail/reference_run": run.run_id}))
        since = max(since, record.update_timestamp)
    if not requests:
        return dg.SensorResult(cursor=since.isoformat(), skip_reason="no scheduled reference refresh finished")
    return dg.SensorResult(run_requests=requests, cursor=since.isoformat())


def _reference_runs_since(context: dg.SensorEvaluationContext) -> tuple[datetime, Sequence[dg.RunRecord]]:
    """(the cursor's time, a day back on the first tick; the successful refresh_reference runs updated after it,
    oldest first)."""
    since = (datetime.fromisoformat(context.cursor) if context.cursor
             else datetime.now(ZoneInfo("UTC")) - timedelta(days=1))
    return since, context.instance.get_run_records(
        dg.RunsFilter(job_name=REFERENCE_JOB, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since),
        order_by="update_timestamp", ascending=True,
    )


STORE_FIX_CODES = ("unknown_store", "layout_mismatch")


def days_fixed_by_stores(warehouse: Warehouse) -> list[date]:
    """Business dates with POS data rejected for its store that raw_stores, as refreshed, now accepts: a whole file
    (named for a store not in stores.csv, or on another layout there) whose store is there now on the file's
    layout, or lines of a file with a store column whose store is there now."""
    ledger, rejections, stores = (warehouse.table(s) for s in (POS_FILE_LEDGER, REJECTIONS, RAW_STORES))
    pos_assets = rejections.c.asset.in_(["raw_pos_sales", "raw_pos_inventory"])
    rejected_for_store = sa.exists().where(
        rejections.c.business_date == ledger.c.business_date, rejections.c.source_ref == ledger.c.path,
        pos_assets, rejections.c.reason_code.in_(STORE_FIX_CODES))
    files = (sa.select(ledger.c.business_date)
             .join(stores, sa.and_(stores.c.store_code == ledger.c.store_code, stores.c.pos_layout == ledger.c.layout))
             .where(ledger.c.status == "rejected", rejected_for_store))
    prefix, suffix = UNKNOWN_ROW_STORE
    lines = (sa.select(rejections.c.business_date)
             .join(stores, rejections.c.reason == sa.literal(prefix) + stores.c.store_code + sa.literal(suffix))
             .where(pos_assets, rejections.c.reason_code == "unknown_store"))
    query = sa.union(files, lines).subquery()
    with warehouse.engine.connect() as conn:
        days = conn.execute(sa.select(query.c.business_date).distinct().order_by(query.c.business_date)).scalars()
        return [pd.Timestamp(d).date() for d in days]


@dg.sensor(
    name="pos_reload_after_stores_change", job_name=DAILY_JOB, minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful refresh_reference run, reloads the business dates that have a POS file (or, in "
                "a file with a store column, lines) rejected because stores.csv did not know the store (or had it "
                "on another layout) and now does.",
)
def pos_reload_after_stores_change(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    since, records = _reference_runs_since(context)
    if not records:
        return dg.SensorResult(cursor=since.isoformat(), skip_reason="no refresh_reference run finished")
    busy = dg.SkipReason("the warehouse is busy (the embedded DuckDB file is held by a run); next tick")
    if _duckdb_held(warehouse, context.instance):
        return busy
    try:
        with warehouse.brief_read():
            days = days_fixed_by_stores(warehouse)
    except WarehouseBusy:
        return busy
    reference = records[-1].dagster_run.run_id
    cursor = records[-1].update_timestamp.isoformat()
    first, last = partition_bounds()
    requests = [dg.RunRequest(run_key=f"stores:{day.isoformat()}:{reference}", partition_key=day.isoformat(),
                              tags={TRIGGER_TAG: "stores_fixed", "retail/reference_run": reference})
                for day in days if first <= day <= last]
    for r in requests[:LOG_DATES]:
        context.log.info(f"{r.partition_key}: a POS file rejected for its store loads now that stores.csv has it")
    if not requests:
        return dg.SensorResult(cursor=cursor, skip_reason="no file rejected for its store is accepted now")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


all_sensors = [pos_drop_sensor, pos_reference_sensor, online_orders_sensor, online_returns_sensor,
               online_recheck_sensor, daily_load_after_reference, pos_reload_after_stores_change]
