"""The ``Warehouse`` resource: the engine, the tables made ready on first use, transactions and reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pydantic import PrivateAttr

from retail_assets.resources.urls import WarehouseBusy, WarehouseLocked, make_engine, redact
from retail_assets.resources.warehouse.bulk import binary_copy_schema, pg_column_types
from retail_assets.resources.warehouse.ddl import check_duckdb_folder, make_ready, pg_relation
from retail_assets.resources.warehouse.reads import Filter, read_arrow, typed, where_clauses
from retail_assets.resources.warehouse.transaction import WarehouseTx
from retail_assets.schemas.base import TableSpec


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
        transaction that began before it. On PostgreSQL the DDL has a transaction of its own (``ready_postgres``).
        """
        engine = self.engine
        assert self._metadata is not None
        table = self._metadata.tables.get(spec.name)
        if table is None:
            table = spec.sql_table(self._metadata)
        if spec.name not in self._ready:
            make_ready(engine, spec, table, conn)
            self._ready.add(spec.name)
        return table

    def copy_schema(self, spec: TableSpec, conn: sa.Connection) -> pa.Schema | None:
        """PostgreSQL: ``binary_copy_schema`` of the table as the database has it (looked up once a process)."""
        if spec.name not in self._copy_schemas:
            types = pg_column_types(conn, pg_relation(conn, spec.name))
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

        PostgreSQL streams the rows with ``COPY ... TO STDOUT`` and DuckDB hands over Arrow (``read_arrow``).
        """
        table = self.table(spec)
        names = list(columns or spec.columns)
        query = sa.select(*(table.c[c] for c in names)).where(*where_clauses(table, where or {}))
        if self.dialect not in ("postgresql", "duckdb"):
            return typed(spec, self.query(query))
        with self.engine.connect() as conn:
            return typed(spec, read_arrow(conn, table, query, names))

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

