"""The mart assets through Dagster: materialised on a loaded warehouse, with their checks and plotted KPIs."""

from __future__ import annotations

import math
from datetime import date

import dagster as dg
import pandas as pd

from retail_assets.assets.marts.customer_360 import mart_customer_360
from retail_assets.assets.marts.daily_sales import mart_daily_sales
from retail_assets.assets.marts.inventory_health import mart_inventory_health
from retail_assets.assets.marts.product_performance import mart_product_performance
from retail_assets.resources import Warehouse
from retail_assets.schemas.marts import MART_DAILY_SALES, MART_INVENTORY_HEALTH
from retail_assets_tests.marts import expected
from retail_assets_tests.marts.data import StarSchema

MARTS = [mart_daily_sales, mart_product_performance, mart_customer_360, mart_inventory_health]
DAY = date(2025, 3, 16)


def test_marts_load_as_a_package_with_their_lineage() -> None:
    assets = {a.key.to_user_string(): a for a in dg.load_assets_from_package_name("retail_assets.assets.marts")}
    assert set(assets) == {"mart_daily_sales", "mart_product_performance", "mart_customer_360",
                           "mart_inventory_health"}
    for name, asset in assets.items():
        spec = next(iter(asset.specs))
        assert (spec.group_name, set(spec.kinds), list(spec.owners)) == ("marts", {"sql"}, ["team:data-platform"])
        assert "Business rules" in (spec.description or ""), name
        assert spec.metadata["dagster/table_name"] == name
        assert {d.asset_key.to_user_string() for d in spec.deps} <= {
            "fact_sales", "fact_inventory", "dim_product", "dim_customer", "dim_store", "dim_date"}
    assert assets["mart_daily_sales"].partitions_def is not None
    assert assets["mart_product_performance"].partitions_def is None


def test_materialise_the_marts(warehouse_url: str, warehouse: Warehouse, star: StarSchema) -> None:
    result = dg.materialize(MARTS, resources={"warehouse": Warehouse(url=warehouse_url)},
                            partition_key=DAY.isoformat())
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 5 and all(c.passed for c in checks), [(c.asset_key, c.check_name) for c in checks]

    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert set(meta) == {a.key.to_user_string() for a in MARTS}
    day = expected.daily_sales(star, [DAY])
    sales = meta["mart_daily_sales"]
    assert sales["dagster/row_count"].value == len(day)
    assert sales["net_revenue"].value == round(day["net_c"].sum() / 100, 2)
    assert sales["units"].value == day["units"].sum()
    assert isinstance(sales["return_rate"], dg.FloatMetadataValue)
    assert math.isclose(sales["return_rate"].value, day["units_returned"].sum() / day["units_sold"].sum())
    assert isinstance(sales["preview"], dg.MarkdownMetadataValue) and "S02" in sales["preview"].value
    assert meta["mart_inventory_health"]["stock_outs"].value == int(
        expected.inventory_health(star, DAY)["is_stock_out"].sum())
    assert meta["mart_customer_360"]["segment_champion"].value >= 1

    stored = warehouse.read(MART_DAILY_SALES)
    assert set(stored["business_date"]) == {pd.Timestamp(DAY)}  # the partition, nothing else
    assert len(warehouse.read(MART_INVENTORY_HEALTH)) == meta["mart_inventory_health"]["dagster/row_count"].value
