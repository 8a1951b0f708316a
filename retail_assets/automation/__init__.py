"""Automation: sensors on the sources, the daily schedule, and what they remember between ticks.

``all_sensors`` and ``all_schedules`` go into the Definitions, with the sensors ``definitions.py`` builds from the
jobs (``chaining.build_daily_chain``) and the freshness check's schedule (``freshness.build_freshness``). The
instance configuration that queues their runs (PostgreSQL storage, one run per business date at a time) is
``deploy/dagster.yaml``.
"""

from retail_assets.automation.schedules import all_schedules
from retail_assets.automation.sensors import all_sensors

__all__ = ["all_schedules", "all_sensors"]
