"""Two first runs at once on one PostgreSQL warehouse: both create (or bring up to date) every table, both succeed.

The race is made certain, not hoped for: a transaction of the test holds the catalog the DDL writes to
(``pg_type`` for a new table, ``pg_attribute`` for a new column or index) in EXCLUSIVE mode, which lets the
processes look (reads) but not create. Both processes are let go only once both wait on a lock: unserialised,
both have then decided to create the same table, and the second fails on the catalog's unique index
(``UniqueViolation ... pg_type_typname_nsp_index``) or finds the column already there; serialised (the DDL lock,
and an existing table's own lock), the second waits for the first and then finds nothing left to do.

The locks must cost nothing when there is nothing to do, and never make a run wait for itself: a ready table takes
none, DDL for a table the caller's transaction holds runs in that transaction, and a process waiting for a table a
run is loading does not hold the DDL lock meanwhile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import DDL_LOCK
from retail_assets.schemas import ALL_TABLES
from retail_assets.schemas.sources import RAW_POS_SALES, REJECTIONS
from retail_assets_tests.conftest import platform_environment

# A child process: connect, say so, wait for the word, then ready every table of the platform.
READY_EVERY_TABLE = """
import sys
from retail_assets.resources import Warehouse
from retail_assets.schemas import ALL_TABLES
warehouse = Warehouse(url=sys.argv[1])
with warehouse.engine.connect():
    pass
print("connected", flush=True)
sys.stdin.readline()
for spec in ALL_TABLES.values():
    warehouse.table(spec)
warehouse.dispose()
print("ready", flush=True)
"""
# Only a safety net against a hang: the tests never wait for a time to pass, only for the processes to block.
DEADLINE_SECONDS = 300


def _database(url: str) -> str:
    return sa.make_url(url).database


def _with_lock_timeout(url: str, milliseconds: int) -> str:
    """The URL with a lock_timeout: a statement that would wait for a lock fails at once instead of hanging."""
    return sa.make_url(url).update_query_dict({"options": f"-c lock_timeout={milliseconds}"}).render_as_string(
        hide_password=False)


def _wait_until_blocked(admin: sa.Engine, database: str, waiting: int, ended: Callable[[], str | None]) -> None:
    """Until ``waiting`` sessions of ``database`` wait for a lock (the processes are then inside their DDL); fails
    when ``ended`` says a participant stopped before (and what it said)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    with admin.connect() as conn:
        while conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                                   "AND wait_event_type = 'Lock'"), {"db": database}).scalar() < waiting:
            early = ended()
            if early is not None:
                pytest.fail(f"ended before it blocked: {early}")
            assert time.monotonic() < deadline, "the processes never reached their DDL"
            time.sleep(0.05)


def _ended(procs: list[subprocess.Popen]) -> Callable[[], str | None]:
    def ended() -> str | None:
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                return f"exit {p.returncode}: {(out or '')[-2000:]}\n{(err or '')[-3000:]}"
        return None

    return ended


def _race(admin: sa.Engine, url: str, catalog: str) -> list[tuple[int, str, str]]:
    """Two processes ready every table while ``catalog`` is held; (returncode, stdout, stderr) of each."""
    procs = [subprocess.Popen([sys.executable, "-c", READY_EVERY_TABLE, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "connected", p.communicate()[1][-3000:]
        holder = sa.create_engine(url)
        try:
            with holder.begin() as conn:
                conn.exec_driver_sql(f"LOCK TABLE pg_catalog.{catalog} IN EXCLUSIVE MODE")
                for p in procs:
                    p.stdin.write("go\n")
                    p.stdin.flush()
                _wait_until_blocked(admin, _database(url), 2, _ended(procs))
        finally:
            holder.dispose()
        outputs = [p.communicate(timeout=DEADLINE_SECONDS) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _table(table: sa.Table, drop: str) -> sa.Table:
    """``table`` as an earlier version made it: without the column ``drop`` and without an index."""
    return sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, c.type, nullable=c.nullable)
                                                 for c in table.columns if c.name != drop))


def _create_old_raw_pos_sales(url: str) -> None:
    """raw_pos_sales as an earlier version left it: no payment_method column, no index."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _table(RAW_POS_SALES.sql_table(sa.MetaData()), drop="payment_method").create(conn)
    finally:
        engine.dispose()


def _assert_every_table_ready(url: str) -> None:
    warehouse = Warehouse(url=url)
    try:
        tables = set(warehouse.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                     ["tablename"])
        assert tables == set(ALL_TABLES)
        for name, spec in ALL_TABLES.items():
            columns = warehouse.query("SELECT * FROM " + name + " WHERE 1 = 0").columns
            assert set(spec.columns) <= set(columns), name
        indexes = set(warehouse.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
                      ["indexname"])
        assert {f"{s.name}_{s.partition_column}_idx" for s in ALL_TABLES.values() if s.partition_column} <= indexes
    finally:
        warehouse.dispose()


def test_two_first_runs_on_an_empty_warehouse_both_create_every_table(pg_admin: sa.Engine, pg_database: str):
    """Fails without the DDL lock: the second CREATE TABLE of the first table breaks pg_type's unique index."""
    outcomes = _race(pg_admin, pg_database, "pg_type")
    for code, out, err in outcomes:
        assert code == 0 and out.strip() == "ready", err[-3000:]
    _assert_every_table_ready(pg_database)


def test_two_first_runs_of_a_new_version_both_add_the_missing_columns(pg_admin: sa.Engine, pg_database: str):
    """Every table as an earlier version left it (its last column missing, no partition index): both processes
    must add the same columns and indexes. Fails without the DDL lock: the second ALTER finds the column there."""
    metadata = sa.MetaData()
    engine = sa.create_engine(pg_database)
    try:
        with engine.begin() as conn:
            for spec in ALL_TABLES.values():
                _table(spec.sql_table(metadata), drop=list(spec.columns)[-1]).create(conn)
    finally:
        engine.dispose()
    outcomes = _race(pg_admin, pg_database, "pg_attribute")
    for code, out, err in outcomes:
        assert code == 0 and out.strip() == "ready", err[-3000:]
    _assert_every_table_ready(pg_database)


def test_a_ready_table_takes_no_ddl_lock(pg_database: str):
    """A run's first use of tables that need nothing does not wait for another run's DDL, nor for its writes:
    another session holds the DDL lock and a write lock on every table, and a warehouse whose every lock wait fails
    at once readies them all."""
    Warehouse(url=pg_database).ensure(list(ALL_TABLES.values()))
    holder = sa.create_engine(pg_database)
    other = Warehouse(url=_with_lock_timeout(pg_database, 100))
    try:
        with holder.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK})
            for name in ALL_TABLES:
                conn.exec_driver_sql(f"LOCK TABLE {name} IN ROW EXCLUSIVE MODE")
            other.ensure(list(ALL_TABLES.values()))
    finally:
        other.dispose()
        holder.dispose()


def test_ddl_for_a_table_the_callers_transaction_holds_runs_in_that_transaction(pg_database: str):
    """A transaction that has read raw_pos_sales (an earlier version's, without payment_method) then asks for it:
    the ALTER runs in the caller's transaction, which holds the table. From a connection of its own it would wait
    for the caller forever (here: fail at once, the lock wait being cut short)."""
    _create_old_raw_pos_sales(pg_database)
    warehouse = Warehouse(url=_with_lock_timeout(pg_database, 100))
    try:
        with warehouse.transaction() as tx:
            tx.conn.exec_driver_sql("SELECT count(*) FROM raw_pos_sales")
            table = warehouse.table(RAW_POS_SALES, tx.conn)
            tx.conn.execute(sa.select(table.c.payment_method))
        assert "payment_method" in warehouse.query("SELECT * FROM raw_pos_sales WHERE 1 = 0").columns
    finally:
        warehouse.dispose()


def test_ddl_waiting_for_a_table_in_use_holds_up_no_other_ddl(pg_admin: sa.Engine, pg_database: str):
    """raw_pos_sales as an earlier version left it (payment_method missing) while a run reads it: the process that
    brings it up to date waits for that run, and meanwhile another process creates a new table without waiting.
    Had the first taken the DDL lock before waiting for the table, every other process's DDL would queue behind
    the run, and a run waiting for its own DDL while it holds the table would never end."""
    _create_old_raw_pos_sales(pg_database)
    reader = sa.create_engine(pg_database)
    migrating, creating = Warehouse(url=pg_database), Warehouse(url=_with_lock_timeout(pg_database, 100))
    errors: list[Exception] = []

    def migrate() -> None:
        try:
            migrating.table(RAW_POS_SALES)
        except Exception as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=migrate, daemon=True)
    try:
        with reader.begin() as load:
            load.exec_driver_sql("SELECT count(*) FROM raw_pos_sales")  # a run reading it until the block ends
            thread.start()
            _wait_until_blocked(pg_admin, _database(pg_database), 1,
                                lambda: None if thread.is_alive() else f"the migration: {errors}")
            creating.table(REJECTIONS)
        thread.join(DEADLINE_SECONDS)
        assert not errors and not thread.is_alive(), errors
        assert "payment_method" in creating.query("SELECT * FROM raw_pos_sales WHERE 1 = 0").columns
    finally:
        migrating.dispose()
        creating.dispose()
        reader.dispose()


def _fact_sales_by_store_day(url: str) -> dict[tuple[str, str], tuple[int, Decimal]]:
    warehouse = Warehouse(url=url)
    try:
        frame = warehouse.query(
            "SELECT CAST(f.business_date AS VARCHAR(10)) AS day, s.store_code, COUNT(*) AS n, "
            "CAST(SUM(f.net_amount) AS VARCHAR(32)) AS net FROM fact_sales f "
            "JOIN dim_store s ON s.store_key = f.store_key GROUP BY 1, 2")
    finally:
        warehouse.dispose()
    return {(r.day, r.store_code): (int(r.n), Decimal(r.net).quantize(Decimal("0.01"))) for r in frame.itertuples()}


def test_two_retail_etl_runs_at_once_on_an_empty_warehouse_both_succeed(
        pg_admin: sa.Engine, pg_database: str, small_company: tuple[Path, dict], tmp_path: Path):
    """The real thing: two ``retail-etl run`` on one generated company and one new PostgreSQL warehouse (each with
    its own DAGSTER_HOME), held at their first CREATE TABLE until both are there. Both exit 0 and the warehouse
    holds what one run gives: per store and day the generator's line count and net amount, to the cent."""
    root, manifest = small_company
    company = tmp_path / "company"
    shutil.copytree(root, company)
    base = {k: v for k, v in os.environ.items() if not k.startswith("RETAIL_") and k != "DAGSTER_HOME"}
    procs, logs = [], [tmp_path / f"run{i}.log" for i in range(2)]
    holder = sa.create_engine(pg_database)
    try:
        with holder.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE pg_catalog.pg_type IN EXCLUSIVE MODE")
            for i, log in enumerate(logs):
                env = {**base, **platform_environment(company, pg_database, tmp_path / f"home{i}")}
                with log.open("w") as out:
                    procs.append(subprocess.Popen([str(Path(sys.executable).parent / "retail-etl"), "run"],
                                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT))
            _wait_until_blocked(pg_admin, _database(pg_database), 2, _ended(procs))
        codes = [p.wait(DEADLINE_SECONDS * 2) for p in procs]
    finally:
        holder.dispose()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for code, log in zip(codes, logs, strict=True):
        output = log.read_text()
        assert code == 0 and "UniqueViolation" not in output, output[-5000:]
    expected = {(day, store): (s["valid_lines"], Decimal(s["net_amount"]))
                for day, stores in manifest["pos"].items() for store, s in stores.items()}
    for day, d in manifest["online"].items():
        if d["sale_lines"] or d["returns"]:
            expected[(day, "ONLINE")] = (d["sale_lines"] + d["returns"], Decimal(d["net_amount"]))
    assert _fact_sales_by_store_day(pg_database) == expected
