"""Pandera models of every table, with the keys the loaders need."""

from retail_assets.schemas import marts, sources, warehouse
from retail_assets.schemas.base import TableSpec

ALL_TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for module in (sources, warehouse, marts)
    for spec in vars(module).values()
    if isinstance(spec, TableSpec)
}

__all__ = ["ALL_TABLES", "TableSpec"]
