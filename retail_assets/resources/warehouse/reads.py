"""Reads: a table's rows as a frame typed by its model, through each engine's fast path (PostgreSQL
``COPY ... TO STDOUT``, DuckDB Arrow)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from retail_assets.schemas.base import TableSpec

Filter = Mapping[str, Any]


def where_clauses(table: sa.Table, where: Filter) -> list[sa.ColumnElement[bool]]:
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


def read_arrow(conn: sa.Connection, table: sa.Table, query: sa.Select, names: list[str]) -> pd.DataFrame:
    """The rows of ``query`` (``table``'s columns ``names``) as a frame, through Arrow: PostgreSQL streams them with
    ``COPY ... TO STDOUT`` and DuckDB hands over Arrow (fetching row objects through the driver is many times
    slower for a day of POS lines)."""
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


def typed(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
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
