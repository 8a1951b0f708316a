"""Tests of the pure transforms, plus the small hand-made source rows they share.

The factories below return frames shaped like the raw tables (``retail_assets.schemas.sources``) with
defaults for everything a test does not care about, so each test spells out only the values it reasons about.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

T = pd.Timestamp
RUN = "run-test"


def frame(defaults: dict[str, Any], rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows over defaults, with the defaults' column order."""
    return pd.DataFrame([{**defaults, **row} for row in rows], columns=list(defaults))


def raw_stores(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"store_code": "S1", "store_name": "Store", "city": None, "region": None, "country": "US",
                "timezone": "America/New_York", "pos_layout": "standard", "opened_on": T("2020-01-01"),
                "closed_on": pd.NaT, "source_line": 2, "run_id": RUN}
    return frame(defaults, list(rows))


def raw_products(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"product_id": 1, "sku": "XX-000001", "name": "Thing", "category": "Care", "subcategory": None,
                "brand": "Acme", "unit_cost": 1.00, "list_price": 2.00, "is_active": True,
                "updated_at": T("2024-01-01"), "run_id": RUN}
    return frame(defaults, list(rows))


def raw_contacts(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"contact_id": "C1", "email": None, "phone": None, "first_name": None, "last_name": None,
                "birth_date": pd.NaT, "city": None, "region": None, "country": None, "loyalty_card": None,
                "loyalty_tier": None, "marketing_opt_in": None, "created_at": T("2023-01-01"),
                "updated_at": T("2023-01-01"), "is_deleted": False, "run_id": RUN}
    return frame(defaults, list(rows))


def raw_online_customers(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"customer_id": 1, "email": None, "first_name": None, "last_name": None, "phone": None,
                "country": None, "created_at": T("2023-01-01"), "updated_at": T("2023-01-01"), "run_id": RUN}
    return frame(defaults, list(rows))


def raw_pos_sales(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"business_date": T("2024-07-01"), "store_code": "S1", "receipt_id": "R1", "line_no": 1,
                "sold_at": T("2024-07-01 12:00"), "register_id": "1", "cashier_id": "7", "sku_raw": "XX-000001",
                "sku_norm": "XX000001", "quantity": 1, "unit_price": 1.00, "discount": 0.00, "loyalty_card": None,
                "payment_method": "card", "layout": "standard", "source_file": "sales_S1_20240701.csv",
                "source_line": 2, "run_id": RUN}
    return frame(defaults, list(rows))


def raw_orders(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"business_date": T("2024-02-20"), "order_id": 1, "customer_id": None, "guest_email": None,
                "status": "paid", "placed_at": T("2024-02-20 15:00"), "updated_at": T("2024-02-20 15:00"),
                "shipping_amount": 0.0, "promo_code": None, "run_id": RUN}
    out = frame(defaults, list(rows))
    out["customer_id"] = out["customer_id"].astype("Int64")
    return out


def raw_order_items(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"business_date": T("2024-02-20"), "order_id": 1, "line_no": 1, "product_id": 1, "quantity": 1,
                "unit_price": 1.00, "discount_amount": 0.00, "run_id": RUN}
    return frame(defaults, list(rows))


def raw_returns(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"business_date": T("2024-03-06"), "return_id": 1, "order_id": 1, "line_no": 1, "quantity": 1,
                "refund_amount": 0.00, "returned_at": T("2024-03-06 14:00"), "reason": None, "run_id": RUN}
    return frame(defaults, list(rows))


def raw_pos_inventory(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"business_date": T("2024-03-01"), "store_code": "S1", "sku_raw": "XX-000001", "sku_norm": "XX000001",
                "on_hand": 0, "counted_at": pd.NaT, "source_file": "stock_S1_20240301.csv", "source_line": 2,
                "run_id": RUN}
    return frame(defaults, list(rows))


def raw_online_inventory(*rows: dict[str, Any]) -> pd.DataFrame:
    defaults = {"product_id": 1, "warehouse_code": "W1", "on_hand": 0, "updated_at": T("2024-03-01"), "run_id": RUN}
    return frame(defaults, list(rows))


# A small company shared by the identity and fact tests ------------------------------------------------------


def scenario_catalog(price: float = 12.50, updated: str = "2024-01-01") -> pd.DataFrame:
    """A hair brush (whose price changes in the second snapshot) and a shampoo."""
    return raw_products(
        {"product_id": 10, "sku": "HB-004211", "name": "Hair brush", "list_price": price, "unit_cost": 4.00,
         "updated_at": T(updated)},
        {"product_id": 11, "sku": "SH-000100", "name": "Shampoo", "list_price": 7.99, "updated_at": T("2023-06-01")},
    )


def scenario_contacts(tier_of_c2: str = "silver", c2_updated: str = "2023-06-01") -> pd.DataFrame:
    """Ann twice in the CRM (C1 created first, C2 updated last), Carl once, and a deleted contact."""
    return raw_contacts(
        {"contact_id": "C1", "email": "ann@example.com", "first_name": "Annie", "city": "Boston",
         "phone": "+1 (617) 555-0100", "loyalty_card": "LC-100", "loyalty_tier": "bronze",
         "created_at": T("2023-01-01"), "updated_at": T("2023-02-01")},
        {"contact_id": "C2", "email": "  ANN@example.com", "first_name": "Ann", "last_name": "Lee", "city": None,
         "loyalty_card": " lc-200 ", "loyalty_tier": tier_of_c2, "marketing_opt_in": True,
         "created_at": T("2023-05-01"), "updated_at": T(c2_updated)},
        {"contact_id": "C3", "email": "carl@example.com", "first_name": "Carl", "loyalty_card": "LC-300",
         "created_at": T("2023-03-01"), "updated_at": T("2023-03-01")},
        {"contact_id": "C9", "email": "gone@example.com", "loyalty_card": "LC-900", "is_deleted": True},
    )


def scenario_online_customers() -> pd.DataFrame:
    """Ann twice in the shop (case and spaces differ from the CRM), and Bob, who is not in the CRM."""
    return raw_online_customers(
        {"customer_id": 502, "email": " Ann@Example.COM ", "first_name": "A", "created_at": T("2022-05-01"),
         "updated_at": T("2022-05-01")},
        {"customer_id": 501, "email": "ann@example.com", "created_at": T("2022-04-01"),
         "updated_at": T("2022-04-01")},
        {"customer_id": 600, "email": "Bob@Example.com", "first_name": "Bob", "phone": "(555) 010-2233",
         "country": "US", "created_at": T("2023-01-01"), "updated_at": T("2023-09-09")},
    )
