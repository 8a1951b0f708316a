"""Resources at their edges: a locked DuckDB file, an unreachable source whose URL holds a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

import retail_assets.resources.urls as urls
from retail_assets.resources import SqlSource
from retail_assets.schemas.base import DATE, MONEY


class _Typed(pa.DataFrameModel):
    """A column of every SQL type the table specs make (see test_binary_copy_stores_exactly_what_csv_copy_stores)."""

    id: Series[int]
    amount: Series[float] = pa.Field(nullable=True, metadata=MONEY)
    ratio: Series[float] = pa.Field(nullable=True)
    label: Series[str] = pa.Field(nullable=True)
    flag: Series[bool] = pa.Field(nullable=True)
    at: Series[pd.Timestamp] = pa.Field(nullable=True)
    day: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    big: Series[int]


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                               f"time.sleep({seconds})"], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    return holder


def test_duckdb_waits_for_a_short_lock_and_explains_a_long_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "wh.duckdb"
    holder = _hold_lock(path, 1.5)
    engine = urls.make_engine(f"duckdb:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 42").scalar() == 42
    engine.dispose()
    holder.wait()

    holder = _hold_lock(path, 30)
    monkeypatch.setattr(urls, "DUCKDB_LOCK_WAIT_SECONDS", 0.5)
    try:
        with pytest.raises(RuntimeError, match="locked by another process.*PostgreSQL warehouse"):
            urls.make_engine(f"duckdb:///{path}").connect()
    finally:
        holder.kill()
        holder.wait()


def test_a_source_error_never_shows_the_password():
    source = SqlSource(url="postgresql://reader:hunter2@127.0.0.1:1/shop", name="online shop")
    import sqlalchemy as sa

    with pytest.raises(RuntimeError) as info:
        source.read(sa.text("SELECT 1"))
    assert "hunter2" not in str(info.value) and "online shop" in str(info.value)
    assert "reader:***@" in str(info.value)


def test_the_appender_loads_every_frame_or_nothing(warehouse_url: str):
    """Frames sent through one appender all land (a worker thread stores each while the next is made: DuckDB
    inserts it, PostgreSQL writes it as CSV into one COPY); a frame the database refuses fails the block and the
    transaction, and the rows sent before it are gone too."""
    import pandas as pd

    from retail_assets.resources import Warehouse
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets_tests.transforms import raw_pos_sales

    chunks = [raw_pos_sales(*({"receipt_id": f"C{c}R{i}"} for i in range(1_000))) for c in range(5)]
    warehouse = Warehouse(url=warehouse_url)
    try:
        with warehouse.transaction() as tx, tx.appender(RAW_POS_SALES) as append:
            sent = sum(append(chunk) for chunk in chunks)
        assert sent == 5_000 == warehouse.scalar("SELECT COUNT(*) FROM raw_pos_sales")

        refused = raw_pos_sales({"receipt_id": "X"}).assign(store_code=None)  # NOT NULL column
        with pytest.raises(Exception, match="(?i)null"), warehouse.transaction() as tx:
            tx.delete(RAW_POS_SALES, {})
            with tx.appender(RAW_POS_SALES) as append:
                append(chunks[0])
                append(refused)
                append(chunks[1])
        assert warehouse.scalar("SELECT COUNT(*) FROM raw_pos_sales") == 5_000  # the earlier load is intact
        assert isinstance(warehouse.read(RAW_POS_SALES), pd.DataFrame)
    finally:
        warehouse.dispose()


def test_source_frames_have_the_dtypes_of_the_row_wise_constructor(small_company, tmp_path: Path):
    """SqlSource.read builds its frame column by column; on every table of the sample company's two sources and
    on SQLite's typeless dirt (numbers, text and NULLs in one column) the result equals ``pd.DataFrame(rows)``."""
    import sqlite3

    import pandas as pd
    import sqlalchemy as sa

    from retail_assets.resources.sql_source import _frame

    dirty = tmp_path / "dirty.db"
    with sqlite3.connect(dirty) as db:
        db.execute("CREATE TABLE t (a, b INTEGER, c REAL, d TEXT, e NUMERIC, f DATETIME)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [
            (1, 2, 1.5, "x", 3, "2024-03-01 10:00:00"), ("two", None, None, None, 2.5, None),
            (None, 7, 2.0, "", None, "2024-03-02 11:30:00.250000"), (3.5, -1, float("nan"), "é", 10, None)])
    root = small_company[0]
    compared = 0
    for db in (root / "online_store.db", root / "crm.db", dirty):
        source = SqlSource(url=f"sqlite:///{db}")
        for name in sa.inspect(source.engine).get_table_names():
            with source.engine.connect() as conn:
                result = conn.execute(sa.select(source.table(name)))
                rows, columns = result.fetchall(), list(result.keys())
            expected = pd.DataFrame(rows, columns=columns)
            pd.testing.assert_frame_equal(_frame(rows, columns), expected, check_exact=True)
            pd.testing.assert_frame_equal(source.read(sa.select(source.table(name))), expected, check_exact=True)
            compared += bool(rows)
        source.engine.dispose()
    assert compared >= 7  # every table but those the sample leaves empty


def test_duckdb_memory_is_bounded_by_default_and_the_url_can_change_it(tmp_path: Path):
    """The embedded warehouse caps DuckDB's memory (DuckDB would take 80% of the machine); ?memory_limit= wins."""
    for query, expected in (("", urls.DUCKDB_DEFAULT_MEMORY_LIMIT), ("?memory_limit=3GB", "3GB")):
        engine = urls.make_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}{query}")
        with engine.connect() as conn:
            setting = conn.exec_driver_sql("SELECT current_setting('memory_limit')").scalar()
        engine.dispose()
        # DuckDB reports the limit in its own units, one decimal cut off (3GB -> "2.7 GiB"): bytes to within 5%.
        assert abs(_bytes(setting) - _bytes(expected)) < 0.05 * _bytes(expected), (query, setting)


def _bytes(size: str) -> float:
    import re

    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]i?B)", size.strip()).groups()
    power = "KMGT".index(unit[0]) + 1
    return float(number) * (1024 if "i" in unit else 1000) ** power


def test_a_column_the_spec_no_longer_has_stops_being_required(warehouse_url: str):
    """A warehouse made by an earlier version has raw_pos_sales.file_hash NOT NULL; this version writes no hash on
    the row (the file ledger has it), and its loads still go in, through the appender and through append."""
    import sqlalchemy as sa

    from retail_assets.resources import Warehouse
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets_tests.transforms import raw_pos_sales

    old = RAW_POS_SALES.sql_table(sa.MetaData())
    old.append_column(sa.Column("file_hash", sa.Text(), nullable=False))
    warehouse = Warehouse(url=warehouse_url)
    try:
        with warehouse.engine.begin() as conn:
            old.create(conn)
        with warehouse.transaction() as tx:
            with tx.appender(RAW_POS_SALES) as append:
                append(raw_pos_sales({"receipt_id": "A"}))
            tx.append(RAW_POS_SALES, raw_pos_sales({"receipt_id": "B"}))
        assert warehouse.scalar("SELECT COUNT(*) FROM raw_pos_sales WHERE file_hash IS NULL") == 2
    finally:
        warehouse.dispose()


def test_two_loads_of_one_day_at_once_leave_one_of_them(pg_database: str):
    """Two runs replacing the same business day at the same time (a UI backfill and a sensor run) on PostgreSQL:
    the second waits for the first and then replaces its rows, so the day holds one load, never both. Without the
    wait, READ COMMITTED lets the second's DELETE miss the rows the first inserted, and the day doubles."""
    import threading
    import time
    from datetime import date

    import pandas as pd

    from retail_assets.resources import Warehouse
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets_tests.transforms import raw_pos_sales

    day, other_day = date(2025, 3, 3), date(2025, 3, 4)
    load = {name: raw_pos_sales(*({"receipt_id": f"{name}{i}"} for i in range(100))).assign(
        business_date=pd.Timestamp(day)) for name in ("old", "a", "b")}
    warehouse = Warehouse(url=pg_database)
    warehouse.replace(RAW_POS_SALES, load["old"], {"business_date": day})
    other = load["old"].assign(business_date=pd.Timestamp(other_day))
    warehouse.replace(RAW_POS_SALES, other, {"business_date": other_day})
    first_inserted, errors = threading.Event(), []

    def replace(name: str, hold: float) -> None:
        try:
            with warehouse.transaction() as tx:
                if name == "b":
                    first_inserted.wait(10)
                # one names the day, the other a list of days with it (a backfill): the same slice
                tx.delete(RAW_POS_SALES, {"business_date": day if name == "a" else [pd.Timestamp(day)]})
                tx.append(RAW_POS_SALES, load[name])
                if name == "a":
                    first_inserted.set()
                time.sleep(hold)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=replace, args=("a", 1.0)), threading.Thread(target=replace, args=("b", 0))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        receipts = warehouse.query("SELECT business_date, receipt_id FROM raw_pos_sales")
        receipts["business_date"] = pd.to_datetime(receipts["business_date"])
        on_day = receipts[receipts["business_date"] == pd.Timestamp(day)]["receipt_id"]
        assert sorted(on_day) == sorted(load["b"]["receipt_id"]), "the later load, alone"
        assert (receipts["business_date"] == pd.Timestamp(other_day)).sum() == 100, "another day is untouched"
    finally:
        warehouse.dispose()


def test_slice_locks_meet_only_where_slices_can_meet():
    """Same day, named alone or in a backfill's list: one lock in common. Another day, or another asset's
    rejections of the same day: only the shared table lock, so those loads go on in parallel. A whole-table
    replace waits for every slice."""
    from datetime import date

    import pandas as pd

    from retail_assets.resources.warehouse import slice_locks

    def exclusive(table, where):
        return {key for shared, key in slice_locks(table, where) if not shared}

    day = {"business_date": date(2025, 3, 3), "asset": "raw_pos_sales"}
    backfill = {"asset": "raw_pos_sales", "business_date": [date(2025, 3, 2), pd.Timestamp("2025-03-03")]}
    assert exclusive("rejections", day) & exclusive("rejections", backfill)
    assert not exclusive("rejections", day) & exclusive("rejections", {**day, "asset": "raw_pos_inventory"})
    assert not exclusive("rejections", day) & exclusive("rejections", {**day, "business_date": date(2025, 3, 4)})
    assert not exclusive("rejections", day) & exclusive("fact_sales", day)
    table_shared = {key for shared, key in slice_locks("rejections", day) if shared}
    assert exclusive("rejections", {}) == table_shared, "a whole-table delete waits for every slice"
    many = {"business_date": [date(2025, 1, 1) + pd.Timedelta(days=i) for i in range(1_001)]}
    assert exclusive("rejections", many) == table_shared, "past 1,000 slices: the table"


def test_a_day_is_found_by_an_index_on_postgresql_not_by_scanning_every_day(pg_database: str):
    """Every table partitioned by day gets an index on its partition column on PostgreSQL, and the statements a
    day's load runs use it once the table holds many days: the load of a day does not grow with the history."""
    from datetime import date, timedelta

    import pandas as pd
    import sqlalchemy as sa

    from retail_assets.resources import Warehouse
    from retail_assets.schemas import ALL_TABLES
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets_tests.transforms import raw_pos_sales

    partitioned = [spec for spec in ALL_TABLES.values() if spec.partition_column]
    assert {"raw_pos_sales", "fact_sales", "rejections"} <= {spec.name for spec in partitioned}
    warehouse = Warehouse(url=pg_database)
    try:
        warehouse.ensure(partitioned)
        indexes = warehouse.query("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        for spec in partitioned:
            defs = indexes.loc[indexes["tablename"] == spec.name, "indexdef"].tolist()
            assert any(d.endswith(f"USING btree ({spec.partition_column})") for d in defs), (spec.name, defs)

        first = date(2025, 1, 1)
        lines = raw_pos_sales(*({"receipt_id": f"R{i}"} for i in range(200)))
        with warehouse.transaction() as tx, tx.appender(RAW_POS_SALES) as append:
            for n in range(60):  # 60 days of 200 lines
                append(lines.assign(business_date=pd.Timestamp(first + timedelta(days=n))))
        with warehouse.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE raw_pos_sales")
            table = warehouse.table(RAW_POS_SALES, conn)
            day = first + timedelta(days=30)
            for statement in (sa.select(table).where(table.c.business_date == day),
                              sa.delete(table).where(table.c.business_date == day)):
                plan = "\n".join(conn.execute(sa.text("EXPLAIN " + str(statement.compile(
                    conn, compile_kwargs={"literal_binds": True})))).scalars())
                assert "raw_pos_sales_business_date_idx" in plan and "Seq Scan" not in plan, plan
    finally:
        warehouse.dispose()


def test_a_new_process_does_not_wait_for_another_days_load_to_find_its_table_ready(pg_database: str):
    """A run's first use of raw_pos_sales must not queue behind another day's load that is still writing to it:
    CREATE INDEX IF NOT EXISTS, and ALTER COLUMN ... DROP NOT NULL of a column an earlier version wrote, lock the
    table before finding there is nothing to do, so the index and the column are looked up first."""
    import threading

    import sqlalchemy as sa

    from retail_assets.resources import Warehouse
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets_tests.transforms import raw_pos_sales

    loading, other_run = Warehouse(url=pg_database), Warehouse(url=pg_database)
    done = threading.Event()
    try:
        old = RAW_POS_SALES.sql_table(sa.MetaData())
        old.append_column(sa.Column("file_hash", sa.Text(), nullable=False))
        with loading.engine.begin() as conn:
            old.create(conn)
        loading.ensure([RAW_POS_SALES])  # the index built, file_hash no longer required
        with loading.transaction() as tx:
            tx.append(RAW_POS_SALES, raw_pos_sales({"receipt_id": "A"}))  # a write lock, held until the block ends
            thread = threading.Thread(target=lambda: (other_run.table(RAW_POS_SALES), done.set()), daemon=True)
            thread.start()
            found = done.wait(15)
        thread.join(30)
        assert found, "the other run's first use of the table waited for the load to commit"
    finally:
        loading.dispose()
        other_run.dispose()


def test_binary_copy_stores_exactly_what_csv_copy_stores(pg_database: str, monkeypatch: pytest.MonkeyPatch):
    """PostgreSQL appends go through COPY in binary format when every column maps to Arrow: the rows stored are the
    ones COPY in CSV (the server's own conversions) stores, for every SQL type the specs use: every cent from
    -1,000.00 to 1,000.00 and the largest NUMERIC(14,2), doubles that print long, text with quotes, commas, line
    breaks and non-ASCII characters, "" apart from NULL, microseconds, dates, booleans, bigint extremes."""
    from datetime import date, datetime
    from decimal import Decimal

    import pandas as pd

    import retail_assets.resources.warehouse as wh
    from retail_assets.resources import Warehouse
    from retail_assets.schemas.base import TableSpec

    n = 200_001
    cents = [(i - 100_000) / 100 for i in range(n)]
    texts = ["", None, 'say "hi", then\nleave', "café ☕ 𝄞", "a,b", "\\N", "tab\there"]
    frame = pd.DataFrame({
        "id": range(n),
        "amount": cents[:-1] + [999_999_999_999.99],
        "ratio": [0.1 + 0.2, 1 / 3, None, 1e-300, -2.5e300] * (n // 5) + [0.0],
        "label": [texts[i % len(texts)] for i in range(n)],
        "flag": [[True, False, None][i % 3] for i in range(n)],
        "at": [datetime(2025, 3, 3, 10, 0, 0, i % 1_000_000) if i % 11 else None for i in range(n)],
        "day": [pd.Timestamp(date(2025, 3, 1 + i % 28)) if i % 13 else pd.NaT for i in range(n)],
        "big": [(-1) ** i * (2 ** 63 - 1 - i) for i in range(n)],
    })
    binary, csv = TableSpec("typed_binary", _Typed, "test"), TableSpec("typed_csv", _Typed, "test")
    warehouse = Warehouse(url=pg_database)
    try:
        with warehouse.transaction() as tx:
            assert warehouse.copy_schema(binary, tx.conn) is None  # no table yet: nothing to map
        warehouse._copy_schemas.clear()
        warehouse.ensure([binary, csv])
        with warehouse.transaction() as tx:
            assert warehouse.copy_schema(binary, tx.conn) is not None
            tx.append(binary, frame)
        monkeypatch.setattr(Warehouse, "copy_schema", lambda self, spec, conn: None)
        with warehouse.transaction() as tx:
            tx.append(csv, frame)
        monkeypatch.undo()
        with warehouse.engine.connect() as conn:
            differ = conn.exec_driver_sql("SELECT count(*) FROM ((SELECT * FROM typed_binary EXCEPT ALL SELECT * "
                                          "FROM typed_csv) UNION ALL (SELECT * FROM typed_csv EXCEPT ALL SELECT * "
                                          "FROM typed_binary)) d").scalar()
            assert differ == 0
            assert conn.exec_driver_sql("SELECT count(*), sum(amount) FROM typed_binary").one() == (
                n, Decimal("999999998999.99"))  # the cents from -1,000.00 to 999.99 sum to -1,000.00, + the largest
            assert conn.exec_driver_sql(
                "SELECT amount::text FROM typed_binary WHERE id IN (0, 100001, 200000) ORDER BY id").scalars().all() \
                == ["-1000.00", "0.01", "999999999999.99"]
            assert conn.exec_driver_sql("SELECT count(*) FROM typed_binary WHERE label = ''").scalar() > 0
            assert conn.exec_driver_sql("SELECT count(*) FROM typed_binary WHERE label IS NULL").scalar() > 0

        # A money amount that does not fit NUMERIC(14,2) fails the load, which leaves nothing behind.
        with pytest.raises(Exception, match="(?i)overflow"), warehouse.transaction() as tx:
            tx.append(binary, frame.head(3).assign(amount=[1.0, 2.0, 1e13]))
        assert warehouse.scalar("SELECT count(*) FROM typed_binary") == n

        # A column of a type the map does not know: COPY in CSV, which the server converts itself.
        with warehouse.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE typed_csv ALTER COLUMN ratio TYPE numeric")
        warehouse.dispose()
        with warehouse.transaction() as tx:
            assert warehouse.copy_schema(csv, tx.conn) is None
            tx.append(csv, frame.head(5))
        assert warehouse.scalar("SELECT count(*) FROM typed_csv") == n + 5
        assert wh.binary_copy_schema(["x"], {"x": "numeric(14,2)"}) == wh.pa.schema([("x", wh.pa.decimal128(14, 2))])
    finally:
        warehouse.dispose()
