"""``mart_daily_sales``: the day's sales per store and channel, rebuilt one business date at a time."""

import inspect
from datetime import date

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import MARTS_GROUP, OWNERS, describe, preview, table_metadata, validated
from retail_assets.assets.marts._sql import rebuild, sort
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import RECONCILED_CHECK, check_spec, combine, schema_check_spec
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates
from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import sql_file
from retail_assets.schemas.marts import MART_DAILY_SALES

_SELECT = sql_file(__file__, "daily_sales.sql")


def build_mart_daily_sales(warehouse: Warehouse, day: date) -> pd.DataFrame:
    """Sales of one business date per store and channel, computed in the warehouse from ``fact_sales``.

    Business rules:

    - A line is a sale or a return by ``is_return``. Returns count on the date they happened (a return today of
      last week's sale lowers today's figures), as in ``fact_sales``.
    - ``net_revenue`` = net amount of every line, returns included (``sales_amount - returns_amount``);
      ``units`` = net units (``units_sold - units_returned``).
    - ``receipts`` = distinct ``receipt_ref`` (store receipt or online order) having at least one sale line: a
      visit that only returned goods is not a purchase.
    - ``average_basket`` = ``sales_amount / receipts``: what a purchasing receipt is worth before returns,
      half-up to the cent; NULL without receipts.
    - ``return_rate`` = ``units_returned / units_sold`` of the same day: units, not lines, so a returned line of
      six units weighs six times a returned single unit; NULL when nothing was sold that day.
    - ``customers`` = distinct known customers (stable ``customer_id``, so two versions of one customer count
      once); anonymous sales (customer -1) are not counted.

    The day's rows are deleted and re-inserted in one transaction: a late file or a cancelled order that
    reloads ``fact_sales`` for the day gives a mart matching it after this runs again.
    """
    frame = rebuild(warehouse, MART_DAILY_SALES, _SELECT, {"business_date": day}, {"day": day})
    return sort(frame, MART_DAILY_SALES.natural_key)


def daily_kpis(frame: pd.DataFrame) -> dict[str, float | int]:
    """The day's headline figures across stores and channels (what Dagster plots over partitions)."""
    sold = int(frame["units_sold"].sum()) if len(frame) else 0
    receipts = int(frame["receipts"].sum()) if len(frame) else 0
    sales = float(frame["sales_amount"].sum()) if len(frame) else 0.0
    return {
        "net_revenue": round(float(frame["net_revenue"].sum()), 2) if len(frame) else 0.0,
        "units": int(frame["units"].sum()) if len(frame) else 0,
        "units_sold": sold,
        "receipts": receipts,
        "average_basket": round(sales / receipts, 2) if receipts else float("nan"),
        "return_rate": float(frame["units_returned"].sum()) / sold if sold else float("nan"),
    }


def _reconcile(warehouse: Warehouse, day: date, frame: pd.DataFrame) -> dg.AssetCheckResult:
    """The mart's day adds up to fact_sales's day: lines, units and net amount to the cent."""
    with warehouse.engine.connect() as conn:
        lines, units, net = conn.execute(
            sa.text("SELECT COUNT(*), COALESCE(SUM(quantity), 0), COALESCE(SUM(net_amount), 0) "
                    "FROM fact_sales WHERE business_date = :day"), {"day": day}).one()
    mart = (int(frame["sale_lines"].sum() + frame["return_lines"].sum()), int(frame["units"].sum()),
            round(float(frame["net_revenue"].sum()), 2)) if len(frame) else (0, 0, 0.0)
    fact = (int(lines), int(units), round(float(net), 2))
    return dg.AssetCheckResult(
        check_name=RECONCILED_CHECK, passed=mart[:2] == fact[:2] and abs(mart[2] - fact[2]) < 0.005,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"partition": day.isoformat(), "fact_lines": fact[0], "mart_lines": mart[0], "fact_units": fact[1],
                  "mart_units": mart[1], "fact_net": fact[2], "mart_net": mart[2]},
    )


@dg.asset(
    group_name=MARTS_GROUP, kinds={"sql"}, owners=OWNERS, partitions_def=daily_partitions,
    metadata=table_metadata(MART_DAILY_SALES),
    deps=["fact_sales", "dim_store", "dim_customer"],
    check_specs=[
        schema_check_spec(MART_DAILY_SALES),
        check_spec("mart_daily_sales", RECONCILED_CHECK,
                   "Per day: lines, net units and net revenue of the mart equal fact_sales to the cent", blocking=True),
    ],
    backfill_policy=backfill_policy,
    description=describe(MART_DAILY_SALES, inspect.getdoc(build_mart_daily_sales) or ""),
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def mart_daily_sales(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    # One partition a run, so the KPIs in the metadata are the partition's own and plot per day.
    checks, frames = [], []
    for day in partition_dates(context):
        frame, check = validated(MART_DAILY_SALES, build_mart_daily_sales(warehouse, day), day.isoformat())
        checks += [check, _reconcile(warehouse, day, frame)]
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else MART_DAILY_SALES.empty()
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(frame), "preview": preview(frame), **daily_kpis(frame)},
        check_results=combine(checks),
    )
