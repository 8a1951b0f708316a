"""The online shop source (``online_store.db``): customers, the master catalog, orders, returns, inventory.

Only the current state of each row is stored, as the real shop database does: an order cancelled three days
after payment shows ``status = 'cancelled'`` with a late ``updated_at`` and nothing else. Orders are generated
day by day and inserted in batches, so memory stays flat however many days are asked for.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from ._common import (
    BATCH_ROWS,
    bulk_insert,
    cents_amount,
    local_midnight_utc,
    random_instant,
    utc_at,
    utc_to_local_date,
    weighted,
)
from .reference import EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, Person, Product, ascii_fold, format_phone, messy_email
from .schema import customers, inventory, online_metadata, order_items, orders, products, returns
from .target import open_target

WAREHOUSES = ("WH-EAST", "WH-CENTRAL", "WH-WEST")
SALE_STATUSES = frozenset({"paid", "shipped", "delivered"})
PROMOS = {"SPRING10": 10, "WELCOME10": 10, "VIP15": 15, "FREESHIP": 0}
PROMO_CODES = tuple(PROMOS)
ORDER_SIZES, ORDER_SIZE_CUM_WEIGHTS = (1, 2, 3, 4, 5), (40, 65, 82, 93, 100)
LINE_QUANTITIES, LINE_QUANTITY_CUM_WEIGHTS = (1, 2, 3, 4), (70, 88, 96, 100)
RETURN_REASONS = ("damaged", "wrong size", "not as described", "changed mind", "arrived late", "defective")
# Relative order volume by local hour: quiet at night, peaks at lunch and in the evening.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 11, 10, 9, 9, 9, 10, 11, 12, 12, 10, 7, 4)
_MAX_HOUR_WEIGHT = max(HOUR_WEIGHTS)


@dataclass(slots=True)
class _Day:
    order_lines: int = 0
    sale_lines: int = 0
    returns: int = 0
    sale_quantity: int = 0
    returned_quantity: int = 0
    sale_net: int = 0
    refunds: int = 0

    def manifest(self) -> dict:
        return {
            "order_lines": self.order_lines,
            "sale_lines": self.sale_lines,
            "not_sale_lines": self.order_lines - self.sale_lines,
            "returns": self.returns,
            "quantity": self.sale_quantity - self.returned_quantity,
            "net_amount": cents_amount(self.sale_net - self.refunds),
        }


@dataclass(slots=True)
class OnlineSummary:
    """The manifest's ``online`` section and counts."""

    by_day: dict[str, dict] = field(default_factory=dict)
    customers: int = 0
    orders: int = 0


def write_online(
    target: Path | str,
    rng_for: Callable[..., random.Random],
    catalog: Sequence[Product],
    active: Sequence[int],
    cum_weights: Sequence[float],
    crm_people: Sequence[Person],
    online_people: Sequence[Person],
    customer_count: int,
    dates: Sequence[date],
    zone: ZoneInfo,
    now: datetime,
    lines_per_day: int,
    progress: Callable[[str], None],
    opening: bool = False,
) -> OnlineSummary:
    """Create ``online_store.db`` (or the shop at a server's URL).

    ``customer_count`` accounts are opened: ``online_people`` shop online only, the rest are CRM people.
    ``lines_per_day`` is the average number of order lines a day. ``opening``: the shop as it stood when the
    period began: the catalog before the period's changes, the accounts opened before it, no orders yet.
    """
    summary = OnlineSummary()
    period_start = utc_at(dates[0])
    by_day = {} if opening else {day.isoformat(): _Day() for day in dates}
    engine = open_target(target, online_metadata, "online shop")
    try:
        with engine.begin() as conn:
            conn.execute(products.insert(), [_product_row(p, period_start if opening else None) for p in catalog])
            shared = min(len(crm_people), max(0, customer_count - len(online_people)))
            customer_rows = _customers(rng_for("online", "customers"), crm_people, online_people, shared,
                                       period_start, now)
            if opening:
                customer_rows = [{**row, "updated_at": row["updated_at"] if row["updated_at"] < period_start
                                  else row["created_at"]}
                                 for row in customer_rows if row["created_at"] < period_start]
                for offset in range(0, len(customer_rows), BATCH_ROWS):
                    conn.execute(customers.insert(), customer_rows[offset:offset + BATCH_ROWS])
                summary.customers = len(customer_rows)
                _insert_inventory(conn, rng_for("online", "inventory"), catalog, period_start)
                return summary
            for offset in range(0, len(customer_rows), BATCH_ROWS):
                conn.execute(customers.insert(), customer_rows[offset:offset + BATCH_ROWS])
            summary.customers = len(customer_rows)
            customer_since = [row["created_at"] for row in customer_rows]
            all_people = [*crm_people, *online_people]
            pending_returns: list[tuple] = []
            order_id = 0
            for day in dates:
                progress(f"online orders {day.isoformat()}")
                order_id = _orders_of_day(
                    conn, rng_for("online", "orders", day.isoformat()), day, order_id, catalog, active,
                    cum_weights, customer_since, all_people, zone, now, lines_per_day,
                    by_day, pending_returns,
                )
            summary.orders = order_id
            _insert_returns(conn, pending_returns, zone, by_day)
            _insert_inventory(conn, rng_for("online", "inventory"), catalog, now)
    finally:
        engine.dispose()
    summary.by_day = {day: totals.manifest() for day, totals in by_day.items()}
    return summary


def _product_row(p: Product, as_of: datetime | None = None) -> dict:
    """The catalog row now, or as it stood at ``as_of``."""
    name, category, subcategory, price, updated_at = p.row_at(as_of) if as_of else (
        p.name, p.category, p.subcategory, p.price, p.updated_at)
    return {
        "product_id": p.product_id,
        "sku": p.sku,
        "name": name,
        "category": category,
        "subcategory": subcategory,
        "brand": p.brand,
        "unit_cost": p.unit_cost / 100,
        "list_price": price / 100,
        "is_active": p.is_active,
        "updated_at": updated_at,
    }


def _customers(rng: random.Random, crm_people: Sequence[Person], online_people: Sequence[Person], shared_count: int,
               period_start: datetime, now: datetime) -> list[dict]:
    """Online accounts: some are CRM people (same address, typed differently), the rest shop online only."""
    shared = rng.sample(list(crm_people), shared_count)
    rows = []
    for person in [*shared, *online_people]:
        if rng.random() < 0.9:
            created = random_instant(rng, datetime(2019, 1, 1), period_start)
        else:
            created = random_instant(rng, period_start, now - timedelta(hours=1))
        updated = created if rng.random() < 0.5 else random_instant(rng, created, now)
        rows.append({
            "customer_id": None,
            "email": messy_email(rng, person.email),
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": None if rng.random() < 0.2 else format_phone(rng, person.phone_digits),
            "country": "US",
            "created_at": created,
            "updated_at": updated,
        })
    rows.sort(key=lambda row: (row["created_at"], row["email"]))
    for n, row in enumerate(rows, start=1):
        row["customer_id"] = n
    return rows


def _placed_at(rng: random.Random, day_start: datetime, seconds: int) -> datetime:
    while True:
        offset = int(rng.random() * seconds)
        if rng.random() * _MAX_HOUR_WEIGHT < HOUR_WEIGHTS[(offset // 3600) % 24]:
            return day_start + timedelta(seconds=offset)


def _guest_email(rng: random.Random, people: Sequence[Person]) -> str:
    if rng.random() < 0.4:
        return messy_email(rng, rng.choice(people).email)
    local = ascii_fold(f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}").lower().replace("'", "")
    return f"{local}{rng.randint(1000, 9999)}@{rng.choice(EMAIL_DOMAINS)}"


def _orders_of_day(
    conn: Connection,
    rng: random.Random,
    day: date,
    order_id: int,
    catalog: Sequence[Product],
    active: Sequence[int],
    cum_weights: Sequence[float],
    customer_since: list[datetime],
    people: Sequence[Person],
    zone: ZoneInfo,
    now: datetime,
    lines_per_day: int,
    by_day: dict[str, _Day],
    pending_returns: list[tuple],
) -> int:
    day_start = local_midnight_utc(day, zone)
    seconds = int((local_midnight_utc(day + timedelta(days=1), zone) - day_start).total_seconds())
    weekend = 1.25 if day.weekday() >= 5 else 1.0
    target = max(1, round(lines_per_day * weekend * rng.uniform(0.85, 1.15)))
    sizes: list[int] = []
    lines = 0
    while lines < target:
        sizes.append(weighted(rng, ORDER_SIZES, ORDER_SIZE_CUM_WEIGHTS))
        lines += sizes[-1]
    placed_times = sorted(_placed_at(rng, day_start, seconds) for _ in sizes)
    totals: _Day = by_day[day.isoformat()]
    order_rows: list[tuple] = []
    item_rows: list[tuple] = []
    for size, placed_at in zip(sizes, placed_times, strict=True):
        order_id += 1
        available = bisect.bisect_right(customer_since, placed_at)
        customer_id = None
        guest_email = None
        if available and rng.random() >= 0.1:
            customer_id = int(rng.random() * available) + 1
        else:
            guest_email = _guest_email(rng, people)
        status, updated_at, delivered_at = _status(rng, placed_at, now)
        promo = rng.choice(PROMO_CODES) if rng.random() < 0.12 else None
        chosen = list(dict.fromkeys(weighted(rng, active, cum_weights) for _ in range(size)))
        subtotal = 0
        is_sale = status in SALE_STATUSES
        for line_no, product_index in enumerate(chosen, start=1):
            product = catalog[product_index]
            quantity = weighted(rng, LINE_QUANTITIES, LINE_QUANTITY_CUM_WEIGHTS)
            price = product.price_at(placed_at)
            gross = quantity * price
            percent = PROMOS[promo] if promo else (rng.choice((5, 10, 20)) if rng.random() < 0.05 else 0)
            discount = gross * percent // 100
            subtotal += gross - discount
            item_rows.append((order_id, line_no, product.product_id, quantity, price / 100, discount / 100))
            totals.order_lines += 1
            if is_sale:
                totals.sale_lines += 1
                totals.sale_quantity += quantity
                totals.sale_net += gross - discount
            if delivered_at is not None and rng.random() < 0.07:
                returned_at = delivered_at + timedelta(seconds=rng.randint(86_400, 10 * 86_400))
                if returned_at <= now:
                    returned = rng.randint(1, quantity)
                    # Floor, so the refund never exceeds the paid share of the returned units.
                    refund = (returned * price * quantity - discount * returned) // quantity
                    if rng.random() < 0.15:
                        refund = refund * 85 // 100
                    pending_returns.append(
                        (returned_at, order_id, line_no, returned, refund, rng.choice(RETURN_REASONS))
                    )
        shipping = 0 if subtotal >= 5000 or promo == "FREESHIP" else rng.choice((499, 599, 799))
        order_rows.append(
            (order_id, customer_id, guest_email, status, placed_at, updated_at, shipping / 100, promo)
        )
        if len(item_rows) >= BATCH_ROWS:
            _flush(conn, order_rows, item_rows)
    _flush(conn, order_rows, item_rows)
    return order_id


def _flush(conn: Connection, order_rows: list[tuple], item_rows: list[tuple]) -> None:
    bulk_insert(conn, orders, order_rows)
    bulk_insert(conn, order_items, item_rows)
    order_rows.clear()
    item_rows.clear()


def _status(rng: random.Random, placed_at: datetime, now: datetime) -> tuple[str, datetime, datetime | None]:
    """Current status, when it was set, and the delivery time of a delivered order.

    pending -> paid -> shipped -> delivered, or cancelled: before payment (minutes to hours later) or, for a
    few older orders, days after payment.
    """
    age = now - placed_at
    paid_at = placed_at + timedelta(seconds=30 + int(rng.random() * 1770))
    r = rng.random()
    if r < 0.03:
        return "cancelled", min(now, placed_at + timedelta(seconds=rng.randint(600, 6 * 3600))), None
    if r < 0.05 or paid_at > now or (age < timedelta(hours=6) and r < 0.3):
        return "pending", placed_at, None
    if age > timedelta(days=2) and rng.random() < 0.025:
        cancelled_at = placed_at + timedelta(days=rng.randint(2, min(5, age.days)),
                                             seconds=rng.randrange(3600, 86_400))
        return "cancelled", min(cancelled_at, now), None
    shipped_at = paid_at + timedelta(seconds=12 * 3600 + int(rng.random() * 36 * 3600))
    delivered_at = shipped_at + timedelta(seconds=86_400 + int(rng.random() * 3 * 86_400))
    if delivered_at <= now:
        return "delivered", delivered_at, delivered_at
    if shipped_at <= now:
        return "shipped", shipped_at, None
    return "paid", paid_at, None


def _insert_returns(conn: Connection, pending: list[tuple], zone: ZoneInfo, by_day: dict[str, _Day]) -> None:
    pending.sort()
    rows = []
    for return_id, (returned_at, order_id, line_no, quantity, refund, reason) in enumerate(pending, start=1):
        rows.append((return_id, order_id, line_no, quantity, refund / 100, returned_at, reason))
        totals: _Day = by_day[utc_to_local_date(returned_at, zone).isoformat()]
        totals.returns += 1
        totals.returned_quantity += quantity
        totals.refunds += refund
        if len(rows) >= BATCH_ROWS:
            bulk_insert(conn, returns, rows)
            rows.clear()
    bulk_insert(conn, returns, rows)


def _insert_inventory(conn: Connection, rng: random.Random, catalog: Sequence[Product], now: datetime) -> None:
    rows = []
    for product in catalog:
        for warehouse in WAREHOUSES:
            if rng.random() < 0.15:
                continue
            on_hand = rng.randint(0, 400) if product.is_active else rng.randint(0, 3)
            rows.append((product.product_id, warehouse, on_hand, random_instant(rng, now - timedelta(days=2), now)))
    for offset in range(0, len(rows), BATCH_ROWS):
        bulk_insert(conn, inventory, rows[offset:offset + BATCH_ROWS])
