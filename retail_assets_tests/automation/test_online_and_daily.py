"""Late changes to online orders, the daily schedule and the daily load that follows the reference refresh."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from retail_assets.assets.sources.online import raw_online_orders
from retail_assets.automation.schedules import daily_reference_schedule
from retail_assets.automation.sensors import DAILY_CHAIN_TAG, daily_load_after_reference, online_orders_sensor
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets_tests.automation.conftest import evaluate

NEW_YORK = ZoneInfo("America/New_York")


def _order_placed_on(engine: sa.Engine, day: str) -> int:
    """An order whose placed_at (UTC) falls on ``day`` in New York."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT order_id, placed_at FROM orders ORDER BY order_id")).all()
    for order_id, placed_at in rows:
        stamp = datetime.fromisoformat(str(placed_at)).replace(tzinfo=UTC)
        if stamp.astimezone(NEW_YORK).date().isoformat() == day:
            return order_id
    raise AssertionError(f"no order placed on {day}")


def _cancel_now(engine: sa.Engine, order_id: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'cancelled', updated_at = :now WHERE order_id = :id"),
                     {"now": now.strftime("%Y-%m-%d %H:%M:%S.%f"), "id": order_id})


def test_an_order_changed_after_its_day_was_loaded_reloads_that_day(drop, instance):
    loaded_day, unloaded_day = "2025-03-04", "2025-03-05"
    assert dg.materialize([raw_online_orders], instance=instance, resources=drop["resources"],
                          partition_key=loaded_day).success

    quiet = evaluate(online_orders_sensor, instance, drop["resources"])
    assert not quiet.run_requests, "the generated orders changed long before the load"

    shop = sa.create_engine(drop["env"]["RETAIL_ONLINE_STORE_URL"])
    _cancel_now(shop, _order_placed_on(shop, loaded_day))
    _cancel_now(shop, _order_placed_on(shop, unloaded_day))
    shop.dispose()

    tick = evaluate(online_orders_sensor, instance, drop["resources"], quiet.cursor)
    assert [r.partition_key for r in tick.run_requests] == [loaded_day], "a day never loaded is the schedule's"
    assert tick.run_requests[0].tags["retail/trigger"] == "online_orders"

    again = evaluate(online_orders_sensor, instance, drop["resources"], tick.cursor)
    assert [r.run_key for r in again.run_requests] in ([], [tick.run_requests[0].run_key]), \
        "re-reading the overlap asks for the same run, which the daemon does not launch twice"


def test_the_schedule_refreshes_the_reference_for_the_previous_business_date():
    for scheduled, expected in [
        (datetime(2025, 3, 4, 6, 0, tzinfo=NEW_YORK), "2025-03-03"),
        (datetime(2025, 3, 9, 6, 0, tzinfo=NEW_YORK), "2025-03-08"),  # the morning clocks go forward
        (datetime(2025, 1, 1, 6, 0, tzinfo=NEW_YORK), "2024-12-31"),
    ]:
        request = daily_reference_schedule(dg.build_schedule_context(scheduled_execution_time=scheduled))
        assert request.tags[DAILY_CHAIN_TAG] == expected
        assert request.run_key == f"daily:{expected}"
    assert daily_reference_schedule.job_name == REFERENCE_JOB
    assert daily_reference_schedule.execution_timezone == "America/New_York"


def _finished_run(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> str:
    run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), tags=tags, status=dg.DagsterRunStatus.SUCCESS)
    instance.add_run(run)
    return run.run_id


def test_the_daily_load_follows_a_successful_scheduled_refresh(instance):
    chained = _finished_run(instance, REFERENCE_JOB, {DAILY_CHAIN_TAG: "2025-03-03"})
    _finished_run(instance, REFERENCE_JOB, {"retail/trigger": "stores_csv"})  # not the schedule's: no day follows
    _finished_run(instance, DAILY_JOB, {DAILY_CHAIN_TAG: "2025-03-02"})

    tick = evaluate(daily_load_after_reference, instance, {})
    assert [(r.partition_key, r.run_key) for r in tick.run_requests] == [("2025-03-03", f"daily:2025-03-03:{chained}")]
    assert not evaluate(daily_load_after_reference, instance, {}, tick.cursor).run_requests
