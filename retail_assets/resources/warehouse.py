"""The warehouse: the only code that knows SQL dialects.

Bulk loads go through each engine's fast path (PostgreSQL ``COPY``, DuckDB Arrow ingestion, ``executemany``
elsewhere). ``replace`` deletes a slice (a business day, say) and loads its new rows in the same transaction, so a
reader never sees half a day and a failure leaves the previous state. Identifiers come from the table specs and are
quoted by the dialect, never formatted from file names or configuration.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pydantic import PrivateAttr

from retail_assets.resources.urls import make_engine, redact
from retail_assets.schemas.base import TableSpec

Filter = Mapping[str, Any]


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


class WarehouseTx:
    """Operations inside one warehouse transaction."""

    def __init__(self, warehouse: Warehouse, conn: sa.Connection):
        self._wh = warehouse
        self.conn = conn

    def delete(self, spec: TableSpec, where: Filter) -> int:
        table = self._wh.table(spec, self.conn)
        return self.conn.execute(sa.delete(table).where(*_where(table, where))).rowcount

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
            records = spec.conform(df).astype(object).where(spec.conform(df).notna(), None).to_dict("records")
            self.conn.execute(table.insert(), records)
        return len(df)

    def replace(self, spec: TableSpec, df: pd.DataFrame, where: Filter) -> int:
        """Delete the slice ``where`` describes and load ``df`` in its place, inside this transaction."""
        self.delete(spec, where)
        return self.append(spec, df)

    def _copy_postgres(self, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
        from psycopg import sql

        buf = io.BytesIO()
        pacsv.write_csv(_arrow(spec, df), buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns)
        )
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(statement) as copy:
            view = buf.getbuffer()
            step = 1 << 20
            for start in range(0, len(view), step):
                copy.write(view[start : start + step])

    def _insert_duckdb(self, spec: TableSpec, table: sa.Table, df: pd.DataFrame) -> None:
        raw = self.conn.connection.driver_connection
        quote = self.conn.dialect.identifier_preparer.quote
        compiler = self.conn.dialect.type_compiler_instance
        select_list = ", ".join(
            f"CAST({quote(c.name)} AS {compiler.process(c.type)})" for c in table.columns
        )
        column_list = ", ".join(quote(c.name) for c in table.columns)
        raw.register("_retail_incoming", _arrow(spec, df))
        try:
            raw.execute(f"INSERT INTO {quote(table.name)} ({column_list}) SELECT {select_list} FROM _retail_incoming")
        finally:
            raw.unregister("_retail_incoming")


class Warehouse(dg.ConfigurableResource):
    """The star-schema warehouse: any SQLAlchemy URL (DuckDB file by default, PostgreSQL in production)."""

    url: str

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _metadata: sa.MetaData | None = PrivateAttr(default=None)
    _ready: set[str] = PrivateAttr(default_factory=set)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
            self._metadata = sa.MetaData()
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.dispose()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._ready = set()

    def table(self, spec: TableSpec, conn: sa.Connection | None = None) -> sa.Table:
        """The table for ``spec``, created (or given its missing columns) on first use.

        Inside a transaction pass its connection: DDL from another connection would be invisible to a DuckDB
        transaction that began before it.
        """
        engine = self.engine
        assert self._metadata is not None
        table = self._metadata.tables.get(spec.name)
        if table is None:
            table = spec.sql_table(self._metadata)
        if spec.name not in self._ready:
            with engine.begin() if conn is None else nullcontext(conn) as conn:
                table.create(conn, checkfirst=True)
                preparer = conn.dialect.identifier_preparer
                # duckdb-engine's reflection does not work with SQLAlchemy 2.1; an empty select works everywhere
                existing = set(conn.exec_driver_sql(f"SELECT * FROM {preparer.quote(table.name)} WHERE 1 = 0").keys())
                for col in table.columns:
                    if col.name not in existing:
                        conn.exec_driver_sql(
                            f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(col.name)} "
                            f"{col.type.compile(dialect=conn.dialect)}"
                        )
            self._ready.add(spec.name)
        return table

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
        """Rows of a table as a frame typed by its model (money as float, dates as datetime64)."""
        table = self.table(spec)
        cols = [table.c[c] for c in (columns or spec.columns)]
        query = sa.select(*cols).where(*_where(table, where or {}))
        frame = self.query(query)
        return _typed(spec, frame)

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
