"""One asset per source table, landing in the warehouse as raw tables with lineage columns."""
