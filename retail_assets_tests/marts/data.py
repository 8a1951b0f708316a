"""A small hand-made star schema for the mart tests: dimensions spelled out, facts from a seeded generator.

The dimensions hold the cases the marts' rules are about: a product whose cost changes mid-week (Shampoo), one
recategorised (Coffee, Grocery -> Beverages), one without a known cost (Tea), SKUs missing from the catalog;
a customer whose loyalty tier changes, customers with only old purchases (at risk, lost), one with none.
Random store and online receipts over two ISO weeks sit on top of hand-placed lines that pin the edge cases
(a half-cent average basket, a tie in a category rank, return-only receipts, each RFM segment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from retail_assets.resources import Warehouse
from retail_assets.schemas.warehouse import DIM_CUSTOMER, DIM_DATE, DIM_PRODUCT, DIM_STORE, FACT_INVENTORY, FACT_SALES

T = pd.Timestamp
NAT = pd.NaT
RUN = "run-marts-test"
FIRST_RANDOM_DAY = date(2025, 3, 3)
LAST_DAY = date(2025, 3, 16)
UNKNOWN_SKU = "ZZ999999"

STORES = pd.DataFrame([
    # store_key, store_code, store_name, city, region, country, timezone, channel, pos_layout
    (-1, "UNKNOWN", "Unknown store", None, None, None, None, "unknown", None),
    (1, "S01", "Downtown", "Boston", "MA", "US", "America/New_York", "store", "standard"),
    (2, "S02", "Harbor", "Chicago", "IL", "US", "America/Chicago", "store", "legacy"),
    (3, "ONLINE", "Online shop", None, None, "US", "America/New_York", "online", None),
], columns=["store_key", "store_code", "store_name", "city", "region", "country", "timezone", "channel",
            "pos_layout"]).assign(opened_on=T("2020-01-01"), closed_on=NAT)

PRODUCTS = pd.DataFrame([
    # product_key, sku, name, category, subcategory, brand, list_price, unit_cost, valid_from, valid_to, current
    (-1, "UNKNOWN", None, None, None, None, None, None, T("1900-01-01"), NAT, True),
    (10, "HB-000001", "Shampoo", "Health & Beauty", "Hair", "Acme", 5.99, 2.10, T("2024-01-01"),
     T("2025-03-05 17:00"), False),
    (11, "HB-000001", "Shampoo Deluxe", "Health & Beauty", "Hair", "Acme", 6.49, 2.35, T("2025-03-05 17:00"), NAT,
     True),
    (20, "HB-000002", "Soap", "Health & Beauty", "Body", "Acme", 1.99, 0.80, T("2024-01-01"), NAT, True),
    (30, "GR-000003", "Coffee", "Grocery", "Hot drinks", "Bean Co", 8.99, 4.00, T("2024-01-01"), T("2025-03-03"),
     False),
    (31, "GR-000003", "Coffee", "Beverages", "Hot drinks", "Bean Co", 9.49, 4.25, T("2025-03-03"), NAT, True),
    (40, "GR-000004", "Tea", "Grocery", "Hot drinks", "Leaf", 5.00, None, T("2024-01-01"), NAT, True),
    (50, "GR-000005", "Rice", "Grocery", "Staples", "Paddy", 2.50, 1.05, T("2024-01-01"), NAT, True),
    (60, "HB-000006", "Lotion", "Health & Beauty", "Body", "Acme", 7.77, 3.33, T("2024-01-01"), NAT, True),
], columns=["product_key", "sku", "product_name", "category", "subcategory", "brand", "list_price", "unit_cost",
            "valid_from", "valid_to", "is_current"])
PRODUCTS["sku_norm"] = PRODUCTS["sku"].str.replace("-", "")
PRODUCTS["product_id"] = pd.array([None, 1, 1, 2, 3, 3, 4, 5, 6], dtype="Int64")
PRODUCTS["is_active"] = True
SKUS = ["HB000001", "HB000002", "GR000003", "GR000004", "GR000005", "HB000006"]

CUSTOMERS = pd.DataFrame([
    # customer_key, customer_id, loyalty_tier, valid_from, valid_to, is_current
    (-1, "UNKNOWN", None, T("1900-01-01"), NAT, True),
    (100, "crm:C1", "silver", T("2024-01-01"), T("2025-03-08 15:00"), False),
    (101, "crm:C1", "gold", T("2025-03-08 15:00"), NAT, True),
    (200, "crm:C2", "bronze", T("2024-01-01"), NAT, True),
    (300, "online:7", None, T("2024-01-01"), NAT, True),
    (400, "crm:C4", "platinum", T("2024-01-01"), NAT, True),
    (500, "crm:C5", "gold", T("2024-01-01"), NAT, True),
    (600, "crm:C6", "silver", T("2024-01-01"), NAT, True),
    (700, "crm:C7", "bronze", T("2024-01-01"), NAT, True),
    (800, "crm:C8", None, T("2024-01-01"), NAT, True),
    (900, "crm:C9", "bronze", T("2024-01-01"), NAT, True),
    (1000, "crm:C10", "silver", T("2024-01-01"), NAT, True),
    (1100, "crm:C11", "silver", T("2024-01-01"), NAT, True),
], columns=["customer_key", "customer_id", "loyalty_tier", "valid_from", "valid_to", "is_current"])
_crm = CUSTOMERS["customer_id"].str.startswith("crm:")
CUSTOMERS["crm_contact_id"] = CUSTOMERS["customer_id"].str.removeprefix("crm:").where(_crm)
CUSTOMERS["online_customer_id"] = pd.array([7 if c == "online:7" else None for c in CUSTOMERS["customer_id"]],
                                           dtype="Int64")
CUSTOMERS["email"] = (CUSTOMERS["customer_id"].str.replace(":", ".") + "@example.com").where(
    CUSTOMERS["customer_key"] != -1)
CUSTOMERS["first_name"] = "First"
CUSTOMERS["last_name"] = CUSTOMERS["customer_id"]
CUSTOMERS["country"] = "US"
CUSTOMERS["marketing_opt_in"] = pd.array([None] + [True, True, False] * 4, dtype="boolean")


def _versions(dim: pd.DataFrame, column: str, key: str) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]]:
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]] = {}
    for row in dim.itertuples():
        valid_to = row.valid_to
        out.setdefault(getattr(row, column), []).append(
            (row.valid_from, T.max if pd.isna(valid_to) else valid_to, int(getattr(row, key))))
    return out


_PRODUCT_VERSIONS = _versions(PRODUCTS, "sku_norm", "product_key")
_CUSTOMER_VERSIONS = _versions(CUSTOMERS, "customer_id", "customer_key")
_LIST_PRICE = dict(zip(PRODUCTS["product_key"], PRODUCTS["list_price"], strict=True))


def _version(versions: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]], value: str, at: pd.Timestamp) -> int:
    keys = [key for start, end, key in versions[value] if start <= at < end]
    assert len(keys) == 1, (value, at)
    return keys[0]


def product_key(sku_norm: str, at: pd.Timestamp) -> int:
    return -1 if sku_norm == UNKNOWN_SKU else _version(_PRODUCT_VERSIONS, sku_norm, at)


def customer_key(customer_id: str | None, at: pd.Timestamp) -> int:
    return -1 if customer_id is None else _version(_CUSTOMER_VERSIONS, customer_id, at)


def price_cents(sku_norm: str, at: pd.Timestamp) -> int:
    if sku_norm == UNKNOWN_SKU:
        return 321
    return round(_LIST_PRICE[product_key(sku_norm, at)] * 100)


@dataclass
class Line:
    day: date
    store_key: int
    receipt: str
    sku: str
    quantity: int
    customer: str | None = None
    discount_cents: int = 0
    unit_price_cents: int | None = None
    refund_cents: int | None = None
    hour: int = 12


def _sales_frame(lines: list[Line]) -> pd.DataFrame:
    rows = []
    for n, line in enumerate(lines, 1):
        sold_at = T(line.day) + pd.Timedelta(hours=line.hour, minutes=n % 60)
        sold_at_utc = sold_at + pd.Timedelta(hours=5)
        price = line.unit_price_cents if line.unit_price_cents is not None else price_cents(line.sku, sold_at_utc)
        gross = line.quantity * price
        net = gross - int(np.sign(line.quantity)) * line.discount_cents
        if line.refund_cents is not None:
            net = -line.refund_cents
        online = line.store_key == 3
        receipt_ref = f"online:order:{line.receipt}" if online else f"pos:S0{line.store_key}:{line.receipt}"
        rows.append({
            "sale_line_id": f"{receipt_ref}:{n}", "business_date": T(line.day),
            "date_key": int(line.day.strftime("%Y%m%d")), "sold_at": sold_at, "sold_at_utc": sold_at_utc,
            "store_key": line.store_key, "product_key": product_key(line.sku, sold_at_utc),
            "customer_key": customer_key(line.customer, sold_at_utc), "channel": "online" if online else "store",
            "receipt_ref": receipt_ref, "sku": line.sku, "quantity": line.quantity, "unit_price": price / 100,
            "gross_amount": gross / 100, "discount_amount": line.discount_cents / 100, "net_amount": net / 100,
            "is_return": line.quantity < 0, "source_system": "online" if online else "pos",
            "source_ref": f"test:{n}", "run_id": RUN,
        })
    return pd.DataFrame(rows)


def _hand_lines() -> list[Line]:
    d = date
    return [
        # week of 2025-02-24 only holds these: Rice and Tea tie in Grocery (10.00 each); Coffee was Grocery then
        Line(d(2025, 2, 24), 1, "W1", "GR000005", 4, unit_price_cents=250),
        Line(d(2025, 2, 25), 2, "W2", "GR000004", 2, unit_price_cents=500),
        Line(d(2025, 2, 26), 1, "W3", "GR000003", 1, "crm:C2"),
        Line(d(2025, 3, 2), 3, "W4", "HB000002", 3, "crm:C11", discount_cents=15),
        # the only lines of store S02 on 2025-03-16: 10.05 over 2 receipts, an average of 5.025 -> 5.03
        Line(d(2025, 3, 16), 2, "H1", "GR000005", 1, unit_price_cents=400),
        Line(d(2025, 3, 16), 2, "H2", "GR000005", 1, unit_price_cents=605),
        # a receipt of only a return at S02 that day: not a receipt of the average, but a returned unit
        Line(d(2025, 3, 16), 2, "H3", "GR000005", -1, unit_price_cents=250),
        # RFM: C5 a champion, C6 at risk, C7 lost, C9 new, C10 active, C11 loyal (and C4 never buys)
        *[Line(d(2025, 3, 5 + 2 * i), 1, f"C5-{i}", "HB000006", 12, "crm:C5") for i in range(6)],
        Line(d(2024, 11, 20), 1, "C6-1", "GR000005", 2, "crm:C6"),
        Line(d(2024, 8, 1), 1, "C7-1", "GR000005", 1, "crm:C7"),
        Line(d(2025, 3, 10), 3, "C9-1", "HB000002", 1, "crm:C9"),
        Line(d(2025, 1, 20), 3, "C10-1", "HB000002", 1, "crm:C10"),
        Line(d(2025, 3, 1), 1, "C10-2", "HB000002", 1, "crm:C10"),
        Line(d(2025, 1, 10), 1, "C11-1", "GR000005", 1, "crm:C11"),
        Line(d(2025, 2, 1), 1, "C11-2", "GR000005", 1, "crm:C11"),
    ]


def _random_lines(seed: int = 20250303) -> list[Line]:
    rng = np.random.default_rng(seed)
    store_customers = [None, None, None, "crm:C1", "crm:C2", "crm:C8"]
    online_customers = ["online:7", "crm:C1", "crm:C8", None]
    lines: list[Line] = []
    online_orders: list[tuple[str, str, str | None]] = []
    day = FIRST_RANDOM_DAY
    while day <= LAST_DAY:
        for store in (1, 2, 3):
            if store == 2 and day == LAST_DAY:
                continue  # that store-day is hand-made
            for r in range(int(rng.integers(2, 5))):
                receipt = f"{day:%Y%m%d}-{store}-{r}"
                customers = online_customers if store == 3 else store_customers
                customer = customers[int(rng.integers(len(customers)))]
                for _ in range(int(rng.integers(1, 4))):
                    sku = UNKNOWN_SKU if rng.random() < 0.05 else SKUS[int(rng.integers(len(SKUS)))]
                    qty = int(rng.integers(1, 5))
                    discount = int(rng.choice([0, 0, 0, 50, 115]))
                    lines.append(Line(day, store, receipt, sku, qty, customer, discount_cents=discount,
                                      hour=int(rng.integers(9, 21))))
                    if store == 3:
                        online_orders.append((receipt, sku, customer))
                    elif rng.random() < 0.08:  # an exchange: the same receipt returns one unit
                        lines.append(Line(day, store, receipt, SKUS[int(rng.integers(len(SKUS)))], -1, customer))
            if store != 3 and rng.random() < 0.5:  # a return at the till, a receipt of its own
                lines.append(Line(day, store, f"{day:%Y%m%d}-{store}-R", SKUS[int(rng.integers(len(SKUS)))],
                                  -int(rng.integers(1, 3)), None, discount_cents=int(rng.choice([0, 30]))))
            if store == 3 and len(online_orders) > 8 and rng.random() < 0.6:  # a partial refund of an older order
                order, sku, customer = online_orders[int(rng.integers(len(online_orders) - 8))]
                lines.append(Line(day, 3, order, sku, -1, customer, refund_cents=int(rng.integers(100, 400))))
        day += timedelta(days=1)
    return lines


def _inventory() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for offset in range(8):
        day = LAST_DAY - timedelta(days=offset)
        close = T(day) + pd.Timedelta(hours=23, minutes=59)
        for store in (1, 2, 3):
            for sku in [*SKUS, UNKNOWN_SKU]:
                on_hand = int(rng.choice([-2, 0, 3, 8, 15, 40, 500]))
                rows.append({"business_date": T(day), "store_key": store, "product_key": product_key(sku, close),
                             "sku": sku, "on_hand": on_hand, "source_system": "online" if store == 3 else "pos"})
            if store == 3:  # online stock of product ids missing from the catalog: product -1 without a SKU
                rows.append({"business_date": T(day), "store_key": 3, "product_key": -1, "sku": None,
                             "on_hand": 5, "source_system": "online"})
    frame = pd.DataFrame(rows)
    frame["date_key"] = frame["business_date"].dt.strftime("%Y%m%d").astype("int64")
    frame["source_ref"] = "test"
    frame["run_id"] = RUN
    return frame


def _dim_date() -> pd.DataFrame:
    days = pd.date_range("2024-08-01", LAST_DAY.isoformat(), freq="D")
    return pd.DataFrame({"date_key": days.strftime("%Y%m%d").astype("int64"), "date": days, "year": days.year,
                         "quarter": days.quarter, "month": days.month, "day": days.day,
                         "day_of_week": days.dayofweek + 1, "is_weekend": days.dayofweek >= 5})


@dataclass
class StarSchema:
    dim_date: pd.DataFrame
    dim_store: pd.DataFrame
    dim_product: pd.DataFrame
    dim_customer: pd.DataFrame
    fact_sales: pd.DataFrame
    fact_inventory: pd.DataFrame

    def sales_days(self) -> list[date]:
        return sorted({t.date() for t in self.fact_sales["business_date"]})


def star_schema() -> StarSchema:
    return StarSchema(
        dim_date=_dim_date(), dim_store=STORES.copy(), dim_product=PRODUCTS.copy(), dim_customer=CUSTOMERS.copy(),
        fact_sales=_sales_frame(_hand_lines() + _random_lines()), fact_inventory=_inventory(),
    )


def load(warehouse: Warehouse, star: StarSchema) -> None:
    """The frames into the warehouse through the resource's bulk load, in one transaction."""
    specs = {"dim_date": DIM_DATE, "dim_store": DIM_STORE, "dim_product": DIM_PRODUCT, "dim_customer": DIM_CUSTOMER,
             "fact_sales": FACT_SALES, "fact_inventory": FACT_INVENTORY}
    warehouse.ensure(list(specs.values()))
    with warehouse.transaction() as tx:
        for name, spec in specs.items():
            tx.append(spec, getattr(star, name))
