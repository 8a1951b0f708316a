"""The benchmark's measurements: what each one is (``MEASURES``, the names the command line takes and the report's
labels) and the work it times, run in a child process of its own by ``run.py --child NAME`` (``run_child``).

A measurement returns its report: ``seconds`` of the measured work only (after imports and setup), the rows it
wrote and what else its note shows; or ``error`` / ``skipped`` with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness import DAY, EMPTY_DAY, MEM_CAP_GB, TIMEOUT_SECONDS, pg_conn, spawn

TYPED_COLUMNS = {
    "receipt_id": "text", "line_no": "integer", "sold_at": "timestamp", "register_id": "text", "cashier_id": "text",
    "sku": "text", "quantity": "integer", "unit_price": "numeric(14,2)", "discount": "numeric(14,2)",
    "loyalty_card": "text", "payment_method": "text",
}
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


# --- the measured work, one per child process ----------------------------------------------------------------------

def _files(data: Path) -> list[Path]:
    return sorted((data / "pos_drop" / "sales").glob("sales_*.csv"))


def _pg_reset(url: str, tables: list[str]) -> None:
    with pg_conn(url) as conn:
        for t in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{t}" CASCADE')
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt_staging CASCADE")
        conn.commit()
    with pg_conn(url) as conn:  # VACUUM cannot run in a transaction
        conn.autocommit = True
        conn.execute("CHECKPOINT")


def child_pg_copy(data: Path, url: str, typed: bool) -> dict:
    table = "bench_copy_typed" if typed else "bench_copy_text"
    _pg_reset(url, [table])
    cols = ", ".join(f'"{c}" {t if typed else "text"}' for c, t in TYPED_COLUMNS.items())
    files = _files(data)
    start = time.perf_counter()
    with pg_conn(url) as conn:
        conn.execute(f'CREATE TABLE "{table}" ({cols})')
        with conn.cursor() as cur:
            for path in files:
                with cur.copy(f'COPY "{table}" FROM STDIN (FORMAT csv, HEADER true)') as copy, path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
        conn.commit()
    seconds = time.perf_counter() - start
    with pg_conn(url) as conn:
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
    with pg_conn(url) as conn:
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

        everything, all_resources = list(definitions.defs.assets or []), {**definitions.defs.resources, **resources}
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
    with pg_conn(url) as conn:
        have = conn.execute("SELECT to_regclass('fact_sales') IS NOT NULL").fetchone()[0] and conn.execute(
            "SELECT count(DISTINCT business_date) FROM fact_sales WHERE business_date < %s", (DAY,)).fetchone()[0]
    if have != days:
        first = child_platform(data, url, workdir, end_to_end=True, reference_loaded=True)
        if "error" in first or "skipped" in first:
            return first
        with pg_conn(url) as conn:
            for statement in _history_sql(days):
                conn.execute(statement)
            conn.commit()
    with pg_conn(url) as conn:
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

    with pg_conn(url) as conn:
        loaded = conn.execute("SELECT to_regclass('fact_sales') IS NOT NULL").fetchone()[0] and conn.execute(
            "SELECT count(*) FROM fact_sales WHERE business_date = %s", (DAY,)).fetchone()[0]
    failed = None if loaded else _load_first("platform_day", data, workdir, url)
    if failed:
        return failed
    payloads = []
    with pg_conn(url) as conn:
        for spec in (RAW_POS_SALES, FACT_SALES):
            columns = ", ".join(f'"{c}"' for c in spec.columns)
            with conn.cursor().copy(f'COPY (SELECT {columns} FROM "{spec.name}" WHERE business_date = %s) '
                                    f"TO STDOUT (FORMAT binary)", (DAY,)) as copy:
                payloads.append((spec, columns, b"".join(copy)))
    out: dict = {}
    for indexed in (True, False):
        tables = [f"bench_floor_{spec.name}" for spec, _, _ in payloads]
        _pg_reset(url, tables)
        with pg_conn(url) as conn:
            for table, (spec, _, _) in zip(tables, payloads, strict=True):
                conn.execute(f'CREATE TABLE "{table}" (LIKE "{spec.name}"{" INCLUDING INDEXES" if indexed else ""})')
            conn.commit()
        seconds = {}
        with pg_conn(url) as conn:
            for table, (spec, columns, payload) in zip(tables, payloads, strict=True):
                start = time.perf_counter()
                view = memoryview(payload)
                with conn.cursor().copy(f'COPY "{table}" ({columns}) FROM STDIN (FORMAT binary)') as copy:
                    for at in range(0, len(view), 1 << 20):
                        copy.write(view[at:at + (1 << 20)])
                conn.commit()
                seconds[spec.name] = time.perf_counter() - start
        if indexed:
            with pg_conn(url) as conn:
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

    resources = {**definitions.defs.resources, **_platform_resources(data, url)}
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
