-- fact_inventory: the stock counted at close of the business date :day, stores and online shop, by this one
-- statement: store counts from raw_pos_inventory, the online shop's from the temporary table online_stock (its
-- warehouses summed per normalised SKU by transforms.facts). A count describes the last microsecond of the
-- store's local day (:end_of_day, local time), in UTC through the timezone's timeline (time_segments); the
-- product is the version valid then (scd2_ranges), :unknown_key for a SKU the catalog does not know.
-- Parameters: :day, :date_key, :end_of_day, :run_id, :reporting, :unknown_key, :beginning, :end.
INSERT INTO fact_inventory (business_date, date_key, store_key, product_key, sku, on_hand, source_system,
                            source_ref, run_id)
WITH {scd2_ranges},
stock AS (
    SELECT r.business_date, r.store_code, r.sku_norm AS sku, r.on_hand, 'pos' AS source_system,
           r.source_file || ':' || CAST(r.source_line AS VARCHAR) AS source_ref
    FROM raw_pos_inventory r
    WHERE r.business_date = :day
    UNION ALL
    SELECT business_date, store_code, sku, on_hand, 'online', source_ref
    FROM online_stock
),
timed AS (
    SELECT k.*, COALESCE(s.store_key, :unknown_key) AS store_key, {local_to_utc} AS counted_at
    FROM stock k
    LEFT JOIN dim_store s ON s.store_code = k.store_code
    CROSS JOIN (SELECT CAST(:end_of_day AS TIMESTAMP) AS local_time) e
    LEFT JOIN time_segments g ON g.timezone = COALESCE(s.timezone, :reporting)
        AND e.local_time >= g.local_from AND e.local_time < g.local_to
)
SELECT t.business_date, CAST(:date_key AS BIGINT), t.store_key, COALESCE(p.surrogate_key, :unknown_key), t.sku,
       t.on_hand, t.source_system, t.source_ref, CAST(:run_id AS VARCHAR)
FROM timed t
LEFT JOIN version_ranges p ON p.dimension = 'product' AND p.business_key = t.sku
    AND t.counted_at >= p.valid_lo AND t.counted_at < p.valid_hi
