"""SQLAlchemy Core tables of the two source databases, as SPEC sections 3 and 4 list them.

These describe systems the company already runs; the platform reads them and never changes them. Money is
NUMERIC(12,2) and every timestamp is UTC without an offset.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
)

Money = Numeric(12, 2)

online_metadata = MetaData()

customers = Table(
    "customers",
    online_metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("email", String(255)),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("phone", String(40)),
    Column("country", String(2)),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

products = Table(
    "products",
    online_metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(20), nullable=False, unique=True),
    Column("name", String(200)),
    Column("category", String(60)),
    Column("subcategory", String(60)),
    Column("brand", String(60)),
    Column("unit_cost", Money),
    Column("list_price", Money),
    Column("is_active", Boolean),
    Column("updated_at", DateTime),
)

orders = Table(
    "orders",
    online_metadata,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=True),
    Column("guest_email", String(255)),
    Column("status", String(20)),
    Column("placed_at", DateTime),
    Column("updated_at", DateTime),
    Column("shipping_amount", Money),
    Column("promo_code", String(40)),
)

order_items = Table(
    "order_items",
    online_metadata,
    Column("order_id", Integer, ForeignKey("orders.order_id")),
    Column("line_no", Integer),
    Column("product_id", Integer, ForeignKey("products.product_id")),
    Column("quantity", Integer),
    Column("unit_price", Money),
    Column("discount_amount", Money),
    PrimaryKeyConstraint("order_id", "line_no"),
)

returns = Table(
    "returns",
    online_metadata,
    Column("return_id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer),
    Column("line_no", Integer),
    Column("quantity", Integer),
    Column("refund_amount", Money),
    Column("returned_at", DateTime),
    Column("reason", String(100)),
    ForeignKeyConstraint(["order_id", "line_no"], ["order_items.order_id", "order_items.line_no"]),
)

# Current state only, one row a product and warehouse, hence the composite key.
inventory = Table(
    "inventory",
    online_metadata,
    Column("product_id", Integer, ForeignKey("products.product_id")),
    Column("warehouse_code", String(20)),
    Column("on_hand", Integer),
    Column("updated_at", DateTime),
    PrimaryKeyConstraint("product_id", "warehouse_code"),
)

crm_metadata = MetaData()

contacts = Table(
    "contacts",
    crm_metadata,
    Column("contact_id", String(20), primary_key=True),
    Column("email", String(255)),
    Column("phone", String(40)),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("birth_date", Date),
    Column("city", String(100)),
    Column("region", String(60)),
    Column("country", String(2)),
    Column("loyalty_card", String(20), unique=True),
    Column("loyalty_tier", String(20)),
    Column("marketing_opt_in", Boolean),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("is_deleted", Boolean),
)
