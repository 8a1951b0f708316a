"""Conformed dimensions: dates, stores (with ONLINE), products and customers with their history (SCD type 2)."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from retail_assets.assets.common import OWNERS, WAREHOUSE_GROUP, describe, preview, table_metadata, validated
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import schema_check_spec
from retail_assets.partitions import daily_partitions
from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import RAW_CRM_CONTACTS, RAW_ONLINE_CUSTOMERS, RAW_ONLINE_PRODUCTS, RAW_STORES
from retail_assets.schemas.warehouse import BRIDGE_CUSTOMER_IDENTITY, DIM_CUSTOMER, DIM_DATE, DIM_PRODUCT, DIM_STORE
from retail_assets.transforms.dimensions import build_dim_date, build_dim_product, build_dim_store
from retail_assets.transforms.identity import build_dim_customer, resolve_customers


def _existing(warehouse: Warehouse, spec) -> pd.DataFrame | None:
    frame = warehouse.read(spec)
    return frame if len(frame) else None


def _result(frame: pd.DataFrame, check: dg.AssetCheckResult, **extra) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "preview": preview(frame), **extra},
                                check_results=[check])


@dg.asset(group_name=WAREHOUSE_GROUP, kinds={"sql", "pandas"}, owners=OWNERS, metadata=table_metadata(DIM_DATE),
          description=describe(DIM_DATE, "Every day from RETAIL_PARTITION_START to a year ahead."),
          check_specs=[schema_check_spec(DIM_DATE)], retry_policy=TRANSIENT_RETRY)
@retries_transient
def dim_date(warehouse: Warehouse):
    start = daily_partitions.start.date()
    frame, check = validated(DIM_DATE, build_dim_date(start, date.today() + timedelta(days=366)))
    warehouse.replace(DIM_DATE, frame, {})
    return _result(frame, check)


@dg.asset(group_name=WAREHOUSE_GROUP, kinds={"sql", "pandas"}, owners=OWNERS, metadata=table_metadata(DIM_STORE),
          deps=["raw_stores"], check_specs=[schema_check_spec(DIM_STORE)], retry_policy=TRANSIENT_RETRY,
          description=describe(DIM_STORE, "Type 1 (attributes overwritten); keys stable across loads; ONLINE is "
                                          "the online shop, -1 the unknown store."))
@retries_transient
def dim_store(warehouse: Warehouse):
    stores = warehouse.read(RAW_STORES)
    frame = build_dim_store(stores, _existing(warehouse, DIM_STORE), reporting_timezone=daily_partitions.timezone)
    frame, check = validated(DIM_STORE, frame)
    warehouse.replace(DIM_STORE, frame, {})
    return _result(frame, check)


@dg.asset(group_name=WAREHOUSE_GROUP, kinds={"sql", "pandas"}, owners=OWNERS, metadata=table_metadata(DIM_PRODUCT),
          deps=["raw_online_products"], check_specs=[schema_check_spec(DIM_PRODUCT)], retry_policy=TRANSIENT_RETRY,
          description=describe(DIM_PRODUCT, "SCD type 2 over the master catalog: a change of name, category, brand, "
                                            "price or cost opens a version valid from the source's updated_at."))
@retries_transient
def dim_product(warehouse: Warehouse):
    existing = _existing(warehouse, DIM_PRODUCT)
    frame = build_dim_product(warehouse.read(RAW_ONLINE_PRODUCTS), existing)
    frame, check = validated(DIM_PRODUCT, frame)
    warehouse.replace(DIM_PRODUCT, frame, {})
    new_versions = len(frame) - (len(existing) if existing is not None else 0)
    return _result(frame, check, new_versions=new_versions, current=int(frame["is_current"].sum()))


@dg.multi_asset(
    group_name=WAREHOUSE_GROUP,
    specs=[
        dg.AssetSpec("dim_customer", deps=["raw_crm_contacts", "raw_online_customers"], kinds={"sql", "pandas"},
                     owners=OWNERS, metadata=table_metadata(DIM_CUSTOMER),
                     description=describe(DIM_CUSTOMER, "One customer across channels. The CRM contact is the "
                                          "golden record (duplicates by normalised email merged); online customers "
                                          "join it by email, POS sales by loyalty card; SCD type 2.")),
        dg.AssetSpec("bridge_customer_identity", deps=["raw_crm_contacts", "raw_online_customers"],
                     kinds={"sql", "pandas"}, owners=OWNERS, metadata=table_metadata(BRIDGE_CUSTOMER_IDENTITY),
                     description=describe(BRIDGE_CUSTOMER_IDENTITY, "How each source identity (contact, online "
                                          "customer, loyalty card, email) resolves to a customer_id.")),
    ],
    check_specs=[schema_check_spec(DIM_CUSTOMER), schema_check_spec(BRIDGE_CUSTOMER_IDENTITY)],
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def customers(warehouse: Warehouse):
    snapshot, bridge = resolve_customers(warehouse.read(RAW_CRM_CONTACTS), warehouse.read(RAW_ONLINE_CUSTOMERS))
    existing = _existing(warehouse, DIM_CUSTOMER)
    dim, dim_check = validated(DIM_CUSTOMER, build_dim_customer(snapshot, existing))
    bridge, bridge_check = validated(BRIDGE_CUSTOMER_IDENTITY, bridge)
    with warehouse.transaction() as tx:
        tx.replace(DIM_CUSTOMER, dim, {})
        tx.replace(BRIDGE_CUSTOMER_IDENTITY, bridge, {})
    new_versions = len(dim) - (len(existing) if existing is not None else 0)
    yield dg.MaterializeResult(asset_key="dim_customer",
                               metadata={"dagster/row_count": len(dim), "new_versions": new_versions,
                                         "current": int(dim["is_current"].sum()), "preview": preview(dim)})
    yield dg.MaterializeResult(asset_key="bridge_customer_identity", metadata={"dagster/row_count": len(bridge)})
    yield dg.AssetCheckResult(asset_key="dim_customer", check_name=dim_check.check_name, passed=dim_check.passed,
                              severity=dim_check.severity, metadata=dim_check.metadata)
    yield dg.AssetCheckResult(asset_key="bridge_customer_identity", check_name=bridge_check.check_name,
                              passed=bridge_check.passed, severity=bridge_check.severity,
                              metadata=bridge_check.metadata)
