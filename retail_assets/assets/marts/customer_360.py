"""``mart_customer_360``: one row per current customer with purchases, value, channels and RFM segment."""

import inspect

import dagster as dg
import pandas as pd

from retail_assets.assets.common import MARTS_GROUP, OWNERS, describe, preview, table_metadata, validated
from retail_assets.assets.marts._sql import rebuild, sort
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import schema_check_spec
from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import sql_file
from retail_assets.schemas.marts import MART_CUSTOMER_360, RFM_SEGMENTS

RFM_RULES: dict[str, int] = {
    "recent_days": 30,
    "active_days": 90,
    "lapsed_days": 180,
    "new_days": 30,
    "champion_orders": 5,
    "champion_spend": 500,
    "loyal_orders": 3,
}
"""Thresholds of the RFM segments (days, orders, currency units); see ``build_mart_customer_360``."""

_SELECT = sql_file(__file__, "customer_360.sql")


def build_mart_customer_360(warehouse: Warehouse) -> pd.DataFrame:
    """One row per current customer (``dim_customer.is_current``), rebuilt in full.

    Business rules:

    - A customer is the stable ``customer_id``: sales made under any of its versions count, and the row shows
      the current version's attributes (its loyalty tier today). Anonymous sales (customer -1) are nobody's.
    - ``orders`` = distinct receipts/orders with a sale line; ``first_purchase_date`` / ``last_purchase_date``
      are the business dates of the first and last sale line. Returns count in the money, not as purchases.
    - ``lifetime_net`` = net amount of every line, returns included; ``average_order_value`` =
      ``sales_amount / orders``, half-up to the cent.
    - ``channels``: the channels with a sale line, alphabetical (``online,store`` for an omnichannel customer).
    - Recency is measured at ``as_of_date``, the latest business date in ``fact_sales`` (not the wall clock,
      so a rebuild of old data gives the same segments).
    - RFM segment, threshold rules (no quintiles, so a segment means the same thing in every company and over
      time; the numbers are ``RFM_RULES``), first matching rule wins:

      1. ``prospect``: no purchase yet;
      2. ``champion``: bought within 30 days, 5+ orders and a lifetime net of 500+;
      3. ``loyal``: bought within 90 days and 3+ orders;
      4. ``new``: first purchase within the last 30 days;
      5. ``active``: bought within 90 days;
      6. ``at_risk``: last purchase 91 to 180 days ago;
      7. ``lost``: last purchase more than 180 days ago.
    """
    frame = rebuild(warehouse, MART_CUSTOMER_360, _SELECT, {}, RFM_RULES)
    return sort(frame, MART_CUSTOMER_360.natural_key)


@dg.asset(
    group_name=MARTS_GROUP, kinds={"sql"}, owners=OWNERS,
    metadata=table_metadata(MART_CUSTOMER_360),
    deps=["fact_sales", "dim_customer"],
    check_specs=[schema_check_spec(MART_CUSTOMER_360)],
    description=describe(MART_CUSTOMER_360, inspect.getdoc(build_mart_customer_360) or ""),
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def mart_customer_360(warehouse: Warehouse) -> dg.MaterializeResult:
    frame, check = validated(MART_CUSTOMER_360, build_mart_customer_360(warehouse))
    segments = frame["rfm_segment"].value_counts() if len(frame) else pd.Series(dtype="int64")
    buyers = frame[frame["orders"] > 0] if len(frame) else frame
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "customers_with_purchases": len(buyers),
            "lifetime_net": round(float(frame["lifetime_net"].sum()), 2) if len(frame) else 0.0,
            "omnichannel_customers": int((frame["channel_count"] > 1).sum()) if len(frame) else 0,
            **{f"segment_{name}": int(segments.get(name, 0)) for name in RFM_SEGMENTS},
            "preview": preview(frame.sort_values("lifetime_net", ascending=False)[
                ["customer_id", "loyalty_tier", "orders", "lifetime_net", "channels", "rfm_segment"]], rows=10),
        },
        check_results=[check],
    )
