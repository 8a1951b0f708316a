"""DDL: a table created from its spec, or given what a newer spec adds, once, by one process at a time."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import sqlalchemy as sa

from retail_assets.resources.urls import ConfigError, redact
from retail_assets.resources.warehouse.locks import lock_ddl
from retail_assets.schemas.base import TableSpec


def partition_index(spec: TableSpec, dialect: sa.Dialect) -> tuple[str, str] | None:
    """(name, ``CREATE INDEX``) of the index a table partitioned by day needs on PostgreSQL, or None.

    Every load, check and mart of a day selects, deletes or reads its slice by the partition column; without an
    index each of those is a scan of the table's whole history, and a day's load grows with the days before it
    (past what the server can cache, every scan goes to disk). The B-tree is not free, but it costs less than the
    scans of the history after a few days (bench/README.md, "Where the time goes").
    DuckDB keeps min/max zone maps for every row group, which skip the other days without an index (and an ART index
    would slow its bulk inserts and deletes); SQLite holds the embedded demo's few days."""
    if dialect.name != "postgresql" or not spec.partition_column:
        return None
    quote = dialect.identifier_preparer.quote
    name = f"{spec.name}_{spec.partition_column}_idx"
    return name, f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(spec.name)} ({quote(spec.partition_column)})"


def pending_ddl(conn: sa.Connection, spec: TableSpec, table: sa.Table) -> list[sa.Table | str]:
    """What ``table`` still needs for ``spec``, in order: the table itself (CREATE TABLE) when missing, else an
    ``ADD COLUMN`` per column it lacks, a ``DROP NOT NULL`` per required column this version no longer writes, and
    the partition index (statements as text). Nothing when the table is ready.

    Found by lookups that take no lock on the table on PostgreSQL (the catalogs), so that seeing a table is ready
    never waits for a run writing to it, nor makes one wait."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    index = partition_index(spec, dialect)
    required: dict[str, bool] = {}
    if dialect.name == "postgresql":
        oid = pg_relation(conn, table.name)
        if oid is None:
            return [table, *([index[1]] if index else [])]
        required = dict(conn.execute(sa.text(
            "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped"),
            {"oid": oid}).all())
    elif not dialect.has_table(conn, table.name):
        return [table]
    else:
        # duckdb-engine's reflection does not work with SQLAlchemy 2.1; an empty select works everywhere
        required = dict.fromkeys(conn.exec_driver_sql(f"SELECT * FROM {name} WHERE 1 = 0").keys(), False)
    steps: list[sa.Table | str] = [
        f"ALTER TABLE {name} ADD COLUMN {quote(col.name)} {col.type.compile(dialect=dialect)}"
        for col in table.columns if col.name not in required
    ]
    # A column an earlier version wrote and this one does not (raw_pos_sales.file_hash): kept with its data, but no
    # longer required, so that rows without it load (SQLite cannot alter a column). Only while it is still NOT
    # NULL: the ALTER locks the table against readers and writers.
    dropped = set(required) - set(table.columns.keys())
    if dropped and dialect.name == "duckdb":
        required.update(dict.fromkeys(conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = :table AND is_nullable = 'NO'"), {"table": table.name}).scalars(), True))
    if dialect.name in ("postgresql", "duckdb"):
        steps += [f"ALTER TABLE {name} ALTER COLUMN {quote(col)} DROP NOT NULL"
                  for col in sorted(dropped) if required[col]]
    # Looked up first: CREATE INDEX IF NOT EXISTS locks the table against writes before it finds the index, and
    # would wait for every other run writing to the table (another day's load).
    if index and pg_relation(conn, index[0]) is None:
        steps.append(index[1])
    return steps


def pg_relation(conn: sa.Connection, name: str) -> int | None:
    """The oid of the table or index ``name`` in the current schema, or None.

    Read from pg_class with the statement's snapshot, not through ``to_regclass``: the server's cache of names
    can still miss a table another process created while this one waited for ``DDL_LOCK`` (waiting for an
    advisory lock does not refresh it), and the table would be created twice."""
    return conn.execute(sa.text("SELECT oid FROM pg_class WHERE relname = :name "
                                "AND relnamespace = current_schema()::regnamespace"), {"name": name}).scalar()


def run_ddl(conn: sa.Connection, steps: Sequence[sa.Table | str]) -> None:
    for step in steps:
        if isinstance(step, sa.Table):
            step.create(conn)
        else:
            conn.exec_driver_sql(step)


def holds_lock_on(conn: sa.Connection, table: str) -> bool:
    """Whether the transaction of ``conn`` (PostgreSQL) holds a lock on ``table``."""
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() "
                                     "AND granted AND relation = :oid)"), {"oid": pg_relation(conn, table)}).scalar())


def table_lock_mode(steps: Sequence[sa.Table | str]) -> str:
    """The lock of an existing table that its DDL ``steps`` need, in a mode that conflicts with itself: building
    the index alone lets readers on, changing a column does not."""
    return "SHARE ROW EXCLUSIVE" if all(str(s).startswith("CREATE INDEX") for s in steps) else "ACCESS EXCLUSIVE"


def check_duckdb_folder(url: str) -> None:
    """Raise ``ConfigError`` when ``url`` is a DuckDB file whose folder does not exist.

    DuckDB would fail with an I/O error that names no setting, and a folder made for it would hold a new, empty
    warehouse: a mistyped path would then load or report on nothing while the run looks fine. Only
    ``retail-etl generate`` (and the demo) make data/."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "duckdb" or database in ("", ":memory:") or database.startswith("md:"):
        return
    folder = Path(database).expanduser().absolute().parent
    if not folder.is_dir():
        raise ConfigError(f"the warehouse RETAIL_WAREHOUSE_URL={redact(url)}",
                          f"the folder {folder} of its DuckDB file does not exist",
                          "fix RETAIL_WAREHOUSE_URL, or create the folder for a new warehouse "
                          "(retail-etl generate makes data/)")


def ready_postgres(engine: sa.Engine, spec: TableSpec, table: sa.Table, conn: sa.Connection | None) -> None:
    """Create or alter the table when the catalogs say it needs it, one process at a time.

    Two first runs on an empty warehouse would otherwise both CREATE the same table: the second fails on the
    catalog's unique index (``pg_type_typname_nsp_index``) instead of waiting; two ``ADD COLUMN`` or ``CREATE
    INDEX IF NOT EXISTS`` collide the same way. A table that needs nothing takes no lock at all, so a run's
    first use of it never queues behind another run.

    Otherwise, in a transaction of its own (which commits the DDL before its locks are let go, and holds them
    for the DDL alone, not for the caller's load): an existing table's own lock first, waited for without
    holding anything another process needs, then ``DDL_LOCK``, then the catalogs are read again, and only what
    is still missing is done: the process that held the locks before has committed its part. Holding
    ``DDL_LOCK`` while waiting for a table that a run is loading would stop every other process's DDL, and a
    run whose load holds a table while it waits for its own DDL would never end.

    When the caller's transaction already holds a lock on the table, the DDL runs in it (another connection
    would wait for that lock forever), under the table's lock alone: ``DDL_LOCK`` held until the caller's load
    commits would stop every other process's DDL that long."""
    with engine.connect() if conn is None else nullcontext(conn) as look:
        steps = pending_ddl(look, spec, table)
        if not steps:
            return
        inside = conn is not None and holds_lock_on(conn, table.name)
    with nullcontext(conn) if inside else engine.begin() as ddl:
        if not isinstance(steps[0], sa.Table):
            ddl.exec_driver_sql(f"LOCK TABLE {ddl.dialect.identifier_preparer.quote(table.name)} "
                                f"IN {table_lock_mode(steps)} MODE")
        if not inside:
            lock_ddl(ddl)
        run_ddl(ddl, pending_ddl(ddl, spec, table))


def make_ready(engine: sa.Engine, spec: TableSpec, table: sa.Table, conn: sa.Connection | None) -> None:
    """Create ``table`` or give it what ``spec`` adds (``pending_ddl``), inside ``conn``'s transaction when given."""
    if engine.dialect.name == "postgresql":
        ready_postgres(engine, spec, table, conn)
    else:  # DuckDB admits one writing process, SQLite one writer: nothing to serialise between processes
        with engine.begin() if conn is None else nullcontext(conn) as ddl:
            run_ddl(ddl, pending_ddl(ddl, spec, table))
