"""``mart_product_performance``: units, revenue, margin and category rank per product and ISO week."""

import inspect

import dagster as dg
import pandas as pd

from retail_assets.assets.common import MARTS_GROUP, OWNERS, describe, preview, table_metadata, validated
from retail_assets.assets.marts._sql import rebuild, sort
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import schema_check_spec
from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import sql_file
from retail_assets.schemas.marts import MART_PRODUCT_PERFORMANCE

_SELECT = sql_file(__file__, "product_performance.sql")


def build_mart_product_performance(warehouse: Warehouse) -> pd.DataFrame:
    """Every product's week, rebuilt in full from ``fact_sales`` and ``dim_product``.

    Business rules:

    - A product is its catalog identity (``sku_norm``, the business key of ``dim_product``), shown with the
      attributes of its current version: a renamed or recategorised product keeps one history, and every week
      is ranked by today's categories. Lines of SKUs missing from the catalog form one product ``UNKNOWN``.
    - Weeks are ISO weeks (Monday to Sunday) of the business date.
    - ``net_revenue`` = net amount of all lines, returns included; ``units`` = net units.
    - ``cost`` = sum of ``quantity * unit_cost`` of the product version valid when each line was sold (the
      ``product_key`` on the fact), so a cost change applies from the day it happened; a return gives its cost
      back. ``margin`` = ``net_revenue - cost``. When a line's cost is unknown the week's cost and margin are NULL
      rather than overstated.
    - ``category_rank`` = rank by ``net_revenue`` among the products of the same current category in the week,
      1 = best, equal revenues share a rank (SQL ``RANK``).

    Unpartitioned: current attributes and ranks depend on the whole history, so the mart is rebuilt in one
    transaction whenever it runs.
    """
    frame = rebuild(warehouse, MART_PRODUCT_PERFORMANCE, _SELECT, {}, {})
    return sort(frame, MART_PRODUCT_PERFORMANCE.natural_key)


@dg.asset(
    group_name=MARTS_GROUP, kinds={"sql"}, owners=OWNERS,
    metadata=table_metadata(MART_PRODUCT_PERFORMANCE),
    deps=["fact_sales", "dim_product"],
    check_specs=[schema_check_spec(MART_PRODUCT_PERFORMANCE)],
    description=describe(MART_PRODUCT_PERFORMANCE, inspect.getdoc(build_mart_product_performance) or ""),
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def mart_product_performance(warehouse: Warehouse) -> dg.MaterializeResult:
    frame, check = validated(MART_PRODUCT_PERFORMANCE, build_mart_product_performance(warehouse))
    latest = frame[frame["week_start"] == frame["week_start"].max()] if len(frame) else frame
    top = latest.sort_values("net_revenue", ascending=False)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "weeks": int(frame["week_start"].nunique()) if len(frame) else 0,
            "products": int(frame["sku"].nunique()) if len(frame) else 0,
            "net_revenue": round(float(frame["net_revenue"].sum()), 2) if len(frame) else 0.0,
            "margin": round(float(frame["margin"].sum()), 2) if len(frame) else 0.0,
            "units": int(frame["units"].sum()) if len(frame) else 0,
            "preview": preview(top[["week_start", "sku", "product_name", "category", "units", "net_revenue",
                                    "margin", "category_rank"]], rows=10),
        },
        check_results=[check],
    )
