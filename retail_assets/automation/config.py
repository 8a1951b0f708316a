"""Knobs of the automation layer (defaults in ``retail_assets.settings``; tests set them small)."""

from __future__ import annotations

from dataclasses import dataclass

from retail_assets.settings import setting


@dataclass(frozen=True)
class AutomationSettings:
    settle_seconds: float
    pos_interval_seconds: int
    online_interval_seconds: int
    daily_cron: str


def automation_settings() -> AutomationSettings:
    return AutomationSettings(
        settle_seconds=float(setting("RETAIL_POS_SETTLE_SECONDS")),
        pos_interval_seconds=int(setting("RETAIL_POS_SENSOR_INTERVAL_SECONDS")),
        online_interval_seconds=int(setting("RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS")),
        daily_cron=setting("RETAIL_DAILY_SCHEDULE_CRON"),
    )
