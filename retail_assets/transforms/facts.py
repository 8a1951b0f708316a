"""Facts: online sales lines (returns included) and inventory, conformed to the warehouse dimensions in pandas.

POS sales lines, a million a day, are conformed by the same rules inside the warehouse
(``retail_assets.transforms.pos_sales_sql``).

Rules every function here follows (SPEC section 5):

- Amounts are computed in integer cents and only then turned back into float64 with 2 decimals, so they are
  exact to the cent and ``net_amount = gross_amount - sign(quantity) * discount_amount`` holds exactly.
- A fact points at the dimension version valid when the sale happened (``lookup_version`` at the UTC time).
  Unknown products and anonymous customers point at -1; the normalised SKU is kept on the fact either way.
- Every row says where it came from (``source_system``, ``source_ref``) and which run loaded it (``run_id``).
- Time zones: POS ``sold_at`` is local to the store; online times are UTC and shown in the reporting timezone.
  Local times are turned into UTC with one rule: in the repeated hour of a "fall back" night the *first*
  occurrence (still summer time, the earlier instant) is taken, as Python's ``fold=0`` does; a time in the
  skipped hour of a "spring forward" night does not exist and is moved forward to the first valid instant
  (02:30 -> 03:00), which keeps the sale on its business day and after the sales rung up before the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retail_assets.schemas.sources import REJECTIONS, SALE_STATUSES
from retail_assets.schemas.warehouse import FACT_INVENTORY, FACT_SALES, UNKNOWN_KEY
from retail_assets.transforms.dimensions import (
    ONLINE_STORE_CODE,
    conform_typed,
    lookup_version,
    to_date_key,
    to_naive_ns,
)
from retail_assets.transforms.normalise import normalise_email, normalise_sku

FACT_SALES_ASSET = "fact_sales"
_TS = "datetime64[ns]"
_FALLBACK_TIMEZONE = "UTC"


# ------------------------------------------------------------------------------------------------- helpers


def _cents(values: pd.Series) -> np.ndarray:
    """Money as integer cents (the inputs are NUMERIC(12,2) values that float64 cannot hold exactly)."""
    return np.rint(pd.to_numeric(values).astype("float64").fillna(0.0).to_numpy() * 100).astype("int64")


def _money(cents: np.ndarray) -> np.ndarray:
    """Cents back to the float64 closest to the 2-decimal value (what NUMERIC(14,2) will store)."""
    return np.round(cents / 100.0, 2)


def _sale_amounts(quantity: np.ndarray, unit_price: pd.Series, discount: pd.Series) -> dict[str, np.ndarray]:
    """gross = quantity * unit_price; net = gross - sign(quantity) * discount (a return gives its discount back)."""
    price = _cents(unit_price)
    gross = quantity * price
    disc = _cents(discount)
    net = gross - np.sign(quantity) * disc
    return {"unit_price": _money(price), "gross_amount": _money(gross), "discount_amount": _money(disc),
            "net_amount": _money(net)}


def _local_to_utc(local: pd.Series, timezones: pd.Series) -> pd.Series:
    """Naive local times, each in its own IANA zone, as naive UTC (DST rule in the module docstring)."""
    values = to_naive_ns(local).to_numpy()
    out = np.full(len(values), np.datetime64("NaT", "ns"))
    codes, zones = pd.factorize(timezones.fillna(_FALLBACK_TIMEZONE))
    for k, zone in enumerate(zones):
        mask = codes == k
        stamps = pd.DatetimeIndex(values[mask])
        utc = stamps.tz_localize(zone, ambiguous=np.ones(len(stamps), dtype=bool), nonexistent="shift_forward")
        out[mask] = utc.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()
    return pd.Series(out, index=local.index, dtype=_TS)


def _utc_to_local(utc: pd.Series, timezone: str) -> pd.Series:
    """Naive UTC times as naive local times of ``timezone``."""
    stamps = pd.DatetimeIndex(to_naive_ns(utc).to_numpy())
    local = stamps.tz_localize("UTC").tz_convert(timezone).tz_localize(None).as_unit("ns")
    return pd.Series(local.to_numpy(), index=utc.index, dtype=_TS)


def reporting_timezone(dim_store: pd.DataFrame) -> str:
    """The reporting timezone: the ONLINE store's (UTC when it has none)."""
    return _store_lookup(dim_store)[2]


def _store_lookup(dim_store: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """(store_key by code, timezone by code, reporting timezone = the ONLINE row's)."""
    stores = dim_store.assign(store_code=dim_store["store_code"].astype("str")).drop_duplicates("store_code")
    stores = stores.set_index("store_code")
    keys = pd.to_numeric(stores["store_key"]).astype("int64")
    zones = stores["timezone"]
    reporting = zones.get(ONLINE_STORE_CODE)
    return keys, zones, reporting if isinstance(reporting, str) and reporting else _FALLBACK_TIMEZONE


def _bridge_map(bridge: pd.DataFrame, source_system: str) -> pd.Series:
    rows = bridge[bridge["source_system"] == source_system]
    return pd.Series(rows["customer_id"].astype("str").to_numpy(), index=rows["source_key"].astype("str").to_numpy())


def _sku_by_product_id(products: pd.DataFrame) -> pd.Series:
    """Online product_id -> normalised SKU (the key of dim_product)."""
    ids = pd.to_numeric(products["product_id"]).astype("int64").to_numpy()
    return pd.Series(normalise_sku(products["sku"]).astype("str").to_numpy(), index=ids)


def _order_customer_ids(online_customer_id: pd.Series, guest_email: pd.Series, bridge: pd.DataFrame) -> pd.Series:
    """customer_id of an order: its online customer through the bridge, else a guest's email, else missing."""
    ids = pd.to_numeric(online_customer_id).astype("Int64").astype("string")
    by_id = ids.map(_bridge_map(bridge, "online"))
    by_email = normalise_email(guest_email).map(_bridge_map(bridge, "email"))
    return by_id.astype("str").fillna(by_email.astype("str"))


@dataclass(frozen=True)
class OnlineKeys:
    """The dimension keys a business date's online lines can look up: the rows of dim_product, the bridge and
    dim_customer ``online_fact_sales`` needs are those with these keys, however large the dimensions."""

    skus: list[str]
    online_customer_ids: list[str]
    emails: list[str]


def online_dimension_keys(orders: pd.DataFrame, items: pd.DataFrame, *, return_items: pd.DataFrame,
                          return_orders: pd.DataFrame, products: pd.DataFrame) -> OnlineKeys:
    """The normalised SKUs of the items sold or returned, and the online customer ids and normalised guest emails
    of their orders, computed as ``online_fact_sales`` computes them."""
    product_ids = pd.concat([_ints(f["product_id"].dropna()) for f in (items, return_items)], ignore_index=True)
    sku_of = _sku_by_product_id(products)
    skus = sku_of[sku_of.index.isin(product_ids.unique())]
    order_rows = pd.concat([orders[["customer_id", "guest_email"]], return_orders[["customer_id", "guest_email"]]],
                           ignore_index=True)
    ids = pd.to_numeric(order_rows["customer_id"]).astype("Int64").astype("string").dropna()
    emails = normalise_email(order_rows["guest_email"]).dropna()
    return OnlineKeys(sorted(set(skus.astype(str))), sorted(set(ids.astype(str))), sorted(set(emails.astype(str))))


def _arrow_text(values: pd.Series) -> pa.Array:
    array = pa.array(values.array if isinstance(values.dtype, pd.StringDtype) else values.to_numpy(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _join(*parts: str | pd.Series, sep: str = ":") -> pd.Series:
    """Columns and constants joined with ``sep`` row by row, in one pyarrow pass (chained ``+`` on a million
    rows copies every intermediate string column)."""
    index = next(p.index for p in parts if isinstance(p, pd.Series))
    arrays = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else _arrow_text(p) for p in parts]
    joined = pc.binary_join_element_wise(*arrays, pa.scalar(sep, pa.large_string()))
    return pd.Series(joined, index=index, dtype="str")


def _records(df: pd.DataFrame) -> list[str]:
    """Each row as a JSON line, for the ``record`` column of a rejection."""
    if df.empty:
        return []
    return df.to_json(orient="records", lines=True, date_format="iso").strip("\n").split("\n")


def _empty_sales() -> pd.DataFrame:
    return conform_typed(FACT_SALES, FACT_SALES.empty())


def _empty_rejections() -> pd.DataFrame:
    return conform_typed(REJECTIONS, REJECTIONS.empty())


# --------------------------------------------------------------------------------------------- online sales


def _ints(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values).astype("int64")


def _rejections(rows: pd.DataFrame, *, source_ref: str, source_key: pd.Series, reason_code: pd.Series,
                reason: pd.Series, record: list[str], run_id: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "business_date": to_naive_ns(rows["business_date"]).dt.normalize().to_numpy(),
            "asset": FACT_SALES_ASSET,
            "source_system": "online",
            "source_ref": source_ref,
            "source_key": source_key.to_numpy(),
            "reason_code": reason_code.to_numpy(),
            "reason": reason.to_numpy(),
            "record": record,
            "run_id": run_id,
        }
    )


def online_fact_sales(
    orders: pd.DataFrame,
    items: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    return_items: pd.DataFrame,
    return_orders: pd.DataFrame,
    dim_store: pd.DataFrame,
    dim_product: pd.DataFrame,
    dim_customer: pd.DataFrame,
    bridge: pd.DataFrame,
    products: pd.DataFrame,
    timezone: str,
    run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One business date of the online shop as fact_sales rows, and the rows that are not sales as rejections.

    Sales (SPEC 3: an order is a sale once paid, on the business date of ``placed_at``):

    - every item of a paid, shipped or delivered order is a line ``online:order:<order_id>:<line_no>`` of receipt
      ``online:order:<order_id>`` at store ``ONLINE``; ``sold_at_utc`` is ``placed_at``, ``sold_at`` the same
      instant in the reporting ``timezone``; the business date is the order's;
    - product: ``product_id`` -> catalog SKU (``products``) -> normalised -> the version valid at ``placed_at``;
    - customer: the order's online customer through the bridge, else a guest checkout's normalised
      ``guest_email`` through the bridge, else -1 (anonymous), at the version valid at ``placed_at``;
    - amounts as POS, with ``discount_amount`` the item's.

    Items of pending or cancelled orders are rejected (``not_a_sale_pending`` / ``not_a_sale_cancelled``) with the
    order's business date, so the day's report shows what was left out and why; re-loading the day after the
    order is paid (or cancelled) puts (or takes) it in. An item whose order is not in ``orders`` is rejected as
    ``order_unknown``.

    Returns (SPEC 3: a negative sale on the business date of ``returned_at``, for ``refund_amount``):

    - each return is a line ``online:return:<return_id>`` of receipt ``online:order:<order_id>``, with quantity
      ``-quantity``, the order item's ``unit_price``, ``gross = quantity * unit_price``,
      ``net = -refund_amount`` and ``discount_amount = net - gross`` (for a negative quantity the SPEC identity
      ``net = gross - sign(q) * discount`` reads ``net = gross + discount``). Refunding less than the gross value
      gives a positive discount, refunding more (e.g. shipping) a negative one;
    - product and customer of the returned order line, at the versions valid at ``returned_at``;
    - a return whose order line is not known, whose order is not known, or whose order is not a sale (pending or
      cancelled) is rejected as ``return_unknown_line``.

    ``return_items``/``return_orders`` are the order lines and orders the returns refer to (any date); the
    date's own ``items``/``orders`` are used as well, so a same-day return is found either way.
    """
    store_keys, _, _ = _store_lookup(dim_store)
    online_store_key = int(store_keys.get(ONLINE_STORE_CODE, UNKNOWN_KEY))
    sku_of = _sku_by_product_id(products)
    facts: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []

    order_cols = ["order_id", "business_date", "status", "customer_id", "guest_email", "placed_at"]
    order_rows = orders[order_cols].rename(columns={"business_date": "order_business_date",
                                                    "customer_id": "online_customer_id"})
    order_rows = order_rows.assign(order_id=_ints(order_rows["order_id"]))

    if not items.empty:
        lines = items.assign(order_id=_ints(items["order_id"]), line_no=_ints(items["line_no"]))
        lines = lines.merge(order_rows, on="order_id", how="left", validate="many_to_one")
        status = lines["status"].astype("str")
        key = lines["order_id"].astype("str") + ":" + lines["line_no"].astype("str")
        is_sale = status.isin(SALE_STATUSES).to_numpy()
        no_order = status.isna().to_numpy()

        bad = lines[~is_sale]
        if not bad.empty:
            bad_status = status[~is_sale]
            bad_order = bad["order_id"].astype("str")
            code = ("not_a_sale_" + bad_status).fillna("order_unknown")
            reason = ("order " + bad_order + " is " + bad_status + ": not a sale").fillna(
                "order item " + key[~is_sale] + " has no order " + bad_order
                + " in the orders of its business date: re-extract that day from the online shop")
            bad = bad.assign(business_date=bad["order_business_date"].where(~no_order[~is_sale],
                                                                             bad["business_date"]))
            item_cols = [c for c in items.columns if c != "run_id"]
            rejected.append(_rejections(bad, source_ref="order_items", source_key=key[~is_sale],
                                        reason_code=code, reason=reason, record=_records(bad[item_cols]),
                                        run_id=run_id))

        sale = lines[is_sale].reset_index(drop=True)
        if not sale.empty:
            placed_at = to_naive_ns(sale["placed_at"])
            sku = sale["product_id"].map(sku_of).astype("str")
            customer_id = _order_customer_ids(sale["online_customer_id"], sale["guest_email"], bridge)
            business_date = to_naive_ns(sale["order_business_date"]).dt.normalize()
            quantity = sale["quantity"].astype("int64").to_numpy()
            receipt_ref = "online:order:" + sale["order_id"].astype("str")
            facts.append(_online_facts(
                sale_line_id=receipt_ref + ":" + sale["line_no"].astype("str"), receipt_ref=receipt_ref,
                source_ref="order_items:" + sale["order_id"].astype("str") + ":" + sale["line_no"].astype("str"),
                business_date=business_date, at_utc=placed_at, sku=sku, customer_id=customer_id, quantity=quantity,
                amounts=_sale_amounts(quantity, sale["unit_price"], sale["discount_amount"]), is_return=False,
                online_store_key=online_store_key, dim_product=dim_product, dim_customer=dim_customer,
                timezone=timezone, run_id=run_id))

    if not returns.empty:
        facts_r, rejected_r = _online_returns(
            returns, pd.concat([return_items, items], ignore_index=True),
            pd.concat([return_orders, orders], ignore_index=True),
            online_store_key=online_store_key, sku_of=sku_of, dim_product=dim_product,
            dim_customer=dim_customer, bridge=bridge, timezone=timezone, run_id=run_id)
        facts.append(facts_r)
        rejected.append(rejected_r)

    facts = [f for f in facts if not f.empty]
    rejected = [r for r in rejected if not r.empty]
    fact = conform_typed(FACT_SALES, pd.concat(facts, ignore_index=True)) if facts else _empty_sales()
    rejects = conform_typed(REJECTIONS, pd.concat(rejected, ignore_index=True)) if rejected else _empty_rejections()
    return fact, rejects


def _online_returns(
    returns: pd.DataFrame,
    ref_items: pd.DataFrame,
    ref_orders: pd.DataFrame,
    *,
    online_store_key: int,
    sku_of: pd.Series,
    dim_product: pd.DataFrame,
    dim_customer: pd.DataFrame,
    bridge: pd.DataFrame,
    timezone: str,
    run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns as negative sale lines, and the returns that refer to no sale line as rejections."""
    item_rows = ref_items[["order_id", "line_no", "product_id", "unit_price"]]
    item_rows = item_rows.assign(order_id=_ints(item_rows["order_id"]), line_no=_ints(item_rows["line_no"]))
    item_rows = item_rows.drop_duplicates(["order_id", "line_no"], keep="last")
    order_rows = ref_orders[["order_id", "status", "customer_id", "guest_email"]]
    order_rows = order_rows.rename(columns={"customer_id": "online_customer_id"})
    order_rows = order_rows.assign(order_id=_ints(order_rows["order_id"])).drop_duplicates("order_id", keep="last")

    r = returns.assign(order_id=_ints(returns["order_id"]), line_no=_ints(returns["line_no"]))
    r = r.merge(item_rows, on=["order_id", "line_no"], how="left", indicator="_item")
    r = r.merge(order_rows, on="order_id", how="left")
    has_item = (r["_item"] == "both").to_numpy()
    status = r["status"].astype("str")
    ok = has_item & status.isin(SALE_STATUSES).to_numpy()

    bad = r[~ok]
    if bad.empty:
        rejects = _empty_rejections()
    else:
        rid = bad["return_id"].astype("int64").astype("str")
        where = "order " + bad["order_id"].astype("str") + " line " + bad["line_no"].astype("str")
        bad_status = status[~ok]
        reason = np.where(
            ~has_item[~ok],
            "return " + rid + " refers to " + where + ", which is not a known order line: check the return in "
            "the online shop",
            np.where(
                bad_status.isna(),
                "return " + rid + " refers to " + where + ", whose order is not known: re-extract the order",
                "return " + rid + " refers to " + where + ", but order " + bad["order_id"].astype("str") + " is "
                + bad_status.fillna("") + ": not a sale, so there is nothing to return",
            ),
        )
        return_cols = [c for c in returns.columns if c != "run_id"]
        rejects = _rejections(bad, source_ref="returns", source_key=rid,
                              reason_code=pd.Series("return_unknown_line", index=bad.index),
                              reason=pd.Series(reason, index=bad.index), record=_records(bad[return_cols]),
                              run_id=run_id)

    good = r[ok].reset_index(drop=True)
    if good.empty:
        return _empty_sales(), rejects
    returned_at = to_naive_ns(good["returned_at"])
    sku = _ints(good["product_id"]).map(sku_of).astype("str")
    customer_id = _order_customer_ids(good["online_customer_id"], good["guest_email"], bridge)
    business_date = to_naive_ns(good["business_date"]).dt.normalize()
    quantity = -good["quantity"].astype("int64").to_numpy()
    price = _cents(good["unit_price"])
    gross = quantity * price
    net = -_cents(good["refund_amount"])
    discount = net - gross  # net = gross - sign(q) * discount with sign(q) = -1
    return_id = good["return_id"].astype("int64").astype("str")
    facts = _online_facts(
        sale_line_id="online:return:" + return_id, receipt_ref="online:order:" + good["order_id"].astype("str"),
        source_ref="returns:" + return_id, business_date=business_date, at_utc=returned_at, sku=sku,
        customer_id=customer_id, quantity=quantity,
        amounts={"unit_price": _money(price), "gross_amount": _money(gross), "discount_amount": _money(discount),
                 "net_amount": _money(net)},
        is_return=True, online_store_key=online_store_key, dim_product=dim_product, dim_customer=dim_customer,
        timezone=timezone, run_id=run_id)
    return facts, rejects


def _online_facts(*, sale_line_id: pd.Series, receipt_ref: pd.Series, source_ref: pd.Series,
                  business_date: pd.Series, at_utc: pd.Series, sku: pd.Series, customer_id: pd.Series,
                  quantity: np.ndarray, amounts: dict[str, np.ndarray], is_return: bool, online_store_key: int,
                  dim_product: pd.DataFrame, dim_customer: pd.DataFrame, timezone: str, run_id: str) -> pd.DataFrame:
    """fact_sales rows of online lines (sales or returns) at store ONLINE: local time in the reporting ``timezone``,
    product and customer at the versions valid at ``at_utc``."""
    return pd.DataFrame({
        "sale_line_id": sale_line_id,
        "business_date": business_date,
        "date_key": to_date_key(business_date),
        "sold_at": _utc_to_local(at_utc, timezone),
        "sold_at_utc": at_utc,
        "store_key": online_store_key,
        "product_key": lookup_version(sku, at_utc, dim_product, business_key="sku_norm", surrogate_key="product_key"),
        "customer_key": lookup_version(customer_id, at_utc, dim_customer, business_key="customer_id",
                                       surrogate_key="customer_key"),
        "channel": "online",
        "receipt_ref": receipt_ref,
        "sku": sku,
        "quantity": quantity,
        **amounts,
        "is_return": is_return,
        "source_system": "online",
        "source_ref": source_ref,
        "run_id": run_id,
    })


# ------------------------------------------------------------------------------------------------- inventory


def _end_of_day_utc(business_date: pd.Series, timezones: pd.Series) -> pd.Series:
    """The last microsecond of each local business day, in UTC: the moment a close-of-business count describes."""
    last = to_naive_ns(business_date).dt.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return _local_to_utc(last, timezones)


def pos_fact_inventory(
    raw_inventory: pd.DataFrame, *, dim_store: pd.DataFrame, dim_product: pd.DataFrame, run_id: str
) -> pd.DataFrame:
    """raw_pos_inventory counts as fact_inventory rows: one a store, product and day (close of business).

    The product is the version valid at the end of the store's local business day; an unknown SKU is product -1
    with its normalised SKU kept in ``sku``. ``source_ref`` is ``<source_file>:<source_line>``.
    """
    if raw_inventory.empty:
        return conform_typed(FACT_INVENTORY, FACT_INVENTORY.empty())
    store_keys, zones, reporting = _store_lookup(dim_store)
    store_code = raw_inventory["store_code"].astype("str")
    business_date = to_naive_ns(raw_inventory["business_date"]).dt.normalize()
    sku_source = raw_inventory["sku_norm"] if "sku_norm" in raw_inventory.columns else raw_inventory["sku_raw"]
    sku = normalise_sku(sku_source).astype("str")
    at = _end_of_day_utc(business_date, store_code.map(zones).fillna(reporting))
    out = pd.DataFrame(
        {
            "business_date": business_date,
            "date_key": to_date_key(business_date),
            "store_key": store_code.map(store_keys).fillna(UNKNOWN_KEY).astype("int64"),
            "product_key": lookup_version(sku, at, dim_product, business_key="sku_norm",
                                          surrogate_key="product_key"),
            "sku": sku,
            "on_hand": pd.to_numeric(raw_inventory["on_hand"]).astype("int64"),
            "source_system": "pos",
            "source_ref": _join(raw_inventory["source_file"].astype("str"),
                                raw_inventory["source_line"].astype("int64")),
            "run_id": run_id,
        }
    )
    return conform_typed(FACT_INVENTORY, out.reset_index(drop=True))


def online_fact_inventory(
    raw_online_inventory: pd.DataFrame,
    products: pd.DataFrame,
    *,
    business_date: date | pd.Timestamp,
    dim_store: pd.DataFrame,
    dim_product: pd.DataFrame,
    run_id: str,
) -> pd.DataFrame:
    """The online shop's current stock as fact_inventory rows of store ``ONLINE`` for ``business_date``.

    All online warehouses are summed per product (the shop sells from all of them). The product is the version
    valid at the end of the business day in the reporting timezone (the ONLINE store's). Product ids missing
    from the catalog have no SKU: they are summed into one row of product -1 with ``sku`` NULL, so the day's
    total stock stays right and the natural key unique; ``source_ref`` lists the product ids behind each row
    (``inventory:product_id=3,17``).
    """
    if raw_online_inventory.empty:
        return conform_typed(FACT_INVENTORY, FACT_INVENTORY.empty())
    store_keys, _, reporting = _store_lookup(dim_store)
    product_id = _ints(raw_online_inventory["product_id"])
    stock = pd.DataFrame({"product_id": product_id,
                          "on_hand": pd.to_numeric(raw_online_inventory["on_hand"]).astype("int64")})
    stock["sku"] = stock["product_id"].map(_sku_by_product_id(products)).astype("str")
    stock = stock.sort_values("product_id")
    per_sku = stock.groupby("sku", dropna=False, sort=True).agg(
        on_hand=("on_hand", "sum"),
        product_ids=("product_id", lambda ids: ",".join(str(i) for i in sorted(set(ids)))),
    ).reset_index()
    day = pd.Series(pd.Timestamp(business_date).normalize(), index=per_sku.index).astype(_TS)
    at = _end_of_day_utc(day, pd.Series(reporting, index=per_sku.index))
    out = pd.DataFrame(
        {
            "business_date": day,
            "date_key": to_date_key(day),
            "store_key": int(store_keys.get(ONLINE_STORE_CODE, UNKNOWN_KEY)),
            "product_key": lookup_version(per_sku["sku"], at, dim_product, business_key="sku_norm",
                                          surrogate_key="product_key"),
            "sku": per_sku["sku"],
            "on_hand": per_sku["on_hand"].astype("int64"),
            "source_system": "online",
            "source_ref": "inventory:product_id=" + per_sku["product_ids"],
            "run_id": run_id,
        }
    )
    return conform_typed(FACT_INVENTORY, out)
