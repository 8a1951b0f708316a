-- The point-in-time rule of the SCD2 dimensions (dim_product by normalised SKU, dim_customer by customer id), as
-- validity ranges [valid_lo, valid_hi) of each version: from its valid_from to the next version's. The first
-- version of a key reaches back to :beginning (a sale from before it points at it: history before the first
-- version we saw is unknown) and the last forward to :end (a version closed without a successor stays the one).
-- The unknown member (:unknown_key) is no version of anything. Two CTEs, for a statement's WITH list; the ranges
-- are not materialized, so each lookup computes only its own dimension's (the filter on dimension is pushed down).
versions AS (
    SELECT 'product' AS dimension, sku_norm AS business_key, product_key AS surrogate_key, valid_from
    FROM dim_product
    WHERE product_key <> :unknown_key AND sku_norm IS NOT NULL
    UNION ALL
    SELECT 'customer', customer_id, customer_key, valid_from
    FROM dim_customer
    WHERE customer_key <> :unknown_key AND customer_id IS NOT NULL
),
version_ranges AS NOT MATERIALIZED (
    SELECT dimension, business_key, surrogate_key,
           CASE WHEN ROW_NUMBER() OVER w = 1 THEN :beginning ELSE valid_from END AS valid_lo,
           COALESCE(LEAD(valid_from) OVER w, :end) AS valid_hi
    FROM versions
    WINDOW w AS (PARTITION BY dimension, business_key ORDER BY valid_from, surrogate_key)
)
