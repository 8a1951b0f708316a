"""Daily partitions by business date, in the reporting timezone."""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from retail_assets.settings import DEFINITION_SETTINGS

# Backfill policies are a beta parameter of @asset; the policy below is deliberate, so say it once, not per asset.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta")

# RETAIL_PARTITION_START and RETAIL_TIMEZONE live here for every asset body: ``daily_partitions.timezone``,
# ``daily_partitions.start``.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=DEFINITION_SETTINGS.partition_start, timezone=DEFINITION_SETTINGS.timezone, end_offset=1
)

# Every dated asset shares one policy (a job may not mix them): one business date a run, so a failure names its
# day, a day is replaced atomically on its own, and the metadata KPIs of each partition are that day's own.
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def partition_dates(context: dg.AssetExecutionContext) -> list[date]:
    """The business dates this run covers: one, or a range when a backfill loads several in one run."""
    return [date.fromisoformat(k) for k in context.partition_keys]


def utc_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the business day ``day`` in ``timezone``, as naive UTC (how the sources store time)."""
    tz = ZoneInfo(timezone)
    utc = ZoneInfo("UTC")
    start = datetime.combine(day, time(), tz).astimezone(utc).replace(tzinfo=None)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(utc).replace(tzinfo=None)
    return start, end


def business_dates(stamps: pd.Series, timezone: str) -> pd.Series:
    """Naive UTC times (how the sources store time) -> their business dates in ``timezone``, as ``date``s."""
    return pd.to_datetime(stamps).dt.tz_localize("UTC").dt.tz_convert(timezone).dt.date
