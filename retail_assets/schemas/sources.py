"""Raw tables: the sources as extracted and validated, with lineage columns (source file/table, line/key, run)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from retail_assets.schemas.base import DATE, MONEY, TableSpec

PAYMENT_METHODS = ("cash", "card", "mobile", "gift_card")
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
SALE_STATUSES = ("paid", "shipped", "delivered")
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# loaded: its lines are booked; held: a re-send kept back for an operator; withdrawn: removed by an operator;
# skipped: not read (a link, a hidden or special file)
LEDGER_STATUSES = ("loaded", "duplicate", "superseded", "rejected", "held", "withdrawn", "skipped")


class _Base(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = "filter"


class RawPosSales(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Store-local business day")
    store_code: Series[str] = pa.Field(str_length={"min_value": 1}, description="Store code from stores.csv")
    receipt_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Receipt, unique per store-day")
    line_no: Series[int] = pa.Field(ge=1, description="Line within the receipt")
    sold_at: Series[pd.Timestamp] = pa.Field(description="Local time of the sale in the store's timezone")
    register_id: Series[str] = pa.Field(nullable=True, description="Till")
    cashier_id: Series[str] = pa.Field(nullable=True, description="Staff id")
    sku_raw: Series[str] = pa.Field(description="SKU as the terminal printed it")
    sku_norm: Series[str] = pa.Field(str_matches=r"^[A-Z0-9]+$", description="Upper case, alphanumerics only")
    quantity: Series[int] = pa.Field(ne=0, description="Units; negative on a return line")
    unit_price: Series[float] = pa.Field(ge=0, metadata=MONEY, description="Price per unit before discount")
    discount: Series[float] = pa.Field(ge=0, metadata=MONEY, description="Total discount on the line")
    loyalty_card: Series[str] = pa.Field(nullable=True, description="Loyalty card, empty when anonymous")
    payment_method: Series[str] = pa.Field(nullable=True, isin=PAYMENT_METHODS, description="How it was paid")
    layout: Series[str] = pa.Field(description="POS layout the file was read with")
    source_file: Series[str] = pa.Field(description="File path relative to the drop folder")
    source_line: Series[int] = pa.Field(ge=2, description="Physical line in the file (header is line 1)")
    run_id: Series[str] = pa.Field(description="Dagster run that loaded the row")


class RawPosInventory(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Store-local business day")
    store_code: Series[str] = pa.Field(description="Store code")
    sku_raw: Series[str] = pa.Field(description="SKU as printed")
    sku_norm: Series[str] = pa.Field(str_matches=r"^[A-Z0-9]+$", description="Normalised SKU")
    on_hand: Series[int] = pa.Field(description="Units on hand at close of business")
    counted_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="Local time of the count")
    source_file: Series[str] = pa.Field(description="File path relative to the drop folder")
    source_line: Series[int] = pa.Field(ge=2, description="Physical line in the file")
    run_id: Series[str] = pa.Field(description="Dagster run that loaded the row")


class RawStores(_Base):
    store_code: Series[str] = pa.Field(unique=True, str_matches=r"^[A-Za-z0-9_-]+$", description="Store code")
    store_name: Series[str] = pa.Field(description="Display name")
    city: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    timezone: Series[str] = pa.Field(description="IANA timezone of the store")
    pos_layout: Series[str] = pa.Field(description="Layout of the store's files")
    opened_on: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    closed_on: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE, description="Empty while open")
    source_line: Series[int] = pa.Field(description="Line in stores.csv")
    run_id: Series[str] = pa.Field()


class RawOnlineCustomers(_Base):
    customer_id: Series[int] = pa.Field(unique=True)
    email: Series[str] = pa.Field(nullable=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    created_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    run_id: Series[str] = pa.Field()


class RawOnlineProducts(_Base):
    product_id: Series[int] = pa.Field(unique=True)
    sku: Series[str] = pa.Field(unique=True, description="Catalog SKU, e.g. HB-004211")
    name: Series[str] = pa.Field(nullable=True)
    category: Series[str] = pa.Field(nullable=True)
    subcategory: Series[str] = pa.Field(nullable=True)
    brand: Series[str] = pa.Field(nullable=True)
    unit_cost: Series[float] = pa.Field(ge=0, nullable=True, metadata=MONEY)
    list_price: Series[float] = pa.Field(ge=0, nullable=True, metadata=MONEY)
    is_active: Series[bool] = pa.Field(nullable=True)
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC; when the row last changed")
    run_id: Series[str] = pa.Field()


class RawOnlineOrders(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="placed_at in reporting timezone")
    order_id: Series[int] = pa.Field(unique=True)
    customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="NULL for a guest checkout")
    guest_email: Series[str] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(isin=ORDER_STATUSES)
    placed_at: Series[pd.Timestamp] = pa.Field(description="UTC")
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    shipping_amount: Series[float] = pa.Field(nullable=True, ge=0, metadata=MONEY)
    promo_code: Series[str] = pa.Field(nullable=True)
    run_id: Series[str] = pa.Field()


class RawOnlineOrderItems(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="The order's business date")
    order_id: Series[int] = pa.Field()
    line_no: Series[int] = pa.Field(ge=1)
    product_id: Series[int] = pa.Field()
    quantity: Series[int] = pa.Field(gt=0)
    unit_price: Series[float] = pa.Field(ge=0, metadata=MONEY)
    discount_amount: Series[float] = pa.Field(ge=0, metadata=MONEY)
    run_id: Series[str] = pa.Field()


class RawOnlineReturns(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="returned_at in reporting timezone")
    return_id: Series[int] = pa.Field(unique=True)
    order_id: Series[int] = pa.Field()
    line_no: Series[int] = pa.Field(ge=1)
    quantity: Series[int] = pa.Field(gt=0)
    refund_amount: Series[float] = pa.Field(ge=0, metadata=MONEY)
    returned_at: Series[pd.Timestamp] = pa.Field(description="UTC")
    reason: Series[str] = pa.Field(nullable=True)
    run_id: Series[str] = pa.Field()


class RawOnlineInventory(_Base):
    product_id: Series[int] = pa.Field()
    warehouse_code: Series[str] = pa.Field()
    on_hand: Series[int] = pa.Field()
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    run_id: Series[str] = pa.Field()


class RawCrmContacts(_Base):
    contact_id: Series[str] = pa.Field(unique=True)
    email: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    birth_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    city: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    loyalty_card: Series[str] = pa.Field(nullable=True)
    loyalty_tier: Series[str] = pa.Field(nullable=True, isin=LOYALTY_TIERS)
    marketing_opt_in: Series[bool] = pa.Field(nullable=True)
    created_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    updated_at: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC")
    is_deleted: Series[bool] = pa.Field(nullable=True)
    run_id: Series[str] = pa.Field()


class Rejections(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE, description="Day it belongs to")
    asset: Series[str] = pa.Field(description="Asset that rejected it")
    source_system: Series[str] = pa.Field(isin=("pos", "online", "crm"))
    source_ref: Series[str] = pa.Field(description="File path or source table")
    source_key: Series[str] = pa.Field(nullable=True, description="Line number or primary key")
    reason_code: Series[str] = pa.Field(description="Machine-readable reason")
    reason: Series[str] = pa.Field(description="What is wrong and what to do about it")
    record: Series[str] = pa.Field(nullable=True, description="The offending line or row, as received")
    store_code: Series[str] = pa.Field(nullable=True, description="The store a POS line named, when that store is "
                                       "the reason (unknown_store): reloaded once stores.csv has it")
    run_id: Series[str] = pa.Field()


class PosFileLedger(_Base):
    path: Series[str] = pa.Field(description="Relative to the drop folder")
    content_hash: Series[str] = pa.Field(nullable=True)
    size: Series[int] = pa.Field(ge=0)
    mtime: Series[float] = pa.Field(description="Modification time, seconds since the epoch")
    kind: Series[str] = pa.Field(nullable=True, isin=("sales", "inventory"))
    store_code: Series[str] = pa.Field(nullable=True)
    business_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    layout: Series[str] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(isin=LEDGER_STATUSES, description="What became of the file (docs/reliability.md)")
    reason: Series[str] = pa.Field(nullable=True)
    lines: Series[int] = pa.Field(ge=0, description="Data lines in the file")
    rows_loaded: Series[int] = pa.Field(ge=0)
    run_id: Series[str] = pa.Field()


RAW_POS_SALES = TableSpec("raw_pos_sales", RawPosSales, "POS sales lines from the drop folder, every layout",
                          natural_key=("store_code", "business_date", "receipt_id", "line_no"),
                          partition_column="business_date")
RAW_POS_INVENTORY = TableSpec("raw_pos_inventory", RawPosInventory, "POS stock counts at close of business",
                              natural_key=("store_code", "business_date", "sku_norm"),
                              partition_column="business_date")
RAW_STORES = TableSpec("raw_stores", RawStores, "stores.csv from the root of the drop folder",
                       natural_key=("store_code",))
RAW_ONLINE_CUSTOMERS = TableSpec("raw_online_customers", RawOnlineCustomers, "Online shop customers (snapshot)",
                                 natural_key=("customer_id",))
RAW_ONLINE_PRODUCTS = TableSpec("raw_online_products", RawOnlineProducts,
                                "Master product catalog from the online shop (snapshot)", natural_key=("product_id",))
RAW_ONLINE_ORDERS = TableSpec("raw_online_orders", RawOnlineOrders, "Online orders by business date of placed_at",
                              natural_key=("order_id",), partition_column="business_date")
RAW_ONLINE_ORDER_ITEMS = TableSpec("raw_online_order_items", RawOnlineOrderItems,
                                   "Lines of the online orders placed on the business date",
                                   natural_key=("order_id", "line_no"), partition_column="business_date")
RAW_ONLINE_RETURNS = TableSpec("raw_online_returns", RawOnlineReturns, "Online returns by date of returned_at",
                               natural_key=("return_id",), partition_column="business_date")
RAW_ONLINE_INVENTORY = TableSpec("raw_online_inventory", RawOnlineInventory,
                                 "Online warehouse stock, current state (snapshot)",
                                 natural_key=("product_id", "warehouse_code"))
RAW_CRM_CONTACTS = TableSpec("raw_crm_contacts", RawCrmContacts, "CRM contacts (snapshot)",
                             natural_key=("contact_id",))
REJECTIONS = TableSpec("rejections", Rejections, "Every source line or row that did not make it, with the reason",
                       partition_column="business_date")
POS_FILE_LEDGER = TableSpec("pos_file_ledger", PosFileLedger,
                            "Every POS file seen, its hash and what became of it",
                            natural_key=("path", "content_hash"))
