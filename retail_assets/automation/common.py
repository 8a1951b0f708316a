"""What the sensors share: the tags on the runs they request, the partitions' range, and when to leave the
warehouse alone.

Every sensor targets a job by name (``daily_load`` or ``refresh_reference``); runs of one business date carry its
partition key in the ``dagster/partition`` tag, which the instance's run queue uses to serialise them.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from retail_assets.automation.instance_queries import EXECUTING_STATUSES, active_run
from retail_assets.partitions import daily_partitions
from retail_assets.resources import Warehouse

TRIGGER_TAG = "retail/trigger"
DAILY_CHAIN_TAG = "retail/daily_chain"  # on the scheduled reference run: the business date to load after it
LOG_DATES = 20  # per tick, in the sensor's log: a first tick over years of files names a few, then counts
WAREHOUSE_BUSY = "the warehouse is busy (the embedded DuckDB file is held by a run); next tick"


def partition_bounds() -> tuple[date, date]:
    """First and last business date that has a partition (the last is today in the reporting timezone)."""
    return (date.fromisoformat(daily_partitions.get_first_partition_key()),
            date.fromisoformat(daily_partitions.get_last_partition_key()))


def duckdb_held(warehouse: Warehouse, instance: dg.DagsterInstance) -> bool:
    """Whether the warehouse is one a single process may open and a run is executing against: leave it alone."""
    return warehouse.single_process and active_run(instance, statuses=EXECUTING_STATUSES) is not None
