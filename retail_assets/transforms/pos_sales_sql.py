"""POS sales lines turned into ``fact_sales`` inside the warehouse: one ``INSERT ... SELECT`` a day.

A day of a million POS lines never leaves the database: reading it out, conforming it in pandas and copying it
back cost three times what the statement costs the server. The rules are those of the module docstring of
``retail_assets.transforms.facts`` (which conforms the online lines, a few thousand a day, in pandas):

- ``sale_line_id`` ``pos:<store>:<yyyymmdd>:<receipt>:<line>``, ``receipt_ref`` the same without the line, and
  ``source_ref`` ``<source_file>:<source_line>``;
- ``sold_at`` stays the store's local time; ``sold_at_utc`` is it in UTC by the store's timezone from dim_store
  (the reporting timezone for a store dim_store does not know, which then gets store_key -1). The repeated hour of
  a fall-back night is read as its first occurrence, a time in the skipped hour of a spring-forward night moves
  to the first valid instant (02:30 -> 03:00). Those rules are applied through ``local_time_segments``: the
  local timeline cut where the UTC offset changes, computed in Python with ``zoneinfo`` and handed to the
  statement as a small ``VALUES`` list, so the database's own time zone rules (which differ on both) are not used;
- product and customer: the version valid at ``sold_at_utc`` (the earliest version for a sale before it, -1 when
  the SKU or the card is unknown), through ``version_ranges``; the SKU and the card are those the raw layer
  normalised (``sku_norm``, ``loyalty_card``), the card resolved through ``bridge_customer_identity``;
- amounts in NUMERIC: gross = quantity * unit_price, net = gross - sign(quantity) * discount, exact to the cent.

Table and column names come from the table specs and are quoted by the dialect; values are bound parameters.
Written for the two warehouse engines (PostgreSQL and DuckDB); ``tests`` run it on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import RAW_POS_SALES
from retail_assets.schemas.warehouse import (
    BRIDGE_CUSTOMER_IDENTITY,
    DIM_CUSTOMER,
    DIM_PRODUCT,
    DIM_STORE,
    FACT_SALES,
    UNKNOWN_KEY,
)

SUPPORTED = ("postgresql", "duckdb")
_INPUTS = (DIM_STORE, DIM_PRODUCT, DIM_CUSTOMER, BRIDGE_CUSTOMER_IDENTITY)
_RAW_COLUMNS = ("business_date", "store_code", "receipt_id", "line_no", "sold_at", "sku_norm", "quantity", "unit_price",
                "discount", "source_file", "source_line")
_BEGINNING = datetime(1, 1, 1)
_END = datetime(9999, 12, 31)
_SLACK = timedelta(days=2)  # more than any UTC offset: the segments cover every local time of the rows


@dataclass(frozen=True)
class Segment:
    """Local times ``local_from <= t < local_to`` of ``timezone`` are the UTC instants ``utc_from + (t -
    local_from)``, or all the one instant ``utc_from`` when ``fixed`` (the skipped hour of a spring-forward night)."""

    timezone: str
    local_from: datetime
    local_to: datetime
    utc_from: datetime
    fixed: bool = False


def _offset(zone: ZoneInfo, utc: datetime) -> timedelta:
    return utc.replace(tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) of every offset change between the naive UTC ``start`` and
    ``end``: found day by day, then to the second by bisection (zones change their offset at most a few times
    a year, never twice in a day)."""
    out = []
    day = timedelta(days=1)
    t, before = start, _offset(zone, start)
    while t < end:
        nxt = min(t + day, end)
        after = _offset(zone, nxt)
        if after != before:
            lo, hi = t, nxt  # offset(lo) == before, offset(hi) == after
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if _offset(zone, mid) == before:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, before, after))
        t, before = nxt, after
    return out


def local_time_segments(timezone: str, first: datetime, last: datetime) -> list[Segment]:
    """The local timeline of ``timezone`` around the naive local times ``first``..``last``, cut where its UTC
    offset changes; every local time in that span falls in exactly one segment (DST rule in the module
    docstring)."""
    zone = ZoneInfo(timezone)
    # Whole seconds, like the zone's transitions: the bisection in _transitions then ends on the exact instant.
    start, end = (first - _SLACK).replace(microsecond=0), (last + _SLACK).replace(microsecond=0)
    offset = _offset(zone, start)
    local_from = start + offset
    segments = []
    for instant, before, after in _transitions(zone, start, end):
        if after < before:  # fall back: local times [T+after, T+before) happen twice; the first is the earlier
            segments.append(Segment(timezone, local_from, instant + before, local_from - before))
            local_from = instant + before
        else:  # spring forward: local times [T+before, T+after) never happen; they are the instant T
            segments.append(Segment(timezone, local_from, instant + before, local_from - before))
            segments.append(Segment(timezone, instant + before, instant + after, instant, fixed=True))
            local_from = instant + after
        offset = after
    segments.append(Segment(timezone, local_from, end + offset + _SLACK, local_from - offset))
    return segments


def _quote(conn: sa.Connection):
    return conn.dialect.identifier_preparer.quote


def _versions(conn: sa.Connection, spec, business_key: str, surrogate_key: str) -> str:
    """A dimension's versions as validity ranges [lo, hi): the first version reaches back to the beginning of
    time and the last forward to the end (``lookup_version``'s rules, as SQL)."""
    q = _quote(conn)
    window = f"OVER (PARTITION BY {q(business_key)} ORDER BY {q('valid_from')}, {q(surrogate_key)})"
    return (
        f"SELECT {q(business_key)} AS k, {q(surrogate_key)} AS sk, "
        f"CASE WHEN ROW_NUMBER() {window} = 1 THEN :beginning ELSE {q('valid_from')} END AS lo, "
        f"COALESCE(LEAD({q('valid_from')}) {window}, :end) AS hi "
        f"FROM {q(spec.name)} WHERE {q(surrogate_key)} <> {UNKNOWN_KEY} AND {q(business_key)} IS NOT NULL"
    )


def _values(segments: list[Segment]) -> tuple[str, dict[str, object]]:
    rows, params = [], {}
    for i, s in enumerate(segments):
        rows.append(f"(CAST(:tz{i} AS VARCHAR), CAST(:lf{i} AS TIMESTAMP), CAST(:lt{i} AS TIMESTAMP), "
                    f"CAST(:uf{i} AS TIMESTAMP), CAST(:fx{i} AS BOOLEAN))")
        params.update({f"tz{i}": s.timezone, f"lf{i}": s.local_from, f"lt{i}": s.local_to, f"uf{i}": s.utc_from,
                       f"fx{i}": s.fixed})
    return ", ".join(rows), params


def analyze_sample(conn: sa.Connection, *tables: tuple[TableSpec, Sequence[str]]) -> None:
    """PostgreSQL: fresh planner statistics for each (table, columns to sample; none for all) in one ``ANALYZE``,
    from a sample of 3,000 rows a table (statistics target 10, for the rest of the transaction): the row counts and
    key spreads a plan needs, at a tenth of the default's cost. ANALYZE also counts the transaction's own rows."""
    q = _quote(conn)
    targets = [q(spec.name) + (f" ({', '.join(q(c) for c in columns)})" if columns else "") for spec, columns in tables]
    conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
    conn.exec_driver_sql("ANALYZE " + ", ".join(targets))


@dataclass(frozen=True)
class PosDay:
    """What ``insert_pos_fact_sales`` did: the fact rows it inserted, and the day's raw lines, units and net amount
    as the warehouse summed them from raw_pos_sales alone (no join), for the reconciliation."""

    facts: int
    raw_lines: int
    raw_units: int
    raw_net: float


def _raw_by_store(conn: sa.Connection, day: date) -> list[sa.Row]:
    """Per store of the day's raw lines: first and last local time, lines, units and net amount, exact (PostgreSQL's
    ``SIGN`` of an integer is a double, which would make the whole sum one)."""
    q = _quote(conn)
    quantity, price, discount = q("quantity"), q("unit_price"), q("discount")
    return conn.execute(sa.text(
        f"SELECT {q('store_code')}, MIN({q('sold_at')}), MAX({q('sold_at')}), COUNT(*), "
        f"COALESCE(SUM({quantity}), 0), "
        f"COALESCE(SUM({quantity} * {price} - SIGN(CAST({quantity} AS NUMERIC)) * {discount}), 0) "
        f"FROM {q(RAW_POS_SALES.name)} WHERE {q('business_date')} = :day GROUP BY {q('store_code')}"
    ), {"day": day}).all()


def _spans(conn: sa.Connection, stores: list[sa.Row], reporting_timezone: str) -> dict[str, tuple[datetime, datetime]]:
    """Time zone -> (first, last) local time of the lines sold in it; a store dim_store does not know is in the
    reporting timezone (and gets store_key -1)."""
    q = _quote(conn)
    zones: dict[str, set[str]] = {}
    for code, timezone in conn.execute(sa.text(f"SELECT {q('store_code')}, {q('timezone')} FROM {q(DIM_STORE.name)}")):
        zones.setdefault(code, set()).add(timezone or reporting_timezone)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for code, first, last, *_ in stores:
        for timezone in zones.get(code, {reporting_timezone}):
            lo, hi = spans.get(timezone, (first, last))
            spans[timezone] = (min(lo, first), max(hi, last))
    return spans


def insert_pos_fact_sales(conn: sa.Connection, day: date, *, run_id: str, reporting_timezone: str) -> PosDay:
    """Insert the POS lines of ``day`` from raw_pos_sales into fact_sales.

    The caller deletes the day's old rows first, in the same transaction."""
    if conn.dialect.name not in SUPPORTED:
        raise NotImplementedError(f"fact_sales is built inside the warehouse, which must be PostgreSQL or DuckDB, "
                                  f"not {conn.dialect.name}")
    q = _quote(conn)
    raw, store = q(RAW_POS_SALES.name), q(DIM_STORE.name)
    where = f"r.{q('business_date')} = :day"
    params: dict[str, object] = {"day": day, "reporting": reporting_timezone, "beginning": _BEGINNING, "end": _END,
                                 "run_id": run_id, "date_text": day.strftime("%Y%m%d"),
                                 "date_key": int(day.strftime("%Y%m%d"))}

    if conn.dialect.name == "postgresql":
        # Fresh statistics, or the planner (guessing at tables loaded minutes ago) sorts a million lines to disk
        # for merge joins instead of hashing the small dimensions; JIT compiling costs more than it saves here.
        analyze_sample(conn, (RAW_POS_SALES, ("business_date", "store_code", "sku_norm", "loyalty_card")),
                       *((spec, ()) for spec in _INPUTS))
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")

    stores = _raw_by_store(conn, day)
    if not stores:
        return PosDay(0, 0, 0, 0.0)
    # The local timelines of the zones these lines are in, over the span of their local times.
    segments = [seg for tz, (first, last) in _spans(conn, stores, reporting_timezone).items()
                for seg in local_time_segments(tz, first, last)]
    values, segment_params = _values(segments)
    params.update(segment_params)

    sale = f"'pos:' || l.{q('store_code')} || ':' || CAST(:date_text AS VARCHAR) || ':' || l.{q('receipt_id')}"
    gross = f"l.{q('quantity')} * l.{q('unit_price')}"
    discount = f"l.{q('discount')}"
    columns = {
        "sale_line_id": f"{sale} || ':' || CAST(l.{q('line_no')} AS VARCHAR)",
        "business_date": f"l.{q('business_date')}",
        "date_key": "CAST(:date_key AS BIGINT)",
        "sold_at": f"l.{q('sold_at')}",
        "sold_at_utc": "l.sold_at_utc",
        "store_key": "l.store_key",
        "product_key": f"COALESCE(p.sk, {UNKNOWN_KEY})",
        "customer_key": f"COALESCE(c.sk, {UNKNOWN_KEY})",
        "channel": "'store'",
        "receipt_ref": sale,
        "sku": f"l.{q('sku_norm')}",
        "quantity": f"l.{q('quantity')}",
        "unit_price": f"l.{q('unit_price')}",
        "gross_amount": gross,
        "discount_amount": discount,
        "net_amount": f"CASE WHEN l.{q('quantity')} < 0 THEN {gross} + {discount} ELSE {gross} - {discount} END",
        "is_return": f"l.{q('quantity')} < 0",
        "source_system": "'pos'",
        "source_ref": f"l.{q('source_file')} || ':' || CAST(l.{q('source_line')} AS VARCHAR)",
        "run_id": "CAST(:run_id AS VARCHAR)",
    }
    assert list(columns) == FACT_SALES.columns, "every fact_sales column, in order"
    statement = (
        f"INSERT INTO {q(FACT_SALES.name)} ({', '.join(q(c) for c in columns)}) "
        f"WITH segments (tz, local_from, local_to, utc_from, fixed) AS (VALUES {values}), "
        f"products AS ({_versions(conn, DIM_PRODUCT, 'sku_norm', 'product_key')}), "
        f"customers AS ({_versions(conn, DIM_CUSTOMER, 'customer_id', 'customer_key')}), "
        f"lines AS ("
        f"SELECT {', '.join('r.' + q(c) for c in _RAW_COLUMNS)}, "
        f"COALESCE(s.{q('store_key')}, {UNKNOWN_KEY}) AS store_key, b.{q('customer_id')} AS customer_id, "
        f"CASE WHEN g.fixed THEN g.utc_from ELSE g.utc_from + (r.{q('sold_at')} - g.local_from) END AS sold_at_utc "
        f"FROM {raw} r "
        f"LEFT JOIN {store} s ON s.{q('store_code')} = r.{q('store_code')} "
        f"LEFT JOIN segments g ON g.tz = COALESCE(s.{q('timezone')}, :reporting) "
        f"AND r.{q('sold_at')} >= g.local_from AND r.{q('sold_at')} < g.local_to "
        f"LEFT JOIN {q(BRIDGE_CUSTOMER_IDENTITY.name)} b ON b.{q('source_system')} = 'loyalty_card' "
        f"AND b.{q('source_key')} = r.{q('loyalty_card')} "
        f"WHERE {where}) "
        f"SELECT {', '.join(columns.values())} FROM lines l "
        f"LEFT JOIN products p ON p.k = l.{q('sku_norm')} AND l.sold_at_utc >= p.lo AND l.sold_at_utc < p.hi "
        f"LEFT JOIN customers c ON c.k = l.customer_id AND l.sold_at_utc >= c.lo AND l.sold_at_utc < c.hi"
    )
    result = conn.execute(sa.text(statement), params)  # noqa: S608 - names from the specs, values bound
    return PosDay(facts=int(result.rowcount), raw_lines=sum(int(s[3]) for s in stores),
                  raw_units=sum(int(s[4]) for s in stores), raw_net=round(float(sum(s[5] for s in stores)), 2))
