"""Bulk loads: frames into a table through each engine's fast path (PostgreSQL ``COPY``, DuckDB Arrow ingestion,
``executemany`` elsewhere)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from retail_assets.schemas.base import TableSpec

_COPY_ROWS = 50_000  # rows per COPY write: a few MB, large enough to keep the server busy


def to_arrow(spec: TableSpec, df: pd.DataFrame) -> pa.Table:
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


def pg_column_types(conn: sa.Connection, oid: int | None) -> dict[str, str]:
    """PostgreSQL: ``format_type`` of each column of the relation ``oid`` (none when it does not exist)."""
    return dict(conn.execute(sa.text(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped"), {"oid": oid}).all())


def insert_rows(conn: sa.Connection, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
    """The portable path (SQLite): ``executemany`` of the frame's rows."""
    frame = spec.conform(df)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    conn.execute(table.insert(), records)


@contextmanager
def copy_frames(conn: sa.Connection, spec: TableSpec, table: sa.Table, schema: pa.Schema | None
                ) -> Iterator[Callable[[pd.DataFrame], int]]:
    """A COPY fed frame by frame, each encoded and sent a slice at a time: a queue thread ships one slice to the
    server while the next is being encoded, so no more than a few slices exist at once.

    In PostgreSQL's binary format when ``schema`` (``binary_copy_schema``) is given, since the server reads it
    with less work than CSV (bench/RESULTS.md); money is rounded to the cent before (``TableSpec.conform``) and
    cast to the column's NUMERIC by Arrow, which refuses what does not fit. Otherwise in CSV."""
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
        sql.SQL("binary" if schema is not None else "csv"),
    )
    raw = conn.connection.driver_connection
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
            for batch in to_arrow(spec, df).to_batches(max_chunksize=_COPY_ROWS):
                copy.write(encode(batch))
            return len(df)

        yield send
        if schema is not None:
            copy.write(encoder.finish())


def insert_duckdb(conn: sa.Connection, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
    """DuckDB: the frame inserted through Arrow, each column cast to the table's type."""
    raw = conn.connection.driver_connection
    quote = conn.dialect.identifier_preparer.quote
    compiler = conn.dialect.type_compiler_instance
    select_list = ", ".join(
        f"CAST({quote(c.name)} AS {compiler.process(c.type)})" for c in table.columns
    )
    column_list = ", ".join(quote(c.name) for c in table.columns)
    # DuckDB reads the Arrow table through its replacement scan of this frame's local variable. register() /
    # unregister() would do the same, but keep every registered table alive until the connection closes,
    # so a large day would hold all of its Arrow buffers at once.
    _retail_incoming = to_arrow(spec, df)  # noqa: F841 - read by name in the statement below
    raw.execute(f"INSERT INTO {quote(table.name)} ({column_list}) SELECT {select_list} FROM _retail_incoming")



@contextmanager
def one_behind(store: Callable[[pd.DataFrame], None]) -> Iterator[Callable[[pd.DataFrame], int]]:
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

