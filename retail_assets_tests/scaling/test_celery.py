"""The Celery profile for real: two Celery workers as separate processes, the Dagster daemon, the instance and the
warehouse in PostgreSQL, RabbitMQ and Redis, and backfills of a generated company submitted through the instance
with `dagster job backfill`, as an operator would (docs/scaling.md).

Every business date must equal, exactly, an in-process run of the same company into another warehouse: fact rows,
net amount per store to the cent, inventory rows, rejections by asset and reason. Then the faults: a worker killed
with SIGKILL in the middle of a step, and the broker restarted while steps are running.

The broker is a RabbitMQ node of this module's own (the machine's installation, its own port and data folder), so
that restarting it touches nothing else on the machine; Redis is the machine's.
"""

from __future__ import annotations

import signal
import socket
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
import sqlalchemy as sa

from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets_tests.conftest import create_pg_database, drop_pg_database, pg_url
from retail_assets_tests.scaling.cluster import (
    BACKEND,
    Cluster,
    PrivateBroker,
    day_figures,
    platform_env,
    step_workers,
    wait_for,
    wait_runs_done,
)

COMPANY = {"stores": 4, "days": 14, "start": date(2025, 3, 3), "lines_per_store_day": 150, "seed": 11}
WORKERS = ("w1", "w2")
BACKFILL_DAYS = 10  # the first ten dates: the two-worker backfill; then one date for the kill, three for the broker
RUN_TIMEOUT = 300
DONE = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _redis_reachable() -> None:
    url = urlsplit(BACKEND)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {BACKEND} ({exc}); start it (redis-server --daemonize yes) or set "
                    "RETAIL_TEST_CELERY_BACKEND")


@pytest.fixture(scope="module")
def deployment(pg_admin, tmp_path_factory):
    """The company, its golden in-process load, and the Celery deployment with the reference data loaded."""
    from retail_assets.generator import generate_company
    from retail_assets.runner import run_graph

    _redis_reachable()
    base = tmp_path_factory.mktemp("celery")
    manifest = generate_company(base / "company", **COMPANY)
    days = sorted(manifest["business_dates"])
    databases = {name: create_pg_database(pg_admin) for name in ("instance", "warehouse", "golden")}
    broker = PrivateBroker(base / "rabbitmq")
    cluster = Cluster.create(base / "deployment", base / "company", pg_url(databases["warehouse"]),
                             pg_url(databases["instance"]), broker=broker.url)
    instance = None
    try:
        # The golden run: the same company, in one process (`retail-etl run`), into a warehouse of its own.
        with pytest.MonkeyPatch.context() as mp:
            env = platform_env(base / "company", pg_url(databases["golden"]), base / "golden_home")
            for key, value in env.items():
                mp.setenv(key, value)
            mp.setenv("RETAIL_EXECUTOR", "in_process")
            lines: list[str] = []
            assert run_graph(echo=lines.append) == 0, "\n".join(lines)
        golden = day_figures(pg_url(databases["golden"]), days)
        assert sum(g["fact_rows"] for g in golden.values()) > 0

        broker.start()
        for name in WORKERS:
            cluster.start_worker(name)
        cluster.start_daemon()
        cluster.wait_workers_ready(WORKERS)
        instance = cluster.instance()
        cluster.launch(REFERENCE_JOB)
        [reference] = wait_runs_done(instance, REFERENCE_JOB, 1, RUN_TIMEOUT)
        assert reference.status == dg.DagsterRunStatus.SUCCESS, cluster.tail("daemon")
        _load_online_orders_first(instance, days)
        yield {"cluster": cluster, "instance": instance, "broker": broker, "days": days, "golden": golden,
               "warehouse_url": pg_url(databases["warehouse"]), "warehouse_db": databases["warehouse"]}
    finally:
        cluster.stop_all()
        broker.stop()
        if instance is not None:
            instance.dispose()
        cluster.clean()
        for name in databases.values():
            drop_pg_database(pg_admin, name)
        print(f"logs: {cluster.workdir}")


def _load_online_orders_first(instance: dg.DagsterInstance, days: list[str]) -> None:
    """The first pass of a parallel backfill (docs/scaling.md, `python -m retail_assets.executors first-pass`):
    every date's raw online orders and order lines. A date's facts look up the order lines its returns refer to,
    placed days earlier; when dates run at once those must be loaded already, or the returns would be rejected as
    return_unknown_line depending on timing."""
    from dagster._core.execution.backfill import BulkActionStatus

    from retail_assets.executors import submit_first_pass

    backfill_id = submit_first_pass(instance, days[0], days[-1])
    status = wait_for("the online orders' backfill finished",
                      lambda: (s := instance.get_backfill(backfill_id).status) not in (
                          BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING) and s, RUN_TIMEOUT, every=2)
    assert status == BulkActionStatus.COMPLETED_SUCCESS, status


def _day_runs(instance: dg.DagsterInstance, days: list[str]) -> dict[str, list[dg.DagsterRun]]:
    out: dict[str, list[dg.DagsterRun]] = defaultdict(list)
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=DAILY_JOB)):
        if run.tags.get("dagster/partition") in days:
            out[run.tags["dagster/partition"]].append(run)
    return out


def _finish(deployment: dict, days: list[str]) -> dict[str, list[dg.DagsterRun]]:
    """Wait for the backfill of ``days`` (and any retries) to finish; the runs of each day."""
    instance, cluster = deployment["instance"], deployment["cluster"]

    def explain() -> str:
        return cluster.tail("daemon", 1500) + " " + " ".join(cluster.tail(w, 1500) for w in WORKERS)

    wait_for(f"the runs of {days[0]} .. {days[-1]} finished", lambda: _settled(instance, days), RUN_TIMEOUT,
             every=2, explain=explain)
    return _day_runs(instance, days)


def _settled(instance: dg.DagsterInstance, days: list[str]) -> bool:
    runs = _day_runs(instance, days)
    active = [r for rs in runs.values() for r in rs if r.status not in (dg.DagsterRunStatus.SUCCESS,
                                                                         dg.DagsterRunStatus.FAILURE,
                                                                         dg.DagsterRunStatus.CANCELED)]
    return len(runs) == len(days) and not active


def _assert_reconciled(deployment: dict, days: list[str]) -> None:
    got = day_figures(deployment["warehouse_url"], days)
    for day in days:
        assert got[day] == deployment["golden"][day], f"{day}: Celery load differs from the in-process run"


def _assert_each_day_succeeded(runs: dict[str, list[dg.DagsterRun]], days: list[str]) -> None:
    for day in days:
        statuses = [r.status.value for r in runs[day]]
        assert dg.DagsterRunStatus.SUCCESS in [r.status for r in runs[day]], f"{day}: no successful run ({statuses})"


def _in_flight(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> list[tuple[str, str, str]]:
    """(run id, step, worker) of every step a worker started and has not finished."""
    out = []
    for run in runs:
        started = step_workers(instance, run.run_id)
        finished = {r.dagster_event.step_key for r in instance.all_logs(run.run_id)
                    if r.dagster_event and r.dagster_event.event_type in DONE}
        out += [(run.run_id, step, workers[-1]) for step, workers in started.items() if step not in finished]
    return out


def _lock_waiters(warehouse_db: str, admin: sa.Engine) -> int:
    with admin.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                                    "AND wait_event_type = 'Lock'"), {"db": warehouse_db}).scalar()


def test_a_ten_day_backfill_on_two_celery_workers_equals_the_in_process_run(deployment):
    cluster, instance = deployment["cluster"], deployment["instance"]
    days = deployment["days"][:BACKFILL_DAYS]
    cluster.backfill(DAILY_JOB, days[0], days[-1])
    runs = _finish(deployment, days)

    for day in days:
        assert [r.status for r in runs[day]] == [dg.DagsterRunStatus.SUCCESS], f"{day}: one run, successful"
    _assert_reconciled(deployment, days)

    # Every step of every day ran on a Celery worker, and both workers took steps.
    seen: set[str] = set()
    for day in days:
        workers = step_workers(instance, runs[day][0].run_id)
        assert workers, f"{day}: no step ran on a Celery worker"
        assert len(workers) == 9, f"{day}: steps on workers {sorted(workers)}"
        assert all(len(w) == 1 for w in workers.values()), f"{day}: a step ran twice without a fault: {workers}"
        seen |= {w for names in workers.values() for w in names}
    assert {w.split("@")[0] for w in seen} == set(WORKERS), f"steps ran on {seen}"

    # Days ran at once: some runs overlapped in time.
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[runs[d][0].run_id for d in days]))
    spans = sorted((r.start_time, r.end_time) for r in records)
    overlaps = sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)
    assert overlaps >= 1, f"the backfill ran its days one after the other: {spans}"


def test_a_worker_killed_mid_step_its_step_completes_on_the_other_worker(deployment, pg_admin):
    cluster, instance = deployment["cluster"], deployment["instance"]
    day = deployment["days"][BACKFILL_DAYS]
    warehouse = sa.create_engine(deployment["warehouse_url"])
    victim = None
    try:
        # Steps that read the store dimension wait on this lock: a step is then certainly running when the kill
        # comes, inside its transaction.
        with warehouse.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE dim_store IN ACCESS EXCLUSIVE MODE")
            cluster.backfill(DAILY_JOB, day, day)

            def blocked_step():
                runs = _day_runs(instance, [day])[day]
                flying = _in_flight(instance, runs)
                return flying if flying and _lock_waiters(deployment["warehouse_db"], pg_admin) else None

            flying = wait_for("a step of the day blocked in the warehouse", blocked_step, 120, every=1)
            run_id, step, worker = next((f for f in flying if f[2].startswith("w1@")), flying[0])
            victim = worker.split("@")[0]
            cluster.stop(victim, signal.SIGKILL)  # the worker's host is gone: no goodbye to the broker
        runs = _finish(deployment, [day])
    finally:
        warehouse.dispose()
        if victim is not None:  # the other tests want two workers again
            cluster.start_worker(victim)
            cluster.wait_workers_ready([victim])

    _assert_each_day_succeeded(runs, [day])
    workers = step_workers(instance, run_id)[step]
    assert workers[0] == worker and len(workers) == 2 and not workers[1].startswith(f"{victim}@"), \
        f"step {step}: started on {worker}, killed, then ran on {workers[1:]}"
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS, "the step was redelivered in its run"
    _assert_reconciled(deployment, [day])


def test_a_broker_restart_during_a_backfill_loses_and_doubles_no_day(deployment, pg_admin):
    cluster, instance, broker = deployment["cluster"], deployment["instance"], deployment["broker"]
    days = deployment["days"][BACKFILL_DAYS + 1:BACKFILL_DAYS + 4]
    warehouse = sa.create_engine(deployment["warehouse_url"])
    try:
        with warehouse.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE dim_store IN ACCESS EXCLUSIVE MODE")  # steps are running at the restart
            cluster.backfill(DAILY_JOB, days[0], days[-1])
            wait_for("steps of the backfill blocked in the warehouse",
                     lambda: _in_flight(instance, [r for rs in _day_runs(instance, days).values() for r in rs])
                     and _lock_waiters(deployment["warehouse_db"], pg_admin), 120, every=1)
            broker.stop()
            time.sleep(3)
            broker.start()
        runs = _finish(deployment, days)
    finally:
        warehouse.dispose()

    _assert_each_day_succeeded(runs, days)
    _assert_reconciled(deployment, days)
    log = Path(cluster.logs["w1"]).read_text(errors="replace") + Path(cluster.logs["w2"]).read_text(errors="replace")
    assert "Connection to broker lost" in log or "consumer: Connection" in log or "ConnectionReset" in log, \
        "the workers did not notice the restart"
