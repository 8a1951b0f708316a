"""The warehouse: the only code that knows SQL dialects.

Bulk loads go through each engine's fast path (``bulk``); ``replace`` deletes a slice (a business day, say) and loads
its new rows in the same transaction (``transaction``), under advisory locks that make concurrent runs of the same
slice wait (``locks``), so a reader never sees half a day and a failure leaves the previous state. Tables are created
or altered on first use, one process at a time (``ddl``); reads come back as frames typed by their model
(``reads``); long statements live in ``.sql`` files beside the code that runs them (``statements``). Identifiers come
from the table specs and are quoted by the dialect, never formatted from file names or configuration.
"""

import pyarrow as pa  # noqa: F401 - part of this module's namespace before it became a package

from retail_assets.resources.warehouse.bulk import binary_copy_schema
from retail_assets.resources.warehouse.ddl import check_duckdb_folder, partition_index, pending_ddl
from retail_assets.resources.warehouse.locks import DDL_LOCK, slice_locks
from retail_assets.resources.warehouse.reads import Filter
from retail_assets.resources.warehouse.resource import Warehouse
from retail_assets.resources.warehouse.statements import sql_file
from retail_assets.resources.warehouse.transaction import WarehouseTx

__all__ = ["DDL_LOCK", "Filter", "Warehouse", "WarehouseTx", "binary_copy_schema", "check_duckdb_folder",
           "partition_index", "pending_ddl", "slice_locks", "sql_file"]
