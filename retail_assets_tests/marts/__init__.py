"""Tests of the marts: each mart's SQL on DuckDB and PostgreSQL against an independent pandas computation."""
