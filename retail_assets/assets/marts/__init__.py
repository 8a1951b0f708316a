"""Marts: analyst-facing aggregates of the star schema, computed inside the warehouse with portable SQL.

Each module holds one mart: its SQL, a plain ``build_mart_*`` function (usable without Dagster) and the asset
that calls it. The daily marts rebuild one business date per run; the others are rebuilt in full.
"""

from retail_assets.assets.marts.customer_360 import build_mart_customer_360
from retail_assets.assets.marts.daily_sales import build_mart_daily_sales
from retail_assets.assets.marts.inventory_health import build_mart_inventory_health
from retail_assets.assets.marts.product_performance import build_mart_product_performance

__all__ = [
    "build_mart_customer_360",
    "build_mart_daily_sales",
    "build_mart_inventory_health",
    "build_mart_product_performance",
]
