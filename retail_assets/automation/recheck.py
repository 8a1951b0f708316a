"""The online shop's recent business dates, extracted again and compared with what the warehouse loaded.

The orders sensor sees changes through ``orders.updated_at`` and the returns sensor sees new ``return_id``s, but a
row deleted from the shop, or an order line or a return edited in place, leaves no trace either can follow. For
the last ``RECHECK_DAYS`` loaded dates, ``changed_days`` runs the raw assets' own extract queries again and compares
the rows with raw_online_orders, raw_online_order_items and raw_online_returns on the columns that make a sale
(keys, status, product, quantity; money to the half cent, as the warehouse keeps cents). A date that differs gets
the fingerprint of its source rows, which is the run key: one state of the source asks for one run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from retail_assets.assets.sources.online import extract_order_items, extract_orders, extract_returns
from retail_assets.partitions import business_dates, utc_bounds
from retail_assets.resources import SqlSource, Warehouse
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import RAW_ONLINE_ORDER_ITEMS, RAW_ONLINE_ORDERS, RAW_ONLINE_RETURNS

RECHECK_DAYS = 7
HALF_CENT = 0.005


@dataclass(frozen=True)
class Recheck:
    spec: TableSpec
    extract: Callable[[SqlSource, object, object], pd.DataFrame]
    time_column: str
    key: tuple[str, ...]
    numbers: tuple[str, ...] = ()  # compared exactly
    texts: tuple[str, ...] = ()
    money: tuple[str, ...] = ()  # compared to the half cent

    @property
    def columns(self) -> list[str]:
        return [*self.key, *self.numbers, *self.texts, *self.money]


RECHECKS = (
    Recheck(RAW_ONLINE_ORDERS, extract_orders, "placed_at", ("order_id",), texts=("status",)),
    Recheck(RAW_ONLINE_ORDER_ITEMS, extract_order_items, "placed_at", ("order_id", "line_no"),
            numbers=("product_id", "quantity"), money=("unit_price", "discount_amount")),
    Recheck(RAW_ONLINE_RETURNS, extract_returns, "returned_at", ("return_id",),
            numbers=("order_id", "line_no", "quantity"), money=("refund_amount",)),
)


def _normal(check: Recheck, rows: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.to_numeric(rows[c], errors="coerce").fillna(-1)
                        for c in (*check.key, *check.numbers, *check.money)})
    for c in check.texts:
        out[c] = rows[c].astype("string").fillna("")
    return out


def rows_differ(check: Recheck, source: pd.DataFrame, held: pd.DataFrame) -> bool:
    """Whether a day's rows of one table differ between the source and the warehouse: a row entered or deleted,
    or one of the compared columns edited."""
    both = _normal(check, source).merge(_normal(check, held), on=list(check.key), how="outer",
                                        suffixes=("_s", "_w"), indicator=True)
    if (both["_merge"] != "both").any():
        return True
    if any((both[f"{c}_s"] != both[f"{c}_w"]).any() for c in (*check.numbers, *check.texts)):
        return True
    return any(((both[f"{c}_s"] - both[f"{c}_w"]).abs() > HALF_CENT).any() for c in check.money)


def changed_days(online_store: SqlSource, warehouse: Warehouse, days: list[date], timezone: str) -> dict[date, str]:
    """Of the loaded ``days``, those whose orders, order lines or returns differ between the shop and the
    warehouse: day -> fingerprint of the shop's rows that day. Reads the warehouse: call it as a sensor's read."""
    start, end = utc_bounds(min(days), timezone)[0], utc_bounds(max(days), timezone)[1]
    states: dict[date, list] = {day: [] for day in days}
    changed: set[date] = set()
    for check in RECHECKS:
        source = check.extract(online_store, start, end)
        source_day = business_dates(source[check.time_column], timezone) if len(source) else pd.Series(dtype=object)
        held = warehouse.read(check.spec, where={"business_date": days}, columns=["business_date", *check.columns])
        held_day = pd.to_datetime(held["business_date"]).dt.date
        for day in days:
            rows = source[(source_day == day).to_numpy()] if len(source) else source
            states[day].append(rows[check.columns].astype(str).sort_values(list(check.key)).to_numpy().tolist())
            if rows_differ(check, rows, held[(held_day == day).to_numpy()]):
                changed.add(day)
    return {day: hashlib.sha256(json.dumps(states[day]).encode()).hexdigest()[:16] for day in sorted(changed)}
