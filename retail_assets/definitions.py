"""The Dagster definitions: assets, checks, resources, jobs, schedules and sensors, assembled."""

from __future__ import annotations

import dagster as dg

from retail_assets.assets.sources import crm, online, pos
from retail_assets.automation import all_schedules, all_sensors
from retail_assets.automation.alerts import alert_sensors
from retail_assets.automation.freshness import freshness_job, freshness_schedule, loaded_by_deadline
from retail_assets.executors import select_executor
from retail_assets.jobs import build_jobs
from retail_assets.resources import PosDropFolder, SqlSource, Warehouse
from retail_assets.settings import load_settings

load_settings()  # fills the environment with defaults, so every EnvVar below resolves

source_assets = dg.load_assets_from_modules([pos, online, crm])
warehouse_assets = dg.load_assets_from_package_name("retail_assets.assets.warehouse")
mart_assets = dg.load_assets_from_package_name("retail_assets.assets.marts")
all_assets = [*source_assets, *warehouse_assets, *mart_assets]

resources = {
    "pos_drop": PosDropFolder(path=dg.EnvVar("RETAIL_POS_DROP_DIR"), layouts_dir=dg.EnvVar("RETAIL_POS_LAYOUTS_DIR")),
    "online_store": SqlSource(url=dg.EnvVar("RETAIL_ONLINE_STORE_URL"), name="online shop"),
    "crm": SqlSource(url=dg.EnvVar("RETAIL_CRM_URL"), name="CRM"),
    "warehouse": Warehouse(url=dg.EnvVar("RETAIL_WAREHOUSE_URL")),
}

defs = dg.Definitions(
    assets=all_assets,
    resources=resources,
    asset_checks=[loaded_by_deadline],
    jobs=[*build_jobs(all_assets, not_in_loads=[loaded_by_deadline]), freshness_job],
    sensors=[*all_sensors, *alert_sensors],
    schedules=[*all_schedules, freshness_schedule],
    executor=select_executor(),  # RETAIL_EXECUTOR: in_process (default) or celery (retail_assets/executors.py)
)
