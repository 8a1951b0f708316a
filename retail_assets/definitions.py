"""The Dagster definitions: assets, checks, resources, jobs, schedules and sensors, assembled.

Configuration (``retail_assets/settings.py``): the definition-time settings (timezone, partition start, cron,
sensor intervals, freshness deadline, retries) are ``settings.DEFINITION_SETTINGS``, read once; the run-time ones
are fields of the resources below, each bound by ``settings.bind``: ``dg.EnvVar`` when its variable is set (the UI
shows the variable's name, never a URL or a password), the documented default otherwise.
"""

from __future__ import annotations

import dagster as dg

from retail_assets.assets.sources import crm, online, pos
from retail_assets.automation import all_schedules, all_sensors
from retail_assets.automation.alerts import AlertChannels, alert_sensors
from retail_assets.automation.chaining import build_daily_chain
from retail_assets.automation.freshness import build_freshness
from retail_assets.executors import select_executor
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB, build_jobs
from retail_assets.resources import PosDropFolder, SqlSource, Warehouse
from retail_assets.settings import DEFINITION_SETTINGS, bind, connection_defaults, load_dotenv

source_assets = dg.load_assets_from_modules([pos, online, crm])
warehouse_assets = dg.load_assets_from_package_name("retail_assets.assets.warehouse")
mart_assets = dg.load_assets_from_package_name("retail_assets.assets.marts")
all_assets = [*source_assets, *warehouse_assets, *mart_assets]


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources, bound to the variables as they are now.

    The POS knobs are fields of ``PosDropFolder`` rather than of one settings resource: the assets and sensors that
    read the drop folder are the only ones that use them, so each declares what it depends on, and every test that
    binds ``pos_drop`` keeps working with the defaults (no new required resource key). The alert channels are the
    one resource only the alert sensors need (``AlertChannels``)."""
    load_dotenv()
    connection_defaults()  # connection strings and folders are always EnvVar (settings.connection_defaults)
    return {
        "pos_drop": PosDropFolder(
            path=dg.EnvVar("RETAIL_POS_DROP_DIR"), layouts_dir=dg.EnvVar("RETAIL_POS_LAYOUTS_DIR"),
            max_rejected_line_rate=bind("RETAIL_MAX_REJECTED_LINE_RATE", float),
            resend_hold_share=bind("RETAIL_RESEND_HOLD_SHARE", float),
            chunk_bytes=bind("RETAIL_POS_CHUNK_BYTES", int),
            settle_seconds=bind("RETAIL_POS_SETTLE_SECONDS", float),
        ),
        "online_store": SqlSource(url=dg.EnvVar("RETAIL_ONLINE_STORE_URL"), name="online shop"),
        "crm": SqlSource(url=dg.EnvVar("RETAIL_CRM_URL"), name="CRM"),
        "warehouse": Warehouse(url=dg.EnvVar("RETAIL_WAREHOUSE_URL")),
        "alerts": AlertChannels.from_variables(),
    }


def build_definitions() -> dg.Definitions:
    """The definitions with the resources bound as the variables are now: a process that sets variables after
    importing this module (``retail-etl run`` after reading ``.env``, a test) builds its own."""
    freshness = build_freshness(DEFINITION_SETTINGS.freshness_deadline)
    jobs = build_jobs(all_assets, not_in_loads=[freshness.check])
    by_name = {job.name: job for job in jobs}
    return dg.Definitions(
        assets=all_assets,
        resources=build_resources(),
        asset_checks=[freshness.check],
        jobs=[*jobs, freshness.job],
        sensors=[*all_sensors, build_daily_chain(by_name[REFERENCE_JOB], by_name[DAILY_JOB]), *alert_sensors],
        schedules=[*all_schedules, freshness.schedule],
        executor=select_executor(),  # RETAIL_EXECUTOR: in_process (default) or celery (retail_assets/executors.py)
    )


defs = build_definitions()
