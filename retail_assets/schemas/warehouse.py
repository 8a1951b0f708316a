"""Warehouse tables (SPEC section 5): conformed dimensions and facts. Surrogate key -1 is the unknown member."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from retail_assets.schemas.base import DATE, MONEY, TableSpec
from retail_assets.schemas.sources import LOYALTY_TIERS

UNKNOWN_KEY = -1
CHANNELS = ("store", "online")


class _Base(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = "filter"


class DimDate(_Base):
    date_key: Series[int] = pa.Field(unique=True, description="yyyymmdd")
    date: Series[pd.Timestamp] = pa.Field(unique=True, metadata=DATE)
    year: Series[int] = pa.Field()
    quarter: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 4})
    month: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 12})
    day: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 31})
    day_of_week: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 7}, description="1 = Monday")
    is_weekend: Series[bool] = pa.Field()


class DimStore(_Base):
    store_key: Series[int] = pa.Field(unique=True, description="Surrogate key; -1 unknown")
    store_code: Series[str] = pa.Field(unique=True, description="Store code; ONLINE for the online shop")
    store_name: Series[str] = pa.Field()
    city: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    timezone: Series[str] = pa.Field(nullable=True)
    channel: Series[str] = pa.Field(isin=CHANNELS + ("unknown",))
    pos_layout: Series[str] = pa.Field(nullable=True)
    opened_on: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    closed_on: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)


class DimProduct(_Base):
    product_key: Series[int] = pa.Field(unique=True, description="Surrogate key of one version; -1 unknown")
    product_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Online shop product_id")
    sku: Series[str] = pa.Field(description="Catalog SKU")
    sku_norm: Series[str] = pa.Field(description="SKU without case or punctuation, the join key for POS")
    product_name: Series[str] = pa.Field(nullable=True)
    category: Series[str] = pa.Field(nullable=True)
    subcategory: Series[str] = pa.Field(nullable=True)
    brand: Series[str] = pa.Field(nullable=True)
    list_price: Series[float] = pa.Field(nullable=True, ge=0, metadata=MONEY)
    unit_cost: Series[float] = pa.Field(nullable=True, ge=0, metadata=MONEY)
    is_active: Series[bool] = pa.Field(nullable=True)
    valid_from: Series[pd.Timestamp] = pa.Field(description="UTC time the version began at the source")
    valid_to: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC; NULL while current")
    is_current: Series[bool] = pa.Field()


class DimCustomer(_Base):
    customer_key: Series[int] = pa.Field(unique=True, description="Surrogate key of one version; -1 anonymous")
    customer_id: Series[str] = pa.Field(description="Stable id across versions: crm:<contact> or online:<id>")
    crm_contact_id: Series[str] = pa.Field(nullable=True, description="Golden CRM contact")
    online_customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    loyalty_card: Series[str] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True, description="Normalised: trimmed, lower case")
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    phone: Series[str] = pa.Field(nullable=True, description="Digits with a leading + where known")
    city: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    loyalty_tier: Series[str] = pa.Field(nullable=True, isin=LOYALTY_TIERS)
    marketing_opt_in: Series[bool] = pa.Field(nullable=True)
    valid_from: Series[pd.Timestamp] = pa.Field(description="UTC time the version began at the source")
    valid_to: Series[pd.Timestamp] = pa.Field(nullable=True, description="UTC; NULL while current")
    is_current: Series[bool] = pa.Field()


class BridgeCustomerIdentity(_Base):
    source_system: Series[str] = pa.Field(isin=("crm", "online", "loyalty_card", "email"))
    source_key: Series[str] = pa.Field(description="Contact id, online customer id, card number or email")
    customer_id: Series[str] = pa.Field(description="The customer it resolves to")


class FactSales(_Base):
    sale_line_id: Series[str] = pa.Field(unique=True, description="Natural key of the line")
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    date_key: Series[int] = pa.Field(description="yyyymmdd of business_date")
    sold_at: Series[pd.Timestamp] = pa.Field(description="Local time (store timezone, or reporting for online)")
    sold_at_utc: Series[pd.Timestamp] = pa.Field(description="UTC, used for point-in-time dimension lookup")
    store_key: Series[int] = pa.Field()
    product_key: Series[int] = pa.Field(description="Version valid when sold; -1 unknown product")
    customer_key: Series[int] = pa.Field(description="Version valid when sold; -1 anonymous")
    channel: Series[str] = pa.Field(isin=CHANNELS)
    receipt_ref: Series[str] = pa.Field(description="Receipt (store) or order (online) the line belongs to")
    sku: Series[str] = pa.Field(nullable=True, description="Normalised SKU as sold (kept for unknown products)")
    quantity: Series[int] = pa.Field(ne=0, description="Negative for returns")
    unit_price: Series[float] = pa.Field(ge=0, metadata=MONEY)
    gross_amount: Series[float] = pa.Field(metadata=MONEY, description="quantity * unit_price")
    discount_amount: Series[float] = pa.Field(metadata=MONEY)
    net_amount: Series[float] = pa.Field(metadata=MONEY,
                                         description="gross - sign(quantity) * discount; -refund for online returns")
    is_return: Series[bool] = pa.Field()
    source_system: Series[str] = pa.Field(isin=("pos", "online"))
    source_ref: Series[str] = pa.Field(description="File and line, or source table and key")
    run_id: Series[str] = pa.Field()


class FactInventory(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    date_key: Series[int] = pa.Field()
    store_key: Series[int] = pa.Field()
    product_key: Series[int] = pa.Field()
    sku: Series[str] = pa.Field(nullable=True)
    on_hand: Series[int] = pa.Field()
    source_system: Series[str] = pa.Field(isin=("pos", "online"))
    source_ref: Series[str] = pa.Field()
    run_id: Series[str] = pa.Field()


DIM_DATE = TableSpec("dim_date", DimDate, "One row a calendar day", natural_key=("date_key",))
DIM_STORE = TableSpec("dim_store", DimStore, "One row a store, plus ONLINE for the online shop",
                      natural_key=("store_code",))
DIM_PRODUCT = TableSpec("dim_product", DimProduct, "Products, SCD type 2 (one row a version)",
                        natural_key=("sku_norm", "valid_from"))
DIM_CUSTOMER = TableSpec("dim_customer", DimCustomer, "One customer across channels, SCD type 2",
                         natural_key=("customer_id", "valid_from"))
BRIDGE_CUSTOMER_IDENTITY = TableSpec("bridge_customer_identity", BridgeCustomerIdentity,
                                     "Which source identity resolves to which customer",
                                     natural_key=("source_system", "source_key"))
FACT_SALES = TableSpec("fact_sales", FactSales, "One row a sales line of either channel, returns included",
                       natural_key=("sale_line_id",), partition_column="business_date")
FACT_INVENTORY = TableSpec("fact_inventory", FactInventory, "On hand per store (or online), product and day",
                           natural_key=("business_date", "store_key", "product_key", "sku"),
                           partition_column="business_date")
