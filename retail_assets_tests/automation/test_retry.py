"""Transient failures are retried by Dagster (the assets' RetryPolicy), every other failure fails the step at once
(``dg.Failure(allow_retries=False)``).

The transient failures are real: a PostgreSQL warehouse reached through a TCP port that refuses connections for
a while and then forwards to the server, a DuckDB file held by another process past the wait, an SQLite file
locked by another connection.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.definitions.dependency import NodeHandle

import retail_assets.resources.urls as urls
from retail_assets.assets.retry import MARKER, TRANSIENT_RETRY, transient_reason, transient_retry_policy
from retail_assets.assets.sources.pos import raw_stores
from retail_assets.definitions import defs
from retail_assets.jobs import DAILY_JOB, MARTS_JOB, REFERENCE_JOB
from retail_assets.resources import SqlSource, Warehouse
from retail_assets.schemas.sources import RAW_STORES
from retail_assets_tests.test_resources import _hold_lock


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def late_proxy(target: tuple[str, int], delay: float) -> Iterator[int]:
    """A local port that refuses connections for ``delay`` seconds, then forwards each one to ``target``."""
    port = _free_port()
    stop = threading.Event()

    def serve() -> None:
        if stop.wait(delay):
            return
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)


def _retries(result: dg.ExecuteInProcessResult) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def _rows(result: dg.ExecuteInProcessResult) -> int:
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata["dagster/row_count"].value


def _stores_retrying(retries: int, seconds: float) -> dg.AssetsDefinition:
    """raw_stores as defined (its body, its checks, ``retries_transient``) under a shorter RetryPolicy than the
    definitions' (30 s before the first retry): the policy is fixed when the definitions are built."""
    return dg.asset(name="raw_stores", check_specs=list(raw_stores.check_specs),
                    retry_policy=transient_retry_policy(retries, seconds))(raw_stores.op.compute_fn.decorated_fn)


def test_every_asset_retries_transient_failures():
    """A new asset without the decorator would fail at once on the first dropped connection; every step of the load
    jobs retries with the policy (RETAIL_TRANSIENT_RETRIES, RETAIL_TRANSIENT_RETRY_SECONDS)."""
    missing = [a.key.to_user_string() for a in defs.resolve_all_asset_specs()
               if not getattr(defs.resolve_assets_def(a.key).op.compute_fn.decorated_fn, MARKER, False)]
    assert missing == []
    for name in (REFERENCE_JOB, DAILY_JOB, MARTS_JOB):
        job = defs.resolve_job_def(name)
        policies = {node.name: job.get_retry_policy_for_handle(NodeHandle(node.name, None)) for node in job.nodes}
        assert {n for n, p in policies.items() if p != TRANSIENT_RETRY} == set(), name
    # materialised alone (dg.materialize, the UI's Materialize button, an asset backfill) each asset still retries
    own = {a.key.to_user_string(): defs.resolve_assets_def(a.key).op.retry_policy
           for a in defs.resolve_all_asset_specs()}
    assert {name for name, policy in own.items() if policy != TRANSIENT_RETRY} == set()


def test_which_errors_are_transient(tmp_path: Path, pg_admin: sa.Engine):
    refused = sa.create_engine(f"postgresql+psycopg://reader:hunter2@127.0.0.1:{_free_port()}/shop")
    with pytest.raises(sa.exc.OperationalError) as info:
        refused.connect()
    assert "connection refused" in transient_reason(info.value).lower()

    # The source resource's own error (which hides the password) keeps its cause: still transient, still secret.
    source = SqlSource(url=f"postgresql://reader:hunter2@127.0.0.1:{_free_port()}/shop", name="online shop")
    with pytest.raises(RuntimeError) as info:
        source.read(sa.text("SELECT 1"))
    reason = transient_reason(info.value)
    assert reason and "hunter2" not in reason

    missing_db = sa.create_engine(pg_admin.url.set(database="no_such_database_here"))
    with pytest.raises(sa.exc.OperationalError) as info:
        missing_db.connect()
    assert transient_reason(info.value) is None, "a database that does not exist will not appear by retrying"

    path = tmp_path / "shop.db"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    with pytest.raises(sa.exc.OperationalError) as info, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM t").all()
    assert "database is locked" in transient_reason(info.value)
    holder.rollback()
    with pytest.raises(sa.exc.OperationalError) as info, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table").all()
    assert transient_reason(info.value) is None, "a missing table is not transient"

    assert transient_reason(urls.WarehouseLocked("the DuckDB warehouse file is locked")) is not None
    assert transient_reason(ValueError("store S001: unknown layout")) is None
    assert TRANSIENT_RETRY.max_retries == 3
    assert [TRANSIENT_RETRY.calculate_delay(n) for n in (1, 2, 3)] == [30, 90, 210]  # Dagster's exponential backoff


def test_a_warehouse_out_of_reach_for_a_while_is_retried(drop, instance, pg_warehouse_url):
    """PostgreSQL refuses connections for 1.5 s (a restart, a failover): raw_stores fails, waits and passes."""
    url = sa.make_url(pg_warehouse_url)
    with late_proxy((url.host, url.port or 5432), delay=1.5) as port:
        warehouse = Warehouse(url=url.set(port=port).render_as_string(hide_password=False))
        result = dg.materialize([_stores_retrying(3, 1)], instance=instance,
                                resources={**drop["resources"], "warehouse": warehouse}, raise_on_error=False)
        warehouse.dispose()
    assert result.success
    assert len(_retries(result)) >= 1
    warnings = [e.message for e in result.all_events if e.event_type == dg.DagsterEventType.LOGS_CAPTURED] + [
        r.user_message for r in instance.all_logs(result.run_id) if r.level >= 30]
    assert any("transient failure" in (m or "") and "retry 1 of 3" in (m or "") for m in warnings)
    assert Warehouse(url=pg_warehouse_url).scalar(f"SELECT COUNT(*) FROM {RAW_STORES.name}") == _rows(result) > 0


def test_a_duckdb_file_held_past_the_wait_is_retried(drop, instance, monkeypatch):
    monkeypatch.setattr(urls, "DUCKDB_LOCK_WAIT_SECONDS", 0.5)
    path = Path(drop["warehouse_url"].removeprefix("duckdb:///"))
    holder = _hold_lock(path, 4)  # longer than the run takes to reach the warehouse on a busy machine
    try:
        result = dg.materialize([_stores_retrying(3, 2)], instance=instance, resources=drop["resources"],
                                raise_on_error=False)
    finally:
        holder.kill()
        holder.wait()
    assert result.success
    assert len(_retries(result)) >= 1
    assert drop["resources"]["warehouse"].scalar(f"SELECT COUNT(*) FROM {RAW_STORES.name}") == _rows(result) > 0


def test_a_failure_that_would_repeat_is_not_retried(drop, instance, pg_admin):
    """A warehouse database that does not exist: the step fails at once, with the server's reason."""
    url = pg_admin.url.set(database="no_such_warehouse").render_as_string(hide_password=False)
    result = dg.materialize([_stores_retrying(3, 1)], instance=instance,
                            resources={**drop["resources"], "warehouse": Warehouse(url=url)}, raise_on_error=False)
    assert not result.success
    assert _retries(result) == []
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "no_such_warehouse" in str(failure.step_failure_data.error)


def test_retries_end_with_the_cause(drop, instance):
    """A warehouse that never comes back: the retries run out and the step fails with why it was retried."""
    warehouse = Warehouse(url=f"postgresql://etl:hunter2@127.0.0.1:{_free_port()}/warehouse")
    result = dg.materialize([_stores_retrying(1, 0.2)], instance=instance,
                            resources={**drop["resources"], "warehouse": warehouse}, raise_on_error=False)
    assert not result.success
    assert len(_retries(result)) == 1
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error
    text = str(error) + str(error.cause)
    assert "Exceeded max_retries of 1" in text and "Connection refused" in text
    assert "hunter2" not in text
