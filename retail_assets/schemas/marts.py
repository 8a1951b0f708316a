"""Marts (the analyst-facing layer): aggregates computed inside the warehouse from the star schema.

Each mart is one pandera model, like every other table: it drives the DDL, the column schema shown in Dagster
and the validation of the rows the mart's SQL produced. The business rules behind each column live in the
docstrings of the ``build_mart_*`` functions in ``retail_assets.assets.marts``.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from retail_assets.schemas.base import DATE, MONEY, TableSpec
from retail_assets.schemas.sources import LOYALTY_TIERS
from retail_assets.schemas.warehouse import CHANNELS

RFM_SEGMENTS = ("prospect", "champion", "loyal", "new", "active", "at_risk", "lost")
STOCK_STATUSES = ("stock_out", "low", "ok", "overstock")


class _Base(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = "filter"


class MartDailySales(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    date_key: Series[int] = pa.Field(description="yyyymmdd of business_date")
    store_key: Series[int] = pa.Field(description="dim_store key; -1 unknown store")
    store_code: Series[str] = pa.Field(description="Store code; ONLINE for the online shop")
    store_name: Series[str] = pa.Field(nullable=True)
    channel: Series[str] = pa.Field(isin=CHANNELS)
    sale_lines: Series[int] = pa.Field(ge=0, description="Lines that are not returns")
    return_lines: Series[int] = pa.Field(ge=0)
    receipts: Series[int] = pa.Field(ge=0, description="Distinct receipts (store) or orders (online) with a sale "
                                                       "line; a receipt holding only returns does not count")
    customers: Series[int] = pa.Field(ge=0, description="Distinct known customers (customer_id) with any line")
    units_sold: Series[int] = pa.Field(ge=0, description="Units on sale lines")
    units_returned: Series[int] = pa.Field(ge=0, description="Units on return lines, as a positive number")
    units: Series[int] = pa.Field(description="Net units: units_sold - units_returned")
    gross_amount: Series[float] = pa.Field(metadata=MONEY, description="Sum of quantity * unit_price")
    discount_amount: Series[float] = pa.Field(metadata=MONEY, description="Sum of line discounts")
    sales_amount: Series[float] = pa.Field(metadata=MONEY, description="Net amount of sale lines")
    returns_amount: Series[float] = pa.Field(metadata=MONEY,
                                             description="Net amount refunded on return lines, as a positive number")
    net_revenue: Series[float] = pa.Field(metadata=MONEY, description="sales_amount - returns_amount")
    average_basket: Series[float] = pa.Field(nullable=True, metadata=MONEY,
                                             description="sales_amount / receipts, half-up to the cent")
    return_rate: Series[float] = pa.Field(nullable=True, ge=0,
                                          description="units_returned / units_sold; NULL when nothing was sold")


class MartProductPerformance(_Base):
    week_start: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Monday of the ISO week")
    iso_year: Series[int] = pa.Field()
    iso_week: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 53})
    sku: Series[str] = pa.Field(description="Catalog SKU of the current product version; UNKNOWN for SKUs "
                                            "missing from the catalog")
    product_key: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Current version's dim_product key")
    product_name: Series[str] = pa.Field(nullable=True, description="Current name")
    category: Series[str] = pa.Field(nullable=True, description="Current category (the ranking's group)")
    subcategory: Series[str] = pa.Field(nullable=True)
    brand: Series[str] = pa.Field(nullable=True)
    units_sold: Series[int] = pa.Field(ge=0)
    units_returned: Series[int] = pa.Field(ge=0)
    units: Series[int] = pa.Field(description="Net units: units_sold - units_returned")
    net_revenue: Series[float] = pa.Field(metadata=MONEY)
    cost: Series[float] = pa.Field(nullable=True, metadata=MONEY,
                                   description="Sum of quantity * unit_cost of the version valid at each sale; NULL "
                                               "when a line's cost is unknown")
    margin: Series[float] = pa.Field(nullable=True, metadata=MONEY, description="net_revenue - cost")
    margin_rate: Series[float] = pa.Field(nullable=True, description="margin / net_revenue when net_revenue > 0")
    category_rank: Series[int] = pa.Field(ge=1, description="Rank by net_revenue within category and week; ties "
                                                            "share the rank (1, 1, 3)")


class MartCustomer360(_Base):
    customer_id: Series[str] = pa.Field(unique=True, description="Stable customer id across versions")
    customer_key: Series[int] = pa.Field(description="Current version's dim_customer key")
    crm_contact_id: Series[str] = pa.Field(nullable=True)
    online_customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    email: Series[str] = pa.Field(nullable=True)
    first_name: Series[str] = pa.Field(nullable=True)
    last_name: Series[str] = pa.Field(nullable=True)
    city: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    loyalty_tier: Series[str] = pa.Field(nullable=True, isin=LOYALTY_TIERS, description="Current tier")
    marketing_opt_in: Series[bool] = pa.Field(nullable=True)
    first_purchase_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    last_purchase_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE)
    orders: Series[int] = pa.Field(ge=0, description="Distinct receipts/orders with a sale line")
    units: Series[int] = pa.Field(description="Net units over the lifetime")
    sales_amount: Series[float] = pa.Field(metadata=MONEY, description="Net amount of sale lines")
    returns_amount: Series[float] = pa.Field(metadata=MONEY, description="Refunded, as a positive number")
    lifetime_net: Series[float] = pa.Field(metadata=MONEY, description="sales_amount - returns_amount")
    average_order_value: Series[float] = pa.Field(nullable=True, metadata=MONEY,
                                                  description="sales_amount / orders, half-up to the cent")
    channels: Series[str] = pa.Field(nullable=True, description="Channels with a sale line, comma-separated, "
                                                                "alphabetical")
    channel_count: Series[int] = pa.Field(ge=0)
    as_of_date: Series[pd.Timestamp] = pa.Field(nullable=True, metadata=DATE,
                                                description="Latest business_date in fact_sales")
    recency_days: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0,
                                                   description="as_of_date - last_purchase_date")
    rfm_segment: Series[str] = pa.Field(isin=RFM_SEGMENTS)


class MartInventoryHealth(_Base):
    business_date: Series[pd.Timestamp] = pa.Field(metadata=DATE)
    date_key: Series[int] = pa.Field()
    store_key: Series[int] = pa.Field()
    store_code: Series[str] = pa.Field()
    product_key: Series[int] = pa.Field(description="Version on the inventory row; -1 unknown product")
    sku: Series[str] = pa.Field(nullable=True, description="Normalised SKU as counted")
    product_name: Series[str] = pa.Field(nullable=True)
    category: Series[str] = pa.Field(nullable=True)
    on_hand: Series[int] = pa.Field()
    sales_window_days: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 28},
                                              description="Days the average covers: 28, fewer at the start of "
                                                          "the sales history")
    units_sold_window: Series[int] = pa.Field(ge=0, description="Units on sale lines at this store over the window")
    avg_daily_units: Series[float] = pa.Field(ge=0, description="units_sold_window / sales_window_days")
    days_of_supply: Series[float] = pa.Field(nullable=True, ge=0,
                                             description="on_hand / avg_daily_units; 0 when out of stock, NULL "
                                                         "when stock is on hand but nothing sold")
    is_stock_out: Series[bool] = pa.Field(description="on_hand <= 0")
    is_overstock: Series[bool] = pa.Field(description="Stock on hand and days_of_supply > 90 or no sales")
    stock_status: Series[str] = pa.Field(isin=STOCK_STATUSES)


MART_DAILY_SALES = TableSpec(
    "mart_daily_sales", MartDailySales, "Sales per business date, store and channel",
    natural_key=("business_date", "store_key", "channel"), partition_column="business_date",
)
MART_PRODUCT_PERFORMANCE = TableSpec(
    "mart_product_performance", MartProductPerformance,
    "Sales, margin and category rank per product (current catalog version) and ISO week",
    natural_key=("week_start", "sku"),
)
MART_CUSTOMER_360 = TableSpec(
    "mart_customer_360", MartCustomer360, "One row per current customer: purchases, value, channels, RFM segment",
    natural_key=("customer_id",),
)
MART_INVENTORY_HEALTH = TableSpec(
    "mart_inventory_health", MartInventoryHealth,
    "Stock per store, product and day against the last 28 days of sales: days of supply, stock-outs, overstock",
    natural_key=("business_date", "store_key", "product_key", "sku"), partition_column="business_date",
)
