"""The warehouse: the only code that knows SQL dialects.

Bulk loads go through each engine's fast path (PostgreSQL ``COPY``, DuckDB Arrow ingestion, ``executemany``
elsewhere). ``replace`` deletes a slice (a business day, say) and loads its new rows in the same transaction, so a
reader never sees half a day and a failure leaves the previous state. Identifiers come from the table specs and are
quoted by the dialect, never formatted from file names or configuration.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pydantic import PrivateAttr

from retail_assets.resources.urls import ConfigError, WarehouseBusy, WarehouseLocked, make_engine, redact
from retail_assets.schemas.base import TableSpec

Filter = Mapping[str, Any]
_MAX_SLICE_LOCKS = 1_000
_COPY_ROWS = 50_000  # rows of CSV per COPY write: a few MB, large enough to keep the server busy


def _where(table: sa.Table, where: Filter) -> list[sa.ColumnElement[bool]]:
    clauses = []
    for name, value in where.items():
        col = table.c[name]
        if value is None:
            clauses.append(col.is_(None))
        elif isinstance(value, list | tuple | set | frozenset):
            clauses.append(col.in_(list(value)))
        else:
            clauses.append(col == value)
    return clauses


def _arrow(spec: TableSpec, df: pd.DataFrame) -> pa.Table:
    """The frame as Arrow, dates as date32 and timestamps in microseconds (what every engine stores)."""
    frame = spec.conform(df)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dates = set(spec.date_columns())
    fields = []
    for f in table.schema:
        if f.name in dates:
            fields.append(pa.field(f.name, pa.date32()))
        elif pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.timestamp("us")))
        elif pa.types.is_null(f.type):
            fields.append(pa.field(f.name, pa.string()))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields), safe=False)


_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_BINARY_TYPES = {
    "bigint": pa.int64(), "integer": pa.int32(), "smallint": pa.int16(), "double precision": pa.float64(),
    "real": pa.float32(), "text": pa.large_string(), "character varying": pa.large_string(), "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"), "boolean": pa.bool_(),
}


def binary_copy_schema(columns: Sequence[str], types: Mapping[str, str]) -> pa.Schema | None:
    """The Arrow schema whose PostgreSQL binary ``COPY`` encoding (pgpq's) is exactly the wire format of the table's
    columns as the database has them (``types``: ``format_type`` of each column), or None when a column has a type
    this does not map (``COPY`` in CSV then, which the server converts itself)."""
    fields = []
    for name in columns:
        sql = types.get(name, "")
        numeric = _NUMERIC.fullmatch(sql.replace(" ", ""))
        if numeric:
            arrow = pa.decimal128(int(numeric[1]), int(numeric[2]))
        else:
            arrow = _BINARY_TYPES.get(re.sub(r"\(\d+\)$", "", sql))
        if arrow is None:
            return None
        fields.append(pa.field(name, arrow))
    return pa.schema(fields)


def partition_index(spec: TableSpec, dialect: sa.Dialect) -> tuple[str, str] | None:
    """(name, ``CREATE INDEX``) of the index a table partitioned by day needs on PostgreSQL, or None.

    Every load, check and mart of a day selects, deletes or reads its slice by the partition column; without an
    index each of those is a scan of the table's whole history, and a day's load grows with the days before it
    (past what the server can cache, every scan goes to disk). The B-tree is not free, but it costs less than the
    scans of the history after a few days (measured in bench/README.md, "Where the time goes").
    DuckDB keeps min/max zone maps for every row group, which skip the other days without an index (and an ART index
    would slow its bulk inserts and deletes); SQLite holds the embedded demo's few days."""
    if dialect.name != "postgresql" or not spec.partition_column:
        return None
    quote = dialect.identifier_preparer.quote
    name = f"{spec.name}_{spec.partition_column}_idx"
    return name, f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(spec.name)} ({quote(spec.partition_column)})"


def _lock_key(*parts: object) -> int:
    """A signed 64-bit advisory lock key for a table or one (table, column, value)."""
    text = "\x00".join(str(pd.Timestamp(p).isoformat()) if isinstance(p, date | datetime) else repr(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


# The one advisory lock under which every process creates or alters warehouse tables (see Warehouse.table).
DDL_LOCK = _lock_key("warehouse DDL")


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
        oid = _pg_relation(conn, table.name)
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
    if index and _pg_relation(conn, index[0]) is None:
        steps.append(index[1])
    return steps


def _pg_relation(conn: sa.Connection, name: str) -> int | None:
    """The oid of the table or index ``name`` in the current schema, or None.

    Read from pg_class with the statement's snapshot, not through ``to_regclass``: the server's cache of names
    can still miss a table another process created while this one waited for ``DDL_LOCK`` (waiting for an
    advisory lock does not refresh it), and the table would be created twice."""
    return conn.execute(sa.text("SELECT oid FROM pg_class WHERE relname = :name "
                                "AND relnamespace = current_schema()::regnamespace"), {"name": name}).scalar()


def _run_ddl(conn: sa.Connection, steps: Sequence[sa.Table | str]) -> None:
    for step in steps:
        if isinstance(step, sa.Table):
            step.create(conn)
        else:
            conn.exec_driver_sql(step)


def _holds_lock_on(conn: sa.Connection, table: str) -> bool:
    """Whether the transaction of ``conn`` (PostgreSQL) holds a lock on ``table``."""
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() "
                                     "AND granted AND relation = :oid)"), {"oid": _pg_relation(conn, table)}).scalar())


def _table_lock_mode(steps: Sequence[sa.Table | str]) -> str:
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


def slice_locks(table: str, where: Filter) -> list[tuple[bool, int]]:
    """The advisory locks (shared?, key) a delete of the slice ``where`` of ``table`` takes, in a fixed order.

    A slice locks the table shared and itself exclusively: one key per combination of its columns' values (a list,
    such as a backfill's days, gives one per value), so two deletes of the same day wait for each other whether
    they name it alone or in a list, while other days (and other assets' rejections) go on in parallel. A
    whole-table delete, or a slice of more than ``_MAX_SLICE_LOCKS`` combinations, locks the table exclusively.
    Slices that can be replaced at the same time are described by the same columns everywhere in the platform (a
    business_date, with the asset or kind that tells them apart in a shared table)."""
    columns = sorted(where)
    values = [sorted(set(v), key=repr) if isinstance(v, list | tuple | set | frozenset) else [v]
              for v in (where[c] for c in columns)]
    if not where or math.prod(len(v) for v in values) > _MAX_SLICE_LOCKS:
        return [(False, _lock_key(table))]
    keys = {_lock_key(table, *(x for pair in zip(columns, combo, strict=True) for x in pair))
            for combo in itertools.product(*values)}
    return [(True, _lock_key(table)), *((False, key) for key in sorted(keys))]


class WarehouseTx:
    """Operations inside one warehouse transaction."""

    def __init__(self, warehouse: Warehouse, conn: sa.Connection):
        self._wh = warehouse
        self.conn = conn

    def lock(self, spec: TableSpec, where: Filter) -> None:
        """Lock the slice ``where`` describes until the transaction ends (PostgreSQL; ``slice_locks``): another
        transaction replacing the same slice waits, then replaces this one's rows; without it, READ COMMITTED lets
        its DELETE miss the rows this one inserted, and the slice doubles."""
        if self.conn.dialect.name == "postgresql":
            for shared, key in slice_locks(spec.name, where):
                function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
                self.conn.execute(sa.text(f"SELECT {function}(:key)"), {"key": key})

    def delete(self, spec: TableSpec, where: Filter, *also: sa.ColumnElement[bool]) -> int:
        """Delete the slice ``where`` describes (locked first, see ``lock``), or only its rows that also meet
        ``also`` (conditions on ``Warehouse.table(spec)``'s columns): part of a slice is replaced under the slice's
        lock, like the whole of it."""
        table = self._wh.table(spec, self.conn)
        self.lock(spec, where)
        return self.conn.execute(sa.delete(table).where(*_where(table, where), *also)).rowcount

    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        if df.empty:
            return 0
        table = self._wh.table(spec, self.conn)
        backend = self.conn.dialect.name
        if backend == "postgresql":
            self._copy_postgres(spec, table, df)
        elif backend == "duckdb":
            self._insert_duckdb(spec, table, df)
        else:
            frame = spec.conform(df)
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            self.conn.execute(table.insert(), records)
        return len(df)

    def replace(self, spec: TableSpec, df: pd.DataFrame, where: Filter) -> int:
        """Delete the slice ``where`` describes and load ``df`` in its place, inside this transaction."""
        self.delete(spec, where)
        return self.append(spec, df)

    @contextmanager
    def appender(self, spec: TableSpec) -> Iterator[Callable[[pd.DataFrame], int]]:
        """``append`` for many frames that make one load, e.g. a business day file by file: only one frame need be
        in memory at a time. The database stores one frame while the caller prepares the next: on PostgreSQL one
        ``COPY`` stays open across the frames, on DuckDB each frame is inserted by a background thread (DuckDB lets
        go of the GIL while it works). The connection can run nothing else until the block ends, so delete first
        and use one appender at a time. Either way a background thread turns the frame into what the database
        reads (Arrow; PostgreSQL's binary format or CSV for ``COPY``) while the caller prepares the next one."""
        table = self._wh.table(spec, self.conn)
        if self.conn.dialect.name == "postgresql":
            with self._copy(spec, table) as copy, _one_behind(copy) as send:
                yield send
        elif self.conn.dialect.name == "duckdb":
            with _one_behind(lambda df: self._insert_duckdb(spec, table, df)) as send:
                yield send
        else:
            yield lambda df: self.append(spec, df)

    def _copy_postgres(self, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
        with self._copy(spec, table) as send:
            send(df)

    @contextmanager
    def _copy(self, spec: TableSpec, table: sa.Table) -> Iterator[Callable[[pd.DataFrame], int]]:
        """A COPY fed frame by frame, each encoded and sent a slice at a time: a queue thread ships one slice to the
        server while the next is being encoded, so no more than a few slices exist at once.

        In PostgreSQL's binary format when every column's type maps to Arrow (``binary_copy_schema``): the server
        reads it ~1.7x faster than CSV (a million raw POS lines: 2.1 s -> 1.25 s). Money is rounded to the cent
        before (``TableSpec.conform``) and cast to the column's NUMERIC by Arrow, which refuses what does not fit;
        otherwise in CSV."""
        from psycopg import sql
        from psycopg.copy import QueuedLibpqWriter

        schema = self._wh.copy_schema(spec, self.conn)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
            sql.SQL("binary" if schema is not None else "csv"),
        )
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
            if schema is not None:
                from pgpq import ArrowToPostgresBinaryEncoder

                encoder = ArrowToPostgresBinaryEncoder(schema)
                copy.write(encoder.write_header())

                def encode(batch: pa.RecordBatch) -> bytes:
                    return encoder.write_batch(batch.cast(schema))
            else:
                options = pacsv.WriteOptions(include_header=False, quoting_style="needed")  # "" stays apart from NULL

                def encode(batch: pa.RecordBatch) -> memoryview:
                    buf = io.BytesIO()
                    pacsv.write_csv(batch, buf, options)
                    return buf.getbuffer()

            def send(df: pd.DataFrame) -> int:
                if df.empty:
                    return 0
                for batch in _arrow(spec, df).to_batches(max_chunksize=_COPY_ROWS):
                    copy.write(encode(batch))
                return len(df)

            yield send
            if schema is not None:
                copy.write(encoder.finish())

    def _insert_duckdb(self, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
        raw = self.conn.connection.driver_connection
        quote = self.conn.dialect.identifier_preparer.quote
        compiler = self.conn.dialect.type_compiler_instance
        select_list = ", ".join(
            f"CAST({quote(c.name)} AS {compiler.process(c.type)})" for c in table.columns
        )
        column_list = ", ".join(quote(c.name) for c in table.columns)
        # DuckDB reads the Arrow table through its replacement scan of this frame's local variable. register() /
        # unregister() would do the same, but keep every registered table alive until the connection closes,
        # so a large day would hold all of its Arrow buffers at once.
        _retail_incoming = _arrow(spec, df)  # noqa: F841 - read by name in the statement below
        raw.execute(f"INSERT INTO {quote(table.name)} ({column_list}) SELECT {select_list} FROM _retail_incoming")


@contextmanager
def _one_behind(store: Callable[[pd.DataFrame], None]) -> Iterator[Callable[[pd.DataFrame], int]]:
    """``send(frame)`` that hands the frame to ``store`` on a worker thread and returns at once, after waiting for
    the previous frame: at most one frame is being stored while the caller prepares the next. Leaving the block
    waits for the last one; an error of ``store`` is raised by the next ``send`` or by leaving the block."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-append")
    pending: list[Future] = []

    def wait() -> None:
        while pending:
            pending.pop().result()

    def send(df: pd.DataFrame) -> int:
        wait()
        if not df.empty:
            pending.append(pool.submit(store, df))
        return len(df)

    try:
        yield send
    finally:
        try:
            wait()
        finally:
            pool.shutdown(wait=True)


class Warehouse(dg.ConfigurableResource):
    """The star-schema warehouse: any SQLAlchemy URL (DuckDB file by default, PostgreSQL in production)."""

    url: str

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _metadata: sa.MetaData | None = PrivateAttr(default=None)
    _ready: set[str] = PrivateAttr(default_factory=set)
    _copy_schemas: dict[str, pa.Schema | None] = PrivateAttr(default_factory=dict)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            check_duckdb_folder(self.url)
            self._engine = make_engine(self.url)
            self._metadata = sa.MetaData()
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def single_process(self) -> bool:
        """Whether one process at a time may open the warehouse (an embedded DuckDB file): a sensor then keeps away
        while a run executes, and lets the file go as soon as it has read."""
        return self.dialect == "duckdb"

    @contextmanager
    def brief_read(self) -> Iterator[None]:
        """A reader that must not hold the warehouse (a sensor's tick): a file lock a run took meanwhile raises
        ``WarehouseBusy``, and a single-process warehouse is let go at once afterwards."""
        try:
            yield
        except (sa.exc.DBAPIError, WarehouseLocked) as exc:
            if self.single_process and "lock" in str(exc).lower():
                raise WarehouseBusy(str(exc)) from None
            raise
        finally:
            if self.single_process:
                self.dispose()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.dispose()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._ready = set()
            self._copy_schemas = {}

    def table(self, spec: TableSpec, conn: sa.Connection | None = None) -> sa.Table:
        """The table for ``spec``, created (or given its missing columns) on first use.

        Inside a transaction pass its connection: DDL from another connection would be invisible to a DuckDB
        transaction that began before it. On PostgreSQL the DDL has a transaction of its own (``_ready_postgres``).
        """
        engine = self.engine
        assert self._metadata is not None
        table = self._metadata.tables.get(spec.name)
        if table is None:
            table = spec.sql_table(self._metadata)
        if spec.name not in self._ready:
            if engine.dialect.name == "postgresql":
                self._ready_postgres(spec, table, conn)
            else:  # DuckDB admits one writing process, SQLite one writer: nothing to serialise between processes
                with engine.begin() if conn is None else nullcontext(conn) as ddl:
                    _run_ddl(ddl, pending_ddl(ddl, spec, table))
            self._ready.add(spec.name)
        return table

    def _ready_postgres(self, spec: TableSpec, table: sa.Table, conn: sa.Connection | None) -> None:
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
        with self.engine.connect() if conn is None else nullcontext(conn) as look:
            steps = pending_ddl(look, spec, table)
            if not steps:
                return
            inside = conn is not None and _holds_lock_on(conn, table.name)
        with nullcontext(conn) if inside else self.engine.begin() as ddl:
            if not isinstance(steps[0], sa.Table):
                ddl.exec_driver_sql(f"LOCK TABLE {ddl.dialect.identifier_preparer.quote(table.name)} "
                                    f"IN {_table_lock_mode(steps)} MODE")
            if not inside:
                ddl.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK})
            _run_ddl(ddl, pending_ddl(ddl, spec, table))

    def copy_schema(self, spec: TableSpec, conn: sa.Connection) -> pa.Schema | None:
        """PostgreSQL: ``binary_copy_schema`` of the table as the database has it (looked up once a process)."""
        if spec.name not in self._copy_schemas:
            types = dict(conn.execute(sa.text(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped"),
                {"oid": _pg_relation(conn, spec.name)}).all())
            self._copy_schemas[spec.name] = binary_copy_schema(spec.columns, types)
        return self._copy_schemas[spec.name]

    def ensure(self, specs: Sequence[TableSpec]) -> None:
        for spec in specs:
            self.table(spec)

    @contextmanager
    def transaction(self) -> Iterator[WarehouseTx]:
        """One transaction: everything inside commits together or not at all."""
        with self.engine.begin() as conn:
            yield WarehouseTx(self, conn)

    def replace(self, spec: TableSpec, df: pd.DataFrame, where: Filter) -> int:
        with self.transaction() as tx:
            return tx.replace(spec, df, where)

    def read(self, spec: TableSpec, where: Filter | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of a table as a frame typed by its model (money as float, dates as datetime64).

        PostgreSQL streams the rows with ``COPY ... TO STDOUT`` and DuckDB hands over Arrow: a day of a million
        lines reads in seconds, where fetching row objects through the driver takes a minute.
        """
        table = self.table(spec)
        names = list(columns or spec.columns)
        query = sa.select(*(table.c[c] for c in names)).where(*_where(table, where or {}))
        fast = self.dialect in ("postgresql", "duckdb")
        return _typed(spec, self._read_arrow(table, query, names) if fast else self.query(query))

    def _read_arrow(self, table: sa.Table, query: sa.Select, names: list[str]) -> pd.DataFrame:
        with self.engine.connect() as conn:
            # The statement is compiled by SQLAlchemy from the table spec; the filter values are our own dates,
            # numbers and codes, rendered as literals by the dialect's own quoting.
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            raw = conn.connection.driver_connection
            if conn.dialect.name == "duckdb":
                arrow = raw.sql(sql).to_arrow_table()
            else:
                buf = io.BytesIO()
                with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
                    for block in copy:
                        buf.write(block)
                types = {name: _ARROW_TYPES.get(type(table.c[name].type), pa.string()) for name in names}
                arrow = pacsv.read_csv(
                    io.BytesIO(buf.getvalue()),
                    convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                         true_values=["t"], false_values=["f"],
                                                         quoted_strings_can_be_null=False),
                ) if buf.tell() else pa.table({n: pa.array([], type=types[n]) for n in names})
        for i, f in enumerate(arrow.schema):
            if pa.types.is_decimal(f.type):  # Arrow's decimal -> double cast is off in the last bit (-39.98 gives
                # -39.980000000000004); numpy's rounding to the scale (x * 100, rint, / 100) gives the double
                # nearest the decimal, as parsing its text does
                money = pa.array(np.round(pc.cast(arrow.column(i), pa.float64()).to_numpy(), f.type.scale),
                                 mask=pc.is_null(arrow.column(i)).to_numpy())
                arrow = arrow.set_column(i, pa.field(f.name, pa.float64()), money)
        return arrow.to_pandas(date_as_object=False, types_mapper={pa.string(): pd.StringDtype()}.get)

    def query(self, query: sa.Executable | str, **params: Any) -> pd.DataFrame:
        """Any query as a frame; a string is a SQL text with :named parameters."""
        statement = sa.text(query) if isinstance(query, str) else query
        with self.engine.connect() as conn:
            result = conn.execute(statement, params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def scalar(self, query: sa.Executable | str, **params: Any) -> Any:
        statement = sa.text(query) if isinstance(query, str) else query
        with self.engine.connect() as conn:
            return conn.execute(statement, params).scalar()


_ARROW_TYPES: dict[type, pa.DataType] = {
    sa.BigInteger: pa.int64(),
    sa.Numeric: pa.float64(),
    sa.Double: pa.float64(),
    sa.Float: pa.float64(),
    sa.Boolean: pa.bool_(),
    sa.Date: pa.date32(),
    sa.DateTime: pa.timestamp("us"),
    sa.Text: pa.string(),
}


def _typed(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    columns = spec.schema.columns
    for name in frame.columns:
        col = columns.get(name)
        if col is None:
            continue
        kind = str(col.dtype).lower()
        if name in spec.money_columns() or "float" in kind:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif "datetime" in kind:
            frame[name] = pd.to_datetime(frame[name])
        elif kind == "int64" and not col.nullable:
            frame[name] = pd.to_numeric(frame[name]).astype("int64")
        elif "int" in kind:
            frame[name] = pd.array(frame[name], dtype="Int64")
        elif "bool" in kind:
            frame[name] = frame[name].astype("boolean") if col.nullable else frame[name].astype(bool)
        else:
            frame[name] = frame[name].astype("string")
    return frame
