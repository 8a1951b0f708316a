"""Late changes to online orders, the daily schedule and the daily load that follows the reference refresh."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from retail_assets.assets.sources.online import raw_online_orders, raw_online_returns
from retail_assets.automation.schedules import daily_reference_schedule
from retail_assets.automation.sensors import DAILY_CHAIN_TAG, online_orders_sensor, online_returns_sensor
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


def _enter_return(engine: sa.Engine, day: str) -> int:
    """A new return (the next return_id) of an order line, returned at noon of ``day`` in New York."""
    returned = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=NEW_YORK).astimezone(UTC)
    with engine.begin() as conn:
        order_id, line_no = conn.execute(sa.text("SELECT order_id, line_no FROM order_items LIMIT 1")).one()
        return_id = conn.execute(sa.text("SELECT COALESCE(MAX(return_id), 0) + 1 FROM returns")).scalar_one()
        conn.execute(sa.text("INSERT INTO returns VALUES (:r, :o, :l, 1, 9.99, :at, 'late')"),
                     {"r": return_id, "o": order_id, "l": line_no, "at": returned.strftime("%Y-%m-%d %H:%M:%S.%f")})
    return return_id


def test_a_return_entered_after_its_day_was_loaded_reloads_that_day(drop, instance):
    loaded_day, unloaded_day = "2025-03-04", "2025-03-05"
    resources = drop["resources"]

    def load() -> None:
        assert dg.materialize([raw_online_returns], instance=instance, resources=resources,
                              partition_key=loaded_day).success
        resources["warehouse"].dispose()

    load()
    first = evaluate(online_returns_sensor, instance, resources)
    assert not first.run_requests, "the returns already there were loaded with their days"

    shop = sa.create_engine(drop["env"]["RETAIL_ONLINE_STORE_URL"])
    _enter_return(shop, loaded_day)
    load()  # a load that happened after the return was entered: it holds it
    quiet = evaluate(online_returns_sensor, instance, resources, first.cursor)
    assert not quiet.run_requests, "the day's load includes the new return"

    late = _enter_return(shop, loaded_day)
    _enter_return(shop, unloaded_day)
    shop.dispose()
    tick = evaluate(online_returns_sensor, instance, resources, quiet.cursor)
    requested = [(r.partition_key, r.run_key) for r in tick.run_requests]
    assert requested == [(loaded_day, f"returns:{loaded_day}:{late}")], \
        "only the loaded day, whose load missed the return; a day never loaded is the schedule's"
    assert tick.run_requests[0].tags["retail/trigger"] == "online_returns"
    assert not evaluate(online_returns_sensor, instance, resources, tick.cursor).run_requests, "nothing newer"


def _enter_order(engine: sa.Engine, day: str) -> int:
    """A paid guest order with one line, placed at 11:00 of ``day`` in New York."""
    placed = datetime.fromisoformat(f"{day}T11:00:00").replace(tzinfo=NEW_YORK).astimezone(UTC)
    stamp = placed.strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as conn:
        order_id = conn.execute(sa.text("SELECT MAX(order_id) + 1 FROM orders")).scalar_one()
        product_id = conn.execute(sa.text("SELECT MIN(product_id) FROM products")).scalar_one()
        conn.execute(sa.text("INSERT INTO orders VALUES (:o, NULL, 'guest@example.com', 'paid', :t, :t, 0, NULL)"),
                     {"o": order_id, "t": stamp})
        conn.execute(sa.text("INSERT INTO order_items VALUES (:o, 1, :p, 2, 9.99, 0)"),
                     {"o": order_id, "p": product_id})
    return order_id


def test_recent_rows_deleted_or_edited_in_the_shop_reload_their_day(drop, instance):
    """The last days are extracted again and compared with the warehouse: a return's refund edited, a return deleted,
    an order line's quantity edited, an order deleted (none of which moves an updated_at or an id cursor) each ask
    for the day again, once per state of the shop."""
    from retail_assets.assets.sources.online import raw_online_order_items
    from retail_assets.automation.sensors import online_recheck_sensor

    resources = drop["resources"]
    yesterday = (datetime.now(NEW_YORK).date() - timedelta(days=1)).isoformat()
    shop = sa.create_engine(drop["env"]["RETAIL_ONLINE_STORE_URL"])
    order_id, return_id = _enter_order(shop, yesterday), _enter_return(shop, yesterday)
    assert dg.materialize([raw_online_orders, raw_online_order_items, raw_online_returns], instance=instance,
                          resources=resources, partition_key=yesterday).success
    resources["warehouse"].dispose()

    def tick() -> list[str]:
        result = evaluate(online_recheck_sensor, instance, resources)
        requests = result if isinstance(result, list) else []
        assert all(r.partition_key == yesterday for r in requests)
        return [r.run_key for r in requests]

    def change(sql: str) -> None:
        with shop.begin() as conn:
            conn.execute(sa.text(sql), {"o": order_id, "r": return_id})

    assert tick() == [], "the load holds the shop's rows"
    keys = []
    for sql in ("UPDATE returns SET refund_amount = 5.00 WHERE return_id = :r",
                "DELETE FROM returns WHERE return_id = :r",
                "UPDATE order_items SET quantity = 3 WHERE order_id = :o",
                "DELETE FROM order_items WHERE order_id = :o; DELETE FROM orders WHERE order_id = :o"):
        for statement in sql.split("; "):
            change(statement)
        asked = tick()
        assert len(asked) == 1, sql
        assert tick() == asked, "the same state of the shop, the same run key"
        keys += asked
    shop.dispose()
    assert len(set(keys)) == 4


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


def _succeeded(instance: dg.DagsterInstance, sensor: dg.RunStatusSensorDefinition, job: str, tags: dict[str, str]):
    """What the run-status sensor does when a run of ``job`` with ``tags`` succeeds."""
    run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), tags=tags, status=dg.DagsterRunStatus.SUCCESS)
    instance.add_run(run)
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=job)
    context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=event,
                                                 dagster_instance=instance, dagster_run=run)
    return run.run_id, sensor(context)


def test_the_daily_load_follows_a_successful_scheduled_refresh(instance):
    from retail_assets.definitions import defs

    sensor = next(s for s in defs.sensors if s.name == "daily_load_after_reference")
    assert isinstance(sensor, dg.RunStatusSensorDefinition), "Dagster keeps its cursor over run status events"
    assert sensor.job_name == DAILY_JOB, "it requests the daily load (monitoring refresh_reference's successes)"

    chained, request = _succeeded(instance, sensor, REFERENCE_JOB, {DAILY_CHAIN_TAG: "2025-03-03"})
    assert (request.partition_key, request.run_key) == ("2025-03-03", f"daily:2025-03-03:{chained}")
    assert request.tags["retail/trigger"] == "daily_schedule"
    _, skipped = _succeeded(instance, sensor, REFERENCE_JOB, {"retail/trigger": "stores_csv"})
    assert isinstance(skipped, dg.SkipReason), "not the schedule's refresh: no day follows"
