"""Operations inside one warehouse transaction: slices replaced under their locks, frames appended through the
engine's fast path, and what a statement run by the caller needs of the engine it runs on."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa

from retail_assets.resources.warehouse.bulk import copy_frames, insert_duckdb, insert_rows, one_behind
from retail_assets.resources.warehouse.locks import lock_slice
from retail_assets.resources.warehouse.reads import Filter, where_clauses
from retail_assets.schemas.base import TableSpec

if TYPE_CHECKING:
    from retail_assets.resources.warehouse.resource import Warehouse

# The engines the statements written in SQL files (facts, marts) are written for: both accept the same text.
STATEMENT_ENGINES = ("postgresql", "duckdb")


class WarehouseTx:
    """Operations inside one warehouse transaction."""

    def __init__(self, warehouse: Warehouse, conn: sa.Connection):
        self._wh = warehouse
        self.conn = conn

    @property
    def _engine(self) -> str:
        return self.conn.dialect.name

    def quote(self, name: str) -> str:
        """``name`` (a table or column of the specs) quoted as this engine quotes identifiers."""
        return self.conn.dialect.identifier_preparer.quote(name)

    def lock(self, spec: TableSpec, where: Filter) -> None:
        """Lock the slice ``where`` describes until the transaction ends (PostgreSQL; ``slice_locks``): another
        transaction replacing the same slice waits, then replaces this one's rows; without it, READ COMMITTED lets
        its DELETE miss the rows this one inserted, and the slice doubles."""
        if self._engine == "postgresql":
            lock_slice(self.conn, spec.name, where)

    def delete(self, spec: TableSpec, where: Filter, *also: sa.ColumnElement[bool]) -> int:
        """Delete the slice ``where`` describes (locked first, see ``lock``), or only its rows that also meet
        ``also`` (conditions on ``Warehouse.table(spec)``'s columns): part of a slice is replaced under the slice's
        lock, like the whole of it."""
        table = self._wh.table(spec, self.conn)
        self.lock(spec, where)
        return self.conn.execute(sa.delete(table).where(*where_clauses(table, where), *also)).rowcount

    def append(self, spec: TableSpec, df: pd.DataFrame) -> int:
        if df.empty:
            return 0
        table = self._wh.table(spec, self.conn)
        if self._engine == "postgresql":
            with copy_frames(self.conn, spec, table, self._wh.copy_schema(spec, self.conn)) as send:
                send(df)
        elif self._engine == "duckdb":
            insert_duckdb(self.conn, spec, table, df)
        else:
            insert_rows(self.conn, spec, table, df)
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
        if self._engine == "postgresql":
            with copy_frames(self.conn, spec, table, self._wh.copy_schema(spec, self.conn)) as copy, \
                    one_behind(copy) as send:
                yield send
        elif self._engine == "duckdb":
            with one_behind(lambda df: insert_duckdb(self.conn, spec, table, df)) as send:
                yield send
        else:
            yield lambda df: self.append(spec, df)

    # ------------------------------------------------------------------ for statements the caller runs itself

    def ensure(self, *specs: TableSpec) -> None:
        """The tables a statement reads, created empty where missing (``Warehouse.table``)."""
        for spec in specs:
            self._wh.table(spec, self.conn)

    @contextmanager
    def staged(self, spec: TableSpec, df: pd.DataFrame) -> Iterator[sa.Table]:
        """``df`` as the temporary table ``spec.name`` for the statements run inside the block, which read it by
        name; dropped when the block ends (and with the transaction if it fails: the DDL is transactional on both
        engines). How a statement reads what only Python can compute, without formatting values into its text."""
        columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in spec.sql_table(sa.MetaData()).columns]
        table = sa.Table(spec.name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
        table.create(self.conn)
        if not df.empty:
            if self._engine == "postgresql":
                with copy_frames(self.conn, spec, table, None) as send:
                    send(df)
            elif self._engine == "duckdb":
                insert_duckdb(self.conn, spec, table, df)
            else:
                insert_rows(self.conn, spec, table, df)
        yield table
        table.drop(self.conn)

    def analyze(self, *tables: tuple[TableSpec, Sequence[str]]) -> None:
        """Fresh planner statistics for each (table, columns to sample; none for all), taken from rows this
        transaction may just have written.

        PostgreSQL: one ``ANALYZE`` of a sample of 3,000 rows a table (statistics target 10, for the rest of the
        transaction): the row counts and key spreads a plan needs, at a fraction of the default's cost; ANALYZE
        also counts the transaction's own rows. A planner that has not seen a table loaded minutes ago guesses it
        empty and picks plans that spill to disk. DuckDB plans from the data itself: nothing to do."""
        if self._engine != "postgresql" or not tables:
            return
        q = self.quote
        targets = [q(spec.name) + (f" ({', '.join(q(c) for c in columns)})" if columns else "")
                   for spec, columns in tables]
        self.conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
        self.conn.exec_driver_sql("ANALYZE " + ", ".join(targets))

    def prepare_statement(self, what: str, *inputs: tuple[TableSpec, Sequence[str]]) -> None:
        """Ready the transaction for one large statement (``what``, for the error) reading ``inputs``: fresh
        statistics (``analyze``) and, on PostgreSQL, a plan that hashes the small tables in memory: without merge
        joins, which the planner picks when a join key comes through a ``UNION`` (the two channels of the day's
        lines) whose statistics it cannot see, and then sorts every line of the day to merge them; without
        compiling the expressions first (JIT costs more than it saves on a statement run once). Raises
        NotImplementedError on an engine the statements are not written for."""
        if self._engine not in STATEMENT_ENGINES:
            raise NotImplementedError(f"{what} is built inside the warehouse, which must be PostgreSQL or DuckDB, "
                                      f"not {self._engine}")
        self.analyze(*inputs)
        if self._engine == "postgresql":
            self.conn.exec_driver_sql("SET LOCAL jit = off")
            self.conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            self.conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
