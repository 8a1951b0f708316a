"""Facts: what Python decides about the online shop's lines and stock before the warehouse conforms them.

Every fact is conformed inside the warehouse, by one statement a day for ``fact_sales`` and one for
``fact_inventory`` (``retail_assets.transforms.facts_sql`` and the ``.sql`` files beside it): the store, the
times, the dimension versions and the amounts are worked out there, once for every channel. What stays here is
what the online shop's rows need before that and SQL cannot say as well:

- which order lines are sales (an order is a sale once paid: ``SALE_STATUSES``) and which returns refer to a sold
  line; the others become rejections whose ``reason`` a person can act on and whose ``record`` is the row as
  received (JSON);
- the identifiers the statement joins on, normalised by the one definition the rest of the platform uses
  (``normalise_sku`` of the catalog's SKU, ``normalise_email`` of a guest's email);
- the line's identity and lineage (``sale_line_id``, ``receipt_ref``, ``source_ref``).

The frames returned are staged as temporary tables (``ONLINE_LINES``, ``ONLINE_STOCK``) for those statements.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from retail_assets.schemas.base import DATE, MONEY, TableSpec
from retail_assets.schemas.sources import REJECTIONS, SALE_STATUSES
from retail_assets.transforms.dimensions import ONLINE_STORE_CODE, conform_typed, to_naive_ns
from retail_assets.transforms.normalise import normalise_email, normalise_sku

FACT_SALES_ASSET = "fact_sales"
_TS = "datetime64[ns]"
_FALLBACK_TIMEZONE = "UTC"


class _OnlineLines(pa.DataFrameModel):
    sale_line_id: Series[str] = pa.Field(description="online:order:<order>:<line> or online:return:<return>")
    receipt_ref: Series[str] = pa.Field(description="online:order:<order>")
    source_ref: Series[str] = pa.Field(description="order_items:<order>:<line> or returns:<return>")
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    store_code: Series[str] = pa.Field(description="ONLINE")
    timezone: Series[str] = pa.Field(description="the reporting timezone, in which sold_at is shown")
    sold_at_utc: Series[pd.Timestamp] = pa.Field(description="placed_at of a sale, returned_at of a return")
    sku: Series[str] = pa.Field(nullable=True, description="normalised catalog SKU; missing: not in the catalog")
    online_customer_id: Series[str] = pa.Field(nullable=True, description="the order's customer, as text")
    email: Series[str] = pa.Field(nullable=True, description="normalised guest_email of the order")
    quantity: Series[int] = pa.Field(description="negative for a return")
    unit_price: Series[float] = pa.Field(metadata=MONEY)
    discount_amount: Series[float] = pa.Field(nullable=True, metadata=MONEY, description="a sale's")
    refund_amount: Series[float] = pa.Field(nullable=True, metadata=MONEY, description="a return's")


ONLINE_LINES = TableSpec("online_lines", _OnlineLines, "A business date's online sales lines and returns, staged for "
                         "fact_sales.sql")


class _OnlineStock(pa.DataFrameModel):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    store_code: Series[str] = pa.Field(description="ONLINE")
    sku: Series[str] = pa.Field(nullable=True, description="normalised catalog SKU; missing: not in the catalog")
    on_hand: Series[int] = pa.Field()
    source_ref: Series[str] = pa.Field(description="inventory:product_id=<ids>")


ONLINE_STOCK = TableSpec("online_stock", _OnlineStock, "The online shop's stock of a business date, staged for "
                         "fact_inventory.sql")


# ------------------------------------------------------------------------------------------------- helpers


def reporting_timezone(dim_store: pd.DataFrame) -> str:
    """The reporting timezone: the ONLINE store's (UTC when it has none)."""
    stores = dim_store.assign(store_code=dim_store["store_code"].astype("str")).drop_duplicates("store_code")
    reporting = stores.set_index("store_code")["timezone"].get(ONLINE_STORE_CODE)
    return reporting if isinstance(reporting, str) and reporting else _FALLBACK_TIMEZONE


def _sku_by_product_id(products: pd.DataFrame) -> pd.Series:
    """Online product_id -> normalised SKU (the key of dim_product)."""
    ids = pd.to_numeric(products["product_id"]).astype("int64").to_numpy()
    return pd.Series(normalise_sku(products["sku"]).astype("str").to_numpy(), index=ids)


def _records(df: pd.DataFrame) -> list[str]:
    """Each row as a JSON line, for the ``record`` column of a rejection."""
    if df.empty:
        return []
    return df.to_json(orient="records", lines=True, date_format="iso").strip("\n").split("\n")


def _empty_rejections() -> pd.DataFrame:
    return conform_typed(REJECTIONS, REJECTIONS.empty())


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


def _lines(*, sale_line_id: pd.Series, receipt_ref: pd.Series, source_ref: pd.Series, business_date: pd.Series,
           sold_at_utc: pd.Series, sku: pd.Series, orders: pd.DataFrame, quantity: np.ndarray,
           unit_price: pd.Series, discount: pd.Series | None, refund: pd.Series | None, timezone: str
           ) -> pd.DataFrame:
    """ONLINE_LINES rows: the customer is the order's (``online_customer_id``, ``guest_email``)."""
    n = len(sale_line_id)
    return pd.DataFrame({
        "sale_line_id": sale_line_id, "receipt_ref": receipt_ref, "source_ref": source_ref,
        "business_date": business_date, "store_code": ONLINE_STORE_CODE, "timezone": timezone,
        "sold_at_utc": sold_at_utc, "sku": sku,
        "online_customer_id": pd.to_numeric(orders["online_customer_id"]).astype("Int64").astype("string").array,
        "email": normalise_email(orders["guest_email"]).array,
        "quantity": quantity, "unit_price": pd.to_numeric(unit_price).to_numpy(),
        "discount_amount": pd.to_numeric(discount).to_numpy() if discount is not None else np.full(n, np.nan),
        "refund_amount": pd.to_numeric(refund).to_numpy() if refund is not None else np.full(n, np.nan),
    })


# --------------------------------------------------------------------------------------------- online sales


def online_lines(
    orders: pd.DataFrame,
    items: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    return_items: pd.DataFrame,
    return_orders: pd.DataFrame,
    products: pd.DataFrame,
    timezone: str,
    run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One business date of the online shop as ONLINE_LINES rows (conformed into fact_sales by ``fact_sales.sql``),
    and the rows that are not sales as rejections.

    Sales (SPEC 3: an order is a sale once paid, on the business date of ``placed_at``): every item of a paid,
    shipped or delivered order is a line ``online:order:<order_id>:<line_no>`` of receipt
    ``online:order:<order_id>`` at store ``ONLINE``, at ``placed_at`` (shown in the reporting ``timezone``), on the
    order's business date; its product is the catalog SKU of ``product_id`` (``products``), normalised; its
    customer the order's online customer, else a guest checkout's ``guest_email`` (both through the bridge, in
    the statement); its amounts those of the item.

    Items of pending or cancelled orders are rejected (``not_a_sale_pending`` / ``not_a_sale_cancelled``) with the
    order's business date, so the day's report shows what was left out and why; re-loading the day after the
    order is paid (or cancelled) puts (or takes) it in. An item whose order is not in ``orders`` is rejected as
    ``order_unknown``.

    Returns (SPEC 3: a negative sale on the business date of ``returned_at``, for ``refund_amount``): each return
    is a line ``online:return:<return_id>`` of receipt ``online:order:<order_id>``, with quantity ``-quantity``,
    the order item's ``unit_price`` and ``refund_amount`` (the statement books ``net = -refund_amount``), product
    and customer of the returned order line, at ``returned_at``. A return whose order line is not known, whose
    order is not known, or whose order is not a sale (pending or cancelled) is rejected as
    ``return_unknown_line``.

    ``return_items``/``return_orders`` are the order lines and orders the returns refer to (any date); the
    date's own ``items``/``orders`` are used as well, so a same-day return is found either way.
    """
    sku_of = _sku_by_product_id(products)
    lines: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []

    order_cols = ["order_id", "business_date", "status", "customer_id", "guest_email", "placed_at"]
    order_rows = orders[order_cols].rename(columns={"business_date": "order_business_date",
                                                    "customer_id": "online_customer_id"})
    order_rows = order_rows.assign(order_id=_ints(order_rows["order_id"]))

    if not items.empty:
        merged = items.assign(order_id=_ints(items["order_id"]), line_no=_ints(items["line_no"]))
        merged = merged.merge(order_rows, on="order_id", how="left", validate="many_to_one")
        status = merged["status"].astype("str")
        key = merged["order_id"].astype("str") + ":" + merged["line_no"].astype("str")
        is_sale = status.isin(SALE_STATUSES).to_numpy()
        no_order = status.isna().to_numpy()

        bad = merged[~is_sale]
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

        sale = merged[is_sale].reset_index(drop=True)
        if not sale.empty:
            receipt_ref = "online:order:" + sale["order_id"].astype("str")
            lines.append(_lines(
                sale_line_id=receipt_ref + ":" + sale["line_no"].astype("str"), receipt_ref=receipt_ref,
                source_ref="order_items:" + sale["order_id"].astype("str") + ":" + sale["line_no"].astype("str"),
                business_date=to_naive_ns(sale["order_business_date"]).dt.normalize(),
                sold_at_utc=to_naive_ns(sale["placed_at"]), sku=sale["product_id"].map(sku_of).astype("str"),
                orders=sale, quantity=sale["quantity"].astype("int64").to_numpy(), unit_price=sale["unit_price"],
                discount=sale["discount_amount"], refund=None, timezone=timezone))

    if not returns.empty:
        lines_r, rejected_r = _online_returns(
            returns, pd.concat([return_items, items], ignore_index=True),
            pd.concat([return_orders, orders], ignore_index=True), sku_of=sku_of, timezone=timezone, run_id=run_id)
        lines.append(lines_r)
        rejected.append(rejected_r)

    lines = [f for f in lines if not f.empty]
    rejected = [r for r in rejected if not r.empty]
    staged = ONLINE_LINES.conform(pd.concat(lines, ignore_index=True)) if lines else ONLINE_LINES.empty()
    rejects = conform_typed(REJECTIONS, pd.concat(rejected, ignore_index=True)) if rejected else _empty_rejections()
    return staged, rejects


def _online_returns(returns: pd.DataFrame, ref_items: pd.DataFrame, ref_orders: pd.DataFrame, *,
                    sku_of: pd.Series, timezone: str, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        return ONLINE_LINES.empty(), rejects
    return_id = good["return_id"].astype("int64").astype("str")
    return _lines(
        sale_line_id="online:return:" + return_id, receipt_ref="online:order:" + good["order_id"].astype("str"),
        source_ref="returns:" + return_id, business_date=to_naive_ns(good["business_date"]).dt.normalize(),
        sold_at_utc=to_naive_ns(good["returned_at"]), sku=_ints(good["product_id"]).map(sku_of).astype("str"),
        orders=good, quantity=-good["quantity"].astype("int64").to_numpy(), unit_price=good["unit_price"],
        discount=None, refund=good["refund_amount"], timezone=timezone), rejects


# ------------------------------------------------------------------------------------------------ inventory


def online_stock(raw_online_inventory: pd.DataFrame, products: pd.DataFrame, *,
                 business_date: date | pd.Timestamp) -> pd.DataFrame:
    """The online shop's current stock as ONLINE_STOCK rows of store ``ONLINE`` for ``business_date`` (conformed
    into fact_inventory by ``fact_inventory.sql``).

    All online warehouses are summed per product (the shop sells from all of them). Product ids missing from the
    catalog have no SKU: they are summed into one row with ``sku`` missing (product -1), so the day's total stock
    stays right and the natural key unique; ``source_ref`` lists the product ids behind each row
    (``inventory:product_id=3,17``).
    """
    if raw_online_inventory.empty:
        return ONLINE_STOCK.empty()
    stock = pd.DataFrame({"product_id": _ints(raw_online_inventory["product_id"]),
                          "on_hand": pd.to_numeric(raw_online_inventory["on_hand"]).astype("int64")})
    stock["sku"] = stock["product_id"].map(_sku_by_product_id(products)).astype("str")
    stock = stock.sort_values("product_id")
    per_sku = stock.groupby("sku", dropna=False, sort=True).agg(
        on_hand=("on_hand", "sum"),
        product_ids=("product_id", lambda ids: ",".join(str(i) for i in sorted(set(ids)))),
    ).reset_index()
    return ONLINE_STOCK.conform(pd.DataFrame({
        "business_date": pd.Timestamp(business_date).normalize(), "store_code": ONLINE_STORE_CODE,
        "sku": per_sku["sku"], "on_hand": per_sku["on_hand"].astype("int64"),
        "source_ref": "inventory:product_id=" + per_sku["product_ids"]}))
