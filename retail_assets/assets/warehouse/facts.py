"""Facts: every sales line of both channels (returns included) and stock on hand, one business date at a time.

Each date is replaced in one transaction: the day's fact rows and the day's rejections go together, so a
reader never sees half a day and a failed load leaves the previous state.
"""

from collections import Counter, defaultdict

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, WAREHOUSE_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.checks import RECONCILED_CHECK, check_spec, combine, schema_check_spec, schema_result, validate_frame
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
CHUNK_ROWS = 200_000  # POS lines turned into facts at a time: memory bounded by the chunk, not the day


def _sums(warehouse: Warehouse, table: str, day) -> tuple[int, int, float]:
    """(lines, quantity, net) of one day computed by the warehouse itself from NUMERIC columns."""
    queries = {
        "raw_pos_sales": "SELECT COUNT(*), COALESCE(SUM(quantity), 0), "
                         "COALESCE(SUM(quantity * unit_price - SIGN(quantity) * discount), 0) "
                         "FROM raw_pos_sales WHERE business_date = :day",
        "fact_sales_pos": "SELECT COUNT(*), COALESCE(SUM(quantity), 0), COALESCE(SUM(net_amount), 0) "
                          "FROM fact_sales WHERE business_date = :day AND source_system = 'pos'",
    }
    with warehouse.engine.connect() as conn:
        lines, qty, net = conn.execute(sa.text(queries[table]), {"day": day}).one()
    return int(lines), int(qty), round(float(net), 2)


class DayStats:
    """What the checks and the metadata need of a day's facts, gathered chunk by chunk (the day is never whole)."""

    def __init__(self, dims: dict[str, pd.DataFrame]):
        self.known = {col: set(dims[dim][col].astype(int)) | {-1} for col, dim in
                      (("store_key", "dim_store"), ("product_key", "dim_product"), ("customer_key", "dim_customer"))}
        self.rows = self.online_rows = self.units = self.return_lines = self.unknown_products = 0
        self.net = 0.0
        self.dangling: dict[str, set[int]] = defaultdict(set)
        self.unknown_skus: Counter[str] = Counter()
        self.failures: list[pd.DataFrame] = []
        self.preview: pd.DataFrame | None = None

    def add(self, fact: pd.DataFrame, failures: pd.DataFrame | None) -> None:
        if failures is not None:
            self.failures.append(failures)
        if fact.empty:
            return
        self.rows += len(fact)
        self.online_rows += int((fact["source_system"] == "online").sum())
        self.units += int(fact["quantity"].sum())
        self.net += float(fact["net_amount"].sum())
        self.return_lines += int(fact["is_return"].sum())
        unknown = fact["product_key"] == -1
        self.unknown_products += int(unknown.sum())
        self.unknown_skus.update(fact.loc[unknown, "sku"].dropna().astype(str))
        for column, known in self.known.items():
            self.dangling[column] |= set(fact.loc[~fact[column].isin(known), column].astype(int))
        if self.preview is None:
            self.preview = fact.head(5)

    def schema(self, day) -> dg.AssetCheckResult:
        failures = pd.concat(self.failures, ignore_index=True) if self.failures else None
        return schema_result(FACT_SALES, failures, self.rows, day.isoformat())

    def keys_resolved(self, day) -> dg.AssetCheckResult:
        """Every dimension key of the day's facts is a row of its dimension (-1 being the unknown member)."""
        dangling = {c: sorted(v)[:10] for c, v in self.dangling.items() if v}
        return dg.AssetCheckResult(
            check_name=KEYS_CHECK, passed=not dangling, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"partition": day.isoformat(), "dangling_keys": str(dangling) if dangling else "none"},
        )

    def unknown_product_rate(self, day) -> dg.AssetCheckResult:
        rate = self.unknown_products / self.rows if self.rows else 0.0
        return dg.AssetCheckResult(
            check_name=UNKNOWN_PRODUCT_CHECK, passed=rate <= UNKNOWN_PRODUCT_LIMIT,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"partition": day.isoformat(), "unknown_product_rate": rate,
                      "top_unknown_skus": ", ".join(f"{k} ({v})" for k, v in self.unknown_skus.most_common(10))
                      or "none"},
        )

    def reconcile(self, warehouse: Warehouse, day, online_source_rows: int, online_rejected: int
                  ) -> dg.AssetCheckResult:
        """Source = fact + rejected, line for line; POS lines, units and net amount equal to the cent, as summed
        by the warehouse itself from its NUMERIC columns."""
        raw_lines, raw_qty, raw_net = _sums(warehouse, "raw_pos_sales", day)
        fact_lines, fact_qty, fact_net = _sums(warehouse, "fact_sales_pos", day)
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


def store_batches(warehouse: Warehouse, day, max_rows: int = CHUNK_ROWS) -> list[list[str]]:
    """The day's stores in groups of about ``max_rows`` raw lines (one store's day is never split)."""
    counts = warehouse.query("SELECT store_code, COUNT(*) AS n FROM raw_pos_sales WHERE business_date = :day "
                             "GROUP BY store_code ORDER BY store_code", day=day)
    batches: list[list[str]] = []
    size = max_rows
    for store, n in zip(counts["store_code"], counts["n"], strict=True):
        if size + int(n) > max_rows:
            batches.append([])
            size = 0
        batches[-1].append(store)
        size += int(n)
    return batches


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
    checks, days = [], []
    for day in partition_dates(context):
        stats = DayStats(dims)
        orders = warehouse.read(RAW_ONLINE_ORDERS, {"business_date": day})
        items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"business_date": day})
        returns = warehouse.read(RAW_ONLINE_RETURNS, {"business_date": day})
        order_ids = sorted(set(returns["order_id"].astype(int)))
        return_items = warehouse.read(RAW_ONLINE_ORDER_ITEMS, {"order_id": order_ids}) if order_ids else items.iloc[:0]
        return_orders = warehouse.read(RAW_ONLINE_ORDERS, {"order_id": order_ids}) if order_ids else orders.iloc[:0]
        online, rejected = online_fact_sales(orders, items, returns, return_items=return_items,
                                             return_orders=return_orders, products=products,
                                             timezone=settings.timezone, run_id=run_id, **dims)
        with warehouse.transaction() as tx:
            tx.delete(FACT_SALES, {"business_date": day})
            with tx.appender(FACT_SALES) as append:
                for stores in store_batches(warehouse, day):
                    raw = warehouse.read(RAW_POS_SALES, {"business_date": day, "store_code": stores})
                    fact, failures = validate_frame(FACT_SALES, pos_fact_sales(raw, run_id=run_id, **dims),
                                                    day.isoformat())
                    stats.add(fact, failures)
                    append(fact)
                fact, failures = validate_frame(FACT_SALES, online, day.isoformat())
                stats.add(fact, failures)
                append(fact)
            tx.replace(REJECTIONS, rejected, {"business_date": day, "asset": "fact_sales"})
            repeated = _repeated_sale_lines(tx, day)
        if repeated:  # chunks are validated one by one: the warehouse counts keys repeated across them
            stats.failures.append(pd.DataFrame({"column": "sale_line_id", "check": "unique natural key",
                                                "failure_case": [f"{repeated} repeated key(s)"], "index": ["-"]}))
        checks += [stats.schema(day), stats.reconcile(warehouse, day, len(items) + len(returns), len(rejected)),
                   stats.keys_resolved(day), stats.unknown_product_rate(day)]
        context.log.info(f"fact_sales {day}: {stats.rows - stats.online_rows} store lines, {stats.online_rows} online "
                         f"lines, {len(rejected)} online rows not loaded")
        days.append(stats)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(d.rows for d in days),
            "net_revenue": round(sum(d.net for d in days), 2),
            "units": sum(d.units for d in days),
            "return_lines": sum(d.return_lines for d in days),
            "preview": preview(days[0].preview if days and days[0].preview is not None else pd.DataFrame()),
        },
        check_results=combine(checks),
    )


def _repeated_sale_lines(tx, day) -> int:
    query = sa.text("SELECT COUNT(*) FROM (SELECT sale_line_id FROM fact_sales WHERE business_date = :day "
                    "GROUP BY sale_line_id HAVING COUNT(*) > 1) AS repeated")
    return int(tx.conn.execute(query, {"day": day}).scalar())


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
