"""Conformed dimensions: calendar, stores, products (SCD type 2).

Which version a fact points at (the point-in-time lookup) is decided where the facts are made, inside the
warehouse: ``scd2_ranges.sql`` beside ``retail_assets.transforms.facts_sql``.

Conventions every function here follows:

- Surrogate key ``-1`` is the unknown member of a dimension (SPEC section 5). It is present exactly once, with
  the business key ``UNKNOWN``, valid from 1900-01-01 and never closed.
- Surrogate keys are stable: a row already in the warehouse keeps its key; new rows get ``max + 1, max + 2, ...``
  in a deterministic order, so re-running a load does not renumber anything facts point at.
- Timestamps are naive UTC (``datetime64[ns]``), except where a column says it is local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.warehouse import DIM_DATE, DIM_PRODUCT, DIM_STORE, UNKNOWN_KEY
from retail_assets.transforms.normalise import normalise_sku

UNKNOWN_CODE = "UNKNOWN"
"""Business key of the unknown member (store code, SKU, customer id)."""
ONLINE_STORE_CODE = "ONLINE"
"""The online shop's row in dim_store."""
BEGINNING_OF_TIME = pd.Timestamp("1900-01-01")
"""valid_from of the unknown member, and of a version whose source gives no change time."""
VALIDITY_COLUMNS = ("valid_from", "valid_to", "is_current")
_TS = "datetime64[ns]"


def to_date_key(dates: pd.Series) -> pd.Series:
    """The ``yyyymmdd`` integer of each date (the key of dim_date): 2024-03-09 -> 20240309."""
    d = pd.to_datetime(dates)
    return (d.dt.year * 10000 + d.dt.month * 100 + d.dt.day).astype("int64")


def to_naive_ns(values: pd.Series) -> pd.Series:
    """Timestamps as naive ``datetime64[ns]`` (tz-aware values are converted to UTC first).

    Every time comparison in the transforms goes through this, so a ``datetime64[us]`` column read from one
    database and a ``datetime64[ns]`` column from another compare (and ``merge_asof``) without surprises.
    """
    out = pd.to_datetime(values)
    if getattr(out.dtype, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype(_TS)


def conform_typed(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame:
    """``spec.conform(df)`` with every column in the model's dtype (text as pandas ``str``).

    Only columns whose dtype differs are converted, so an already well-typed million-row fact costs nothing;
    the result passes ``spec.schema.validate`` whenever its values do, and compares equal to what a warehouse
    round trip through the same schema gives back.
    """
    out = spec.conform(df)
    for name, column in spec.schema.columns.items():
        values = out[name]
        if str(column.dtype).startswith("string"):
            if values.dtype != "str":
                out[name] = values.astype("str")
        elif str(values.dtype) != str(column.dtype):
            out[name] = column.dtype.coerce(values)
    return out


# --------------------------------------------------------------------------------------------------- dim_date


def build_dim_date(start: date, end: date) -> pd.DataFrame:
    """One row a calendar day in ``[start, end]`` (both included); ISO weekday, so Monday is 1 and Sunday 7.

    An empty frame (with the model's columns) when ``end`` is before ``start``.
    """
    days = pd.Series(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", unit="ns"))
    if days.empty:
        return conform_typed(DIM_DATE, DIM_DATE.empty())
    dow = days.dt.day_of_week + 1
    out = pd.DataFrame(
        {
            "date_key": to_date_key(days),
            "date": days,
            "year": days.dt.year.astype("int64"),
            "quarter": days.dt.quarter.astype("int64"),
            "month": days.dt.month.astype("int64"),
            "day": days.dt.day.astype("int64"),
            "day_of_week": dow.astype("int64"),
            "is_weekend": dow >= 6,
        }
    )
    return conform_typed(DIM_DATE, out)


# -------------------------------------------------------------------------------------------------- dim_store


def _next_keys(existing_keys: pd.Series, count: int) -> np.ndarray:
    """``count`` fresh surrogate keys after the largest one in use (the first key ever handed out is 1)."""
    keys = pd.to_numeric(existing_keys, errors="coerce").dropna()
    start = max(int(keys.max()), 0) if len(keys) else 0
    return np.arange(start + 1, start + 1 + count, dtype="int64")


def build_dim_store(
    raw_stores: pd.DataFrame, existing: pd.DataFrame | None, *, reporting_timezone: str
) -> pd.DataFrame:
    """dim_store, type 1: one row a store code, attributes overwritten from ``stores.csv`` on every load.

    - Every store in ``raw_stores`` gets ``channel='store'`` and the attributes of the file.
    - ``ONLINE`` is the online shop (``channel='online'``, in the reporting timezone, because an online sale's
      business date is its date in the reporting timezone).
    - ``UNKNOWN`` (key -1, ``channel='unknown'``) is the unknown member.
    - A store that disappears from ``stores.csv`` keeps its row and its last known attributes: facts still point
      at it, and closing a store is done with ``closed_on``, not by deleting the line.
    - Keys are stable: a code in ``existing`` keeps its key; new codes get ``max + 1 ...`` in sorted code order.

    Raises ``ValueError`` when ``stores.csv`` uses one of the reserved codes ``ONLINE`` or ``UNKNOWN``: that would
    silently merge a physical store with the online shop or the unknown member.
    """
    columns = DIM_STORE.columns
    stores = raw_stores.copy()
    stores["store_code"] = stores["store_code"].astype("str").str.strip()
    reserved = stores["store_code"].str.upper().isin([ONLINE_STORE_CODE, UNKNOWN_CODE])
    if reserved.any():
        raise ValueError(
            f"stores.csv uses reserved store code(s) {sorted(stores.loc[reserved, 'store_code'])}: "
            f"'{ONLINE_STORE_CODE}' and '{UNKNOWN_CODE}' are the online shop and the unknown member; rename the store"
        )
    stores = stores.drop_duplicates("store_code", keep="last")
    stores["channel"] = "store"
    special = pd.DataFrame(
        [
            {"store_code": ONLINE_STORE_CODE, "store_name": "Online shop", "timezone": reporting_timezone,
             "channel": "online"},
            {"store_code": UNKNOWN_CODE, "store_name": "Unknown store", "timezone": None, "channel": "unknown"},
        ]
    )
    incoming = pd.concat([stores.reindex(columns=columns), special.reindex(columns=columns)], ignore_index=True)
    incoming = incoming.drop(columns="store_key")

    if existing is None or existing.empty:
        existing = DIM_STORE.empty()
    old = existing.reindex(columns=columns).copy()
    old["store_code"] = old["store_code"].astype("str")
    old_keys = pd.to_numeric(old["store_key"]).astype("int64")
    key_of = dict(zip(old["store_code"], old_keys, strict=True))
    key_of[UNKNOWN_CODE] = UNKNOWN_KEY

    # Stores that vanished from stores.csv keep their last known row.
    vanished = old[~old["store_code"].isin(incoming["store_code"])].drop(columns="store_key")
    rows = pd.concat([incoming, vanished], ignore_index=True) if not vanished.empty else incoming
    rows["store_key"] = rows["store_code"].map(key_of)
    new_codes = sorted(rows.loc[rows["store_key"].isna(), "store_code"])
    fresh = dict(zip(new_codes, _next_keys(old_keys[old_keys != UNKNOWN_KEY], len(new_codes)), strict=True))
    rows["store_key"] = rows["store_key"].fillna(rows["store_code"].map(fresh)).astype("int64")
    for col in ("opened_on", "closed_on"):
        rows[col] = to_naive_ns(rows[col]).dt.normalize()
    rows = rows.sort_values("store_key", ignore_index=True)
    return conform_typed(DIM_STORE, rows)


# ------------------------------------------------------------------------------------------------------- SCD2


def _value_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime"
    return "text"


def _same_values(current: pd.Series, incoming: pd.Series) -> np.ndarray:
    """Element-wise equality in which missing equals missing.

    Tolerant of what a warehouse round trip does to a column (``Decimal`` or ``float`` money, ``object`` or
    ``boolean`` flags, ``us`` or ``ns`` timestamps): the incoming side's kind decides how both are compared.
    """
    a = current.reset_index(drop=True)
    b = incoming.reset_index(drop=True)
    a_na = a.isna().to_numpy()
    b_na = b.isna().to_numpy()
    kind = _value_kind(b) if not b_na.all() else _value_kind(a)
    if kind == "number":
        av = pd.to_numeric(a, errors="coerce").astype("float64").to_numpy()
        bv = pd.to_numeric(b, errors="coerce").astype("float64").to_numpy()
        equal = np.isclose(av, bv, rtol=0.0, atol=1e-9)
    elif kind == "bool":
        equal = (a.astype("boolean") == b.astype("boolean")).fillna(False).to_numpy(dtype=bool)
    elif kind == "datetime":
        equal = (to_naive_ns(a) == to_naive_ns(b)).to_numpy(dtype=bool)
    else:
        equal = a.astype("str").to_numpy() == b.astype("str").to_numpy()
    return (a_na & b_na) | (~a_na & ~b_na & equal)


def _unknown_member(template: pd.DataFrame, columns: Sequence[str], *, business_key: str,
                    surrogate_key: str) -> pd.DataFrame:
    """The -1 row, typed like ``template`` (the snapshot) so that concatenating it keeps the column dtypes."""
    row = template.iloc[:0].reindex([0]).reindex(columns=list(columns))
    row[surrogate_key] = UNKNOWN_KEY
    row[business_key] = UNKNOWN_CODE
    row["valid_from"] = BEGINNING_OF_TIME
    row["valid_to"] = pd.Series([pd.NaT], dtype=_TS)
    row["is_current"] = True
    return row


def scd2_merge(
    existing: pd.DataFrame | None,
    snapshot: pd.DataFrame,
    *,
    business_key: str,
    tracked: list[str],
    changed_at: str,
    surrogate_key: str,
) -> pd.DataFrame:
    """Merge a source snapshot into a type 2 dimension and return the whole dimension.

    ``snapshot`` holds one row per business key: its current attributes and ``changed_at``, the time the source
    says the row last changed (naive UTC). Per business key:

    - new key: one version ``valid_from = changed_at`` (1900-01-01 when the source gives no time: as far as we
      know it has always been like this), ``valid_to`` NULL, ``is_current`` true;
    - a tracked attribute differs from the current version (missing equals missing): the current version is
      closed (``valid_to`` = the new version's ``valid_from``, ``is_current`` false) and a new one opens at
      ``changed_at``. When ``changed_at`` is missing or not later than the current version's ``valid_from``
      (a clock gone backwards, a change of a non-timestamped field), the new version starts 1 microsecond after
      the current one, so versions never overlap and never have zero length;
    - no tracked attribute differs: the existing row is kept exactly as it is (a change of an untracked column,
      e.g. the online ``product_id``, is not a new version);
    - key absent from the snapshot (deleted at the source): its current version stays current. The source does
      not tell when the row vanished, and a sale or a card can still refer to it; a closing time invented at
      load time would be wrong (SPEC: valid_from/valid_to are source times, not load times).

    Surrogate keys of existing rows never change; new versions get ``max + 1 ...`` ordered by business key.
    The unknown member (key -1, business key ``UNKNOWN``, valid from 1900-01-01, current) is present exactly
    once. The result is sorted by surrogate key. Merging the same snapshot twice changes nothing.

    Raises ``ValueError`` when the snapshot has a business key twice: the caller decides which row wins.
    """
    snap = snapshot[snapshot[business_key].notna()].copy()
    dup = snap[business_key].duplicated(keep=False)
    if dup.any():
        raise ValueError(
            f"scd2_merge: the snapshot has {business_key} more than once: "
            f"{sorted(map(str, snap.loc[dup, business_key].unique()))[:10]}"
        )
    attributes = [c for c in snap.columns if c != changed_at]
    missing = [c for c in tracked if c not in attributes]
    if missing:
        raise ValueError(f"scd2_merge: tracked columns {missing} are not in the snapshot")
    snap[changed_at] = to_naive_ns(snap[changed_at])

    columns = [surrogate_key, *attributes, *VALIDITY_COLUMNS]
    if existing is None or existing.empty:
        old = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    else:
        old = existing.copy()
        for col in columns:
            if col not in old.columns:
                old[col] = None
        columns = [*columns, *[c for c in old.columns if c not in columns]]
        old = old[columns]
    old[surrogate_key] = pd.to_numeric(old[surrogate_key]).astype("int64")
    old["valid_from"] = to_naive_ns(old["valid_from"])
    old["valid_to"] = to_naive_ns(old["valid_to"])
    old["is_current"] = old["is_current"].astype("boolean").fillna(False).astype(bool)

    is_unknown = old[surrogate_key] == UNKNOWN_KEY
    unknown = old[is_unknown].head(1)
    if unknown.empty:
        unknown = _unknown_member(snap[attributes], columns, business_key=business_key,
                                  surrogate_key=surrogate_key)
    known = old[~is_unknown]

    snap["_bk"] = snap[business_key].astype("str")
    current = known[known["is_current"]].copy()
    current["_bk"] = current[business_key].astype("str")
    current = current.sort_values("valid_from").drop_duplicates("_bk", keep="last")
    cur = current.set_index("_bk").reindex(snap["_bk"])
    has_current = cur[surrogate_key].notna().to_numpy()

    same = np.ones(len(snap), dtype=bool)
    for col in tracked:
        same &= _same_values(cur[col], snap[col])
    changed = has_current & ~same
    is_new = ~has_current

    source_time = snap[changed_at].to_numpy(dtype=_TS)
    cur_from = cur["valid_from"].to_numpy(dtype=_TS)
    later = source_time > cur_from  # False where either is missing
    new_from = np.where(changed & ~later, cur_from + np.timedelta64(1, "us"), source_time)
    if is_new.any():
        new_from = np.where(is_new & pd.isna(source_time), np.datetime64(BEGINNING_OF_TIME, "ns"), new_from)
        # A key with no current version but some history (closed outside this merge) must not overlap it.
        closed = known[known[business_key].notna()]
        last_to = closed.groupby(closed[business_key].astype("str"))["valid_to"].max()
        floor = snap["_bk"].map(last_to).astype(_TS).to_numpy(dtype=_TS) if not last_to.empty else None
        if floor is not None:
            overlap = is_new & (new_from < floor)
            new_from = np.where(overlap, floor, new_from)

    closing = pd.Series(new_from[changed], index=cur.loc[changed, surrogate_key].astype("int64").to_numpy())
    if not closing.empty:
        hit = known[surrogate_key].isin(closing.index)
        known = known.copy()
        known.loc[hit, "valid_to"] = known.loc[hit, surrogate_key].map(closing).to_numpy()
        known.loc[hit, "is_current"] = False

    opening = changed | is_new
    parts = [unknown, known]
    if opening.any():
        fresh = snap[opening].drop(columns=[changed_at]).copy()
        fresh["valid_from"] = new_from[opening].astype(_TS)
        fresh["valid_to"] = pd.Series(pd.NaT, index=fresh.index, dtype=_TS)
        fresh["is_current"] = True
        fresh = fresh.sort_values("_bk", kind="stable").drop(columns="_bk")
        fresh[surrogate_key] = _next_keys(known[surrogate_key], len(fresh))
        parts.append(fresh.reindex(columns=columns))
    parts = [p for p in parts if not p.empty]
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    out[surrogate_key] = out[surrogate_key].astype("int64")
    out["valid_from"] = to_naive_ns(out["valid_from"])
    out["valid_to"] = to_naive_ns(out["valid_to"])
    out["is_current"] = out["is_current"].astype(bool)
    return out.sort_values(surrogate_key, ignore_index=True)[columns]


# ------------------------------------------------------------------------------------------------ dim_product

PRODUCT_TRACKED = ["product_name", "category", "subcategory", "brand", "list_price", "unit_cost", "is_active"]


def build_dim_product(raw_products: pd.DataFrame, existing: pd.DataFrame | None) -> pd.DataFrame:
    """dim_product, SCD type 2 over the online shop's master catalog (which is the catalog of the stores too).

    The business key is the normalised SKU (``normalise_sku``: case and punctuation ignored), the key POS files
    are matched on. A new version opens when name, category, subcategory, brand, list price, unit cost or the
    active flag changes, valid from the catalog's ``updated_at``. ``sku`` keeps the catalog spelling and
    ``product_id`` the online shop's id (both untracked).

    Two catalog rows whose SKUs normalise alike are one product for every source; the most recently updated
    one wins (ties: the higher ``product_id``), since the merge needs one row per key.
    """
    snap = pd.DataFrame(
        {
            "product_id": pd.to_numeric(raw_products["product_id"]).astype("Int64"),
            "sku": raw_products["sku"].astype("str").str.strip(),
            "sku_norm": normalise_sku(raw_products["sku"]).astype("str"),
            "product_name": raw_products["name"],
            "category": raw_products["category"],
            "subcategory": raw_products["subcategory"],
            "brand": raw_products["brand"],
            "list_price": pd.to_numeric(raw_products["list_price"]).astype("float64").round(2),
            "unit_cost": pd.to_numeric(raw_products["unit_cost"]).astype("float64").round(2),
            "is_active": raw_products["is_active"].astype("boolean"),
            "changed_at": to_naive_ns(raw_products["updated_at"]),
        }
    )
    snap = snap[snap["sku_norm"].fillna("") != ""]
    snap = snap.sort_values(["sku_norm", "changed_at", "product_id"], na_position="first")
    snap = snap.drop_duplicates("sku_norm", keep="last")
    merged = scd2_merge(existing, snap, business_key="sku_norm", tracked=PRODUCT_TRACKED,
                        changed_at="changed_at", surrogate_key="product_key")
    unknown = merged["product_key"] == UNKNOWN_KEY
    merged.loc[unknown, "sku"] = merged.loc[unknown, "sku"].fillna(UNKNOWN_CODE)
    merged.loc[unknown, "product_name"] = merged.loc[unknown, "product_name"].fillna("Unknown product")
    return conform_typed(DIM_PRODUCT, merged)
