-- {numerator} / {denominator} as an IEEE double on both engines; NULL when the denominator is not positive.
CASE WHEN {denominator} > 0
     THEN CAST({numerator} AS DOUBLE PRECISION) / CAST({denominator} AS DOUBLE PRECISION)
END
