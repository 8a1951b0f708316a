"""The POS drop sensor, tick by tick, on a generated company's drop folder and a real (DuckDB) warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from retail_assets.assets.sources.pos import raw_pos_inventory, raw_pos_sales, raw_stores
from retail_assets.automation.sensors import pos_drop_sensor, pos_reference_sensor
from retail_assets_tests.automation.conftest import copy_aged, evaluate


def _dates(result: dg.SensorResult) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests)


def _stores_loaded(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_stores"))


def _file_dates(manifest: dict) -> list[str]:
    return sorted(manifest["business_dates"])


def test_days_wait_for_the_stores_reference_then_load_once_each(drop, instance):
    blocked = evaluate(pos_drop_sensor, instance, drop["resources"])
    assert not blocked.run_requests
    assert "raw_stores" in blocked.skip_reason.skip_message

    _stores_loaded(instance)
    first = evaluate(pos_drop_sensor, instance, drop["resources"], blocked.cursor)
    assert _dates(first) == _file_dates(drop["manifest"])
    assert len({r.run_key for r in first.run_requests}) == len(first.run_requests)
    assert all(r.tags["retail/trigger"] == "pos_drop" for r in first.run_requests)
    assert ".part" not in first.cursor

    again = evaluate(pos_drop_sensor, instance, drop["resources"], first.cursor)
    assert not again.run_requests, "nothing changed, nothing to load"
    assert len(first.cursor) < 4000


def test_a_copy_counts_once_and_a_corrected_resend_reloads_its_day(drop, instance):
    _stores_loaded(instance)
    first = evaluate(pos_drop_sensor, instance, drop["resources"])
    manifest, folder = drop["manifest"], drop["drop_dir"]

    day, store = "2025-03-04", next(iter(manifest["pos"]["2025-03-04"]))
    loaded = manifest["pos"][day][store]["file"]
    copy_aged(folder / loaded, folder / "retry" / "again" / Path(loaded).name)
    dup = evaluate(pos_drop_sensor, instance, drop["resources"], first.cursor)
    assert not dup.run_requests, "the same bytes in another folder are not loaded again"

    corrected_day = "2025-03-05"
    target = folder / manifest["pos"][corrected_day][next(iter(manifest["pos"][corrected_day]))]["file"]
    data = target.read_bytes()
    target.write_bytes(data + (data.splitlines(keepends=True)[-1] if not target.name.endswith(".gz") else b""))
    stamp = time.time() - 120
    os.utime(target, (stamp, stamp))
    resend = evaluate(pos_drop_sensor, instance, drop["resources"], dup.cursor)
    assert _dates(resend) == [corrected_day]
    assert resend.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_a_file_still_being_written_waits_until_it_settles(drop, instance):
    _stores_loaded(instance)
    first = evaluate(pos_drop_sensor, instance, drop["resources"])
    folder = drop["drop_dir"]
    template = next(folder.rglob("sales_S001_*.csv"))
    growing = folder / "midwest" / "S001" / "sales_S001_20250306.csv"
    lines = template.read_bytes().splitlines(keepends=True)
    growing.write_bytes(b"".join(lines[: len(lines) // 2]))  # upload in place, mtime now

    tick = evaluate(pos_drop_sensor, instance, drop["resources"], first.cursor)
    assert not tick.run_requests
    assert "still being written" in tick.skip_reason.skip_message

    with growing.open("ab") as out:  # more bytes arrive; the uploader's clock says a while ago
        out.write(b"".join(lines[len(lines) // 2:]))
    stamp = time.time() - 60
    os.utime(growing, (stamp, stamp))
    tick = evaluate(pos_drop_sensor, instance, drop["resources"], tick.cursor)
    assert not tick.run_requests, "its size changed since the previous tick"

    tick = evaluate(pos_drop_sensor, instance, drop["resources"], tick.cursor)
    assert _dates(tick) == ["2025-03-06"]


def test_after_losing_the_cursor_the_ledger_prevents_reloading(drop, instance):
    """A restart with no cursor: dates the ledger shows loaded are not requested again, copies included."""
    day = "2025-03-03"
    assert dg.materialize([raw_stores], instance=instance, resources=drop["resources"]).success
    result = dg.materialize([raw_stores, raw_pos_sales, raw_pos_inventory], instance=instance,
                            resources=drop["resources"], partition_key=day,
                            selection=[raw_pos_sales, raw_pos_inventory])
    assert result.success
    drop["resources"]["warehouse"].dispose()

    manifest, folder = drop["manifest"], drop["drop_dir"]
    loaded = manifest["pos"][day][next(iter(manifest["pos"][day]))]["file"]
    copy_aged(folder / loaded, folder / "copies" / Path(loaded).name)

    tick = evaluate(pos_drop_sensor, instance, drop["resources"])
    assert _dates(tick) == [d for d in _file_dates(manifest) if d != day]


def test_a_busy_duckdb_warehouse_defers_the_day_instead_of_failing(drop, instance):
    _stores_loaded(instance)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "c.execute('CREATE TABLE IF NOT EXISTS _lock (x INT)'); print('held', flush=True); "
                               "time.sleep(60)", drop["warehouse_url"].removeprefix("duckdb:///")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = evaluate(pos_drop_sensor, instance, drop["resources"])
        assert not busy.run_requests
        assert "busy" in busy.skip_reason.skip_message
    finally:
        holder.kill()
        holder.wait()
    free = evaluate(pos_drop_sensor, instance, drop["resources"], busy.cursor)
    assert _dates(free) == _file_dates(drop["manifest"])


def test_reference_sensor_refreshes_on_stores_csv_and_unrecognised_files(drop, instance):
    first = evaluate(pos_reference_sensor, instance, drop["resources"])
    assert [r.run_key.split(":")[0] for r in first.run_requests] == ["stores"]
    assert first.run_requests[0].asset_selection is None, "the whole refresh_reference job"

    quiet = evaluate(pos_reference_sensor, instance, drop["resources"], first.cursor)
    assert not quiet.run_requests

    copy_aged(drop["drop_dir"] / "notes.txt", drop["drop_dir"] / "north" / "sales report March.xlsx")
    unrecognised = evaluate(pos_reference_sensor, instance, drop["resources"], quiet.cursor)
    assert len(unrecognised.run_requests) == 1
    assert unrecognised.run_requests[0].asset_selection == [dg.AssetKey("pos_unrecognised_files")]

    stores = drop["drop_dir"] / "stores.csv"
    stores.write_text(stores.read_text() + "S099,New Store,Austin,South,US,America/Chicago,standard,2025-03-05,\n")
    stamp = time.time() - 120
    os.utime(stores, (stamp, stamp))
    edited = evaluate(pos_reference_sensor, instance, drop["resources"], unrecognised.cursor)
    assert [r.run_key.split(":")[0] for r in edited.run_requests] == ["stores"]
    assert json.loads(edited.cursor)["s"][0] == stores.stat().st_size


@pytest.mark.parametrize("files", [100_000])
def test_a_quiet_tick_over_many_files_hashes_nothing_and_keeps_a_small_cursor(files):
    from datetime import date, timedelta

    from retail_assets.automation.drop_watch import DropCursor, LedgerEntry, plan_tick
    from retail_assets.resources.pos_drop import DropFile

    start = date(2024, 1, 1)
    days = [start + timedelta(days=i) for i in range(365)]
    stores = [f"S{i:03d}" for i in range(137)]
    scan = [DropFile(f"region{i % 7}/{stores[i % 137]}/sales_{stores[i % 137]}_{i}.csv", 1000 + i, 1.7e9 + i,
                     "standard", "sales", stores[i % 137], days[i % 365]) for i in range(files)]
    ledger_by_day: dict = {}
    for f in scan:
        ledger_by_day.setdefault(f.business_date, []).append(LedgerEntry(f.path, f.size, f.mtime, "h", "loaded"))

    def never(path: str) -> str:
        raise AssertionError(f"{path} was hashed")

    bounds = {"first_day": start, "last_day": start + timedelta(days=400)}
    started = time.perf_counter()
    plan = plan_tick(scan, DropCursor(), now=2e9, settle_seconds=30, read_ledger=lambda days: ledger_by_day,
                     content_hash=never, **bounds)
    first_tick = time.perf_counter() - started
    assert not plan.requests
    cursor = plan.cursor.to_json()
    assert len(cursor) < 40_000

    started = time.perf_counter()
    quiet = plan_tick(scan, DropCursor.from_json(cursor), now=2e9, settle_seconds=30, read_ledger=None,
                      content_hash=never, **bounds)
    print(f"{files} files: first tick {first_tick:.2f}s, quiet tick {time.perf_counter() - started:.2f}s, "
          f"cursor {len(cursor)} bytes")
    assert not quiet.requests and not quiet.deferred

    # The first tick on a warehouse that never loaded any of it: every date is requested once, the cursor stays
    # bounded (it remembers a limited number of requested files; the dates' fingerprints stop repeats).
    bootstrap = plan_tick(scan, DropCursor(), now=2e9, settle_seconds=30, read_ledger=lambda days: {},
                          content_hash=lambda path: f"{hash(path):064x}"[-64:], **bounds)
    assert len(bootstrap.requests) == len(days)
    assert len(bootstrap.cursor.to_json()) < 400_000
    again = plan_tick(scan, DropCursor.from_json(bootstrap.cursor.to_json()), now=2e9 + 30, settle_seconds=30,
                      read_ledger=lambda days: {}, content_hash=never, **bounds)
    assert not again.requests
