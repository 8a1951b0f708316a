"""The online shop's sensors: an order updated (``online_orders_sensor``) or a return entered
(``online_returns_sensor``) after its day was loaded, and recent days whose rows changed in place
(``online_recheck_sensor``)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.automation.common import LOG_DATES, TRIGGER_TAG, WAREHOUSE_BUSY, duckdb_held, partition_bounds
from retail_assets.automation.instance_queries import loaded_at, partition_busy
from retail_assets.automation.recheck import RECHECK_DAYS, changed_days
from retail_assets.jobs import DAILY_JOB
from retail_assets.partitions import business_dates, daily_partitions
from retail_assets.resources import SqlSource, Warehouse
from retail_assets.resources.urls import WarehouseBusy
from retail_assets.schemas.sources import RAW_ONLINE_RETURNS
from retail_assets.settings import DEFINITION_SETTINGS

INTERVAL_SECONDS = DEFINITION_SETTINGS.online_interval_seconds  # RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS
ONLINE_LOOKBACK = timedelta(days=7)  # first tick: order updates older than this are taken as loaded
ONLINE_OVERLAP = timedelta(minutes=5)  # re-read a little before the watermark: commits land out of order


@dg.sensor(
    name="online_orders_sensor", job_name=DAILY_JOB, minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs the daily_load of a business date when an order placed that day was updated (paid, "
                "cancelled, ...) after the date's raw_online_orders partition was loaded.",
)
def online_orders_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource):
    timezone = daily_partitions.timezone
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
    name="online_returns_sensor", job_name=DAILY_JOB, minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs the daily_load of a business date when a return dated that day (returned_at) was entered "
                "after the date's raw_online_returns partition was loaded. The returns table has no updated_at: new "
                "rows are found by return_id, and the warehouse says which of them the load missed. The last "
                f"{RECHECK_DAYS} dates are online_recheck_sensor's.",
)
def online_returns_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource, warehouse: Warehouse):
    timezone = daily_partitions.timezone
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
    busy = dg.SkipReason(WAREHOUSE_BUSY)
    if duckdb_held(warehouse, context.instance):
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
    name="online_recheck_sensor", job_name=DAILY_JOB, minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Extracts the last {RECHECK_DAYS} loaded business dates' orders, order lines and returns again and "
                "re-runs a date whose rows differ from the warehouse's: a row deleted or edited in place, which no "
                "updated_at or id cursor shows. One run per state of the source.",
)
def online_recheck_sensor(context: dg.SensorEvaluationContext, online_store: SqlSource, warehouse: Warehouse):
    timezone = daily_partitions.timezone
    days = [d for d in _loaded_days(context.instance, _recent_days(timezone), "raw_online_orders")
            if not partition_busy(context.instance, d.isoformat())]
    if not days:
        return dg.SkipReason(f"none of the last {RECHECK_DAYS} business dates is loaded and idle")
    busy = dg.SkipReason(WAREHOUSE_BUSY)
    if duckdb_held(warehouse, context.instance):
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
