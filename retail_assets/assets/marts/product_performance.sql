-- mart_product_performance: units, revenue, margin and category rank per product and ISO week
-- (rules: build_mart_product_performance).
WITH lines AS (
    SELECT CAST(DATE_TRUNC('week', CAST(f.business_date AS TIMESTAMP)) AS DATE) AS week_start,
           COALESCE(v.sku_norm, 'UNKNOWN') AS sku_norm,
           f.is_return,
           f.quantity,
           f.net_amount,
           f.quantity * v.unit_cost AS cost
    FROM fact_sales AS f
    LEFT JOIN dim_product AS v ON v.product_key = f.product_key
),
weekly AS (
    SELECT week_start,
           sku_norm,
           SUM(CASE WHEN is_return THEN 0 ELSE quantity END) AS units_sold,
           -SUM(CASE WHEN is_return THEN quantity ELSE 0 END) AS units_returned,
           SUM(quantity) AS units,
           SUM(net_amount) AS net_revenue,
           CASE WHEN COUNT(cost) = COUNT(*) THEN SUM(cost) END AS cost
    FROM lines
    GROUP BY week_start, sku_norm
),
current_product AS (
    SELECT product_key, sku, sku_norm, product_name, category, subcategory, brand
    FROM dim_product
    WHERE is_current
)
SELECT w.week_start,
       CAST(EXTRACT(ISOYEAR FROM w.week_start) AS INTEGER) AS iso_year,
       CAST(EXTRACT(WEEK FROM w.week_start) AS INTEGER) AS iso_week,
       COALESCE(p.sku, w.sku_norm) AS sku,
       p.product_key,
       p.product_name,
       p.category,
       p.subcategory,
       p.brand,
       w.units_sold,
       w.units_returned,
       w.units,
       w.net_revenue,
       w.cost,
       w.net_revenue - w.cost AS margin,
       {ratio(numerator=w.net_revenue - w.cost, denominator=w.net_revenue)} AS margin_rate,
       RANK() OVER (PARTITION BY w.week_start, p.category ORDER BY w.net_revenue DESC) AS category_rank
FROM weekly AS w
LEFT JOIN current_product AS p ON p.sku_norm = w.sku_norm
