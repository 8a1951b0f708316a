"""The online shop database: snapshots of its reference tables, and its orders, lines and returns by day."""


import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, SOURCES_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import combine, plausible_emails, plausible_emails_spec, schema_check_spec
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates, utc_bounds
from retail_assets.resources import SqlSource, Warehouse
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import (
    RAW_ONLINE_CUSTOMERS,
    RAW_ONLINE_INVENTORY,
    RAW_ONLINE_ORDER_ITEMS,
    RAW_ONLINE_ORDERS,
    RAW_ONLINE_PRODUCTS,
    RAW_ONLINE_RETURNS,
)


def _local_date(utc: pd.Series, timezone: str) -> pd.Series:
    stamps = pd.to_datetime(utc)
    return stamps.dt.tz_localize("UTC").dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()


def snapshot_asset(spec: TableSpec, source_table: str, resource_key: str, kinds: set[str], doc: str):
    has_email = "email" in spec.columns

    @dg.asset(
        name=spec.name, group_name=SOURCES_GROUP, kinds=kinds, owners=OWNERS,
        description=describe(spec, doc), metadata=table_metadata(spec),
        check_specs=[schema_check_spec(spec), *([plausible_emails_spec(spec.name)] if has_email else [])],
        required_resource_keys={resource_key, "warehouse"}, retry_policy=TRANSIENT_RETRY,
    )
    @retries_transient
    def _asset(context: dg.AssetExecutionContext):
        source: SqlSource = getattr(context.resources, resource_key)
        warehouse: Warehouse = context.resources.warehouse
        table = source.table(source_table)
        frame = source.read(sa.select(table))
        frame["run_id"] = context.run.run_id
        frame, check = validated(spec, frame)
        warehouse.replace(spec, frame, {})
        return dg.MaterializeResult(
            metadata={"dagster/row_count": len(frame), "source": f"{source.name}.{source_table}",
                      "preview": preview(frame)},
            check_results=[check, *([plausible_emails(frame)] if has_email else [])],
        )

    return _asset


raw_online_customers = snapshot_asset(RAW_ONLINE_CUSTOMERS, "customers", "online_store", {"sql"},
                                       "The online shop's customers as they are now.")
raw_online_products = snapshot_asset(RAW_ONLINE_PRODUCTS, "products", "online_store", {"sql"},
                                      "The master catalog, for stores too; its changes feed `dim_product` history.")
raw_online_inventory = snapshot_asset(RAW_ONLINE_INVENTORY, "inventory", "online_store", {"sql"},
                                       "Stock of the online warehouses: the source keeps only the current state.")


def extract_orders(source: SqlSource, start, end) -> pd.DataFrame:
    orders = source.table("orders")
    return source.read(sa.select(orders).where(orders.c.placed_at >= start, orders.c.placed_at < end))


def extract_order_items(source: SqlSource, start, end) -> pd.DataFrame:
    orders, items = source.table("orders"), source.table("order_items")
    query = (sa.select(items, orders.c.placed_at)
             .join(orders, orders.c.order_id == items.c.order_id)
             .where(orders.c.placed_at >= start, orders.c.placed_at < end))
    return source.read(query)


def extract_returns(source: SqlSource, start, end) -> pd.DataFrame:
    returns = source.table("returns")
    return source.read(sa.select(returns).where(returns.c.returned_at >= start, returns.c.returned_at < end))


def _daily_asset(spec: TableSpec, extract, time_column: str, doc: str, deps=()):
    @dg.asset(
        name=spec.name, group_name=SOURCES_GROUP, kinds={"sql"}, owners=OWNERS, partitions_def=daily_partitions,
        description=describe(spec, doc), metadata=table_metadata(spec), check_specs=[schema_check_spec(spec)],
        backfill_policy=backfill_policy, deps=list(deps), retry_policy=TRANSIENT_RETRY,
    )
    @retries_transient
    def _asset(context: dg.AssetExecutionContext, online_store: SqlSource, warehouse: Warehouse):
        timezone = daily_partitions.timezone
        checks, total, frames = [], 0, []
        for day in partition_dates(context):
            start, end = utc_bounds(day, timezone)
            frame = extract(online_store, start, end)
            frame["business_date"] = _local_date(frame[time_column], timezone) if len(frame) else pd.NaT
            frame["run_id"] = context.run.run_id
            frame, check = validated(spec, frame, day.isoformat())
            checks.append(check)
            warehouse.replace(spec, frame, {"business_date": day})
            total += len(frame)
            frames.append(frame)
        return dg.MaterializeResult(metadata={"dagster/row_count": total, "preview": preview(concat(frames))},
                                    check_results=combine(checks))

    return _asset


raw_online_orders = _daily_asset(RAW_ONLINE_ORDERS, extract_orders, "placed_at",
                                 "Orders whose placed_at falls on the business date in the reporting timezone, "
                                 "with their status as of extraction: a re-run picks up later cancellations.")
raw_online_order_items = _daily_asset(RAW_ONLINE_ORDER_ITEMS, extract_order_items, "placed_at",
                                      "The lines of the orders placed on the business date.")
raw_online_returns = _daily_asset(RAW_ONLINE_RETURNS, extract_returns, "returned_at",
                                  "Returns whose returned_at falls on the business date: negative sales that day.")

