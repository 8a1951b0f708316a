"""End to end: the Dagster daemon, its sensors and run queue load what stores drop, each business date once.

`dagster-daemon run` on a temporary DAGSTER_HOME whose dagster.yaml is deploy/dagster.yaml (PostgreSQL storage,
queued runs), the warehouse in another PostgreSQL database. The stores' files arrive after the daemon started,
with an upload still in progress (``.part``, growing) and copies in other folders; nobody triggers anything.
Then an asset backfill, as the UI submits it, runs through the same daemon.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.utils import make_new_backfill_id

from retail_assets.definitions import defs
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets_tests.automation.conftest import source_env, stop_process_group
from retail_assets_tests.automation.test_instance_config import DEPLOY_YAML, pg_instance_env

DEADLINE_SECONDS = 180
ACTIVE = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED}


def _expected_rows(manifest: dict) -> dict[str, int]:
    return {day: sum(s["valid_lines"] for s in manifest["pos"].get(day, {}).values())
            for day in manifest["business_dates"]}


def _rows_per_day(warehouse: sa.Engine) -> dict[str, int]:
    try:
        with warehouse.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT business_date, count(*) FROM raw_pos_sales GROUP BY business_date").all()
    except sa.exc.ProgrammingError:  # not created yet
        return {}
    return {str(day): n for day, n in rows}


def _keep_writing(path: Path, data: bytes, stop: threading.Event) -> None:
    """An upload in progress: the .part file grows a little every half second and is never finished."""
    with path.open("wb") as out:
        for start in range(0, len(data), 64):
            if stop.is_set():
                return
            out.write(data[start:start + 64])
            out.flush()
            stop.wait(0.5)


def test_the_daemon_loads_dropped_files_once_per_business_date(company, pg_database, pg_warehouse_url, tmp_path,
                                                               monkeypatch):
    root, manifest = company
    drop = root / "pos_drop"
    incoming = root / "incoming"
    drop.rename(incoming)
    drop.mkdir()
    shutil.copy2(incoming / "stores.csv", drop / "stores.csv")
    part_files = sorted(incoming.rglob("*.part"))
    assert part_files, "the generated company has an upload in progress"
    part_data = {p.relative_to(incoming): p.read_bytes() for p in part_files}
    for p in part_files:
        p.unlink()

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    env = {
        **os.environ,
        **source_env(root, pg_warehouse_url, home),
        **pg_instance_env(pg_database, max_runs=2),
        "RETAIL_POS_SETTLE_SECONDS": "2",
        "RETAIL_POS_SENSOR_INTERVAL_SECONDS": "3",
        "RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS": "60",
        "RETAIL_DAILY_SCHEDULE_CRON": "0 6 1 1 *",  # not during the test
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "retail_assets.definitions"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    stop_writing = threading.Event()
    warehouse = sa.create_engine(pg_warehouse_url)
    expected = {day: n for day, n in _expected_rows(manifest).items() if n}
    rows: dict[str, int] = {}
    try:
        time.sleep(3)  # the daemon is up before the first store uploads
        for rel, data in part_data.items():  # the in-progress upload starts first and never finishes
            (drop / rel).parent.mkdir(parents=True, exist_ok=True)
            threading.Thread(target=_keep_writing, args=(drop / rel, data, stop_writing), daemon=True).start()
        for src in sorted(p for p in incoming.rglob("*") if p.is_file()):  # then everything else lands
            if src.name != "stores.csv":
                os.renames(src, drop / src.relative_to(incoming))

        for key, value in pg_instance_env(pg_database).items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs: list = []
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline:
                time.sleep(3)
                rows = _rows_per_day(warehouse)
                runs = instance.get_runs()
                if rows == expected and not any(r.status in ACTIVE for r in runs):
                    break
            assert rows == expected, f"raw_pos_sales rows per day {rows}, expected {expected}; runs: " + \
                ", ".join(f"{r.job_name} {r.tags.get('dagster/partition', '')} {r.status.value}" for r in runs)

            daily = Counter(r.tags["dagster/partition"] for r in runs if r.job_name == DAILY_JOB)
            assert daily == Counter({day: 1 for day in expected}), "one run per business date, no more"
            assert all(r.tags.get("dagster/sensor_name") == "pos_drop_sensor" for r in runs
                       if r.job_name == DAILY_JOB)
            assert any(r.job_name == REFERENCE_JOB for r in runs), "the stores reference loaded first"

            # A store's upload tool retries: the same bytes again, in another folder. Nothing loads.
            day = sorted(expected)[-1]
            again = manifest["pos"][day][sorted(manifest["pos"][day])[0]]["file"]
            (drop / "retries" / "2").mkdir(parents=True)
            shutil.copy2(drop / again, drop / "retries" / "2" / Path(again).name)
            time.sleep(9)  # three ticks
            later = [r for r in instance.get_runs() if r.job_name == DAILY_JOB]
            assert len(later) == len(expected), "a duplicate delivery started a run"
            assert _rows_per_day(warehouse) == expected

            # What the UI's "Materialize…" over a range of dates submits: an asset backfill, run by the daemon.
            backfill_days = sorted(expected)[:2]
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id=make_new_backfill_id(), asset_graph=defs.resolve_asset_graph(),
                partition_names=backfill_days, asset_selection=[dg.AssetKey("raw_online_orders")],
                backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance, all_partitions=False,
                title=None, description=None, run_config=None,
            )
            instance.add_backfill(backfill)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                time.sleep(2)
                status = instance.get_backfill(backfill.backfill_id).status
                if status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING):
                    break
            assert status == BulkActionStatus.COMPLETED_SUCCESS, status
            loaded = {record.partition_key for record in instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_online_orders"), asset_partitions=backfill_days),
                limit=10).records}
            assert loaded == set(backfill_days)
    finally:
        stop_writing.set()
        stop_process_group(daemon)
        log.close()
        warehouse.dispose()
        print(f"daemon log: {tmp_path / 'daemon.log'}")
