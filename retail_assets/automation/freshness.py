"""Freshness: by a time of day the previous business date must be loaded, or the facts are flagged overdue.

A load that never ran (a sensor or the schedule turned off, a run stuck in the queue, files that never came, a
refresh that failed and was never re-executed) leaves no failed run to notice. ``freshness_schedule`` runs the
check ``loaded_by_deadline`` on the facts analysts read every day at ``RETAIL_FRESHNESS_DEADLINE`` (``HH:MM`` in
RETAIL_TIMEZONE, default 10:00): it fails (WARN) when the business date before the deadline's has no
materialisation, and names the latest date that has one. It is part of no load job, so backfills of old dates do
not evaluate it.

Dagster's own freshness cannot say this, so the check is ours: ``build_time_partition_freshness_checks`` expects
the partition that is last at the deadline, and with ``end_offset=1`` (today is a partition, so the sensors can
load it) that is today's, not the previous business date; and it fails outright before the first partition. A
``FreshnessPolicy`` judges an asset by its latest materialisation of any partition, so a backfill of an old date
would make the facts look fresh.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from retail_assets.partitions import daily_partitions

FRESHNESS_ASSETS = ("fact_sales", "fact_inventory", "mart_daily_sales")
FRESHNESS_CHECK = "loaded_by_deadline"
FRESHNESS_JOB = "check_freshness"


def expected_business_date(now: datetime, deadline: time, timezone: str) -> date:
    """The business date that must be loaded at ``now`` (aware): yesterday once today's deadline has passed in
    ``timezone``, the day before yesterday until then."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.date() - timedelta(days=1 if local.time() >= deadline else 2)


def _latest_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1).records
    return records[0].partition_key if records else None


@dataclass(frozen=True)
class Freshness:
    check: dg.AssetChecksDefinition
    job: "dg.UnresolvedAssetJobDefinition"  # a name Dagster does not export at run time
    schedule: dg.ScheduleDefinition


def build_freshness(deadline: time, timezone: str = daily_partitions.timezone) -> Freshness:
    """The check ``loaded_by_deadline`` on ``FRESHNESS_ASSETS``, its job and its daily schedule at ``deadline``."""
    first = daily_partitions.start.date()

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(FRESHNESS_CHECK, asset=asset, description="The previous business date is loaded "
                                 "by RETAIL_FRESHNESS_DEADLINE (default 10:00, RETAIL_TIMEZONE) (WARN)")
               for asset in FRESHNESS_ASSETS],
        can_subset=True, name=FRESHNESS_CHECK,
    )
    def loaded_by_deadline(context: dg.AssetCheckExecutionContext):
        day = expected_business_date(datetime.now(ZoneInfo("UTC")), deadline, timezone)
        for check_key in context.selected_asset_check_keys:
            key = check_key.asset_key
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1).records
            passed = bool(records) or day < first
            latest = _latest_partition(context.instance, key)
            if passed:
                description = f"{day} is loaded" if records else f"{day} is before the first partition ({first})"
            else:
                description = (f"{day} is not loaded by {deadline:%H:%M} {timezone}; the latest loaded date is "
                               f"{latest or 'none'}: check the daily_reference_schedule and daily_load runs")
            yield dg.AssetCheckResult(
                asset_key=key, check_name=FRESHNESS_CHECK, passed=passed, severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata={"expected_business_date": day.isoformat(),
                          "latest_loaded_business_date": latest or "none",
                          "deadline": f"{deadline:%H:%M} {timezone}"},
            )

    job = dg.define_asset_job(FRESHNESS_JOB, selection=dg.AssetSelection.checks(loaded_by_deadline),
                              description="Whether the previous business date is loaded (no asset is materialised)")
    schedule = dg.ScheduleDefinition(
        name="freshness_schedule", job=job, cron_schedule=f"{deadline.minute} {deadline.hour} * * *",
        execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every day at RETAIL_FRESHNESS_DEADLINE: is the previous business date loaded in the facts?",
    )
    return Freshness(loaded_by_deadline, job, schedule)
