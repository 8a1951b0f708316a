"""Facts built inside the warehouse: one ``INSERT ... SELECT`` a day for ``fact_sales`` (store and online lines) and
one for ``fact_inventory``, the statements in ``fact_sales.sql`` and ``fact_inventory.sql`` beside this module.

A day of a million POS lines never leaves the database: reading it out, conforming it in pandas and copying it back
would cost several times what the statement costs the server. So every rule that turns a line into a fact lives in
the statements, once for both channels (their comments list them); what only Python knows reaches them as temporary
tables (``WarehouseTx.staged``): the day's online lines as ``transforms.facts`` classified them, and
``time_segments``, the local timelines of the timezones in play.

Time zones. A store's ``sold_at`` is its local time; ``sold_at_utc`` is it in UTC by the store's timezone from
dim_store (the reporting timezone for a store dim_store does not know, which then gets store_key -1); an online
line's ``sold_at`` is its UTC time in the reporting timezone. One rule for local times that are not a single
instant: the repeated hour of a fall-back night is read as its first occurrence (still summer time, the earlier
instant), and a time in the skipped hour of a spring-forward night moves to the first valid instant (02:30 ->
03:00), which keeps the sale on its business day and after the sales rung up before the gap. The rule is made here,
by ``local_time_segments``: the local timeline cut where the UTC offset changes, computed with ``zoneinfo``, so the
databases' own time zone rules (which differ between the two engines) are never used. The statements only look a
time up in its segment (``local_to_utc.sql``, ``utc_to_local.sql``).

Table and column names are written in the ``.sql`` files, which are part of the code; values are bound parameters.
Written for the two warehouse engines (PostgreSQL and DuckDB); ``tests`` run it on both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from pandera.typing import Series

from retail_assets.resources.warehouse import WarehouseTx, sql_file
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import RAW_POS_INVENTORY, RAW_POS_SALES
from retail_assets.schemas.warehouse import BRIDGE_CUSTOMER_IDENTITY, DIM_CUSTOMER, DIM_PRODUCT, DIM_STORE, UNKNOWN_KEY

_BEGINNING = datetime(1, 1, 1)
_END = datetime(9999, 12, 31)
_SLACK = timedelta(days=2)  # more than any UTC offset: the segments cover every local time of the rows
_DIMENSIONS = (DIM_STORE, DIM_PRODUCT, DIM_CUSTOMER, BRIDGE_CUSTOMER_IDENTITY)


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


class _TimeSegments(pa.DataFrameModel):
    timezone: Series[str] = pa.Field()
    local_from: Series[pd.Timestamp] = pa.Field()
    local_to: Series[pd.Timestamp] = pa.Field()
    utc_from: Series[pd.Timestamp] = pa.Field()
    fixed: Series[bool] = pa.Field()
    utc_start: Series[pd.Timestamp] = pa.Field(description="the UTC instants [utc_start, utc_end) are local times "
                                               "utc + (local_from - utc_from); empty when fixed")
    utc_end: Series[pd.Timestamp] = pa.Field()


TIME_SEGMENTS = TableSpec("time_segments", _TimeSegments, "local_time_segments of the timezones a statement needs")


def time_segments(spans: dict[str, tuple[datetime, datetime]]) -> pd.DataFrame:
    """``local_time_segments`` of each timezone over its (first, last) local time, as the rows of TIME_SEGMENTS,
    with the UTC instants each one shows as local times (``utc_to_local.sql``): the segments that are not fixed
    cut the UTC timeline where the offset changes, as their local ranges cut the local one."""
    rows = []
    for timezone, (first, last) in sorted(spans.items()):
        utc_start = None
        for segment in local_time_segments(timezone, first, last):
            row = asdict(segment)
            if segment.fixed:
                row["utc_start"] = row["utc_end"] = segment.utc_from
            else:  # the UTC instants between the offset changes before and after it: after a fall-back night
                # these begin an hour before the local times the segment holds (the repeated hour's second pass)
                row["utc_end"] = segment.utc_from + (segment.local_to - segment.local_from)
                row["utc_start"] = segment.utc_from if utc_start is None else utc_start
                utc_start = row["utc_end"]
            rows.append(row)
    return pd.DataFrame(rows, columns=TIME_SEGMENTS.columns)


def _widen(spans: dict[str, tuple[datetime, datetime]], timezone: str, first: datetime, last: datetime) -> None:
    lo, hi = spans.get(timezone, (first, last))
    spans[timezone] = (min(lo, first), max(hi, last))


def _store_zones(tx: WarehouseTx, reporting_timezone: str) -> dict[str, set[str]]:
    """Store code -> the timezones dim_store gives it (the reporting timezone where it gives none)."""
    zones: dict[str, set[str]] = {}
    for code, timezone in tx.conn.execute(sa.text("SELECT store_code, timezone FROM dim_store")):
        zones.setdefault(code, set()).add(timezone or reporting_timezone)
    return zones


def _parameters(day: date, run_id: str, reporting_timezone: str) -> dict[str, object]:
    return {"day": day, "date_key": int(day.strftime("%Y%m%d")), "run_id": run_id, "reporting": reporting_timezone,
            "unknown_key": UNKNOWN_KEY, "beginning": _BEGINNING, "end": _END}


@dataclass(frozen=True)
class SalesDay:
    """What ``insert_fact_sales`` did: the fact rows it inserted, and the day's POS raw lines, units and net amount
    as the warehouse summed them from raw_pos_sales alone (no join), for the reconciliation."""

    facts: int
    raw_lines: int
    raw_units: int
    raw_net: float


def _raw_by_store(tx: WarehouseTx, day: date) -> list[sa.Row]:
    """Per store of the day's POS lines: first and last local time, lines, units and net amount, exact
    (PostgreSQL's ``SIGN`` of an integer is a double, which would make the whole sum one)."""
    return tx.conn.execute(sa.text(
        "SELECT store_code, MIN(sold_at), MAX(sold_at), COUNT(*), COALESCE(SUM(quantity), 0), "
        "COALESCE(SUM(quantity * unit_price - SIGN(CAST(quantity AS NUMERIC)) * discount), 0) "
        "FROM raw_pos_sales WHERE business_date = :day GROUP BY store_code"), {"day": day}).all()


def insert_fact_sales(tx: WarehouseTx, day: date, online_lines: pd.DataFrame, *, run_id: str,
                      reporting_timezone: str) -> SalesDay:
    """Insert the sales lines of ``day`` into fact_sales: the POS lines of raw_pos_sales and ``online_lines``
    (``transforms.facts.online_lines``), by ``fact_sales.sql``.

    The caller deletes the day's old rows first, in the same transaction."""
    from retail_assets.transforms.facts import ONLINE_LINES

    tx.ensure(RAW_POS_SALES, *_DIMENSIONS)
    tx.prepare_statement("fact_sales", (RAW_POS_SALES, ("business_date", "store_code", "sku_norm", "loyalty_card")),
                         *((spec, ()) for spec in _DIMENSIONS))
    stores = _raw_by_store(tx, day)
    if not stores and online_lines.empty:
        return SalesDay(0, 0, 0, 0.0)
    # The local timelines of the zones the lines are in, over the span of their local times (an online line's UTC
    # time stands for its local time: the segments reach _SLACK beyond).
    spans: dict[str, tuple[datetime, datetime]] = {}
    zones = _store_zones(tx, reporting_timezone)
    for code, first, last, *_ in stores:
        for timezone in zones.get(code, {reporting_timezone}):
            _widen(spans, timezone, first, last)
    for timezone, times in online_lines.groupby("timezone")["sold_at_utc"]:
        _widen(spans, str(timezone), times.min().to_pydatetime(), times.max().to_pydatetime())
    with tx.staged(ONLINE_LINES, online_lines), tx.staged(TIME_SEGMENTS, time_segments(spans)):
        facts = tx.conn.execute(sa.text(sql_file(__file__, "fact_sales.sql")), {
            **_parameters(day, run_id, reporting_timezone), "date_text": day.strftime("%Y%m%d")}).rowcount
    return SalesDay(facts=int(facts), raw_lines=sum(int(s[3]) for s in stores),
                    raw_units=sum(int(s[4]) for s in stores), raw_net=round(float(sum(s[5] for s in stores)), 2))


def insert_fact_inventory(tx: WarehouseTx, day: date, online_stock: pd.DataFrame, *, run_id: str,
                          reporting_timezone: str) -> int:
    """Insert the stock counts of ``day`` into fact_inventory: the POS counts of raw_pos_inventory and
    ``online_stock`` (``transforms.facts.online_stock``), by ``fact_inventory.sql``; the rows inserted.

    The caller deletes the day's old rows first, in the same transaction."""
    from retail_assets.transforms.facts import ONLINE_STOCK

    tx.ensure(RAW_POS_INVENTORY, DIM_STORE, DIM_PRODUCT, DIM_CUSTOMER)
    tx.prepare_statement("fact_inventory", (RAW_POS_INVENTORY, ("business_date", "store_code", "sku_norm")),
                         (DIM_STORE, ()), (DIM_PRODUCT, ()))
    end_of_day = datetime.combine(day, datetime.min.time()) + timedelta(days=1, microseconds=-1)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for timezones in _store_zones(tx, reporting_timezone).values():
        for timezone in timezones:
            _widen(spans, timezone, end_of_day, end_of_day)
    _widen(spans, reporting_timezone, end_of_day, end_of_day)
    with tx.staged(ONLINE_STOCK, online_stock), tx.staged(TIME_SEGMENTS, time_segments(spans)):
        rows = tx.conn.execute(sa.text(sql_file(__file__, "fact_inventory.sql")),
                               {**_parameters(day, run_id, reporting_timezone), "end_of_day": end_of_day}).rowcount
    return int(rows)
