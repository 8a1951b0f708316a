"""The sensors, by what they watch: the POS drop folder (``pos_sensors``), the online shop (``online_sensors``)
and the reference refresh (``chaining``); what they share is ``common``.

``all_sensors`` are the module-level ones; the sensor that loads the day after the scheduled refresh watches the
jobs themselves, so ``definitions.py`` builds it from them (``chaining.build_daily_chain``).
"""

from retail_assets.automation.chaining import build_daily_chain, days_fixed_by_stores, pos_reload_after_stores_change
from retail_assets.automation.common import DAILY_CHAIN_TAG, TRIGGER_TAG, partition_bounds
from retail_assets.automation.online_sensors import online_orders_sensor, online_recheck_sensor, online_returns_sensor
from retail_assets.automation.pos_sensors import pos_drop_sensor, pos_reference_sensor, reference_not_ready

all_sensors = [pos_drop_sensor, pos_reference_sensor, online_orders_sensor, online_returns_sensor,
               online_recheck_sensor, pos_reload_after_stores_change]

__all__ = ["DAILY_CHAIN_TAG", "TRIGGER_TAG", "all_sensors", "build_daily_chain", "days_fixed_by_stores",
           "online_orders_sensor", "online_recheck_sensor", "online_returns_sensor", "partition_bounds",
           "pos_drop_sensor", "pos_reference_sensor", "pos_reload_after_stores_change", "reference_not_ready"]
