"""fact_sales (POS and online, returns included) and fact_inventory, against a small hand-made company.

The company (see ``__init__``): stores S1 (New York) and S2 (Los Angeles); the hair brush HB-004211 whose price
changes on 2024-03-01 12:00 UTC (product keys 1 then 3) and the shampoo SH-000100 (key 2); Ann, in the CRM
twice (C1 and C2, merged into crm:C1) and in the shop as 501/502, whose tier goes from silver to gold on
2024-03-10 09:00 UTC (customer keys 1 then 4); Carl (crm:C3, key 2); Bob, online only (online:600, key 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import RAW_POS_INVENTORY, RAW_POS_SALES, REJECTIONS
from retail_assets.schemas.warehouse import (
    BRIDGE_CUSTOMER_IDENTITY,
    DIM_CUSTOMER,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_INVENTORY,
    FACT_SALES,
)
from retail_assets.transforms.dimensions import build_dim_product, build_dim_store
from retail_assets.transforms.facts import ONLINE_LINES, ONLINE_STOCK, online_lines, online_stock
from retail_assets.transforms.facts_sql import insert_fact_inventory, insert_fact_sales
from retail_assets.transforms.identity import build_dim_customer, resolve_customers
from retail_assets.transforms.normalise import normalise_loyalty_card, normalise_sku
from retail_assets_tests.conftest import drop_pg_database, engine_warehouse

from . import (
    RUN,
    T,
    raw_online_inventory,
    raw_order_items,
    raw_orders,
    raw_pos_inventory,
    raw_pos_sales,
    raw_returns,
    raw_stores,
    scenario_catalog,
    scenario_contacts,
    scenario_online_customers,
)

TZ = "America/New_York"


@pytest.fixture(scope="module")
def dims() -> dict[str, pd.DataFrame]:
    dim_store = build_dim_store(
        raw_stores({"store_code": "S1", "timezone": "America/New_York"},
                   {"store_code": "S2", "timezone": "America/Los_Angeles"}),
        None, reporting_timezone=TZ)
    dim_product = build_dim_product(scenario_catalog(price=13.75, updated="2024-03-01 12:00"),
                                    build_dim_product(scenario_catalog(), None))
    first, _ = resolve_customers(scenario_contacts(), scenario_online_customers())
    upgraded, bridge = resolve_customers(scenario_contacts(tier_of_c2="gold", c2_updated="2024-03-10 09:00"),
                                         scenario_online_customers())
    dim_customer = build_dim_customer(upgraded, build_dim_customer(first, None))
    # The keys the tests below reason with.
    assert dict(zip(dim_store["store_code"], dim_store["store_key"], strict=True)) == {
        "UNKNOWN": -1, "ONLINE": 1, "S1": 2, "S2": 3}
    assert dim_product[["product_key", "sku_norm"]].values.tolist() == [
        [-1, "UNKNOWN"], [1, "HB004211"], [2, "SH000100"], [3, "HB004211"]]
    assert dim_product["list_price"].tolist()[1:] == [12.50, 7.99, 13.75]
    assert dim_customer[["customer_key", "customer_id"]].values.tolist() == [
        [-1, "UNKNOWN"], [1, "crm:C1"], [2, "crm:C3"], [3, "online:600"], [4, "crm:C1"]]
    assert dim_customer["loyalty_tier"].fillna("-").tolist() == ["-", "silver", "-", "-", "gold"]
    return {"dim_store": dim_store, "dim_product": dim_product, "dim_customer": dim_customer, "bridge": bridge}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, dims: dict[str, pd.DataFrame],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A warehouse of each engine holding the dimensions above (loaded once per module)."""
    url, database = engine_warehouse(request, tmp_path_factory.mktemp("facts"))
    warehouse = Warehouse(url=url)
    with warehouse.transaction() as tx:
        for spec, key in ((DIM_STORE, "dim_store"), (DIM_PRODUCT, "dim_product"), (DIM_CUSTOMER, "dim_customer"),
                          (BRIDGE_CUSTOMER_IDENTITY, "bridge")):
            tx.replace(spec, dims[key], {})
    yield warehouse
    warehouse.dispose()
    if database:
        drop_pg_database(request.getfixturevalue("pg_admin"), database)


def _days(*frames: pd.DataFrame) -> list:
    return sorted({d for f in frames for d in pd.to_datetime(f["business_date"]).dt.date})


def _sales(warehouse: Warehouse, raw: pd.DataFrame, online: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """fact_sales of the POS lines ``raw`` and the ONLINE_LINES ``online``, by the warehouse's own statement, day
    by day as the asset runs it; the facts in the order of their source lines, and what each day reported."""
    with warehouse.transaction() as tx:
        tx.replace(RAW_POS_SALES, raw, {})
        tx.delete(FACT_SALES, {})
        days = [insert_fact_sales(tx, day, online[online["business_date"] == pd.Timestamp(day)], run_id=RUN,
                                  reporting_timezone=TZ) for day in _days(raw, online)]
    out = warehouse.read(FACT_SALES)
    order = pd.DataFrame({"file_line": _last_number(out["source_ref"]), "line": _last_number(out["sale_line_id"])})
    out = out.loc[order.sort_values(["file_line", "line"]).index].reset_index(drop=True)
    FACT_SALES.schema.validate(out)
    return out, days


@pytest.fixture(scope="module")
def pos(warehouse: Warehouse) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """POS raw lines -> fact_sales rows (``run.days``: what insert_fact_sales reported for each day)."""

    def run(raw: pd.DataFrame) -> pd.DataFrame:
        out, run.days = _sales(warehouse, raw, ONLINE_LINES.empty())  # type: ignore[attr-defined]
        return out

    run.warehouse = warehouse  # type: ignore[attr-defined]
    return run


def _last_number(refs: pd.Series) -> pd.Series:
    """``<...>:<n>`` -> n: facts are put back in the order of their raw lines (file line, then receipt line)."""
    return refs.str.rsplit(":", n=1).str[-1].astype(int)


def assert_spec_identity(facts: pd.DataFrame) -> None:
    """SPEC: net_amount = gross_amount - sign(quantity) * discount_amount, to the cent; gross = quantity * price."""
    for row in facts.itertuples():
        q = Decimal(row.quantity)
        gross, disc, net = (Decimal(str(v)) for v in (row.gross_amount, row.discount_amount, row.net_amount))
        assert gross == q * Decimal(str(row.unit_price)), row.sale_line_id
        assert net == gross - (1 if q > 0 else -1) * disc, row.sale_line_id


# ------------------------------------------------------------------------------------------------ POS sales


def test_pos_amounts_are_exact_to_the_cent_and_keep_the_spec_identity(pos):
    facts = pos(raw_pos_sales(
        {"line_no": 1, "quantity": 3, "unit_price": 19.99, "discount": 5.00},
        {"line_no": 2, "quantity": -2, "unit_price": 19.99, "discount": 1.00},
        {"line_no": 3, "quantity": 3, "unit_price": 0.10, "discount": 0.00},
        {"line_no": 4, "quantity": 7, "unit_price": 1.15, "discount": 0.05},
    ))
    assert facts["gross_amount"].tolist() == [59.97, -39.98, 0.30, 8.05]
    assert facts["discount_amount"].tolist() == [5.00, 1.00, 0.00, 0.05]
    assert facts["net_amount"].tolist() == [54.97, -38.98, 0.30, 8.00]   # a return gives its discount back
    assert facts["is_return"].tolist() == [False, True, False, False]
    assert_spec_identity(facts)


def test_pos_line_identity_and_lineage(pos):
    facts = pos(raw_pos_sales({"receipt_id": "0042", "line_no": 3, "source_line": 17}))
    row = facts.iloc[0]
    assert row["sale_line_id"] == "pos:S1:20240701:0042:3"
    assert row["receipt_ref"] == "pos:S1:20240701:0042"
    assert row["source_ref"] == "sales_S1_20240701.csv:17"
    assert (row["date_key"], row["store_key"], row["channel"], row["source_system"], row["run_id"]) == (
        20240701, 2, "store", "pos", RUN)


def test_pos_sold_at_utc_uses_the_store_timezone_across_dst(pos):
    facts = pos(raw_pos_sales(
        {"line_no": 1, "sold_at": T("2024-01-15 12:00")},                      # EST, UTC-5
        {"line_no": 2, "sold_at": T("2024-07-01 12:00")},                      # EDT, UTC-4
        {"line_no": 3, "sold_at": T("2024-03-10 02:30")},                      # skipped hour: moves to 03:00 EDT
        {"line_no": 4, "sold_at": T("2024-11-03 01:30")},                      # repeated hour: first (EDT)
        {"line_no": 5, "sold_at": T("2024-07-01 12:00"), "store_code": "S2"},  # PDT, UTC-7
    ))
    assert facts["sold_at_utc"].tolist() == [T("2024-01-15 17:00"), T("2024-07-01 16:00"), T("2024-03-10 07:00"),
                                            T("2024-11-03 05:30"), T("2024-07-01 19:00")]
    assert facts["sold_at"].tolist()[2] == T("2024-03-10 02:30")   # local time is kept as the till printed it
    assert facts["store_key"].tolist() == [2, 2, 2, 2, 3]


def test_pos_product_is_the_version_valid_when_sold(pos):
    brush = {"sku_raw": "HB-004211", "sku_norm": "HB004211"}
    facts = pos(raw_pos_sales(
        {**brush, "line_no": 1, "sold_at": T("2024-03-01 06:00")},   # 11:00 UTC: before the 12:00 UTC change
        {**brush, "line_no": 2, "sold_at": T("2024-03-01 07:30")},   # 12:30 UTC: after it
        {**brush, "line_no": 3, "sold_at": T("2023-12-01 10:00")},   # before the first version: the earliest
        {"line_no": 4, "sku_raw": "zz-999", "sku_norm": "ZZ999", "sold_at": T("2024-03-01 06:00")},
    ))
    assert facts["product_key"].tolist() == [1, 3, 1, -1]
    assert facts["sku"].tolist() == ["HB004211", "HB004211", "HB004211", "ZZ999"]   # unknown SKU still reported


def test_pos_sku_variants_resolve_to_the_catalog_product(pos):
    variants = ["hb-004211", "HB004211", " HB-004211 ", "HB-004211"]
    # sku_norm is what the raw layer makes of the printed SKU (normalise_sku); the fact matches the catalog on it.
    facts = pos(raw_pos_sales(*[{"line_no": i, "sku_raw": v, "sold_at": T("2024-02-01 10:00"),
                                 "sku_norm": normalise_sku(pd.Series([v])).iloc[0]}
                                for i, v in enumerate(variants, start=1)]))
    assert facts["product_key"].tolist() == [1, 1, 1, 1]
    assert set(facts["sku"]) == {"HB004211"}


def test_pos_customer_by_loyalty_card_at_the_version_valid_when_sold(pos):
    raw = raw_pos_sales(
        {"line_no": 1, "loyalty_card": "LC-200 ", "sold_at": T("2024-03-05 10:00")},  # card of duplicate C2
        {"line_no": 2, "loyalty_card": "lc-200", "sold_at": T("2024-03-12 10:00")},   # after the tier change
        {"line_no": 3, "loyalty_card": "LC-100", "sold_at": T("2024-03-05 10:00")},   # card of survivor C1
        {"line_no": 4, "loyalty_card": "LC-300", "sold_at": T("2024-03-05 10:00")},
        {"line_no": 5, "loyalty_card": None},                                          # anonymous
        {"line_no": 6, "loyalty_card": "LC-777"},                                      # nobody's card
        {"line_no": 7, "loyalty_card": "LC-900"},                                      # deleted contact's card
    )
    raw["loyalty_card"] = normalise_loyalty_card(raw["loyalty_card"])  # as the raw layer stores it
    facts = pos(raw)
    assert facts["customer_key"].tolist() == [1, 4, 1, 2, -1, -1, -1]


def test_pos_fact_sales_of_nothing_is_an_empty_valid_frame(pos):
    out = pos(raw_pos_sales())
    assert out.empty
    assert list(out.columns) == FACT_SALES.columns


def test_pos_performance_smoke_is_correct_on_200k_rows(pos):
    rng = np.random.default_rng(42)
    n = 200_000
    sku_choices = np.array(["HB004211", "SH000100", "NOPE01"])
    card_choices = np.array(["LC-100", "LC-300", None], dtype=object)
    sku = sku_choices[rng.integers(0, 3, n)]
    card = card_choices[rng.integers(0, 3, n)]
    store = np.where(rng.integers(0, 2, n) == 0, "S1", "S2")
    # Summer only, after the brush price change and Ann's upgrade: local = UTC-4 in S1 and UTC-7 in S2.
    sold_at = T("2024-06-01") + pd.to_timedelta(rng.integers(0, 90 * 86_400, n), unit="s")
    quantity = rng.choice(np.array([-2, -1, 1, 2, 3, 5]), n)
    price_cents = rng.integers(1, 100_000, n)
    discount_cents = rng.integers(0, 500, n)
    raw = pd.DataFrame({
        "business_date": sold_at.normalize(), "store_code": store, "receipt_id": np.arange(n).astype(str),
        "line_no": 1, "sold_at": sold_at, "register_id": "1", "cashier_id": "2", "sku_raw": sku, "sku_norm": sku,
        "quantity": quantity, "unit_price": price_cents / 100, "discount": discount_cents / 100,
        "loyalty_card": card, "payment_method": "cash", "layout": "standard", "source_file": "f.csv",
        "source_line": np.arange(n) + 2, "run_id": RUN,
    })
    facts = pos(raw)
    assert len(facts) == n
    assert facts["sale_line_id"].is_unique
    offset = np.where(store == "S1", 4, 7)
    np.testing.assert_array_equal(facts["sold_at_utc"].to_numpy(),
                                  (sold_at + pd.to_timedelta(offset, unit="h")).to_numpy())
    np.testing.assert_array_equal(facts["product_key"].to_numpy(),
                                  np.select([sku == "HB004211", sku == "SH000100"], [3, 2], -1))
    np.testing.assert_array_equal(facts["customer_key"].to_numpy(),
                                  np.select([card == "LC-100", card == "LC-300"], [4, 2], -1))
    gross = quantity * price_cents
    net = gross - np.sign(quantity) * discount_cents
    np.testing.assert_array_equal(np.rint(facts["gross_amount"].to_numpy() * 100).astype(np.int64), gross)
    np.testing.assert_array_equal(np.rint(facts["net_amount"].to_numpy() * 100).astype(np.int64), net)
    np.testing.assert_array_equal(facts["net_amount"].to_numpy(), np.round(net / 100, 2))
    # What the reconciliation compares the facts with: the raw lines summed by the warehouse, day by day.
    days = pos.days
    assert len(days) == len(set(sold_at.normalize())) and sum(d.facts for d in days) == n
    assert sum(d.raw_lines for d in days) == n and sum(d.raw_units for d in days) == int(quantity.sum())
    assert sum(round(d.raw_net * 100) for d in days) == int(net.sum())


def test_day_stats_find_dangling_keys_and_unknown_skus_in_the_warehouse(pos):
    from retail_assets.assets.warehouse.facts import DayStats

    facts = pos(raw_pos_sales(
        {"line_no": 1, "sku_raw": "HB-004211", "sku_norm": "HB004211", "quantity": 2, "unit_price": 12.5},
        {"line_no": 2, "sku_raw": "zz-999", "sku_norm": "ZZ999", "quantity": -1, "unit_price": 3.0},
    ))
    # A POS row with keys no dimension has and a channel the model does not allow.
    stray = facts.iloc[[0]].assign(sale_line_id="pos:S9:20240701:R1:1", store_key=99, customer_key=77, channel="kiosk")
    day = pd.Timestamp("2024-07-01").date()
    with pos.warehouse.transaction() as tx:
        tx.append(FACT_SALES, stray)
        stats = DayStats(tx, pos.warehouse, day)
    assert (stats.rows, stats.online_rows, stats.units, stats.return_lines, stats.unknown_products) == (3, 0, 3, 1, 1)
    assert stats.net == 47.0 and stats.pos == (3, 3, 47.0)
    assert stats.unknown_skus == [("ZZ999", 1)]
    assert stats.dangling == {"store_key": [99], "customer_key": [77]}
    assert stats.failures[["column", "failure_case", "count"]].values.tolist() == [["channel", "kiosk", 1]]
    assert not stats.schema(day).passed
    assert not stats.keys_resolved(day).passed
    rate = stats.unknown_product_rate(day)
    assert not rate.passed and rate.metadata["top_unknown_skus"].value == "ZZ999 (1)"


def _pos_facts(day: str, n: int) -> pd.DataFrame:
    """``n`` well-formed POS fact rows of ``day`` (every column of the model)."""
    line = np.arange(1, n + 1)
    sold = pd.Timestamp(day) + pd.to_timedelta(line, unit="s")
    ids = pd.Series([f"pos:S1:{day.replace('-', '')}:R{i}" for i in line])
    return pd.DataFrame({
        "sale_line_id": ids + ":1", "business_date": pd.Timestamp(day), "date_key": int(day.replace("-", "")),
        "sold_at": sold, "sold_at_utc": sold, "store_key": 1, "product_key": 2, "customer_key": -1,
        "channel": "store", "receipt_ref": ids, "sku": "SH000100", "quantity": 1, "unit_price": 4.5,
        "gross_amount": 4.5, "discount_amount": 0.0, "net_amount": 4.5, "is_return": False, "source_system": "pos",
        "source_ref": "f.csv:" + pd.Series(line).astype(str), "run_id": RUN})


def test_day_stats_plan_for_the_rows_the_day_just_wrote(pg_database: str):
    """On PostgreSQL the day's facts are counted in the transaction that wrote them, which no ANALYZE has seen.
    With older days in fact_sales the planner took the new day for empty and hashed its rows in memory sized for
    one (a million lines: 2,048 batches spilled to disk, 6 s instead of 1). DayStats refreshes the statistics
    first, so the plan of its scan expects the day's rows."""
    import json

    import sqlalchemy as sa

    from retail_assets.assets.warehouse.facts import DayStats

    warehouse = Warehouse(url=pg_database)
    try:
        with warehouse.transaction() as tx:
            for spec in (DIM_STORE, DIM_PRODUCT, DIM_CUSTOMER):
                warehouse.table(spec, tx.conn)
            with tx.appender(FACT_SALES) as append:
                for day in pd.date_range("2024-07-01", periods=10).strftime("%Y-%m-%d"):
                    append(_pos_facts(day, 2_000))
        with warehouse.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE fact_sales")
        expected: list[float] = []
        with warehouse.transaction() as tx:
            tx.append(FACT_SALES, _pos_facts("2024-07-11", 2_000))

            @sa.event.listens_for(tx.conn, "before_cursor_execute")
            def explain(conn, cursor, statement, parameters, context, executemany):
                if statement.startswith("SELECT count(*)") and not expected:
                    cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                    plans = [cursor.fetchone()[0][0]["Plan"]]
                    while plans:
                        plan = plans.pop()
                        if plan.get("Relation Name") == "fact_sales":
                            expected.append(plan["Plan Rows"] * (1 + plan.get("Workers Planned", 0)))
                        plans += plan.get("Plans", [])

            stats = DayStats(tx, warehouse, pd.Timestamp("2024-07-11").date())
        assert stats.rows == 2_000
        assert len(expected) == 1 and expected[0] >= 1_000, json.dumps(expected)
    finally:
        warehouse.dispose()


# --------------------------------------------------------------------------------------------- online sales


def orders_of_2024_02_20() -> tuple[pd.DataFrame, pd.DataFrame]:
    orders = raw_orders(
        {"order_id": 1, "status": "paid", "customer_id": 501, "placed_at": T("2024-02-20 15:00")},
        {"order_id": 2, "status": "cancelled", "customer_id": 600},
        {"order_id": 3, "status": "pending", "customer_id": 600},
        {"order_id": 4, "status": "shipped", "guest_email": " BOB@example.com"},
        {"order_id": 5, "status": "delivered", "guest_email": "stranger@example.com"},
        {"order_id": 6, "status": "delivered", "customer_id": 600, "placed_at": T("2024-02-21 03:30")},
    )
    items = raw_order_items(
        {"order_id": 1, "line_no": 1, "product_id": 10, "quantity": 2, "unit_price": 12.50, "discount_amount": 1.25},
        {"order_id": 1, "line_no": 2, "product_id": 11, "quantity": 1, "unit_price": 7.99},
        {"order_id": 2, "line_no": 1, "product_id": 10, "quantity": 1, "unit_price": 12.50},
        {"order_id": 3, "line_no": 1, "product_id": 10, "quantity": 1, "unit_price": 12.50},
        {"order_id": 4, "line_no": 1, "product_id": 999, "quantity": 1, "unit_price": 5.00},
        {"order_id": 5, "line_no": 1, "product_id": 11, "quantity": 3, "unit_price": 7.99, "discount_amount": 2.00},
        {"order_id": 6, "line_no": 1, "product_id": 10, "quantity": 1, "unit_price": 12.50},
    )
    return orders, items


@pytest.fixture
def online(warehouse: Warehouse) -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """A day's online rows -> (fact_sales rows made by the warehouse's statement, rejections)."""

    def run(orders, items, returns, return_items, return_orders) -> tuple[pd.DataFrame, pd.DataFrame]:
        lines, rejects = online_lines(orders, items, returns, return_items=return_items, return_orders=return_orders,
                                      products=scenario_catalog(), timezone=TZ, run_id=RUN)
        REJECTIONS.schema.validate(rejects)
        facts, _ = _sales(warehouse, raw_pos_sales(), lines)
        return facts.sort_values("sale_line_id", ignore_index=True), rejects

    return run


def test_online_paid_orders_are_sales(online):
    orders, items = orders_of_2024_02_20()
    facts, _ = online(orders, items, raw_returns(), raw_order_items(), raw_orders())
    by_id = facts.set_index("sale_line_id")
    assert list(by_id.index) == ["online:order:1:1", "online:order:1:2", "online:order:4:1", "online:order:5:1",
                                 "online:order:6:1"]
    first = by_id.loc["online:order:1:1"]
    assert (first["sold_at_utc"], first["sold_at"]) == (T("2024-02-20 15:00"), T("2024-02-20 10:00"))
    assert (first["store_key"], first["product_key"], first["customer_key"]) == (1, 1, 1)
    assert (first["receipt_ref"], first["source_ref"], first["sku"]) == ("online:order:1", "order_items:1:1",
                                                                         "HB004211")
    assert (first["gross_amount"], first["discount_amount"], first["net_amount"]) == (25.00, 1.25, 23.75)
    assert (first["channel"], first["source_system"], first["date_key"]) == ("online", "online", 20240220)
    assert by_id["customer_key"].to_dict() == {
        "online:order:1:1": 1, "online:order:1:2": 1,
        "online:order:4:1": 3,    # guest checkout with Bob's email (other case, spaces)
        "online:order:5:1": -1,   # guest nobody knows
        "online:order:6:1": 3,
    }
    assert by_id.loc["online:order:4:1", "product_key"] == -1   # product id not in the catalog
    assert pd.isna(by_id.loc["online:order:4:1", "sku"])
    late = by_id.loc["online:order:6:1"]   # 03:30 UTC on the 21st is 22:30 on the 20th in New York
    assert (late["sold_at"], late["business_date"]) == (T("2024-02-20 22:30"), T("2024-02-20"))
    assert (by_id.loc["online:order:5:1", "gross_amount"], by_id.loc["online:order:5:1", "net_amount"]) == (
        23.97, 21.97)
    assert not facts["is_return"].any()
    assert_spec_identity(facts)


def test_online_sold_at_is_the_reporting_timezones_local_time_across_dst(online):
    """Both passes of a fall-back night's repeated hour, and the hour after a spring-forward gap."""
    placed = [T("2024-11-03 05:30"), T("2024-11-03 06:30"), T("2024-11-03 07:30"), T("2024-03-10 06:59:59.5"),
              T("2024-03-10 07:00")]
    orders = raw_orders(*[{"order_id": i, "status": "paid", "placed_at": t} for i, t in enumerate(placed, 1)])
    items = raw_order_items(*[{"order_id": i, "line_no": 1, "product_id": 11} for i in range(1, len(placed) + 1)])
    facts, _ = online(orders, items, raw_returns(), raw_order_items(), raw_orders())
    assert facts["sold_at_utc"].tolist() == placed
    assert facts["sold_at"].tolist() == [T("2024-11-03 01:30"), T("2024-11-03 01:30"), T("2024-11-03 02:30"),
                                         T("2024-03-10 01:59:59.5"), T("2024-03-10 03:00")]


def test_online_pending_and_cancelled_orders_are_rejected_with_reasons(online):
    orders, items = orders_of_2024_02_20()
    _, rejects = online(orders, items, raw_returns(), raw_order_items(), raw_orders())
    assert rejects[["source_key", "reason_code", "reason"]].values.tolist() == [
        ["2:1", "not_a_sale_cancelled", "order 2 is cancelled: not a sale"],
        ["3:1", "not_a_sale_pending", "order 3 is pending: not a sale"],
    ]
    assert set(rejects["asset"]) == {"fact_sales"}
    assert set(rejects["source_system"]) == {"online"}
    assert set(rejects["source_ref"]) == {"order_items"}
    assert set(rejects["business_date"]) == {T("2024-02-20")}
    assert rejects["record"].str.contains('"order_id":2').iloc[0]


def test_online_returns_are_negative_sales_for_the_refund(online):
    orders, items = orders_of_2024_02_20()
    returns = raw_returns(
        {"return_id": 900, "order_id": 1, "line_no": 1, "quantity": 1, "refund_amount": 11.00,
         "returned_at": T("2024-03-06 14:00"), "business_date": T("2024-03-06")},
        {"return_id": 903, "order_id": 1, "line_no": 2, "quantity": 1, "refund_amount": 7.99,
         "returned_at": T("2024-03-12 14:00"), "business_date": T("2024-03-12")},
        {"return_id": 904, "order_id": 5, "line_no": 1, "quantity": 3, "refund_amount": 25.00,
         "returned_at": T("2024-03-06 02:00"), "business_date": T("2024-03-05")},
    )
    facts, rejects = online(raw_orders(), raw_order_items(), returns, items, orders)
    assert rejects.empty
    by_id = facts.set_index("sale_line_id")
    first = by_id.loc["online:return:900"]
    assert (first["quantity"], first["unit_price"], first["gross_amount"]) == (-1, 12.50, -12.50)
    assert (first["net_amount"], first["discount_amount"]) == (-11.00, 1.50)   # net is minus the refund
    assert first["is_return"]
    assert (first["receipt_ref"], first["source_ref"]) == ("online:order:1", "returns:900")
    assert (first["sold_at_utc"], first["sold_at"], first["date_key"]) == (
        T("2024-03-06 14:00"), T("2024-03-06 09:00"), 20240306)
    # Product and customer at the time of the return, not of the order: the new price, still the silver tier.
    assert (first["product_key"], first["customer_key"]) == (3, 1)
    assert by_id.loc["online:return:903", "customer_key"] == 4             # after the gold upgrade
    assert by_id.loc["online:return:904", "customer_key"] == -1            # a guest's return stays anonymous
    # Refunding more than the goods' value (-3 * 7.99 = -23.97) makes a negative discount.
    assert (by_id.loc["online:return:904", "net_amount"], by_id.loc["online:return:904", "discount_amount"]) == (
        -25.00, -1.03)
    assert facts["is_return"].all()
    assert_spec_identity(facts)


def test_online_return_of_an_unknown_or_unsold_line_is_rejected(online):
    orders, items = orders_of_2024_02_20()
    returns = raw_returns(
        {"return_id": 901, "order_id": 1, "line_no": 9, "quantity": 1, "refund_amount": 5.00},
        {"return_id": 902, "order_id": 2, "line_no": 1, "quantity": 1, "refund_amount": 12.50},
        {"return_id": 905, "order_id": 77, "line_no": 1, "quantity": 1, "refund_amount": 1.00},
    )
    facts, rejects = online(raw_orders(), raw_order_items(), returns, items, orders)
    assert facts.empty
    assert rejects["reason_code"].tolist() == ["return_unknown_line"] * 3
    assert rejects["source_key"].tolist() == ["901", "902", "905"]
    assert set(rejects["source_ref"]) == {"returns"}
    reasons = rejects["reason"].tolist()
    assert "order 1 line 9" in reasons[0] and "not a known order line" in reasons[0]
    assert "order 2 is cancelled" in reasons[1]
    assert "order 77 line 1" in reasons[2]
    assert set(rejects["business_date"]) == {T("2024-03-06")}


def test_online_same_day_return_is_found_in_the_days_own_orders(online):
    orders, items = orders_of_2024_02_20()
    returns = raw_returns({"return_id": 906, "order_id": 6, "line_no": 1, "quantity": 1, "refund_amount": 12.50,
                           "returned_at": T("2024-02-21 04:00"), "business_date": T("2024-02-20")})
    facts, rejects = online(orders, items, returns, raw_order_items(), raw_orders())
    assert facts.set_index("sale_line_id").loc["online:return:906", "net_amount"] == -12.50
    assert len(rejects) == 2   # only the cancelled and pending orders


# ------------------------------------------------------------------------------------------------ inventory


def _inventory(warehouse: Warehouse, raw: pd.DataFrame, stock: pd.DataFrame) -> pd.DataFrame:
    """fact_inventory of the POS counts ``raw`` and the ONLINE_STOCK ``stock``, by the warehouse's statement."""
    with warehouse.transaction() as tx:
        tx.replace(RAW_POS_INVENTORY, raw, {})
        tx.delete(FACT_INVENTORY, {})
        for day in _days(raw, stock):
            insert_fact_inventory(tx, day, stock[stock["business_date"] == pd.Timestamp(day)], run_id=RUN,
                                  reporting_timezone=TZ)
    out = warehouse.read(FACT_INVENTORY).sort_values(["business_date", "source_ref"], ignore_index=True)
    FACT_INVENTORY.schema.validate(out)
    return out


def test_pos_inventory_points_at_the_product_version_at_close_of_business(warehouse):
    facts = _inventory(warehouse, raw_pos_inventory(
        {"business_date": T("2024-02-29"), "sku_raw": "hb-004211", "sku_norm": "HB004211", "on_hand": 4},
        {"business_date": T("2024-03-01"), "sku_raw": "HB-004211", "sku_norm": "HB004211", "on_hand": 5,
         "source_line": 3},
        {"business_date": T("2024-03-01"), "sku_raw": "zz-1", "sku_norm": "ZZ1", "on_hand": 2, "source_line": 4},
    ), ONLINE_STOCK.empty())
    assert facts[["date_key", "store_key", "product_key", "sku", "on_hand", "source_ref"]].values.tolist() == [
        [20240229, 2, 1, "HB004211", 4, "stock_S1_20240301.csv:2"],
        [20240301, 2, 3, "HB004211", 5, "stock_S1_20240301.csv:3"],
        [20240301, 2, -1, "ZZ1", 2, "stock_S1_20240301.csv:4"],
    ]
    assert set(facts["source_system"]) == {"pos"}


def test_online_inventory_sums_warehouses_into_the_online_store(warehouse):
    stock = online_stock(raw_online_inventory(
        {"product_id": 10, "warehouse_code": "W1", "on_hand": 3},
        {"product_id": 10, "warehouse_code": "W2", "on_hand": 4},
        {"product_id": 11, "warehouse_code": "W1", "on_hand": 2},
        {"product_id": 999, "warehouse_code": "W1", "on_hand": 1},
        {"product_id": 998, "warehouse_code": "W2", "on_hand": 1},
    ), scenario_catalog(), business_date=T("2024-02-29"))
    facts = _inventory(warehouse, raw_pos_inventory(), stock)
    rows = facts.astype(object).where(facts.notna(), None)
    assert rows[["date_key", "store_key", "product_key", "sku", "on_hand", "source_ref"]].values.tolist() == [
        [20240229, 1, 1, "HB004211", 7, "inventory:product_id=10"],
        [20240229, 1, 2, "SH000100", 2, "inventory:product_id=11"],
        [20240229, 1, -1, None, 2, "inventory:product_id=998,999"],
    ]
    assert set(facts["source_system"]) == {"online"}
