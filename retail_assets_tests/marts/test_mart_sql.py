"""Each mart's SQL, on both engines, equals an independent pandas computation from the same frames, to the cent."""

from __future__ import annotations

from datetime import date

import pandas as pd

from retail_assets.assets.marts import (
    build_mart_customer_360,
    build_mart_daily_sales,
    build_mart_inventory_health,
    build_mart_product_performance,
)
from retail_assets.assets.marts.inventory_health import sales_window
from retail_assets.resources import Warehouse
from retail_assets.schemas.marts import (
    MART_CUSTOMER_360,
    MART_DAILY_SALES,
    MART_INVENTORY_HEALTH,
    MART_PRODUCT_PERFORMANCE,
)
from retail_assets.schemas.warehouse import FACT_SALES
from retail_assets_tests.marts import expected
from retail_assets_tests.marts.data import StarSchema

DAYS = [date(2024, 11, 20), date(2025, 2, 24), date(2025, 3, 3), date(2025, 3, 5), date(2025, 3, 8),
        date(2025, 3, 11), date(2025, 3, 14), date(2025, 3, 16)]
"""Days with one lone line, a hand-made week, random receipts with exchanges, returns and refunds, and a day
whose store S02 is hand-made."""


def test_daily_sales(warehouse: Warehouse, star: StarSchema) -> None:
    built = pd.concat([build_mart_daily_sales(warehouse, day) for day in DAYS], ignore_index=True)
    expected.assert_matches(MART_DAILY_SALES, built, expected.daily_sales(star, DAYS))
    stored = warehouse.read(MART_DAILY_SALES)
    assert len(stored) == len(built)
    facts = star.fact_sales[star.fact_sales["business_date"].isin([pd.Timestamp(d) for d in DAYS])]
    assert round(stored["net_revenue"].sum(), 2) == round(facts["net_amount"].sum(), 2)

    harbor = built[(built["store_code"] == "S02") & (built["business_date"] == pd.Timestamp("2025-03-16"))].iloc[0]
    # 4.00 + 6.05 on two receipts: 5.025 rounds half-up; the receipt that only returns is no receipt
    assert (harbor["receipts"], harbor["sales_amount"], harbor["average_basket"]) == (2, 10.05, 5.03)
    assert (harbor["units_sold"], harbor["units_returned"], harbor["return_rate"]) == (2, 1, 0.5)
    assert harbor["net_revenue"] == 7.55


def test_daily_sales_rebuild_replaces_only_its_day(warehouse: Warehouse, star: StarSchema) -> None:
    first, second = date(2025, 3, 10), date(2025, 3, 11)
    build_mart_daily_sales(warehouse, first)
    kept = build_mart_daily_sales(warehouse, second)
    with warehouse.transaction() as tx:  # a corrected reload of the first day: one line less
        line = star.fact_sales[star.fact_sales["business_date"] == pd.Timestamp(first)].iloc[[0]]
        tx.delete(FACT_SALES, {"sale_line_id": line["sale_line_id"].iloc[0]})
    again = build_mart_daily_sales(warehouse, first)
    before = star.fact_sales[(star.fact_sales["business_date"] == pd.Timestamp(first))]
    assert round(again["net_revenue"].sum(), 2) == round(before["net_amount"].sum() - line["net_amount"].iloc[0], 2)
    assert len(warehouse.read(MART_DAILY_SALES, {"business_date": first})) == len(again)
    pd.testing.assert_frame_equal(warehouse.read(MART_DAILY_SALES, {"business_date": second}).sort_values(
        list(MART_DAILY_SALES.natural_key), ignore_index=True), kept)


def test_product_performance(warehouse: Warehouse, star: StarSchema) -> None:
    frame = build_mart_product_performance(warehouse)
    expected.assert_matches(MART_PRODUCT_PERFORMANCE, frame, expected.product_performance(star))
    first_week = frame[frame["week_start"] == pd.Timestamp("2025-02-24")].set_index("sku")
    # Rice and Tea tie in Grocery; Coffee sold as Grocery then is ranked in today's Beverages
    assert first_week.loc[["GR-000005", "GR-000004"], "category_rank"].tolist() == [1, 1]
    assert first_week.loc["GR-000003", ["category", "category_rank"]].tolist() == ["Beverages", 1]
    # Coffee's cost is that of the version sold (4.00), Tea's is unknown
    assert first_week.loc["GR-000003", "margin"] == round(8.99 - 4.00, 2)
    assert pd.isna(first_week.loc["GR-000004", "margin"])
    assert build_mart_product_performance(warehouse).equals(frame)  # a rebuild, not an append


def test_customer_360(warehouse: Warehouse, star: StarSchema) -> None:
    frame = build_mart_customer_360(warehouse)
    expected.assert_matches(MART_CUSTOMER_360, frame, expected.customer_360(star))
    by_id = frame.set_index("customer_id")
    assert by_id.loc[["crm:C4", "crm:C5", "crm:C6", "crm:C7", "crm:C9", "crm:C10", "crm:C11"],
                     "rfm_segment"].tolist() == ["prospect", "champion", "at_risk", "lost", "new", "active", "loyal"]
    assert by_id.loc["crm:C1", "loyalty_tier"] == "gold"  # the current tier, sales of both versions counted
    assert by_id.loc["crm:C1", "channels"] == "online,store"
    assert "UNKNOWN" not in by_id.index


def test_inventory_health(warehouse: Warehouse, star: StarSchema) -> None:
    for day in (date(2025, 3, 10), date(2025, 3, 16)):
        frame = build_mart_inventory_health(warehouse, day)
        expected.assert_matches(MART_INVENTORY_HEALTH, frame, expected.inventory_health(star, day))
        assert set(frame["stock_status"]) == {"stock_out", "low", "ok", "overstock"}
        assert (frame["sales_window_days"] == 28).all()


def test_inventory_health_short_history(warehouse: Warehouse, star: StarSchema) -> None:
    early = star.fact_sales["business_date"] < pd.Timestamp("2025-02-24")
    with warehouse.transaction() as tx:
        tx.delete(FACT_SALES, {"sale_line_id": star.fact_sales.loc[early, "sale_line_id"].tolist()})
    star = StarSchema(**{**vars(star), "fact_sales": star.fact_sales[~early]})
    day = date(2025, 3, 10)
    frame = build_mart_inventory_health(warehouse, day)
    expected.assert_matches(MART_INVENTORY_HEALTH, frame, expected.inventory_health(star, day))
    assert (frame["sales_window_days"] == 15).all()


def test_sales_window() -> None:
    day = date(2025, 3, 28)
    assert sales_window(day, None) == (date(2025, 3, 1), 28)
    assert sales_window(day, date(2024, 1, 1)) == (date(2025, 3, 1), 28)
    assert sales_window(day, date(2025, 3, 20)) == (date(2025, 3, 20), 9)
    assert sales_window(day, date(2025, 3, 28)) == (date(2025, 3, 28), 1)


def test_marts_of_an_empty_warehouse_are_empty(warehouse_url: str) -> None:
    wh = Warehouse(url=warehouse_url)
    try:
        assert build_mart_daily_sales(wh, date(2025, 3, 3)).empty
        assert build_mart_product_performance(wh).empty
        assert build_mart_customer_360(wh).empty
        assert build_mart_inventory_health(wh, date(2025, 3, 3)).empty
    finally:
        wh.dispose()
