"""Retail ETL platform: POS files, an online shop and a CRM loaded into a star-schema warehouse by Dagster.

This package's import is kept free of heavy dependencies so that ``python3 -m retail_assets`` (the bootstrap
that makes the virtual environment) runs on a bare Python.
"""
