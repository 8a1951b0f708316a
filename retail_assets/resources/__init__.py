"""Dagster resources: one module per external system."""

from retail_assets.resources.pos_drop import PosDropFolder
from retail_assets.resources.sql_source import SqlSource
from retail_assets.resources.warehouse import Warehouse

__all__ = ["PosDropFolder", "SqlSource", "Warehouse"]
