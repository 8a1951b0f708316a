"""Facts: every sales line of both channels (returns included) and stock on hand, one business date at a time.

Each date is replaced in one transaction: the day's fact rows and the day's rejections go together, so a
reader never sees half a day and a failed load leaves the previous state.
"""

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, WAREHOUSE_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.assets.retry import retries_transient
from retail_assets.checks import (
    RECONCILED_CHECK,
    check_spec,
    combine,
    count_if,
    rule_counts,
    schema_check_spec,
    schema_result,
    sql_failures,
    validate_frame,
)
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates
from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import (
    RAW_ONLINE_INVENTORY,
    RAW_ONLINE_ORDER_ITEMS,
    RAW_ONLINE_ORDERS,
    RAW_ONLINE_PRODUCTS,
    RAW_ONLINE_RETURNS,
    RAW_POS_INVENTORY,
    REJECTIONS,
)
from retail_assets.schemas.warehouse import (
    BRIDGE_CUSTOMER_IDENTITY,
    DIM_CUSTOMER,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_INVENTORY,
    FACT_SALES,
    UNKNOWN_KEY,
)
from retail_assets.settings import load_settings
from retail_assets.transforms.facts import (
    OnlineKeys,
    online_dimension_keys,
    online_fact_inventory,
    online_fact_sales,
    pos_fact_inventory,
    reporting_timezone,
)
from retail_assets.transforms.pos_sales_sql import PosDay, analyze_sample, insert_pos_fact_sales

KEYS_CHECK = "keys_resolved"
UNKNOWN_PRODUCT_CHECK = "unknown_product_rate"
UNKNOWN_PRODUCT_LIMIT = 0.05


class DayStats:
    """What the checks and the metadata need of a day's facts, asked of the warehouse once they are written
    (the POS lines never leave it) in one scan of the day, plus the pandera failures of the online lines
    checked before writing and the model's rules run in SQL on the POS lines."""

    DIMENSIONS = (("store_key", DIM_STORE), ("product_key", DIM_PRODUCT), ("customer_key", DIM_CUSTOMER))

    def __init__(self, tx, warehouse: Warehouse, day, online_failures: pd.DataFrame | None):
        fact = warehouse.table(FACT_SALES, tx.conn)
        c = fact.c
        of_day = c.business_date == day
        if tx.conn.dialect.name == "postgresql":
            # The day's rows were written by this transaction, after the last ANALYZE: the planner, which has
            # seen every other day but this one, takes the day for empty and hashes its million rows in memory
            # sized for one, spilling thousands of batches to disk (bench/README.md, "Where the time goes").
            # A sample of the one column counts a day.
            analyze_sample(tx.conn, (FACT_SALES, (FACT_SALES.partition_column,)))
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
        # The model's rules on the POS lines (the online lines were checked by pandera before they were written).
        rules = rule_counts(FACT_SALES, fact, tx.conn.dialect.name, pos)
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
        pos_failures = sql_failures(tx.conn, FACT_SALES, fact, sa.and_(of_day, pos), counts=row[dims_end:])
        found = [f for f in (pos_failures, online_failures) if f is not None]
        self.failures = pd.concat(found, ignore_index=True) if found else None
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

    def reconcile(self, pos_day: PosDay, day, online_source_rows: int, online_rejected: int) -> dg.AssetCheckResult:
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


MAX_KEYS_IN_QUERY = 10_000  # past this many keys a dimension is read whole (and filtered here) instead


def _rows_with(warehouse: Warehouse, spec, column: str, values: list[str], where: dict | None = None) -> pd.DataFrame:
    """The rows of ``spec`` (matching ``where``) whose ``column`` is one of ``values``."""
    if not values:
        return spec.empty()
    if len(values) <= MAX_KEYS_IN_QUERY:
        return warehouse.read(spec, {**(where or {}), column: values})
    rows = warehouse.read(spec, where or None)
    return rows[rows[column].astype("str").isin(values)].reset_index(drop=True)


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


def online_dimensions(warehouse: Warehouse, keys: OnlineKeys) -> dict[str, pd.DataFrame]:
    """The rows of dim_product, dim_customer and the bridge a day's online lines can look up (their versions, all
    of them): a few thousand rows, not the whole customer base, read for each day."""
    bridge = concat([
        _rows_with(warehouse, BRIDGE_CUSTOMER_IDENTITY, "source_key", keys.online_customer_ids,
                   {"source_system": "online"}),
        _rows_with(warehouse, BRIDGE_CUSTOMER_IDENTITY, "source_key", keys.emails, {"source_system": "email"}),
    ])
    if bridge.empty:
        bridge = BRIDGE_CUSTOMER_IDENTITY.empty()
    customers = sorted(set(bridge["customer_id"].astype("str")))
    return {"dim_product": _rows_with(warehouse, DIM_PRODUCT, "sku_norm", keys.skus),
            "dim_customer": _rows_with(warehouse, DIM_CUSTOMER, "customer_id", customers),
            "bridge": bridge}


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
)
@retries_transient
def fact_sales(context: dg.AssetExecutionContext, warehouse: Warehouse):
    settings = load_settings()
    run_id = context.run.run_id
    dim_store = warehouse.read(DIM_STORE)
    products = warehouse.read(RAW_ONLINE_PRODUCTS)
    checks, days = [], []
    for day in partition_dates(context):
        orders, items, returns, earlier = read_online_day(warehouse, day)
        keys = online_dimension_keys(orders, items, **earlier, products=products)
        online, rejected = online_fact_sales(orders, items, returns, **earlier, products=products,
                                             timezone=settings.timezone, run_id=run_id, dim_store=dim_store,
                                             **online_dimensions(warehouse, keys))
        online, online_failures = validate_frame(FACT_SALES, online, day.isoformat())
        with warehouse.transaction() as tx:
            tx.delete(FACT_SALES, {"business_date": day})
            pos_day = insert_pos_fact_sales(tx.conn, day, run_id=run_id,
                                              reporting_timezone=reporting_timezone(dim_store))
            tx.append(FACT_SALES, online)
            tx.replace(REJECTIONS, rejected, {"business_date": day, "asset": "fact_sales"})
            stats = DayStats(tx, warehouse, day, online_failures)
        checks += [stats.schema(day), stats.reconcile(pos_day, day, len(items) + len(returns), len(rejected)),
                   stats.keys_resolved(day), stats.unknown_product_rate(day)]
        context.log.info(f"fact_sales {day}: {pos_day.facts} store lines, {stats.online_rows} online lines, "
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
)
@retries_transient
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
