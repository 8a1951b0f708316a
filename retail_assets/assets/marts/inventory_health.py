"""``mart_inventory_health``: stock per store, product and day against recent sales, one business date at a time."""

import inspect
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from retail_assets.assets.common import MARTS_GROUP, OWNERS, describe, preview, table_metadata, validated
from retail_assets.assets.marts._sql import first_sales_date, rebuild, sort
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import combine, schema_check_spec
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates
from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import sql_file
from retail_assets.schemas.marts import MART_INVENTORY_HEALTH

SALES_WINDOW_DAYS = 28
OVERSTOCK_DAYS = 90
LOW_STOCK_DAYS = 7

_SELECT = sql_file(__file__, "inventory_health.sql")


def sales_window(day: date, history_start: date | None) -> tuple[date, int]:
    """(first day, length in days) of the sales window ending on ``day``: 28 days, or fewer at the start."""
    start = day - timedelta(days=SALES_WINDOW_DAYS - 1)
    if history_start is not None and start < history_start <= day:
        start = history_start
    return start, (day - start).days + 1


def build_mart_inventory_health(warehouse: Warehouse, day: date) -> pd.DataFrame:
    """Every ``fact_inventory`` row of one business date, against the store's sales of the product.

    Business rules:

    - ``on_hand`` is the close-of-business count of the day; the product is the version on the inventory row.
    - Demand = units on sale lines (returns are not demand) at the same store of the same product over the 28
      days ending on the day, inclusive. Sales match stock by catalog product (``sku_norm``), whichever version
      either row points at; for SKUs missing from the catalog, by the normalised SKU.
    - ``avg_daily_units`` = demand / ``sales_window_days``. The window is 28 days, shortened when the sales
      history in ``fact_sales`` begins inside it, so the first weeks of a new warehouse are not understated.
    - ``days_of_supply`` = ``on_hand / avg_daily_units``: 0 when out of stock, NULL when there is stock but no
      demand (supply is then unbounded).
    - ``is_stock_out``: ``on_hand <= 0``. ``is_overstock``: stock on hand with more than 90 days of supply or
      no sale at all in the window (dead stock).
    - ``stock_status``: ``stock_out``, ``overstock``, ``low`` (under 7 days of supply) or ``ok``, in that order.

    The day's rows are deleted and re-inserted in one transaction.
    """
    window_start, window_days = sales_window(day, first_sales_date(warehouse))
    params = {"day": day, "window_start": window_start, "window_days": window_days,
              "overstock_days": OVERSTOCK_DAYS, "low_stock_days": LOW_STOCK_DAYS}
    frame = rebuild(warehouse, MART_INVENTORY_HEALTH, _SELECT, {"business_date": day}, params)
    return sort(frame, MART_INVENTORY_HEALTH.natural_key)


def inventory_kpis(frame: pd.DataFrame) -> dict[str, float | int]:
    """The day's stock position across stores (what Dagster plots over partitions)."""
    if frame.empty:
        return {"on_hand": 0, "stock_outs": 0, "low_stock": 0, "overstock": 0, "stock_out_rate": float("nan")}
    return {
        "on_hand": int(frame["on_hand"].clip(lower=0).sum()),
        "stock_outs": int(frame["is_stock_out"].sum()),
        "low_stock": int((frame["stock_status"] == "low").sum()),
        "overstock": int(frame["is_overstock"].sum()),
        "stock_out_rate": float(frame["is_stock_out"].mean()),
    }


@dg.asset(
    group_name=MARTS_GROUP, kinds={"sql"}, owners=OWNERS, partitions_def=daily_partitions,
    metadata=table_metadata(MART_INVENTORY_HEALTH),
    deps=[
        "fact_inventory", "dim_store", "dim_product",
        # the day's row reads the sales of the 28 days up to it
        dg.AssetDep("fact_sales",
                    partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(SALES_WINDOW_DAYS - 1))),
    ],
    check_specs=[schema_check_spec(MART_INVENTORY_HEALTH)],
    backfill_policy=backfill_policy,
    description=describe(MART_INVENTORY_HEALTH, inspect.getdoc(build_mart_inventory_health) or ""),
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def mart_inventory_health(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    checks, frames = [], []
    for day in partition_dates(context):
        frame, check = validated(MART_INVENTORY_HEALTH, build_mart_inventory_health(warehouse, day), day.isoformat())
        checks.append(check)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else MART_INVENTORY_HEALTH.empty()
    at_risk = frame[frame["stock_status"].isin(["stock_out", "low"])] if len(frame) else frame
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(frame), **inventory_kpis(frame),
                  "preview": preview(at_risk.sort_values("days_of_supply", na_position="last"), rows=10)},
        check_results=combine(checks),
    )
