"""What follows a reference refresh: the previous business date's load after the scheduled refresh
(``daily_load_after_reference``), and the days whose POS data was rejected for a store that ``stores.csv`` now has
(``pos_reload_after_stores_change``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.automation.common import (
    DAILY_CHAIN_TAG,
    LOG_DATES,
    TRIGGER_TAG,
    WAREHOUSE_BUSY,
    duckdb_held,
    partition_bounds,
)
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets.resources import Warehouse
from retail_assets.resources.urls import WarehouseBusy
from retail_assets.schemas.sources import POS_FILE_LEDGER, RAW_STORES, REJECTIONS
from retail_assets.transforms.pos_day import LAYOUT_MISMATCH, UNKNOWN_STORE

CHAIN_SENSOR = "daily_load_after_reference"


def build_daily_chain(reference_job: dg.UnresolvedAssetJobDefinition,
                      daily_job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """The second half of the daily schedule, as a run-status sensor on ``reference_job``'s successful runs (the
    daemon keeps its cursor): a run the schedule tagged with a business date is followed by ``daily_job`` for it."""

    @dg.run_status_sensor(
        name=CHAIN_SENSOR, run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[reference_job],
        request_job=daily_job, default_status=dg.DefaultSensorStatus.RUNNING,
        description="The second half of the daily schedule: when the scheduled refresh_reference run succeeds, load "
                    f"the business date in its {DAILY_CHAIN_TAG} tag.",
    )
    def daily_load_after_reference(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        day = run.tags.get(DAILY_CHAIN_TAG)
        if not day:
            return dg.SkipReason(f"refresh_reference run {run.run_id[:8]} was not the schedule's: no day follows")
        return dg.RunRequest(run_key=f"daily:{day}:{run.run_id}", partition_key=day,
                             tags={TRIGGER_TAG: "daily_schedule", "retail/reference_run": run.run_id})

    return daily_load_after_reference


def _reference_runs_since(context: dg.SensorEvaluationContext) -> tuple[datetime, Sequence[dg.RunRecord]]:
    """(the cursor's time, a day back on the first tick; the successful refresh_reference runs updated after it,
    oldest first)."""
    since = (datetime.fromisoformat(context.cursor) if context.cursor
             else datetime.now(ZoneInfo("UTC")) - timedelta(days=1))
    return since, context.instance.get_run_records(
        dg.RunsFilter(job_name=REFERENCE_JOB, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since),
        order_by="update_timestamp", ascending=True,
    )


STORE_FIX_CODES = (UNKNOWN_STORE, LAYOUT_MISMATCH)


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
    lines = (sa.select(rejections.c.business_date)
             .join(stores, rejections.c.store_code == stores.c.store_code)
             .where(pos_assets, rejections.c.reason_code == UNKNOWN_STORE))
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
    busy = dg.SkipReason(WAREHOUSE_BUSY)
    if duckdb_held(warehouse, context.instance):
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
