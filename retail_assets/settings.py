"""The one table of configuration: environment variables (a ``.env`` file may set them) and their defaults.

Each setting is read in one of three places, by when it is needed:

- **Definition time** (timezone, partition start, cron, sensor intervals, freshness deadline, retries):
  ``DEFINITION_SETTINGS``, read once when this module is first imported; the partitions, the retry policy, the
  schedules and sensors are built from it, and asset bodies take what they need from those (e.g.
  ``daily_partitions.timezone``).
- **Run time** (the POS knobs, the alert channels, the UI's address): typed fields of the resources that use them,
  bound in ``definitions.py`` by ``bind`` (``dg.EnvVar`` when the variable is set, the default below otherwise).
- **Process entry points** (``retail-etl``, the runner, the report): ``load_settings``, which also resolves
  ``DAGSTER_HOME`` for the Dagster instance they open.

No default is written into the environment but the connection strings' and folders' (``connection_defaults``
says why) and, for the entry points, the absolute ``DAGSTER_HOME`` the Dagster instance is opened from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import dagster as dg

DEFAULTS: dict[str, str] = {
    "RETAIL_POS_DROP_DIR": "data/pos_drop",
    "RETAIL_POS_LAYOUTS_DIR": "data/layouts",
    "RETAIL_ONLINE_STORE_URL": "sqlite:///data/online_store.db",
    "RETAIL_CRM_URL": "sqlite:///data/crm.db",
    "RETAIL_WAREHOUSE_URL": "duckdb:///data/warehouse.duckdb",
    "RETAIL_TIMEZONE": "America/New_York",
    "RETAIL_CURRENCY": "USD",
    "RETAIL_PARTITION_START": "2010-12-01",
    "RETAIL_MAX_REJECTED_LINE_RATE": "0.5",
    # A re-send that would remove more than this share of a store-day's booked lines is held for an operator.
    "RETAIL_RESEND_HOLD_SHARE": "0.5",
    # Files larger than this are read and checked in chunks of this size, never whole.
    "RETAIL_POS_CHUNK_BYTES": "8388608",
    "DAGSTER_HOME": "data/dagster_home",
    # Automation: a dropped file is stable once its mtime is this old and its (size, mtime) held for a tick.
    "RETAIL_POS_SETTLE_SECONDS": "30",
    "RETAIL_POS_SENSOR_INTERVAL_SECONDS": "30",
    "RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS": "300",
    # When the reference refresh starts each day, in RETAIL_TIMEZONE; the previous business date loads after it.
    "RETAIL_DAILY_SCHEDULE_CRON": "0 6 * * *",
    # By this time of day (RETAIL_TIMEZONE) the previous business date must be loaded (check loaded_by_deadline).
    "RETAIL_FRESHNESS_DEADLINE": "10:00",
    # A step that failed for a transient reason (database out of reach, deadlock, DuckDB file held) is retried
    # this many times, the first after this many seconds, then with Dagster's exponential backoff.
    "RETAIL_TRANSIENT_RETRIES": "3",
    "RETAIL_TRANSIENT_RETRY_SECONDS": "30",
    # Alerts (automation/alerts.py): the web UI the links point into, and the mail server's submission port;
    # the channels themselves (RETAIL_ALERT_SMTP_HOST, RETAIL_ALERT_WEBHOOK_URL, ...) are off until set.
    "RETAIL_UI_BASE_URL": "http://localhost:3000",
    "RETAIL_ALERT_SMTP_PORT": "587",
    "RETAIL_ALERT_SMTP_STARTTLS": "auto",
}

# Connection strings and folders: bound to the resources as ``dg.EnvVar`` whether set or not (see
# ``connection_defaults``).
CONNECTION_VARIABLES = ("RETAIL_POS_DROP_DIR", "RETAIL_POS_LAYOUTS_DIR", "RETAIL_ONLINE_STORE_URL", "RETAIL_CRM_URL",
                        "RETAIL_WAREHOUSE_URL")


def load_dotenv() -> None:
    """Variables of the ``.env`` file (``RETAIL_ENV_FILE``) that the environment does not set already."""
    env_file = Path(os.environ.get("RETAIL_ENV_FILE", ".env"))
    if env_file.is_file():
        from dotenv import load_dotenv as _load

        _load(env_file, override=False)


def _value(name: str) -> str:
    """One variable's value, or its default when unset or empty."""
    return os.environ.get(name) or DEFAULTS[name]


def is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def bind(name: str, cast: type = str):
    """How a run-time setting is given to a resource: ``dg.EnvVar(name)`` when the variable is set (the UI shows
    the name, never the value, and the value is read when a run or tick starts), else its default as ``cast``
    (None for a variable without one, an alert channel's). Dagster's EnvVar holds strings and ints only, so a
    float setting is passed as its value, read now (a number is no secret)."""
    if cast is float:
        return float(_value(name))
    if is_set(name):
        return dg.EnvVar.int(name) if cast is int else dg.EnvVar(name)
    default = DEFAULTS.get(name)
    return None if default is None else cast(default)


def connection_defaults() -> None:
    """Put the embedded default of each unset connection string or folder into the environment.

    They are bound as ``dg.EnvVar`` even when unset, unlike the other settings: a process that sets them after
    importing the definitions (``retail-etl run`` after reading ``.env``, a test) must get its values, not the
    defaults of the moment of the import. Dagster's EnvVar has no default, so for these five variables alone the
    default has to be in the environment."""
    for name in CONNECTION_VARIABLES:
        if not is_set(name):
            os.environ[name] = DEFAULTS[name]


def parse_deadline(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"RETAIL_FRESHNESS_DEADLINE must be a time of day as HH:MM, not {text!r}") from None


@dataclass(frozen=True)
class DefinitionSettings:
    """What the definitions are built from: changing one means reloading the code location."""

    timezone: str
    partition_start: str
    daily_cron: str
    pos_interval_seconds: int
    online_interval_seconds: int
    freshness_deadline: time
    transient_retries: int
    transient_retry_seconds: float


def read_definition_settings() -> DefinitionSettings:
    load_dotenv()
    return DefinitionSettings(
        timezone=_value("RETAIL_TIMEZONE"),
        partition_start=_value("RETAIL_PARTITION_START"),
        daily_cron=_value("RETAIL_DAILY_SCHEDULE_CRON"),
        pos_interval_seconds=int(_value("RETAIL_POS_SENSOR_INTERVAL_SECONDS")),
        online_interval_seconds=int(_value("RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS")),
        freshness_deadline=parse_deadline(_value("RETAIL_FRESHNESS_DEADLINE")),
        transient_retries=int(_value("RETAIL_TRANSIENT_RETRIES")),
        transient_retry_seconds=float(_value("RETAIL_TRANSIENT_RETRY_SECONDS")),
    )


DEFINITION_SETTINGS = read_definition_settings()


@dataclass(frozen=True)
class Settings:
    """What a command line entry point needs before (or besides) the definitions."""

    pos_drop_dir: Path
    pos_layouts_dir: Path
    online_store_url: str
    crm_url: str
    warehouse_url: str
    timezone: str
    currency: str
    partition_start: str
    max_rejected_line_rate: float
    resend_hold_share: float
    pos_chunk_bytes: int
    dagster_home: Path


def dagster_home() -> Path:
    return Path(_value("DAGSTER_HOME")).expanduser().resolve()


def load_settings() -> Settings:
    """For process entry points: read ``.env`` and the variables, make the connection variables and
    ``DAGSTER_HOME`` (absolute: Dagster insists) present for the definitions and the instance."""
    load_dotenv()
    connection_defaults()
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    return Settings(
        pos_drop_dir=Path(_value("RETAIL_POS_DROP_DIR")),
        pos_layouts_dir=Path(_value("RETAIL_POS_LAYOUTS_DIR")),
        online_store_url=_value("RETAIL_ONLINE_STORE_URL"),
        crm_url=_value("RETAIL_CRM_URL"),
        warehouse_url=_value("RETAIL_WAREHOUSE_URL"),
        timezone=_value("RETAIL_TIMEZONE"),
        currency=_value("RETAIL_CURRENCY"),
        partition_start=_value("RETAIL_PARTITION_START"),
        max_rejected_line_rate=float(_value("RETAIL_MAX_REJECTED_LINE_RATE")),
        resend_hold_share=float(_value("RETAIL_RESEND_HOLD_SHARE")),
        pos_chunk_bytes=int(_value("RETAIL_POS_CHUNK_BYTES")),
        dagster_home=home,
    )
