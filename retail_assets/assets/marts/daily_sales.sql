-- mart_daily_sales: the business date :day per store and channel, from fact_sales (rules: build_mart_daily_sales).
SELECT d.*,
       {money_ratio(numerator=d.sales_amount, denominator=d.receipts)} AS average_basket,
       {ratio(numerator=d.units_returned, denominator=d.units_sold)} AS return_rate
FROM (
    SELECT f.business_date,
           f.date_key,
           f.store_key,
           COALESCE(s.store_code, 'UNKNOWN') AS store_code,
           s.store_name,
           f.channel,
           SUM(CASE WHEN f.is_return THEN 0 ELSE 1 END) AS sale_lines,
           SUM(CASE WHEN f.is_return THEN 1 ELSE 0 END) AS return_lines,
           COUNT(DISTINCT CASE WHEN NOT f.is_return THEN f.receipt_ref END) AS receipts,
           COUNT(DISTINCT CASE WHEN f.customer_key <> -1 THEN c.customer_id END) AS customers,
           SUM(CASE WHEN f.is_return THEN 0 ELSE f.quantity END) AS units_sold,
           -SUM(CASE WHEN f.is_return THEN f.quantity ELSE 0 END) AS units_returned,
           SUM(f.quantity) AS units,
           SUM(f.gross_amount) AS gross_amount,
           SUM(f.discount_amount) AS discount_amount,
           SUM(CASE WHEN f.is_return THEN 0 ELSE f.net_amount END) AS sales_amount,
           -SUM(CASE WHEN f.is_return THEN f.net_amount ELSE 0 END) AS returns_amount,
           SUM(f.net_amount) AS net_revenue
    FROM fact_sales AS f
    LEFT JOIN dim_store AS s ON s.store_key = f.store_key
    LEFT JOIN dim_customer AS c ON c.customer_key = f.customer_key
    WHERE f.business_date = :day
    GROUP BY f.business_date, f.date_key, f.store_key, s.store_code, s.store_name, f.channel
) AS d
