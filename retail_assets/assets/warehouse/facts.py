"""Facts: every sales line of both channels (returns included) and stock on hand, one business date at a time.

Each date is replaced in one transaction: the day's fact rows and the day's rejections go together, so a
reader never sees half a day and a failed load leaves the previous state.
"""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, WAREHOUSE_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.checks import RECONCILED_CHECK, check_spec, combine, schema_check_spec
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates
from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import (
    RAW_ONLINE_INVENTORY,
    RAW_ONLINE_ORDER_ITEMS,
    RAW_ONLINE_ORDERS,
    RAW_ONLINE_PRODUCTS,
    RAW_ONLINE_RETURNS,
    RAW_POS_INVENTORY,
    RAW_POS_SALES,
    REJECTIONS,
)
from retail_assets.schemas.warehouse import (
    BRIDGE_CUSTOMER_IDENTITY,
    DIM_CUSTOMER,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_INVENTORY,
    FACT_SALES,
)
from retail_assets.settings import load_settings
from retail_assets.transforms.facts import online_fact_inventory, online_fact_sales, pos_fact_inventory, pos_fact_sales

KEYS_CHECK = "keys_resolved"
UNKNOWN_PRODUCT_CHECK = "unknown_product_rate"
UNKNOWN_PRODUCT_LIMIT = 0.05


def _sums(warehouse: Warehouse, table: str, day, where: str = "") -> tuple[int, int, float]:
    """(lines, quantity, net) of one day computed by the warehouse itself from NUMERIC columns."""
    queries = {
        "raw_pos_sales": "SELECT COUNT(*), COALESCE(SUM(quantity), 0), "
                         "COALESCE(SUM(quantity * unit_price - SIGN(quantity) * discount), 0) "
                         "FROM raw_pos_sales WHERE business_date = :day",
        "fact_sales": "SELECT COUNT(*), COALESCE(SUM(quantity), 0), COALESCE(SUM(net_amount), 0) "
                      "FROM fact_sales WHERE business_date = :day",
        "fact_sales_pos": "SELECT COUNT(*), COALESCE(SUM(quantity), 0), COALESCE(SUM(net_amount), 0) "
                          "FROM fact_sales WHERE business_date = :day AND source_system = 'pos'",
    }
    with warehouse.engine.connect() as conn:
        lines, qty, net = conn.execute(sa.text(queries[table]), {"day": day}).one()
    return int(lines), int(qty), round(float(net), 2)


def _reconcile(warehouse: Warehouse, day, online_items: int, online_returns: int, fact: pd.DataFrame,
               rejected: pd.DataFrame) -> dg.AssetCheckResult:
    """Source = fact + rejected, line for line; POS quantity and net amount equal to the cent."""
    raw_lines, raw_qty, raw_net = _sums(warehouse, "raw_pos_sales", day)
    fact_lines, fact_qty, fact_net = _sums(warehouse, "fact_sales_pos", day)
    online_fact = int((fact["source_system"] == "online").sum()) if len(fact) else 0
    online_rejected = len(rejected)
    problems = []
    if (raw_lines, raw_qty) != (fact_lines, fact_qty) or abs(raw_net - fact_net) > 0.001:
        problems.append(f"POS raw {raw_lines} lines / {raw_qty} units / {raw_net:.2f} net vs fact {fact_lines} / "
                        f"{fact_qty} / {fact_net:.2f}")
    if online_items + online_returns != online_fact + online_rejected:
        problems.append(f"online {online_items} order lines + {online_returns} returns vs {online_fact} fact lines "
                        f"+ {online_rejected} not loaded")
    return dg.AssetCheckResult(
        check_name=RECONCILED_CHECK, passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"partition": day.isoformat(), "pos_lines": raw_lines, "pos_units": raw_qty, "pos_net": raw_net,
                  "online_source_rows": online_items + online_returns, "online_fact_rows": online_fact,
                  "online_not_loaded": online_rejected, "problems": "; ".join(problems) or "none"},
    )


def _keys_resolved(fact: pd.DataFrame, dims: dict[str, pd.DataFrame], day) -> dg.AssetCheckResult:
    """Every dimension key of the day's facts is a row of its dimension (-1 being the unknown member)."""
    dangling = {}
    for column, dim in (("store_key", "dim_store"), ("product_key", "dim_product"), ("customer_key", "dim_customer")):
        known = set(dims[dim][column].astype(int)) | {-1}
        bad = ~fact[column].isin(known) if len(fact) else pd.Series(dtype=bool)
        if bad.any():
            dangling[column] = sorted(set(fact.loc[bad, column].astype(int)))[:10]
    return dg.AssetCheckResult(
        check_name=KEYS_CHECK, passed=not dangling, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"partition": day.isoformat(), "dangling_keys": str(dangling) if dangling else "none"},
    )


def _unknown_products(fact: pd.DataFrame, day) -> dg.AssetCheckResult:
    rate = float((fact["product_key"] == -1).mean()) if len(fact) else 0.0
    unknown = fact.loc[fact["product_key"] == -1, "sku"].value_counts().head(10) if len(fact) else pd.Series()
    return dg.AssetCheckResult(
        check_name=UNKNOWN_PRODUCT_CHECK, passed=rate <= UNKNOWN_PRODUCT_LIMIT, severity=dg.AssetCheckSeverity.WARN,
        metadata={"partition": day.isoformat(), "unknown_product_rate": rate,
                  "top_unknown_skus": ", ".join(f"{k} ({v})" for k, v in unknown.items()) or "none"},
    )


@dg.asset(
    group_name=WAREHOUSE_GROUP, kinds={"sql", "pandas"}, owners=OWNERS, partitions_def=daily_partitions,
    metadata=table_metadata(FACT_SALES),
    deps=["raw_pos_sales", "raw_online_orders", "raw_online_order_items", "raw_online_returns", "raw_online_products",
          "dim_store", "dim_product", "dim_customer", "bridge_customer_identity", "dim_date"],
    check_specs=[
        schema_check_spec(FACT_SALES),
        check_spec("fact_sales", RECONCILED_CHECK, "Per day: POS raw lines, units and net amount equal the POS fact "
                   "rows to the cent; online order lines + returns = fact rows + rows not loaded", blocking=True),
        check_spec("fact_sales", KEYS_CHECK, "Every store, product and customer key is a row of its dimension "
                   "or the unknown member -1", blocking=True),
        check_spec("fact_sales", UNKNOWN_PRODUCT_CHECK,
                   f"At most {UNKNOWN_PRODUCT_LIMIT:.0%} of the day's lines sell a SKU missing from the catalog"),
    ],
    backfill_policy=backfill_policy,
    description=describe(FACT_SALES, "Store lines from raw_pos_sales, online order lines of paid/shipped/delivered "
                         "orders on the date of placed_at, online returns on the date of returned_at. Each line points "
                         "at the product and customer versions valid when it happened. Order lines that are not "
                         "sales (pending, cancelled) and returns that match no sale go to `rejections`."),
)
def fact_sales(context: dg.AssetExecutionContext, warehouse: Warehouse):
    settings = load_settings()
    run_id = context.run.run_id
    dims = {"dim_store": warehouse.read(DIM_STORE), "dim_product": warehouse.read(DIM_PRODUCT),
            "dim_customer": warehouse.read(DIM_CUSTOMER), "bridge": warehouse.read(BRIDGE_CUSTOMER_IDENTITY)}
    products = warehouse.read(RAW_ONLINE_PRODUCTS)
    checks, total, frames = [], 0, []
    for day in partition_dates(context):
        pos = pos_fact_sales(warehouse.read(RAW_POS_SALES, {"business_date": day}), run_id=run_id, **dims)
        orders = warehouse.read(RAW_ONLINE_ORDERS, {"business_date": day})
        items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"business_date": day})
        returns = warehouse.read(RAW_ONLINE_RETURNS, {"business_date": day})
        order_ids = sorted(set(returns["order_id"].astype(int)))
        return_items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"order_id": order_ids}) if order_ids else items.iloc[:0]
        return_orders = warehouse.read(RAW_ONLINE_ORDERS, {"order_id": order_ids}) if order_ids else orders.iloc[:0]
        online, rejected = online_fact_sales(orders, items, returns, return_items=return_items,
                                             return_orders=return_orders, products=products,
                                             timezone=settings.timezone, run_id=run_id, **dims)
        fact, check = validated(FACT_SALES, concat([pos, online]), day.isoformat())
        with warehouse.transaction() as tx:
            tx.replace(FACT_SALES, fact, {"business_date": day})
            tx.replace(REJECTIONS, rejected, {"business_date": day, "asset": "fact_sales"})
        checks += [check, _reconcile(warehouse, day, len(items), len(returns), fact, rejected),
                   _keys_resolved(fact, dims, day), _unknown_products(fact, day)]
        context.log.info(f"fact_sales {day}: {len(pos)} store lines, {len(online)} online lines, "
                         f"{len(rejected)} online rows not loaded")
        total += len(fact)
        frames.append(fact)
    day_frame = concat(frames)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "net_revenue": float(day_frame["net_amount"].sum()) if len(day_frame) else 0.0,
            "units": int(day_frame["quantity"].sum()) if len(day_frame) else 0,
            "return_lines": int(day_frame["is_return"].sum()) if len(day_frame) else 0,
            "preview": preview(day_frame),
        },
        check_results=combine(checks),
    )


@dg.asset(
    group_name=WAREHOUSE_GROUP, kinds={"sql", "pandas"}, owners=OWNERS, partitions_def=daily_partitions,
    metadata=table_metadata(FACT_INVENTORY),
    deps=["raw_pos_inventory", "raw_online_inventory", "raw_online_products", "dim_store", "dim_product"],
    check_specs=[schema_check_spec(FACT_INVENTORY)],
    backfill_policy=backfill_policy,
    description=describe(FACT_INVENTORY, "Store counts from the stock files; the online warehouses (summed into "
                         "store ONLINE) on the business date of their updated_at, since the online shop keeps only "
                         "the current state."),
)
def fact_inventory(context: dg.AssetExecutionContext, warehouse: Warehouse):
    settings = load_settings()
    run_id = context.run.run_id
    dim_store, dim_product = warehouse.read(DIM_STORE), warehouse.read(DIM_PRODUCT)
    products = warehouse.read(RAW_ONLINE_PRODUCTS)
    online_all = warehouse.read(RAW_ONLINE_INVENTORY)
    online_day = (pd.to_datetime(online_all["updated_at"]).dt.tz_localize("UTC").dt.tz_convert(settings.timezone)
                  .dt.tz_localize(None).dt.normalize())
    checks, total = [], 0
    for day in partition_dates(context):
        pos = pos_fact_inventory(warehouse.read(RAW_POS_INVENTORY, {"business_date": day}), dim_store=dim_store,
                                 dim_product=dim_product, run_id=run_id)
        online = online_fact_inventory(online_all[online_day == pd.Timestamp(day)], products, business_date=day,
                                       dim_store=dim_store, dim_product=dim_product, run_id=run_id)
        frame, check = validated(FACT_INVENTORY, concat([pos, online]), day.isoformat())
        warehouse.replace(FACT_INVENTORY, frame, {"business_date": day})
        checks.append(check)
        total += len(frame)
    return dg.MaterializeResult(metadata={"dagster/row_count": total}, check_results=combine(checks))
