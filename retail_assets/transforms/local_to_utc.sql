-- The UTC instant of the local time local_time, inside the segment g of its timezone's timeline that holds it
-- (time_segments, made by local_time_segments, which decides the repeated and the skipped hours).
CASE WHEN g.fixed THEN g.utc_from ELSE g.utc_from + (local_time - g.local_from) END
