"""What the marts share: portable SQL pieces and the "rebuild a slice inside the warehouse" step.

Every mart is one ``INSERT INTO mart (...) SELECT ... FROM <star schema>`` that runs unchanged on DuckDB and
PostgreSQL. The few places where the two engines differ are handled here, without dialect branches:

- Dividing a DECIMAL gives a DOUBLE on DuckDB but an exact NUMERIC on PostgreSQL, and PostgreSQL has no
  ``ROUND(double, 2)``; ``money_ratio`` divides in whole numbers so both round an average half-up to the cent.
- Ratios are computed as ``CAST(.. AS DOUBLE PRECISION)`` divisions, which are IEEE doubles on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retail_assets.resources import Warehouse
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.warehouse import (
    DIM_CUSTOMER,
    DIM_DATE,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_INVENTORY,
    FACT_SALES,
)

STAR_SCHEMA: tuple[TableSpec, ...] = (DIM_DATE, DIM_STORE, DIM_PRODUCT, DIM_CUSTOMER, FACT_SALES, FACT_INVENTORY)


def money_ratio(numerator: str, denominator: str) -> str:
    """SQL for ``numerator / denominator`` rounded half away from zero to the cent; NULL when the denominator <= 0.

    ``numerator`` is a money (NUMERIC(.., 2)) expression and ``denominator`` a positive count. The quotient is
    taken in half-cents, ``FLOOR((2 * |cents| + d) / (2 * d))``, which is exact on both engines for any amount
    below 2^53 cents, and turned back into a NUMERIC with two decimals by multiplying, never dividing.
    """
    n, d = numerator, denominator
    return (f"CASE WHEN {d} > 0 THEN CAST(SIGN({n}) * FLOOR((ABS({n}) * 200 + {d}) / (2 * {d})) AS NUMERIC(18, 0))"
            f" * CAST(0.01 AS NUMERIC(3, 2)) END")


def ratio(numerator: str, denominator: str) -> str:
    """SQL for ``numerator / denominator`` as a double; NULL when the denominator is not positive."""
    return (f"CASE WHEN {denominator} > 0 THEN CAST({numerator} AS DOUBLE PRECISION) / "
            f"CAST({denominator} AS DOUBLE PRECISION) END")


def insert_select(spec: TableSpec, select_sql: str) -> sa.TextClause:
    """``INSERT INTO <mart> (<columns>) SELECT <columns> FROM (<select_sql>)``: columns matched by name, not place."""
    columns = ", ".join(spec.columns)
    return sa.text(f"INSERT INTO {spec.name} ({columns}) SELECT {columns} FROM ({select_sql}) AS mart_rows")


def rebuild(warehouse: Warehouse, spec: TableSpec, select_sql: str, where: Mapping[str, Any],
            params: Mapping[str, Any]) -> pd.DataFrame:
    """Replace the slice ``where`` of the mart by the rows of ``select_sql``, in one transaction; the new rows.

    An empty ``where`` is a full rebuild. The star-schema tables are created empty when missing, so a mart built
    before its upstream has ever run is empty rather than an error. Readers see the old slice or the new one,
    never a mixture; a failure leaves the old one.
    """
    warehouse.ensure([*STAR_SCHEMA, spec])
    with warehouse.transaction() as tx:
        tx.delete(spec, where)
        tx.conn.execute(insert_select(spec, select_sql), dict(params))
    return warehouse.read(spec, where or None)


def first_sales_date(warehouse: Warehouse) -> date | None:
    """The first business date in fact_sales: where the sales history begins."""
    warehouse.ensure([FACT_SALES])
    value = warehouse.scalar("SELECT MIN(business_date) FROM fact_sales")
    return pd.Timestamp(value).date() if value is not None else None


def sort(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    return frame.sort_values(list(keys), ignore_index=True, na_position="last")
