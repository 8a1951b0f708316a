"""The daily schedule: refresh the reference in the morning, then load the previous business date.

The schedule starts ``refresh_reference`` (stores, catalog, customers, contacts, dimensions) and tags the run
with the business date to load; the sensor ``daily_load_after_reference`` starts ``daily_load`` for that date
once the refresh has succeeded. A chain rather than a second schedule an hour later: the day never loads against
half-refreshed dimensions, however long the refresh takes, and a failed refresh does not load facts that would
point at stale dimension versions (fix it, re-execute the run, and the day follows).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from retail_assets.automation.common import DAILY_CHAIN_TAG, TRIGGER_TAG
from retail_assets.jobs import REFERENCE_JOB
from retail_assets.partitions import daily_partitions
from retail_assets.settings import DEFINITION_SETTINGS


def previous_business_date(scheduled: datetime, timezone: str) -> date:
    """The business date that ended before ``scheduled``, in the reporting timezone."""
    return scheduled.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


@dg.schedule(
    name="daily_reference_schedule", job_name=REFERENCE_JOB, cron_schedule=DEFINITION_SETTINGS.daily_cron,
    execution_timezone=daily_partitions.timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning (RETAIL_DAILY_SCHEDULE_CRON in RETAIL_TIMEZONE): refresh the reference, then "
                "daily_load_after_reference loads the previous business date.",
)
def daily_reference_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = previous_business_date(context.scheduled_execution_time, daily_partitions.timezone)
    return dg.RunRequest(run_key=f"daily:{day.isoformat()}",
                         tags={DAILY_CHAIN_TAG: day.isoformat(), TRIGGER_TAG: "daily_schedule"})


all_schedules = [daily_reference_schedule]
