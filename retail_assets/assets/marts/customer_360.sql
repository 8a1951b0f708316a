-- mart_customer_360: one row per current customer, purchases to date and RFM segment (rules: build_mart_customer_360).
-- Parameters: the thresholds of RFM_RULES.
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
       {money_ratio(numerator=sales_amount, denominator=orders)} AS average_order_value,
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
