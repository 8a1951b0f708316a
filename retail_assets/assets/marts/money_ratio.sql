-- {numerator} / {denominator} rounded half away from zero to the cent; NULL when the denominator is not positive.
-- The numerator is money (NUMERIC(.., 2)), the denominator a positive count. Dividing a DECIMAL gives a DOUBLE on
-- DuckDB but an exact NUMERIC on PostgreSQL, which has no ROUND(double, 2): the quotient is taken in half-cents,
-- FLOOR((2 * |cents| + d) / (2 * d)), exact on both engines below 2^53 cents, and turned back into a NUMERIC with
-- two decimals by multiplying, never dividing.
CASE WHEN {denominator} > 0
     THEN CAST(SIGN({numerator}) * FLOOR((ABS({numerator}) * 200 + {denominator}) / (2 * {denominator}))
               AS NUMERIC(18, 0)) * CAST(0.01 AS NUMERIC(3, 2))
END
