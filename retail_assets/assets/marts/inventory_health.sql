-- mart_inventory_health: the stock of :day per store and product against the sales of the window before it
-- (rules: build_mart_inventory_health).
WITH window_sales AS (
    SELECT f.store_key,
           CASE WHEN f.product_key = -1 THEN f.sku ELSE v.sku_norm END AS product_ref,
           SUM(f.quantity) AS units
    FROM fact_sales AS f
    LEFT JOIN dim_product AS v ON v.product_key = f.product_key
    WHERE f.business_date BETWEEN :window_start AND :day AND NOT f.is_return
    GROUP BY f.store_key, CASE WHEN f.product_key = -1 THEN f.sku ELSE v.sku_norm END
),
stock AS (
    SELECT i.business_date, i.date_key, i.store_key, COALESCE(s.store_code, 'UNKNOWN') AS store_code,
           i.product_key, i.sku, v.product_name, v.category, i.on_hand,
           CASE WHEN i.product_key = -1 THEN i.sku ELSE v.sku_norm END AS product_ref
    FROM fact_inventory AS i
    LEFT JOIN dim_product AS v ON v.product_key = i.product_key
    LEFT JOIN dim_store AS s ON s.store_key = i.store_key
    WHERE i.business_date = :day
),
supply AS (
    SELECT st.*,
           CAST(:window_days AS INTEGER) AS sales_window_days,
           COALESCE(ws.units, 0) AS units_sold_window,
           CAST(COALESCE(ws.units, 0) AS DOUBLE PRECISION) / CAST(:window_days AS DOUBLE PRECISION)
               AS avg_daily_units
    FROM stock AS st
    LEFT JOIN window_sales AS ws ON ws.store_key = st.store_key AND ws.product_ref = st.product_ref
),
health AS (
    SELECT supply.*,
           CASE WHEN on_hand <= 0 THEN CAST(0 AS DOUBLE PRECISION)
                ELSE {ratio(numerator=on_hand, denominator=avg_daily_units)}
           END AS days_of_supply
    FROM supply
)
SELECT health.*,
       on_hand <= 0 AS is_stock_out,
       on_hand > 0 AND (units_sold_window = 0 OR days_of_supply > :overstock_days) AS is_overstock,
       CASE WHEN on_hand <= 0 THEN 'stock_out'
            WHEN units_sold_window = 0 OR days_of_supply > :overstock_days THEN 'overstock'
            WHEN days_of_supply < :low_stock_days THEN 'low'
            ELSE 'ok'
       END AS stock_status
FROM health
