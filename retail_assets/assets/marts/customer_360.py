"""``mart_customer_360``: one row per current customer with purchases, value, channels and RFM segment."""

import inspect

import dagster as dg
import pandas as pd

from retail_assets.assets.common import MARTS_GROUP, OWNERS, describe, preview, table_metadata, validated
from retail_assets.assets.marts._sql import money_ratio, rebuild, sort
from retail_assets.assets.retry import retries_transient
from retail_assets.checks import schema_check_spec
from retail_assets.resources import Warehouse
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

_SELECT = f"""
WITH as_of AS (
    SELECT MAX(business_date) AS as_of_date FROM fact_sales
),
lines AS (
    SELECT c.customer_id, f.business_date, f.receipt_ref, f.channel, f.is_return, f.quantity, f.net_amount
    FROM fact_sales AS f
    JOIN dim_customer AS c ON c.customer_key = f.customer_key
    WHERE f.customer_key <> -1
),
per_customer AS (
    SELECT customer_id,
           MIN(CASE WHEN NOT is_return THEN business_date END) AS first_purchase_date,
           MAX(CASE WHEN NOT is_return THEN business_date END) AS last_purchase_date,
           COUNT(DISTINCT CASE WHEN NOT is_return THEN receipt_ref END) AS orders,
           SUM(quantity) AS units,
           SUM(CASE WHEN is_return THEN 0 ELSE net_amount END) AS sales_amount,
           -SUM(CASE WHEN is_return THEN net_amount ELSE 0 END) AS returns_amount,
           SUM(net_amount) AS lifetime_net
    FROM lines
    GROUP BY customer_id
),
per_channel AS (
    SELECT customer_id, STRING_AGG(channel, ',' ORDER BY channel) AS channels, COUNT(*) AS channel_count
    FROM (SELECT DISTINCT customer_id, channel FROM lines WHERE NOT is_return) AS used
    GROUP BY customer_id
),
customers AS (
    SELECT cur.customer_id, cur.customer_key, cur.crm_contact_id, cur.online_customer_id, cur.email,
           cur.first_name, cur.last_name, cur.city, cur.region, cur.country, cur.loyalty_tier,
           cur.marketing_opt_in,
           pc.first_purchase_date,
           pc.last_purchase_date,
           COALESCE(pc.orders, 0) AS orders,
           COALESCE(pc.units, 0) AS units,
           COALESCE(pc.sales_amount, 0) AS sales_amount,
           COALESCE(pc.returns_amount, 0) AS returns_amount,
           COALESCE(pc.lifetime_net, 0) AS lifetime_net,
           ch.channels,
           COALESCE(ch.channel_count, 0) AS channel_count,
           a.as_of_date,
           CAST(a.as_of_date - pc.last_purchase_date AS INTEGER) AS recency_days,
           CAST(a.as_of_date - pc.first_purchase_date AS INTEGER) AS tenure_days
    FROM dim_customer AS cur
    LEFT JOIN per_customer AS pc ON pc.customer_id = cur.customer_id
    LEFT JOIN per_channel AS ch ON ch.customer_id = cur.customer_id
    CROSS JOIN as_of AS a
    WHERE cur.is_current AND cur.customer_key <> -1
)
SELECT customers.*,
       {money_ratio("sales_amount", "orders")} AS average_order_value,
       CASE
           WHEN orders = 0 THEN 'prospect'
           WHEN recency_days <= :recent_days AND orders >= :champion_orders AND lifetime_net >= :champion_spend
               THEN 'champion'
           WHEN recency_days <= :active_days AND orders >= :loyal_orders THEN 'loyal'
           WHEN tenure_days <= :new_days THEN 'new'
           WHEN recency_days <= :active_days THEN 'active'
           WHEN recency_days <= :lapsed_days THEN 'at_risk'
           ELSE 'lost'
       END AS rfm_segment
FROM customers
"""


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
