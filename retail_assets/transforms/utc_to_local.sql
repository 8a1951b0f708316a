-- The local time of the UTC instant utc_time, inside the segment g whose UTC range [utc_start, utc_end) holds it
-- (one UTC offset, local_from - utc_from, over that range).
utc_time + (g.local_from - g.utc_from)
