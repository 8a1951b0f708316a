-- fact_sales: every sales line of the business date :day, both channels, conformed by this one statement.
--
-- Store lines come from raw_pos_sales, online lines from the temporary table online_lines (the day's sold order
-- lines and returns, staged by transforms.facts with what only Python knows: which order lines are sales, the
-- catalog's normalised SKU, the normalised guest email). The rules of docs/architecture.md, once for both:
--   - the store by its code (a code dim_store does not know is store :unknown_key, in the :reporting timezone);
--   - times through the timezone's timeline (time_segments): a store's local time to UTC, an online UTC time to
--     the reporting timezone's local time;
--   - the customer through bridge_customer_identity: a loyalty card, an online customer id, else a guest email;
--   - product and customer at the versions valid at sold_at_utc (scd2_ranges);
--   - gross = quantity * unit_price, net = gross - sign(quantity) * discount; a return's net is minus its refund
--     and its discount whatever keeps the first rule true. NUMERIC throughout: exact to the cent.
-- Parameters: :day, :date_key, :date_text (yyyymmdd), :run_id, :reporting, :unknown_key, :beginning, :end.
INSERT INTO fact_sales (sale_line_id, business_date, date_key, sold_at, sold_at_utc, store_key, product_key,
                        customer_key, channel, receipt_ref, sku, quantity, unit_price, gross_amount, discount_amount,
                        net_amount, is_return, source_system, source_ref, run_id)
WITH {scd2_ranges},
lines AS (
    SELECT 'pos:' || r.store_code || ':' || CAST(:date_text AS VARCHAR) || ':' || r.receipt_id || ':'
               || CAST(r.line_no AS VARCHAR) AS sale_line_id,
           'pos:' || r.store_code || ':' || CAST(:date_text AS VARCHAR) || ':' || r.receipt_id AS receipt_ref,
           r.source_file || ':' || CAST(r.source_line AS VARCHAR) AS source_ref,
           'store' AS channel, 'pos' AS source_system, r.business_date, r.store_code,
           CAST(NULL AS VARCHAR) AS timezone, r.sold_at AS local_time, CAST(NULL AS TIMESTAMP) AS utc_time,
           r.sku_norm AS sku, b.customer_id, r.quantity, r.unit_price, r.discount AS discount_amount,
           CAST(NULL AS NUMERIC(14, 2)) AS refund_amount
    FROM raw_pos_sales r
    LEFT JOIN bridge_customer_identity b ON b.source_system = 'loyalty_card' AND b.source_key = r.loyalty_card
    WHERE r.business_date = :day
    UNION ALL
    SELECT o.sale_line_id, o.receipt_ref, o.source_ref, 'online', 'online', o.business_date, o.store_code,
           o.timezone, NULL, o.sold_at_utc, o.sku, COALESCE(bo.customer_id, be.customer_id), o.quantity,
           o.unit_price, o.discount_amount, o.refund_amount
    FROM online_lines o
    LEFT JOIN bridge_customer_identity bo ON bo.source_system = 'online' AND bo.source_key = o.online_customer_id
    LEFT JOIN bridge_customer_identity be ON be.source_system = 'email' AND be.source_key = o.email
),
timed AS (
    SELECT l.*, COALESCE(s.store_key, :unknown_key) AS store_key,
           COALESCE(l.local_time, {utc_to_local}) AS sold_at,
           COALESCE(l.utc_time, {local_to_utc}) AS sold_at_utc
    FROM lines l
    LEFT JOIN dim_store s ON s.store_code = l.store_code
    LEFT JOIN time_segments g ON g.timezone = COALESCE(l.timezone, s.timezone, :reporting)
        AND ((l.local_time >= g.local_from AND l.local_time < g.local_to)
             OR (l.local_time IS NULL AND l.utc_time >= g.utc_start AND l.utc_time < g.utc_end))
)
SELECT t.sale_line_id, t.business_date, CAST(:date_key AS BIGINT), t.sold_at, t.sold_at_utc, t.store_key,
       COALESCE(p.surrogate_key, :unknown_key), COALESCE(c.surrogate_key, :unknown_key), t.channel, t.receipt_ref,
       t.sku, t.quantity, t.unit_price,
       t.quantity * t.unit_price,
       CASE WHEN t.refund_amount IS NULL THEN t.discount_amount
            ELSE -t.refund_amount - t.quantity * t.unit_price END,
       CASE WHEN t.refund_amount IS NOT NULL THEN -t.refund_amount
            WHEN t.quantity < 0 THEN t.quantity * t.unit_price + t.discount_amount
            ELSE t.quantity * t.unit_price - t.discount_amount END,
       t.quantity < 0, t.source_system, t.source_ref, CAST(:run_id AS VARCHAR)
FROM timed t
LEFT JOIN version_ranges p ON p.dimension = 'product' AND p.business_key = t.sku
    AND t.sold_at_utc >= p.valid_lo AND t.sold_at_utc < p.valid_hi
LEFT JOIN version_ranges c ON c.dimension = 'customer' AND c.business_key = t.customer_id
    AND t.sold_at_utc >= c.valid_lo AND t.sold_at_utc < c.valid_hi
