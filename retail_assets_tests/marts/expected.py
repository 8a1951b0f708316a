"""The marts computed again, independently, in pandas from the same frames, and a cent-exact comparison.

Money is summed in integer cents and averages are rounded half-up with ``decimal``, so "equal to the cent"
means equal, not close.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from retail_assets.schemas.base import TableSpec
from retail_assets_tests.marts.data import StarSchema


def cents(values: pd.Series) -> pd.Series:
    return (pd.to_numeric(values).astype("float64") * 100).round().astype("Int64")


def half_up(total_cents: int, count: int) -> float:
    """total / count to the cent, half away from zero, from integer cents."""
    if count <= 0:
        return np.nan
    value = (Decimal(int(total_cents)) / Decimal(int(count))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(value) / 100


def _lines(star: StarSchema) -> pd.DataFrame:
    f = star.fact_sales.copy()
    f["business_date"] = pd.to_datetime(f["business_date"])
    for col in ("gross_amount", "discount_amount", "net_amount"):
        f[col + "_c"] = cents(f[col])
    f["ret"] = f["is_return"].astype(bool)
    f["sold_q"] = f["quantity"].where(~f["ret"], 0)
    f["ret_q"] = (-f["quantity"]).where(f["ret"], 0)
    f["sales_c"] = f["net_amount_c"].where(~f["ret"], 0)
    f["returns_c"] = (-f["net_amount_c"]).where(f["ret"], 0)
    f["sale_receipt"] = f["receipt_ref"].where(~f["ret"])
    return f


def daily_sales(star: StarSchema, days: list[date]) -> pd.DataFrame:
    f = _lines(star)
    f = f[f["business_date"].isin([pd.Timestamp(d) for d in days])]
    ids = star.dim_customer.set_index("customer_key")["customer_id"]
    f["known_customer"] = f["customer_key"].map(ids).where(f["customer_key"] != -1)
    g = f.groupby(["business_date", "date_key", "store_key", "channel"])
    out = pd.DataFrame({
        "sale_lines": g["ret"].size() - g["ret"].sum(),
        "return_lines": g["ret"].sum().astype(int),
        "receipts": g["sale_receipt"].nunique(),
        "customers": g["known_customer"].nunique(),
        "units_sold": g["sold_q"].sum(),
        "units_returned": g["ret_q"].sum(),
        "units": g["quantity"].sum(),
        "gross_c": g["gross_amount_c"].sum(),
        "discount_c": g["discount_amount_c"].sum(),
        "sales_c": g["sales_c"].sum(),
        "returns_c": g["returns_c"].sum(),
        "net_c": g["net_amount_c"].sum(),
    }).reset_index()
    stores = star.dim_store[["store_key", "store_code", "store_name"]]
    out = out.merge(stores, on="store_key", how="left")
    for name, col in (("gross_amount", "gross_c"), ("discount_amount", "discount_c"), ("sales_amount", "sales_c"),
                      ("returns_amount", "returns_c"), ("net_revenue", "net_c")):
        out[name] = out[col].astype("float64") / 100
    out["average_basket"] = [half_up(s, n) for s, n in zip(out["sales_c"], out["receipts"], strict=True)]
    out["return_rate"] = np.where(out["units_sold"] > 0, out["units_returned"] / out["units_sold"].where(
        out["units_sold"] > 0, 1), np.nan)
    return out


def product_performance(star: StarSchema) -> pd.DataFrame:
    f = _lines(star)
    versions = star.dim_product[["product_key", "sku_norm", "unit_cost"]]
    f = f.merge(versions, on="product_key", how="left")
    f["week_start"] = f["business_date"] - pd.to_timedelta(f["business_date"].dt.weekday, unit="D")
    f["cost_c"] = f["quantity"] * cents(f["unit_cost"])
    g = f.groupby(["week_start", "sku_norm"])
    out = pd.DataFrame({
        "units_sold": g["sold_q"].sum(), "units_returned": g["ret_q"].sum(), "units": g["quantity"].sum(),
        "net_c": g["net_amount_c"].sum(),
        "cost_c": g["cost_c"].agg(lambda c: c.sum() if c.notna().all() else pd.NA),
    }).reset_index()
    current = star.dim_product[star.dim_product["is_current"]][
        ["product_key", "sku", "sku_norm", "product_name", "category", "subcategory", "brand"]]
    out = out.merge(current, on="sku_norm", how="left")
    iso = out["week_start"].dt.isocalendar()
    out["iso_year"], out["iso_week"] = iso["year"].astype(int), iso["week"].astype(int)
    out["net_revenue"] = out["net_c"].astype("float64") / 100
    out["cost"] = pd.to_numeric(out["cost_c"]).astype("float64") / 100
    margin_c = out["net_c"] - pd.to_numeric(out["cost_c"]).astype("Int64")
    out["margin"] = margin_c.astype("float64") / 100
    out["margin_rate"] = np.where((out["net_c"] > 0) & margin_c.notna(), out["margin"] / out["net_revenue"], np.nan)
    out["category_rank"] = (out.groupby(["week_start", "category"], dropna=False)["net_c"]
                            .rank(method="min", ascending=False).astype(int))
    return out


RFM = {"recent": 30, "active": 90, "lapsed": 180, "new": 30, "champion_orders": 5, "champion_spend": 500,
       "loyal_orders": 3}


def _segment(row: pd.Series) -> str:
    if row["orders"] == 0:
        return "prospect"
    r, orders = row["recency_days"], row["orders"]
    if r <= RFM["recent"] and orders >= RFM["champion_orders"] and row["net_c"] >= RFM["champion_spend"] * 100:
        return "champion"
    if r <= RFM["active"] and orders >= RFM["loyal_orders"]:
        return "loyal"
    if row["tenure_days"] <= RFM["new"]:
        return "new"
    if r <= RFM["active"]:
        return "active"
    return "at_risk" if r <= RFM["lapsed"] else "lost"


def customer_360(star: StarSchema) -> pd.DataFrame:
    f = _lines(star)
    as_of = f["business_date"].max()
    ids = star.dim_customer.set_index("customer_key")["customer_id"]
    f = f[f["customer_key"] != -1].assign(customer_id=lambda x: x["customer_key"].map(ids))
    sales = f[~f["ret"]]
    g = f.groupby("customer_id")
    per = pd.DataFrame({
        "units": g["quantity"].sum(), "sales_c": g["sales_c"].sum(), "returns_c": g["returns_c"].sum(),
        "net_c": g["net_amount_c"].sum(),
    })
    gs = sales.groupby("customer_id")
    per["first_purchase_date"] = gs["business_date"].min()
    per["last_purchase_date"] = gs["business_date"].max()
    per["orders"] = gs["receipt_ref"].nunique()
    per["channels"] = gs["channel"].agg(lambda c: ",".join(sorted(set(c))))
    per["channel_count"] = gs["channel"].nunique()
    current = star.dim_customer[star.dim_customer["is_current"] & (star.dim_customer["customer_key"] != -1)]
    out = current.merge(per.reset_index(), on="customer_id", how="left")
    for col in ("orders", "units", "sales_c", "returns_c", "net_c", "channel_count"):
        out[col] = out[col].fillna(0).astype("int64")
    out["as_of_date"] = as_of
    out["recency_days"] = (as_of - out["last_purchase_date"]).dt.days
    out["tenure_days"] = (as_of - out["first_purchase_date"]).dt.days
    out["sales_amount"] = out["sales_c"] / 100
    out["returns_amount"] = out["returns_c"] / 100
    out["lifetime_net"] = out["net_c"] / 100
    out["average_order_value"] = [half_up(s, n) for s, n in zip(out["sales_c"], out["orders"], strict=True)]
    out["rfm_segment"] = out.apply(_segment, axis=1)
    return out


def inventory_health(star: StarSchema, day: date) -> pd.DataFrame:
    products = star.dim_product[["product_key", "sku_norm", "product_name", "category"]]
    inv = star.fact_inventory[pd.to_datetime(star.fact_inventory["business_date"]) == pd.Timestamp(day)]
    inv = inv.merge(products, on="product_key", how="left")
    inv["product_ref"] = inv["sku"].where(inv["product_key"] == -1, inv["sku_norm"])
    f = _lines(star)
    start = max(pd.Timestamp(day - timedelta(days=27)), f["business_date"].min())
    window_days = (pd.Timestamp(day) - start).days + 1
    f = f[(f["business_date"] >= start) & (f["business_date"] <= pd.Timestamp(day)) & ~f["ret"]]
    f = f.merge(products[["product_key", "sku_norm"]], on="product_key", how="left")
    f["product_ref"] = f["sku"].where(f["product_key"] == -1, f["sku_norm"])
    demand = f.groupby(["store_key", "product_ref"])["quantity"].sum().rename("units_sold_window").reset_index()
    out = inv.merge(demand, on=["store_key", "product_ref"], how="left")
    out.loc[out["product_ref"].isna(), "units_sold_window"] = 0
    out["units_sold_window"] = out["units_sold_window"].fillna(0).astype("int64")
    out = out.merge(star.dim_store[["store_key", "store_code"]], on="store_key", how="left")
    out["sales_window_days"] = window_days
    out["avg_daily_units"] = out["units_sold_window"] / window_days
    with np.errstate(divide="ignore", invalid="ignore"):
        supply = out["on_hand"] / out["avg_daily_units"]
    out["days_of_supply"] = np.where(out["on_hand"] <= 0, 0.0,
                                     np.where(out["units_sold_window"] > 0, supply, np.nan))
    out["is_stock_out"] = out["on_hand"] <= 0
    out["is_overstock"] = (out["on_hand"] > 0) & ((out["units_sold_window"] == 0) | (out["days_of_supply"] > 90))
    out["stock_status"] = np.select(
        [out["is_stock_out"], out["is_overstock"], out["days_of_supply"] < 7], ["stock_out", "overstock", "low"], "ok")
    return out


def assert_matches(spec: TableSpec, actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows (by natural key) and, column by column, the same values: money to the cent, ratios to 1e-12."""
    keys = list(spec.natural_key)
    assert len(actual) == len(expected), f"{spec.name}: {len(actual)} rows, expected {len(expected)}"
    a = actual.sort_values(keys, ignore_index=True, na_position="last")
    e = spec.conform(expected).sort_values(keys, ignore_index=True, na_position="last")
    money = set(spec.money_columns())
    for name, column in spec.schema.columns.items():
        kind = str(column.dtype).lower()
        left, right = a[name], e[name]
        if name in money:
            ok = cents(left).astype("float64").fillna(-1e18).to_numpy() == cents(right).astype("float64").fillna(
                -1e18).to_numpy()
        elif "float" in kind:
            ok = np.isclose(left.astype("float64"), right.astype("float64"), rtol=1e-12, atol=0, equal_nan=True)
        elif "datetime" in kind:
            ok = (pd.to_datetime(left).fillna(pd.Timestamp(0)) == pd.to_datetime(right).fillna(pd.Timestamp(0)))
        elif "int" in kind or "bool" in kind:
            ok = (pd.to_numeric(left.astype("object").where(left.notna(), np.nan)).fillna(-999).to_numpy()
                  == pd.to_numeric(right.astype("object").where(right.notna(), np.nan)).fillna(-999).to_numpy())
        else:
            ok = left.astype("object").where(left.notna(), None).to_numpy() == right.astype("object").where(
                right.notna(), None).to_numpy()
        bad = ~np.asarray(ok, dtype=bool)
        assert not bad.any(), (
            f"{spec.name}.{name} differs in {int(bad.sum())} row(s):\n"
            + pd.DataFrame({**{k: a[k] for k in keys}, "mart": left, "pandas": right})[bad].head(10).to_string()
        )
