"""Facts: every sales line of both channels (returns included) and stock on hand, one business date at a time.

Each date is replaced in one transaction: the day's fact rows and the day's rejections go together, so a
reader never sees half a day and a failed load leaves the previous state.
"""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, WAREHOUSE_GROUP, describe, preview, table_metadata
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import (
    RECONCILED_CHECK,
    check_spec,
    combine,
    count_if,
    rule_counts,
    schema_check_spec,
    schema_result,
    sql_failures,
)
from retail_assets.partitions import backfill_policy, business_dates, daily_partitions, partition_dates
from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import (
    RAW_ONLINE_INVENTORY,
    RAW_ONLINE_ORDER_ITEMS,
    RAW_ONLINE_ORDERS,
    RAW_ONLINE_PRODUCTS,
    RAW_ONLINE_RETURNS,
    REJECTIONS,
)
from retail_assets.schemas.warehouse import (
    DIM_CUSTOMER,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_INVENTORY,
    FACT_SALES,
    UNKNOWN_KEY,
)
from retail_assets.transforms.facts import online_lines, online_stock, reporting_timezone
from retail_assets.transforms.facts_sql import SalesDay, insert_fact_inventory, insert_fact_sales

KEYS_CHECK = "keys_resolved"
UNKNOWN_PRODUCT_CHECK = "unknown_product_rate"
UNKNOWN_PRODUCT_LIMIT = 0.05


class DayStats:
    """What the checks and the metadata need of a day's facts, asked of the warehouse once they are written
    (they were made there) in one scan of the day, which also runs the model's rules in SQL."""

    DIMENSIONS = (("store_key", DIM_STORE), ("product_key", DIM_PRODUCT), ("customer_key", DIM_CUSTOMER))

    def __init__(self, tx, warehouse: Warehouse, day):
        fact = warehouse.table(FACT_SALES, tx.conn)
        c = fact.c
        of_day = c.business_date == day
        # The day's rows were written by this transaction, after the last ANALYZE: a planner that has seen every
        # other day but this one takes the day for empty and plans the scan below for one row, spilling to disk
        # (bench/README.md, "Where the time goes"). A sample of the one column counts a day.
        tx.analyze((FACT_SALES, (FACT_SALES.partition_column,)))
        pos = c.source_system == "pos"
        total = sa.func.count()
        # Dangling keys: a key that is neither -1 nor a row of its dimension (the dimensions' distinct keys, so
        # the join cannot multiply the day's rows).
        known = {}
        source = fact
        for column, spec in self.DIMENSIONS:
            dim = warehouse.table(spec, tx.conn)
            known[column] = sa.select(dim.c[column].label("k")).distinct().subquery(f"known_{column}")
            source = source.outerjoin(known[column], known[column].c.k == c[column])
        dangling = [count_if(sa.and_(c[col] != UNKNOWN_KEY, known[col].c.k.is_(None))) for col, _ in self.DIMENSIONS]
        # The model's rules, on every line of the day.
        rules = rule_counts(FACT_SALES, fact, of_day)
        row = tx.conn.execute(sa.select(
            total, count_if(c.source_system == "online"), _sum(c.quantity), _sum(c.net_amount),
            count_if(c.is_return), count_if(c.product_key == UNKNOWN_KEY),
            count_if(pos), _sum(sa.case((pos, c.quantity), else_=0)), _sum(sa.case((pos, c.net_amount), else_=0)),
            *dangling, *rules).select_from(source).where(of_day)).one()
        self.rows, self.online_rows, self.units = int(row[0]), int(row[1]), int(row[2])
        self.net, self.return_lines, self.unknown_products = round(float(row[3]), 2), int(row[4]), int(row[5])
        self.pos = (int(row[6]), int(row[7]), round(float(row[8]), 2))
        self.unknown_skus = tx.conn.execute(
            sa.select(c.sku, total).where(of_day, c.product_key == UNKNOWN_KEY, c.sku.is_not(None))
            .group_by(c.sku).order_by(total.desc(), c.sku).limit(10)).all() if self.unknown_products else []
        self.dangling = {}
        dims_end = 9 + len(self.DIMENSIONS)
        for (column, _), count in zip(self.DIMENSIONS, row[9:dims_end], strict=True):
            if count:
                self.dangling[column] = tx.conn.execute(
                    sa.select(c[column]).distinct().select_from(source)
                    .where(of_day, c[column] != UNKNOWN_KEY, known[column].c.k.is_(None))
                    .order_by(c[column]).limit(10)).scalars().all()
        self.failures = sql_failures(tx.conn, FACT_SALES, fact, of_day, counts=row[dims_end:])
        self.preview = pd.DataFrame([dict(r._mapping) for r in tx.conn.execute(
            sa.select(fact).where(of_day).limit(5))], columns=FACT_SALES.columns)

    def schema(self, day) -> dg.AssetCheckResult:
        return schema_result(FACT_SALES, self.failures, self.rows, day.isoformat())

    def keys_resolved(self, day) -> dg.AssetCheckResult:
        """Every dimension key of the day's facts is a row of its dimension (-1 being the unknown member)."""
        return dg.AssetCheckResult(
            check_name=KEYS_CHECK, passed=not self.dangling, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"partition": day.isoformat(), "dangling_keys": str(self.dangling) if self.dangling else "none"},
        )

    def unknown_product_rate(self, day) -> dg.AssetCheckResult:
        rate = self.unknown_products / self.rows if self.rows else 0.0
        return dg.AssetCheckResult(
            check_name=UNKNOWN_PRODUCT_CHECK, passed=rate <= UNKNOWN_PRODUCT_LIMIT,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"partition": day.isoformat(), "unknown_product_rate": rate,
                      "top_unknown_skus": ", ".join(f"{k} ({v})" for k, v in self.unknown_skus) or "none"},
        )

    def reconcile(self, pos_day: SalesDay, day, online_source_rows: int, online_rejected: int) -> dg.AssetCheckResult:
        """Source = fact + rejected, line for line; POS lines, units and net amount equal to the cent, as summed
        by the warehouse itself from the NUMERIC columns of raw_pos_sales and of fact_sales."""
        raw_lines, raw_qty, raw_net = pos_day.raw_lines, pos_day.raw_units, pos_day.raw_net
        fact_lines, fact_qty, fact_net = self.pos
        problems = []
        if (raw_lines, raw_qty) != (fact_lines, fact_qty) or abs(raw_net - fact_net) > 0.001:
            problems.append(f"POS raw {raw_lines} lines / {raw_qty} units / {raw_net:.2f} net vs fact {fact_lines} "
                            f"/ {fact_qty} / {fact_net:.2f}")
        if online_source_rows != self.online_rows + online_rejected:
            problems.append(f"online {online_source_rows} order lines and returns vs {self.online_rows} fact lines "
                            f"+ {online_rejected} not loaded")
        return dg.AssetCheckResult(
            check_name=RECONCILED_CHECK, passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"partition": day.isoformat(), "pos_lines": raw_lines, "pos_units": raw_qty, "pos_net": raw_net,
                      "online_source_rows": online_source_rows, "online_fact_rows": self.online_rows,
                      "online_not_loaded": online_rejected, "problems": "; ".join(problems) or "none"},
        )


def read_online_day(warehouse: Warehouse, day) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """A business date's online orders, order lines and returns, and (as ``return_items``/``return_orders``) the
    lines and orders of any date its returns refer to."""
    orders = warehouse.read(RAW_ONLINE_ORDERS, {"business_date": day})
    items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"business_date": day})
    returns = warehouse.read(RAW_ONLINE_RETURNS, {"business_date": day})
    order_ids = sorted(set(returns["order_id"].astype(int)))
    return_items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"order_id": order_ids}) if order_ids else items.iloc[:0]
    return_orders = warehouse.read(RAW_ONLINE_ORDERS, {"order_id": order_ids}) if order_ids else orders.iloc[:0]
    return orders, items, returns, {"return_items": return_items, "return_orders": return_orders}


def _sum(values: sa.ColumnElement) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(values), 0)


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
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def fact_sales(context: dg.AssetExecutionContext, warehouse: Warehouse):
    run_id = context.run.run_id
    reporting = reporting_timezone(warehouse.read(DIM_STORE))
    products = warehouse.read(RAW_ONLINE_PRODUCTS)
    checks, days = [], []
    for day in partition_dates(context):
        orders, items, returns, earlier = read_online_day(warehouse, day)
        online, rejected = online_lines(orders, items, returns, **earlier, products=products,
                                        timezone=daily_partitions.timezone, run_id=run_id)
        with warehouse.transaction() as tx:
            tx.delete(FACT_SALES, {"business_date": day})
            sales_day = insert_fact_sales(tx, day, online, run_id=run_id, reporting_timezone=reporting)
            tx.replace(REJECTIONS, rejected, {"business_date": day, "asset": "fact_sales"})
            stats = DayStats(tx, warehouse, day)
        checks += [stats.schema(day), stats.reconcile(sales_day, day, len(items) + len(returns), len(rejected)),
                   stats.keys_resolved(day), stats.unknown_product_rate(day)]
        context.log.info(f"fact_sales {day}: {stats.pos[0]} store lines, {stats.online_rows} online lines, "
                         f"{len(rejected)} online rows not loaded")
        days.append(stats)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(d.rows for d in days),
            "net_revenue": round(sum(d.net for d in days), 2),
            "units": sum(d.units for d in days),
            "return_lines": sum(d.return_lines for d in days),
            "preview": preview(days[0].preview if days else pd.DataFrame()),
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
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def fact_inventory(context: dg.AssetExecutionContext, warehouse: Warehouse):
    run_id = context.run.run_id
    reporting = reporting_timezone(warehouse.read(DIM_STORE))
    products = warehouse.read(RAW_ONLINE_PRODUCTS)
    online_all = warehouse.read(RAW_ONLINE_INVENTORY)
    online_day = business_dates(online_all["updated_at"], daily_partitions.timezone)
    checks, total = [], 0
    for day in partition_dates(context):
        stock = online_stock(online_all[online_day == day], products, business_date=day)
        with warehouse.transaction() as tx:
            tx.delete(FACT_INVENTORY, {"business_date": day})
            rows = insert_fact_inventory(tx, day, stock, run_id=run_id, reporting_timezone=reporting)
            table = warehouse.table(FACT_INVENTORY, tx.conn)
            failures = sql_failures(tx.conn, FACT_INVENTORY, table, table.c.business_date == day)
        checks.append(schema_result(FACT_INVENTORY, failures, rows, day.isoformat()))
        total += rows
    return dg.MaterializeResult(metadata={"dagster/row_count": total}, check_results=combine(checks))
