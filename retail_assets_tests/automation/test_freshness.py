"""The freshness check: the previous business date is loaded by the deadline, or the facts are flagged."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from retail_assets.automation.freshness import (
    FRESHNESS_ASSETS,
    FRESHNESS_CHECK,
    FRESHNESS_JOB,
    build_freshness,
    expected_business_date,
)
from retail_assets.definitions import defs
from retail_assets.jobs import DAILY_JOB, MARTS_JOB, REFERENCE_JOB
from retail_assets.partitions import daily_partitions
from retail_assets.settings import parse_deadline

NEW_YORK = "America/New_York"


def test_the_expected_date_is_yesterday_once_the_deadline_has_passed():
    ten = time(10, 0)
    at = lambda text: datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(NEW_YORK))  # noqa: E731
    assert expected_business_date(at("2025-03-04T10:00"), ten, NEW_YORK) == date(2025, 3, 3)
    assert expected_business_date(at("2025-03-04T09:59"), ten, NEW_YORK) == date(2025, 3, 2)
    assert expected_business_date(at("2025-03-10T10:30"), ten, NEW_YORK) == date(2025, 3, 9)  # after spring forward
    # 14:30 UTC is 09:30 in New York in winter: before the deadline there, whatever the server's clock says.
    assert expected_business_date(datetime(2025, 1, 2, 14, 30, tzinfo=ZoneInfo("UTC")), ten, NEW_YORK) == date(
        2024, 12, 31)


def test_a_deadline_that_is_no_time_of_day_is_refused():
    assert parse_deadline("10:00") == time(10, 0)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_deadline("ten")


def test_only_its_own_job_runs_the_check():
    """Backfills of old dates (daily_load) must not flag today's freshness."""
    for job, expected in ((DAILY_JOB, False), (REFERENCE_JOB, False), (MARTS_JOB, False), (FRESHNESS_JOB, True)):
        keys = defs.resolve_job_def(job).asset_layer.asset_graph.asset_check_keys
        assert any(k.name == FRESHNESS_CHECK for k in keys) == expected, job
    schedule = next(s for s in defs.schedules if s.name == "freshness_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 10 * * *", NEW_YORK)


def test_the_check_flags_the_facts_whose_previous_date_is_missing(instance):
    freshness = build_freshness(time(0, 0), NEW_YORK)  # the deadline has always passed: yesterday is due
    checked = dg.Definitions(assets=[dg.AssetSpec(a, partitions_def=daily_partitions) for a in FRESHNESS_ASSETS],
                             asset_checks=[freshness.check], jobs=[freshness.job])
    yesterday = datetime.now(ZoneInfo(NEW_YORK)).date() - timedelta(days=1)
    older = yesterday - timedelta(days=3)
    for day in (yesterday, yesterday + timedelta(days=1)):  # due now, or due if the run crosses midnight
        instance.report_runless_asset_event(dg.AssetMaterialization("fact_sales", partition=day.isoformat()))
    instance.report_runless_asset_event(dg.AssetMaterialization("fact_inventory", partition=older.isoformat()))

    result = checked.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance, raise_on_error=False)
    outcomes = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert set(outcomes) == set(FRESHNESS_ASSETS)
    assert outcomes["fact_sales"].passed
    inventory = outcomes["fact_inventory"]
    assert not inventory.passed and inventory.severity == dg.AssetCheckSeverity.WARN
    assert inventory.metadata["latest_loaded_business_date"].value == older.isoformat()
    assert inventory.metadata["expected_business_date"].value in (yesterday.isoformat(),
                                                                  (yesterday + timedelta(days=1)).isoformat())
    assert not outcomes["mart_daily_sales"].passed
    assert outcomes["mart_daily_sales"].metadata["latest_loaded_business_date"].value == "none"
