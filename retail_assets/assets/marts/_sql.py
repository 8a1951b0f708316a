"""What the marts share: the "rebuild a slice inside the warehouse" step.

Every mart is one ``INSERT INTO mart (...) SELECT ... FROM <star schema>`` whose ``SELECT`` is a ``.sql`` file
beside its asset, written once for DuckDB and PostgreSQL. The places where the two engines differ are fragments
beside them that every mart includes: ``money_ratio.sql`` (an average half-up to the cent, exact on both) and
``ratio.sql`` (an IEEE double on both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import WarehouseTx
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


def insert_select(tx: WarehouseTx, spec: TableSpec, select_sql: str) -> sa.TextClause:
    """``INSERT INTO <mart> (<columns>) SELECT <columns> FROM (<select_sql>)``: columns matched by name, not place
    (names from the spec, quoted by the warehouse's dialect)."""
    columns = ", ".join(tx.quote(c) for c in spec.columns)
    return sa.text(f"INSERT INTO {tx.quote(spec.name)} ({columns}) SELECT {columns} FROM ({select_sql}) AS mart_rows")


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
        tx.conn.execute(insert_select(tx, spec, select_sql), dict(params))
    return warehouse.read(spec, where or None)


def first_sales_date(warehouse: Warehouse) -> date | None:
    """The first business date in fact_sales: where the sales history begins."""
    warehouse.ensure([FACT_SALES])
    value = warehouse.scalar("SELECT MIN(business_date) FROM fact_sales")
    return pd.Timestamp(value).date() if value is not None else None


def sort(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    return frame.sort_values(list(keys), ignore_index=True, na_position="last")
