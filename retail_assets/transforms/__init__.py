"""Pure functions, DataFrame in -> DataFrame out: cleaning, conforming, SCD2, identity. No I/O, no Dagster."""
