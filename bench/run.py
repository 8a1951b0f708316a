"""Load benchmark of the POS path: one business day of N sales lines, loaded by the platform and by the usual
alternatives, against the limit of the database itself.

    .venv/bin/python bench/run.py [--lines 1000000] [--stores 200] [--runs 3] [--scales 1000000,3000000,10000000]
                                  [--one-file 1000000,3000000,10000000] [--chunk-bytes N] [--skip-day]
                                  [--quick] [--only NAME,...] [--out bench/RESULTS.md]

Every measurement runs in a fresh Python process (``--child``); the parent times nothing itself but reads the
child's own report (seconds of the measured work, after imports and setup) and the child's peak resident memory
(``os.wait4``'s ``ru_maxrss``: the whole process, imports included; the database server's memory is not in it).
Results go to ``bench/RESULTS.md`` as markdown tables and to standard output; the last line printed is
``end_to_end_vs_copy=X.XX``. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]

DAY = date(2025, 3, 3)
EMPTY_DAY = date(2025, 3, 4)  # no POS file is generated for it: the graph's fixed cost
PG_URL = os.environ.get("RETAIL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/retail_bench")
TYPED_COLUMNS = {
    "receipt_id": "text", "line_no": "integer", "sold_at": "timestamp", "register_id": "text", "cashier_id": "text",
    "sku": "text", "quantity": "integer", "unit_price": "numeric(14,2)", "discount": "numeric(14,2)",
    "loyalty_card": "text", "payment_method": "text",
}
TIMEOUT_SECONDS = 1800  # a measurement running longer is stopped
MEM_CAP_GB = 12  # a measurement resident above this is stopped
HISTORY_DAYS = int(os.environ.get("RETAIL_BENCH_HISTORY_DAYS", "7"))  # earlier days for platform_day_history
PLATFORM_TABLES = ("raw_stores", "raw_pos_sales", "rejections", "pos_file_ledger", "fact_sales")


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    engine: str  # "postgres" or "duckdb"
    role: str  # "limit", "alternative", "platform", "detail"
    needs: str = ""  # an importable module it needs ("dlt")


MEASURES = [
    Measure("pg_copy_typed", "PostgreSQL `COPY` into a typed, unindexed table (**the limit**)", "postgres", "limit"),
    Measure("pg_copy_text", "PostgreSQL `COPY` into an all-text, unindexed table", "postgres", "detail"),
    Measure("pandas_to_sql", "pandas `read_csv` + `DataFrame.to_sql` (method=None, per file)", "postgres",
            "alternative"),
    Measure("dlt", "dlt: pyarrow `read_csv` + `pipeline.run(arrow_table)` (default loader)", "postgres",
            "alternative", needs="dlt"),
    Measure("platform_parse", "platform: `load_day` only (scan, hash, parse, validate lines; no database)",
            "postgres", "detail"),
    Measure("platform_raw", "platform: `raw_stores` + `raw_pos_sales` via `dg.materialize`", "postgres", "platform"),
    Measure("platform_day", "platform: **the day** - its partitioned assets, `raw_pos_sales` and the online day "
            "through `fact_sales`, what the POS sensor runs (reference data loaded before, its time in the note)",
            "postgres", "platform"),
    Measure("platform_day_empty", "platform: the same for a day with no POS file (the day's fixed cost: Dagster, "
            "the online day, reading the dimensions)", "postgres", "detail"),
    Measure("platform_day_history", "platform: the day as `platform_day`, with earlier days already loaded (their "
            "number is `history_days` in the note): a day's load must not grow with the history", "postgres",
            "platform"),
    Measure("pg_floor", "the design's floor: the day's raw lines and fact rows as the platform stored them, already "
            "parsed, joined and encoded, written by binary `COPY` into tables shaped as `raw_pos_sales` and "
            "`fact_sales` with their indexes; no parse, join, check or Dagster (the same without the indexes in the "
            "note)", "postgres", "detail"),
    Measure("platform_e2e", "platform: the whole graph upstream of `fact_sales` in one run (the day and the "
            "reference refresh: stores, catalog, CRM, dimensions)", "postgres", "platform"),
    Measure("platform_e2e_empty", "platform: the same graph for a day with no POS file (fixed cost: Dagster, "
            "dimensions, online and CRM sources)", "postgres", "detail"),
    Measure("duckdb_read_csv", "DuckDB `read_csv` into a typed table (**the DuckDB limit**)", "duckdb", "limit"),
    Measure("duckdb_platform_raw", "platform: `raw_stores` + `raw_pos_sales` via `dg.materialize`", "duckdb",
            "platform"),
    Measure("duckdb_platform_day", "platform: **the day** (as `platform_day`)", "duckdb", "platform"),
    Measure("duckdb_floor", "the design's floor (as `pg_floor`): the day's raw lines and fact rows as the platform "
            "stored them, already in Arrow, inserted into fresh tables of a new database file", "duckdb", "detail"),
    Measure("duckdb_platform_day_empty", "platform: the same for a day with no POS file (the day's fixed cost)",
            "duckdb", "detail"),
    Measure("duckdb_platform_e2e", "platform: the whole graph upstream of `fact_sales` (as `platform_e2e`)", "duckdb",
            "platform"),
    Measure("duckdb_platform_e2e_empty", "platform: the same graph for a day with no POS file (fixed cost)", "duckdb",
            "detail"),
]
BY_NAME = {m.name: m for m in MEASURES}
SCALED = ["pg_copy_typed", "platform_raw", "platform_day", "platform_e2e", "duckdb_read_csv", "duckdb_platform_day"]
QUICK = ["pg_copy_typed", "pandas_to_sql", "platform_raw", "platform_day", "platform_day_empty", "platform_day_history",
         "pg_floor", "platform_e2e", "duckdb_read_csv", "duckdb_platform_raw", "duckdb_floor"]
ONE_FILE = ["pg_copy_typed", "platform_day", "duckdb_read_csv", "duckdb_platform_day"]  # the day in one sales file
QUICK_ONE_FILE = ["platform_day", "duckdb_platform_day"]
QUICK_ONE_FILE_LINES = 20_000
QUICK_CHUNK_BYTES = 1 << 18  # the quick one-file day's file is read in several chunks


# --- the measured work, one per child process ----------------------------------------------------------------------

def _files(data: Path) -> list[Path]:
    return sorted((data / "pos_drop" / "sales").glob("sales_*.csv"))


def _pg_conn(url: str):
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    return psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                           password=u.password, dbname=u.database, autocommit=False)


def _pg_reset(url: str, tables: list[str]) -> None:
    with _pg_conn(url) as conn:
        for t in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{t}" CASCADE')
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt_staging CASCADE")
        conn.commit()
    with _pg_conn(url) as conn:  # VACUUM cannot run in a transaction
        conn.autocommit = True
        conn.execute("CHECKPOINT")


def child_pg_copy(data: Path, url: str, typed: bool) -> dict:
    table = "bench_copy_typed" if typed else "bench_copy_text"
    _pg_reset(url, [table])
    cols = ", ".join(f'"{c}" {t if typed else "text"}' for c, t in TYPED_COLUMNS.items())
    files = _files(data)
    start = time.perf_counter()
    with _pg_conn(url) as conn:
        conn.execute(f'CREATE TABLE "{table}" ({cols})')
        with conn.cursor() as cur:
            for path in files:
                with cur.copy(f'COPY "{table}" FROM STDIN (FORMAT csv, HEADER true)') as copy, path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
        conn.commit()
    seconds = time.perf_counter() - start
    with _pg_conn(url) as conn:
        rows = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def child_pandas_to_sql(data: Path, url: str) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    _pg_reset(url, ["bench_pandas"])
    engine = sa.create_engine(url)
    files = _files(data)
    start = time.perf_counter()
    rows = 0
    with engine.begin() as conn:
        for path in files:
            frame = pd.read_csv(path)
            frame.to_sql("bench_pandas", conn, if_exists="append", index=False)
            rows += len(frame)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds, "rows": rows}


def child_dlt(data: Path, url: str, workdir: Path) -> dict:
    import dlt
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import sqlalchemy as sa

    _pg_reset(url, [])
    u = sa.make_url(url)
    # dlt insists on a password; a trust-auth server ignores it
    credentials = (f"postgresql://{u.username or 'postgres'}:{u.password or 'unused'}@{u.host or '127.0.0.1'}:"
                   f"{u.port or 5432}/{u.database}")
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    pipeline = dlt.pipeline(pipeline_name="retail_bench", destination=dlt.destinations.postgres(credentials),
                            dataset_name="bench_dlt", pipelines_dir=str(workdir / "dlt"))
    files = _files(data)
    start = time.perf_counter()
    table = pa.concat_tables([pacsv.read_csv(p) for p in files], promote_options="permissive")
    pipeline.run(table, table_name="pos_sales", write_disposition="append")
    seconds = time.perf_counter() - start
    with _pg_conn(url) as conn:
        rows = conn.execute("SELECT count(*) FROM bench_dlt.pos_sales").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def _platform_env(data: Path, url: str, workdir: Path) -> None:
    os.environ.update({
        "RETAIL_POS_DROP_DIR": str(data / "pos_drop"),
        "RETAIL_ONLINE_STORE_URL": f"sqlite:///{data / 'online_store.db'}",
        "RETAIL_CRM_URL": f"sqlite:///{data / 'crm.db'}",
        "RETAIL_POS_LAYOUTS_DIR": str(workdir / "no_layouts"),
        "RETAIL_WAREHOUSE_URL": url,
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "RETAIL_PARTITION_START": "2025-01-01",
    })
    (workdir / "dagster_home").mkdir(parents=True, exist_ok=True)


def _has_fact_sales() -> bool:
    """Whether someone has added the fact_sales asset to the definitions yet."""
    import dagster as dg

    try:
        from retail_assets import definitions
    except Exception:  # noqa: BLE001 - a half-written module elsewhere must not break the benchmark
        return False
    return dg.AssetKey("fact_sales") in definitions.defs.resolve_asset_graph().get_all_asset_keys()


def _platform_resources(data: Path, url: str) -> dict:
    """The drop folder of the generated day and the warehouse under test, over the definitions' own resources."""
    from retail_assets.resources import PosDropFolder, Warehouse

    return {"pos_drop": PosDropFolder(path=str(data / "pos_drop")), "warehouse": Warehouse(url=url)}


def _day_selection():
    """(reference keys, day keys) upstream of fact_sales: the unpartitioned snapshots and dimensions the reference
    job refreshes, and the partitioned assets a day's run materialises (what the POS sensor launches)."""
    import dagster as dg

    from retail_assets import definitions

    graph = definitions.defs.resolve_asset_graph()
    upstream = dg.AssetSelection.assets("fact_sales").upstream().resolve(graph)
    reference = sorted(k for k in upstream if not graph.get(k).is_partitioned)
    return reference, sorted(k for k in upstream if graph.get(k).is_partitioned)


def child_platform(data: Path, url: str, workdir: Path, end_to_end: bool, day: date = DAY,
                   reference_loaded: bool = False, fresh: bool = True) -> dict:
    """One materialisation, timed. ``fresh``: the platform's tables are dropped first and, with
    ``reference_loaded``, the reference data loaded again; otherwise the warehouse is used as it is."""
    _platform_env(data, url, workdir)
    if url.startswith("postgresql") and fresh:
        _pg_reset(url, list(PLATFORM_TABLES))
    import dagster as dg

    from retail_assets.assets.sources.pos import raw_pos_sales, raw_stores
    from retail_assets.resources import Warehouse

    resources = _platform_resources(data, url)
    assets = [raw_stores, raw_pos_sales]
    if end_to_end:
        if not _has_fact_sales():
            return {"skipped": "no fact_sales asset in the definitions yet"}
        from retail_assets import definitions

        everything, all_resources = list(definitions.defs.assets or []), {**definitions.resources, **resources}
        selection = dg.AssetSelection.assets("fact_sales").upstream()
        reference_seconds = None
        if reference_loaded and not fresh:
            selection = dg.AssetSelection.assets(*_day_selection()[1])
        elif reference_loaded:
            # The reference job's share, done first in a process of its own (as every Dagster run is: this one then
            # pays for its own lazy imports, like a run the sensor launches) and reported apart.
            report, _ = spawn("platform_reference", data, workdir, url, TIMEOUT_SECONDS, MEM_CAP_GB * 1024)
            if "error" in report:
                return {"error": f"the reference assets: {report['error']}"}
            reference_seconds = report["seconds"]
            selection = dg.AssetSelection.assets(*_day_selection()[1])
        start = time.perf_counter()
        result = dg.materialize(everything, partition_key=day.isoformat(), selection=selection,
                                resources=all_resources, raise_on_error=False)
    else:
        start = time.perf_counter()
        result = dg.materialize(assets, partition_key=day.isoformat(), resources=resources)
    seconds = time.perf_counter() - start
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        return {"error": f"materialize failed at {', '.join(map(str, failed)) or '?'}"}
    wh = Warehouse(url=url)
    rows = int(wh.scalar("SELECT count(*) FROM raw_pos_sales WHERE business_date = :day", day=day))
    rejected = int(wh.scalar("SELECT count(*) FROM rejections WHERE asset = 'raw_pos_sales' AND business_date = :day",
                             day=day))
    out = {"seconds": seconds, "rows": rows, "rejected": rejected}
    if end_to_end:
        out["fact_rows"] = int(wh.scalar("SELECT count(*) FROM fact_sales WHERE business_date = :day", day=day))
        if reference_seconds is not None:
            out["reference_seconds"] = reference_seconds
    wh.dispose()
    return out


def _history_sql(days: int) -> list[str]:
    """PostgreSQL statements copying the day's raw lines and facts to each of the ``days`` days before it (dates,
    times and line ids moved with them), then removing the day itself: the warehouse of a platform that has been
    loading for ``days`` days, on the morning of the next."""
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets.schemas.warehouse import FACT_SALES

    stamp = DAY.strftime("%Y%m%d")
    new_stamp = "':' || to_char(business_date - k, 'YYYYMMDD') || ':'"
    moved = {"business_date": "business_date - k", "sold_at": "sold_at - k * interval '1 day'",
             "sold_at_utc": "sold_at_utc - k * interval '1 day'",
             "date_key": "CAST(to_char(business_date - k, 'YYYYMMDD') AS BIGINT)",
             "sale_line_id": f"replace(sale_line_id, ':{stamp}:', {new_stamp})",
             "receipt_ref": f"replace(receipt_ref, ':{stamp}:', {new_stamp})"}
    out = []
    for spec in (RAW_POS_SALES, FACT_SALES):
        select = ", ".join(moved.get(c, c) for c in spec.columns)
        out.append(f"INSERT INTO {spec.name} ({', '.join(spec.columns)}) SELECT {select} "
                   f"FROM {spec.name}, generate_series(1, {int(days)}) AS k WHERE business_date = '{DAY}'")
    return out


def child_platform_history(data: Path, url: str, workdir: Path, days: int) -> dict:
    """``platform_day`` on a warehouse that already holds ``days`` earlier days of the same size: what a day costs
    once the platform has been in use for a while. The history is built by the first run (untimed: the reference
    data, the day, copied to the days before it) and kept by the next; each run times the day's load after its
    earlier load was removed and vacuumed away, as on a day loaded for the first time."""
    with _pg_conn(url) as conn:
        have = conn.execute("SELECT to_regclass('fact_sales') IS NOT NULL").fetchone()[0] and conn.execute(
            "SELECT count(DISTINCT business_date) FROM fact_sales WHERE business_date < %s", (DAY,)).fetchone()[0]
    if have != days:
        first = child_platform(data, url, workdir, end_to_end=True, reference_loaded=True)
        if "error" in first or "skipped" in first:
            return first
        with _pg_conn(url) as conn:
            for statement in _history_sql(days):
                conn.execute(statement)
            conn.commit()
    with _pg_conn(url) as conn:
        for table in PLATFORM_TABLES[1:]:  # the day's lines, rejections, files and facts
            conn.execute(f"DELETE FROM {table} WHERE business_date = %s", (DAY,))
        conn.commit()
        conn.autocommit = True
        for table in PLATFORM_TABLES[1:]:
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")
    out = child_platform(data, url, workdir, end_to_end=True, reference_loaded=True, fresh=False)
    return {**out, "history_days": days}


def _load_first(name: str, data: Path, workdir: Path, url: str) -> dict | None:
    """Run the measurement ``name`` in a child of its own, untimed, to load the day a floor reads; its report when it
    failed, else None."""
    report, _ = spawn(name, data, workdir, url, TIMEOUT_SECONDS, MEM_CAP_GB * 1024)
    return report if "error" in report or "skipped" in report else None


def child_pg_floor(data: Path, url: str, workdir: Path) -> dict:
    """What no implementation of this design can go below: the day's two persisted copies of every line, the raw
    line and the fact row, written into PostgreSQL with nothing else left to do. The rows are those the platform
    stored (loaded by a ``platform_day`` child first when the day is not in the warehouse), read out in binary
    ``COPY`` format before the clock starts; each run writes them into fresh tables ``LIKE`` raw_pos_sales and
    fact_sales, one transaction each as the platform does, with the tables' indexes and then without."""
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets.schemas.warehouse import FACT_SALES

    with _pg_conn(url) as conn:
        loaded = conn.execute("SELECT to_regclass('fact_sales') IS NOT NULL").fetchone()[0] and conn.execute(
            "SELECT count(*) FROM fact_sales WHERE business_date = %s", (DAY,)).fetchone()[0]
    failed = None if loaded else _load_first("platform_day", data, workdir, url)
    if failed:
        return failed
    payloads = []
    with _pg_conn(url) as conn:
        for spec in (RAW_POS_SALES, FACT_SALES):
            columns = ", ".join(f'"{c}"' for c in spec.columns)
            with conn.cursor().copy(f'COPY (SELECT {columns} FROM "{spec.name}" WHERE business_date = %s) '
                                    f"TO STDOUT (FORMAT binary)", (DAY,)) as copy:
                payloads.append((spec, columns, b"".join(copy)))
    out: dict = {}
    for indexed in (True, False):
        tables = [f"bench_floor_{spec.name}" for spec, _, _ in payloads]
        _pg_reset(url, tables)
        with _pg_conn(url) as conn:
            for table, (spec, _, _) in zip(tables, payloads, strict=True):
                conn.execute(f'CREATE TABLE "{table}" (LIKE "{spec.name}"{" INCLUDING INDEXES" if indexed else ""})')
            conn.commit()
        seconds = {}
        with _pg_conn(url) as conn:
            for table, (spec, columns, payload) in zip(tables, payloads, strict=True):
                start = time.perf_counter()
                view = memoryview(payload)
                with conn.cursor().copy(f'COPY "{table}" ({columns}) FROM STDIN (FORMAT binary)') as copy:
                    for at in range(0, len(view), 1 << 20):
                        copy.write(view[at:at + (1 << 20)])
                conn.commit()
                seconds[spec.name] = time.perf_counter() - start
        if indexed:
            with _pg_conn(url) as conn:
                rows = [conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables]
            out.update({"seconds": sum(seconds.values()), "rows": rows[0], "fact_rows": rows[1],
                        "raw_seconds": seconds[RAW_POS_SALES.name], "fact_seconds": seconds[FACT_SALES.name]})
        else:
            out["unindexed_seconds"] = sum(seconds.values())
        _pg_reset(url, tables)
    return out


def child_duckdb_floor(data: Path, workdir: Path) -> dict:
    """``pg_floor`` for the DuckDB warehouse: the day's raw lines and fact rows (loaded by a ``duckdb_platform_day``
    child first when the day is not there), read into Arrow before the clock starts, then written into a new
    database file (the platform's memory limit) in one transaction a table, and the file closed (checkpointed)."""
    import duckdb

    from retail_assets.resources.urls import DUCKDB_DEFAULT_MEMORY_LIMIT
    from retail_assets.schemas.sources import RAW_POS_SALES
    from retail_assets.schemas.warehouse import FACT_SALES

    source = workdir / "warehouse.duckdb"

    def facts() -> int:
        if not source.exists():
            return 0
        with duckdb.connect(str(source), read_only=True) as con:
            known = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'fact_sales'")
            return known.fetchone()[0] and con.execute("SELECT count(*) FROM fact_sales WHERE business_date = ?",
                                                       [DAY]).fetchone()[0]

    failed = None if facts() else _load_first("duckdb_platform_day", data, workdir, "")
    if failed:
        return failed
    with duckdb.connect(str(source), read_only=True) as con:
        day = {spec.name: con.execute(f"SELECT {', '.join(spec.columns)} FROM {spec.name} WHERE business_date = ?",
                                      [DAY]).to_arrow_table() for spec in (RAW_POS_SALES, FACT_SALES)}
    target = workdir / "bench_floor.duckdb"
    target.unlink(missing_ok=True)
    seconds = {}
    start = time.perf_counter()
    con = duckdb.connect(str(target), config={"memory_limit": DUCKDB_DEFAULT_MEMORY_LIMIT})
    for name, rows in day.items():
        begun = time.perf_counter()
        con.execute("BEGIN")
        con.from_arrow(rows).create(name)
        con.execute("COMMIT")
        seconds[name] = time.perf_counter() - begun
    con.close()
    total = time.perf_counter() - start
    with duckdb.connect(str(target), read_only=True) as con:
        rows = [con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in day]
    target.unlink(missing_ok=True)
    return {"seconds": total, "rows": rows[0], "fact_rows": rows[1], "raw_seconds": seconds[RAW_POS_SALES.name],
            "fact_seconds": seconds[FACT_SALES.name]}


def child_platform_reference(data: Path, url: str, workdir: Path) -> dict:
    """The reference assets upstream of fact_sales (stores, catalog, CRM, dimensions), for ``platform_day``."""
    _platform_env(data, url, workdir)
    import dagster as dg

    from retail_assets import definitions

    resources = {**definitions.resources, **_platform_resources(data, url)}
    start = time.perf_counter()
    done = dg.materialize(list(definitions.defs.assets or []), selection=dg.AssetSelection.assets(*_day_selection()[0]),
                          resources=resources, raise_on_error=False)
    if not done.success:
        return {"error": "the reference assets failed to materialize"}
    return {"seconds": time.perf_counter() - start}


def child_platform_parse(data: Path, workdir: Path) -> dict:
    _platform_env(data, "duckdb:///" + str(workdir / "unused.duckdb"), workdir)
    import pandas as pd

    from retail_assets.assets.common import validated
    from retail_assets.assets.sources.pos import load_day
    from retail_assets.resources import PosDropFolder
    from retail_assets.schemas.sources import RAW_POS_SALES

    drop = PosDropFolder(path=str(data / "pos_drop"))
    stores = pd.read_csv(data / "pos_drop" / "stores.csv", dtype=str)[["store_code", "pos_layout"]]
    start = time.perf_counter()
    rows, rejected, ledger = load_day("sales", DAY, drop, stores, "bench", "raw_pos_sales", 0.5)
    parsed = time.perf_counter() - start
    rows, _ = validated(RAW_POS_SALES, rows, DAY.isoformat())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(rows), "rejected": len(rejected), "parse_seconds": parsed,
            "validate_seconds": seconds - parsed}


def child_duckdb_read_csv(data: Path, workdir: Path) -> dict:
    import duckdb

    path = workdir / "bench_read_csv.duckdb"
    path.unlink(missing_ok=True)
    columns = "{" + ", ".join(f"'{c}': '{t.upper()}'" for c, t in TYPED_COLUMNS.items()) + "}"
    glob = str(data / "pos_drop" / "sales" / "sales_*.csv")
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE pos_sales AS SELECT * FROM read_csv('{glob}', header = true, columns = {columns})")
    con.close()
    seconds = time.perf_counter() - start
    con = duckdb.connect(str(path))
    rows = con.execute("SELECT count(*) FROM pos_sales").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows}


def run_child(args: argparse.Namespace) -> None:
    data, workdir, name = Path(args.data), Path(args.workdir), args.child
    duck_url = "duckdb:///" + str(workdir / "warehouse.duckdb")
    if name.startswith("duckdb_platform"):
        (workdir / "warehouse.duckdb").unlink(missing_ok=True)
    work = {
        "pg_copy_typed": lambda: child_pg_copy(data, args.pg_url, typed=True),
        "pg_copy_text": lambda: child_pg_copy(data, args.pg_url, typed=False),
        "pandas_to_sql": lambda: child_pandas_to_sql(data, args.pg_url),
        "dlt": lambda: child_dlt(data, args.pg_url, workdir),
        "platform_parse": lambda: child_platform_parse(data, workdir),
        "platform_raw": lambda: child_platform(data, args.pg_url, workdir, end_to_end=False),
        "platform_e2e": lambda: child_platform(data, args.pg_url, workdir, end_to_end=True),
        "platform_e2e_empty": lambda: child_platform(data, args.pg_url, workdir, end_to_end=True, day=EMPTY_DAY),
        "platform_reference": lambda: child_platform_reference(data, args.pg_url, workdir),  # any warehouse URL
        "platform_day": lambda: child_platform(data, args.pg_url, workdir, end_to_end=True, reference_loaded=True),
        "platform_day_empty": lambda: child_platform(data, args.pg_url, workdir, end_to_end=True, day=EMPTY_DAY,
                                                     reference_loaded=True),
        "platform_day_history": lambda: child_platform_history(data, args.pg_url, workdir, args.history_days),
        "pg_floor": lambda: child_pg_floor(data, args.pg_url, workdir),
        "duckdb_floor": lambda: child_duckdb_floor(data, workdir),
        "duckdb_read_csv": lambda: child_duckdb_read_csv(data, workdir),
        "duckdb_platform_raw": lambda: child_platform(data, duck_url, workdir, end_to_end=False),
        "duckdb_platform_e2e": lambda: child_platform(data, duck_url, workdir, end_to_end=True),
        "duckdb_platform_e2e_empty": lambda: child_platform(data, duck_url, workdir, end_to_end=True, day=EMPTY_DAY),
        "duckdb_platform_day": lambda: child_platform(data, duck_url, workdir, end_to_end=True,
                                                      reference_loaded=True),
        "duckdb_platform_day_empty": lambda: child_platform(data, duck_url, workdir, end_to_end=True, day=EMPTY_DAY,
                                                            reference_loaded=True),
    }[name]
    cpu = time.process_time()
    out = work()
    out["cpu_seconds"] = time.process_time() - cpu
    print("BENCH_RESULT " + json.dumps(out), flush=True)


# --- the parent: data, child processes, tables ---------------------------------------------------------------------

@dataclass
class Outcome:
    measure: Measure
    lines: int
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def peak_mb(self) -> float | None:
        return max(self.rss_mb) if self.rss_mb else None


def _rss_mb(pid: int) -> float:
    """Resident memory of a running process, from /proc (0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def spawn(name: str, data: Path, workdir: Path, pg_url: str, timeout: float, mem_cap_mb: float) -> tuple[dict, float]:
    """(the child's report, its peak RSS in MB); a child over the memory cap or the time limit is stopped."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--data", str(data), "--workdir",
           str(workdir), "--pg-url", pg_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir)
    killed: list[str] = []
    done = threading.Event()  # proc.poll() here would reap the child before os.wait4 can read its rusage

    def watch() -> None:
        started = time.monotonic()
        while not done.is_set():
            rss = _rss_mb(proc.pid)
            if rss > mem_cap_mb:
                killed.append(f"stopped at {rss:,.0f} MB resident (cap {mem_cap_mb:,.0f} MB)")
                proc.kill()
                return
            if time.monotonic() - started > timeout:
                killed.append(f"stopped after {timeout:.0f} s")
                proc.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    stdout = "".join(out_chunks)
    report = next((json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines()
                   if line.startswith("BENCH_RESULT ")), None)
    if report is not None and "error" in report:
        return report, rss_mb
    if report is None:
        tail = "".join(err_chunks).strip().splitlines()[-3:]
        reason = killed[0] if killed else f"exit {proc.returncode}: {' | '.join(tail)[-400:]}"
        return {"error": reason}, rss_mb
    return report, rss_mb


def pg_available(url: str) -> str | None:
    """None when PostgreSQL answers (the benchmark database is created if missing), else why not."""
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    try:
        with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                             password=u.password, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{u.database}"')
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("dagster", "pandas", "pyarrow", "sqlalchemy", "psycopg", "duckdb", "pandera", "dlt"):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{pkg} {version(pkg)}")
    return ", ".join(out)


def pg_version(url: str) -> str:
    try:
        with _pg_conn(url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001
        return "unavailable"


def fmt_seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f}"


def main_table(outcomes: list[Outcome], limits: dict[str, float | None], runs: int) -> list[str]:
    lines = ["| measurement | engine | seconds (median) | lines/s | peak RSS MB | vs limit | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for o in outcomes:
        m = o.measure
        limit = limits.get(m.engine)
        if o.median is None:
            lines.append(f"| {m.label} | {m.engine} | - | - | - | - | {o.error or 'not run'} |")
            continue
        ratio = f"{o.median / limit:.2f}x" if limit else "-"
        note = [f"{len(o.seconds)} run(s): " + ", ".join(f"{s:.2f}" for s in o.seconds)]
        for key in ("rejected", "fact_rows", "parse_seconds", "validate_seconds", "reference_seconds", "history_days",
                    "raw_seconds", "fact_seconds", "unindexed_seconds"):
            if key in o.extra:
                value = o.extra[key]
                note.append(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value:,}")
        if "cpu_seconds" in o.extra:
            note.append(f"cpu {o.extra['cpu_seconds']:.2f} s")
        lines.append(f"| {m.label} | {m.engine} | {o.median:.2f} | {o.lines / o.median:,.0f} | "
                     f"{o.peak_mb:,.0f} | {ratio} | {'; '.join(note)} |")
    return lines


def measure(names: list[str], data: Path, lines: int, runs: int, args: argparse.Namespace, workdir: Path,
            log) -> list[Outcome]:
    outcomes = []
    for name in names:
        m = BY_NAME[name]
        o = Outcome(m, lines)
        for i in range(runs):
            report, rss = spawn(name, data, workdir, args.pg_url, args.timeout, args.mem_cap_gb * 1024)
            if "error" in report or "skipped" in report:
                o.error = report.get("error") or report.get("skipped")
                o.rss_mb.append(rss)
                break
            o.seconds.append(report["seconds"])
            o.rss_mb.append(rss)
            o.extra = report
            log(f"  {name} run {i + 1}/{runs}: {report['seconds']:.2f} s, {report.get('rows', 0):,} rows, "
                f"peak {rss:,.0f} MB")
        if o.error:
            log(f"  {name}: {o.error}")
        outcomes.append(o)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description="POS load benchmark (see bench/README.md)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="sales lines in the business day")
    parser.add_argument("--stores", type=int, default=200, help="stores, one file each")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--scales", default="", help="comma-separated line counts for the scaling table, e.g. "
                                                     "1000000,3000000,10000000 (one run each)")
    parser.add_argument("--one-file", default="", help="comma-separated line counts of a day whose lines are all in "
                                                       "ONE sales file (one run each, in the scaling table)")
    parser.add_argument("--chunk-bytes", type=int, default=0,
                        help="RETAIL_POS_CHUNK_BYTES for the platform: a file larger is read in chunks of this size "
                             "(default: the platform's own default)")
    parser.add_argument("--skip-day", action="store_true",
                        help="no business day of --lines: only the --scales and --one-file rows")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 lines, 20 stores, 1 run, no scaling, a day of 20,000 lines in one file: CI")
    parser.add_argument("--only", default="", help="comma-separated measurement names (default: all)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--data-dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS,
                        help="seconds before a measurement is stopped")
    parser.add_argument("--mem-cap-gb", type=float, default=MEM_CAP_GB, help="resident memory before one is stopped")
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS,
                        help="earlier days already loaded for platform_day_history (default %(default)s)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["RETAIL_BENCH_HISTORY_DAYS"] = str(args.history_days)  # the children's --history-days
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.lines, args.stores, args.runs, args.scales = 20_000, 20, 1, ""
        args.one_file, args.chunk_bytes = str(QUICK_ONE_FILE_LINES), args.chunk_bytes or QUICK_CHUNK_BYTES
    if args.chunk_bytes:
        os.environ["RETAIL_POS_CHUNK_BYTES"] = str(args.chunk_bytes)  # the children's platform reads it

    import importlib.util

    def generate(out: Path, lines: int, stores: int, day: date) -> dict:
        """In a child process, so that this one stays small: a child's peak RSS counts its parent's at fork."""
        cmd = [sys.executable, str(BENCH / "gen.py"), str(out), "--lines", str(lines), "--stores", str(stores),
               "--day", day.isoformat(), *(["--catalog", "2000", "--contacts", "2000"] if args.quick else [])]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def log(msg: str) -> None:
        print(msg, flush=True)

    default = QUICK if args.quick else [m.name for m in MEASURES]
    names = [n for n in (args.only.split(",") if args.only else default) if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; known: {', '.join(BY_NAME)}")
    missing = {m.name: m.needs for m in MEASURES if m.needs and importlib.util.find_spec(m.needs) is None}
    pg_problem = pg_available(args.pg_url)
    skipped: dict[str, str] = {}
    for n in names:
        if n in missing:
            skipped[n] = f"{missing[n]} is not installed (pip install -e '.[bench]')"
        elif BY_NAME[n].engine == "postgres" and pg_problem:
            skipped[n] = f"PostgreSQL unavailable: {pg_problem}"

    root = Path(args.data_dir or tempfile.mkdtemp(prefix="retail_bench_"))
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = datetime.now()
    log(f"machine: {machine()}")
    log(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    data = root / f"day_{args.lines}"
    manifest = None
    if not args.skip_day:
        log(f"generating {args.lines:,} lines in {args.stores} store files for {DAY} under {root}")
        t = time.perf_counter()
        manifest = generate(data, args.lines, args.stores, DAY)
        log(f"  {manifest['files']} files, {manifest['bytes'] / 2**20:,.1f} MB in {time.perf_counter() - t:.1f} s")

    run_names = [n for n in names if n not in skipped and not args.skip_day]
    outcomes = measure(run_names, data, args.lines, args.runs, args, workdir, log)
    by_name = {o.measure.name: o for o in outcomes}
    for n in names:
        if n in skipped:
            by_name[n] = Outcome(BY_NAME[n], args.lines, error=skipped[n])
    ordered = [by_name[n] for n in names if n in by_name]
    limits = {"postgres": by_name.get("pg_copy_typed", Outcome(BY_NAME["pg_copy_typed"], 0)).median,
              "duckdb": by_name.get("duckdb_read_csv", Outcome(BY_NAME["duckdb_read_csv"], 0)).median}

    def scale_rows(n_lines: int, stores: int, scale_names: list[str], label: str) -> list[str]:
        """One run of each of ``scale_names`` on a day of ``n_lines`` lines in ``stores`` files."""
        if n_lines == args.lines and stores == args.stores and not args.skip_day:
            sdata = data
        else:
            sdata = root / f"day_{n_lines}_{stores}"
            generate(sdata, n_lines, stores, DAY)
        results = measure(scale_names, sdata, n_lines, 1, args, workdir, log)
        base = {r.measure.engine: r.median for r in results if r.measure.role == "limit"}
        out = []
        for r in results:
            if r.median is None:
                if r.error and "fact_sales" not in (r.error or ""):
                    out.append(f"| {label} | {r.measure.name} | - | - | {r.peak_mb or 0:,.0f} | - | {r.error} |")
                continue
            limit = base.get(r.measure.engine)
            note = [f"{key} {r.extra[key]:,}" for key in ("rows", "rejected", "fact_rows") if key in r.extra
                    and stores == 1]
            note.append(f"cpu {r.extra.get('cpu_seconds', 0):.2f} s")
            out.append(f"| {label} | {r.measure.name} | {r.median:.2f} | {n_lines / r.median:,.0f} | "
                       f"{r.peak_mb:,.0f} | {f'{r.median / limit:.2f}x' if limit else '-'} | {'; '.join(note)} |")
        if sdata != data and not args.data_dir:
            shutil.rmtree(sdata, ignore_errors=True)
        return out

    scale_table: list[str] = []
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    one_file = [int(s) for s in args.one_file.split(",") if s.strip()]
    for n_lines in scales:
        log(f"scale {n_lines:,} lines in {args.stores} files")
        scale_table += scale_rows(n_lines, args.stores, [n for n in SCALED if n in names and n not in skipped],
                                  f"{n_lines:,}")
    one_names = [n for n in (QUICK_ONE_FILE if args.quick else ONE_FILE)
                 if (n in names or (args.quick and not args.only)) and n not in skipped]
    for n_lines in one_file:
        log(f"scale {n_lines:,} lines in one file")
        scale_table += scale_rows(n_lines, 1, one_names, f"{n_lines:,} (one file)")
    if scale_table:
        scale_table = ["| lines | measurement | seconds | lines/s | peak RSS MB | vs limit | note |",
                       "|---:|---|---:|---:|---:|---:|---|", *scale_table]
    if one_file:
        from retail_assets.settings import DEFAULTS

        chunk = int(os.environ.get("RETAIL_POS_CHUNK_BYTES", DEFAULTS["RETAIL_POS_CHUNK_BYTES"]))
        scale_table += ["", f"`(one file)`: the day's lines all in one sales file of one store "
                            f"(`sales_S0001_{DAY:%Y%m%d}.csv`), which the platform reads in chunks of {chunk:,} bytes "
                            "(`RETAIL_POS_CHUNK_BYTES`); the note gives the day's raw rows, rejected lines and fact "
                            "rows."]

    e2e = by_name.get("platform_day")
    e2e = e2e if e2e and e2e.median else by_name.get("platform_e2e")
    raw = by_name.get("platform_raw")
    copy = limits["postgres"]
    basis = e2e.measure.name if e2e and e2e.median else "platform_raw"
    numerator = (e2e.median if e2e and e2e.median else raw.median if raw else None)
    if copy is None or numerator is None:  # no PostgreSQL: the DuckDB pair stands in
        duck = next((d for d in map(by_name.get, ("duckdb_platform_day", "duckdb_platform_e2e", "duckdb_platform_raw"))
                     if d and d.median), None)
        numerator, copy = (duck.median if duck else None), limits["duckdb"]
        basis = f"{duck.measure.name if duck else 'duckdb_platform_raw'} vs duckdb_read_csv (no PostgreSQL)"
    ratio = numerator / copy if numerator and copy else float("nan")

    command = f"command: `{' '.join(['bench/run.py', *sys.argv[1:]])}`"
    header = [
        "# POS load benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M}",
        f"- machine: {machine()}",
        f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work shares this machine)",
        f"- PostgreSQL {pg_version(args.pg_url)} on {args.pg_url.split('@')[-1]}; {versions()}",
        f"- day {DAY}: N = {args.lines:,} lines in {manifest['files']} files ({manifest['bytes'] / 2**20:,.1f} MB),"
        f" {args.runs} run(s) per measurement, median shown; {command}" if manifest else
        f"- day {DAY}: no business day of --lines measured (`--skip-day`); {command}",
        "- end_to_end_vs_copy: none (no business day of --lines measured)" if args.skip_day else
        f"- end_to_end_vs_copy: {basis} / pg_copy_typed" if "vs duckdb" not in basis else f"- ratio: {basis}",
        "",
    ]
    table = main_table(ordered, limits, args.runs)
    body = [*header, *(["## One business day", "", *table, ""] if not args.skip_day else [])]
    for engine, floor_name, fixed_name, day_name in (
            ("postgres", "pg_floor", "platform_day_empty", "platform_day"),
            ("duckdb", "duckdb_floor", "duckdb_platform_day_empty", "duckdb_platform_day")):
        floor, fixed, day, limit = (by_name.get(floor_name), by_name.get(fixed_name), by_name.get(day_name),
                                    limits[engine])
        if floor and floor.median and fixed and fixed.median and limit:
            bound = floor.median + fixed.median
            unindexed = floor.extra.get("unindexed_seconds")
            body += [f"Lower bound of a day on this design, {engine}: the floor ({floor.median:.2f} s) + the day's "
                     f"fixed cost ({fixed.median:.2f} s) = {bound:.2f} s, **{bound / limit:.2f}x** the limit"
                     + (f" (without the indexes: {(unindexed + fixed.median) / limit:.2f}x)" if unindexed else "")
                     + "; no line parsed, joined or checked in it."
                     + (f" `{day_name}` takes {day.median / bound:.2f}x this bound." if day and day.median else ""),
                     ""]
    if scale_table:
        body += ["## Scaling (one run each)", "", *scale_table, ""]
    text = "\n".join(body)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick or args.out != BENCH / "RESULTS.md":
        args.out.write_text(text + f"\nend_to_end_vs_copy={ratio:.2f}\n")
    print(text)
    if not args.data_dir:
        shutil.rmtree(root, ignore_errors=True)
    print(f"end_to_end_vs_copy={ratio:.2f}")


if __name__ == "__main__":
    main()
