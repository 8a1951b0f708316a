"""The one place that reads configuration: environment variables, optionally from a ``.env`` file.

Every variable has an embedded default under ``data/`` so that nothing needs a server. ``load_settings`` also
writes the defaults back into the environment, so resources can be bound with ``dg.EnvVar`` (the UI then shows
the variable's name, never a connection string with a password in it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    # A step that failed for a transient reason (database out of reach, deadlock, DuckDB file held) is retried
    # this many times, the first after this many seconds, each next one after twice as long.
    # By this time of day (RETAIL_TIMEZONE) the previous business date must be loaded (check loaded_by_deadline).
    "RETAIL_FRESHNESS_DEADLINE": "10:00",
    "RETAIL_TRANSIENT_RETRIES": "3",
    "RETAIL_TRANSIENT_RETRY_SECONDS": "30",
    # Alerts (automation/alerts.py): the web UI the links point into, and the mail server's submission port;
    # the channels themselves (RETAIL_ALERT_SMTP_HOST, RETAIL_ALERT_WEBHOOK_URL, ...) are off until set.
    "RETAIL_UI_BASE_URL": "http://localhost:3000",
    "RETAIL_ALERT_SMTP_PORT": "587",
    "RETAIL_ALERT_SMTP_STARTTLS": "auto",
}


@dataclass(frozen=True)
class Settings:
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


def _load_dotenv() -> None:
    env_file = Path(os.environ.get("RETAIL_ENV_FILE", ".env"))
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


def setting(name: str) -> str:
    """One variable's value, or its default when unset or empty (without touching the environment)."""
    return os.environ.get(name) or DEFAULTS[name]


def optional_setting(name: str) -> str | None:
    """A variable with no default (an alert channel's), or None when unset or empty."""
    return os.environ.get(name, "").strip() or None


def load_settings() -> Settings:
    """Read the configuration, filling the environment with defaults for what is unset."""
    _load_dotenv()
    for name, default in DEFAULTS.items():
        if not os.environ.get(name):
            os.environ[name] = default
    home = Path(os.environ["DAGSTER_HOME"]).resolve()
    os.environ["DAGSTER_HOME"] = str(home)  # Dagster insists on an absolute path
    return Settings(
        pos_drop_dir=Path(os.environ["RETAIL_POS_DROP_DIR"]),
        pos_layouts_dir=Path(os.environ["RETAIL_POS_LAYOUTS_DIR"]),
        online_store_url=os.environ["RETAIL_ONLINE_STORE_URL"],
        crm_url=os.environ["RETAIL_CRM_URL"],
        warehouse_url=os.environ["RETAIL_WAREHOUSE_URL"],
        timezone=os.environ["RETAIL_TIMEZONE"],
        currency=os.environ["RETAIL_CURRENCY"],
        partition_start=os.environ["RETAIL_PARTITION_START"],
        max_rejected_line_rate=float(os.environ["RETAIL_MAX_REJECTED_LINE_RATE"]),
        resend_hold_share=float(os.environ["RETAIL_RESEND_HOLD_SHARE"]),
        pos_chunk_bytes=int(os.environ["RETAIL_POS_CHUNK_BYTES"]),
        dagster_home=home,
    )
