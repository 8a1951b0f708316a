"""POS sales and stock-count files of one store-day, in the store's layout and with its terminals' habits.

A store-day is built in memory (a few MB at 10,000 lines), encoded and written before the next one starts.
Row-level dirt is injected here and counted exactly, one defect per bad line, so every bad line has exactly
one reason a loader can agree on.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import itemgetter

from ._common import cents_amount, cents_text, uniform_pick, weighted
from .reference import LEGACY_COLUMNS, STANDARD_COLUMNS, Product, Store

DIRT_RATE = 1 / 200
# Items the old terminals sell under a code of their own (no catalog SKU); the accents are Windows-1252 bytes.
LOCAL_ITEM_CODES = ("DÉCO-0117", "CRÈME-0042", "PÂTÉ-0003")
UNKNOWN_SKU_RATE = 0.005
RETURN_RECEIPT_RATE = 0.03
CARD_RATE = 0.40
UNKNOWN_CARD_RATE = 0.02
DISCOUNT_RATE = 0.15
OPENS, CLOSES = 8 * 3600, 22 * 3600
FIRMWARE = "5.2.1"
RECEIPT_SIZES = (1, 2, 3, 4, 5, 6)
RECEIPT_CUM_WEIGHTS = (35, 60, 77, 88, 95, 100)
QUANTITIES = (1, 2, 3, 4, 5, 6, 8, 10)
QUANTITY_CUM_WEIGHTS = (600, 800, 900, 955, 985, 992, 997, 1000)
LINE_TEXT = tuple(str(n) for n in range(max(RECEIPT_SIZES) + 1))
QUANTITY_TEXT = {q: str(q) for q in range(-max(QUANTITIES), max(QUANTITIES) + 1)}
DISCOUNT_PERCENTS = (5, 10, 15, 20, 25, 30, 50)
PAYMENTS = ("cash", "card", "mobile", "gift_card")
PAYMENT_CUM_WEIGHTS = (25, 80, 95, 100)

STANDARD_REASONS = (
    "quantity_invalid", "price_invalid", "discount_invalid", "sold_at_invalid", "payment_method_invalid",
    "duplicate_line", "missing_value",
)
LEGACY_REASONS = (
    "quantity_invalid", "price_invalid", "discount_invalid", "sold_at_invalid", "type_invalid",
    "duplicate_line", "missing_value",
)
REJECTION_REASONS = tuple(sorted(set(STANDARD_REASONS) | set(LEGACY_REASONS)))

# Field positions in the canonical column order of each layout.
RECEIPT = 0  # receipt_id / TICKET in both layouts
S_SOLD, S_SKU, S_QTY, S_PRICE, S_DISC, S_PAY = 2, 5, 6, 7, 8, 10
L_DATE, L_TIME, L_ITEM, L_QTY, L_PRICE, L_DISC, L_TYPE = 2, 3, 4, 5, 6, 7, 9


@dataclass(frozen=True, slots=True)
class SalesContext:
    """Company-wide inputs of every store-day."""

    catalog: Sequence[Product]
    active: Sequence[int]
    cum_weights: Sequence[float]
    unknown_skus: Sequence[str]
    cards: Sequence[str]
    unknown_cards: Sequence[str]
    # card -> (first business day, the card used instead from then on): a customer who signed up again in the
    # period (a new CRM contact, a new card) pays with the new card from the day after.
    card_switches: Mapping[str, tuple[date, str]] = field(default_factory=dict)


@dataclass(slots=True)
class StoreDay:
    """The data lines of one store-day file (canonical column order) and their expected load result."""

    rows: list[list[str]]
    stats: dict


def build_store_day(rng: random.Random, ctx: SalesContext, store: Store, day: date, n_lines: int,
                    dirty: bool = True) -> StoreDay:
    """Generate ``n_lines`` data lines (plus any duplicated lines) for ``store`` on ``day``."""
    legacy = store.layout == "legacy"
    catalog = ctx.catalog
    product_picks = rng.choices(ctx.active, cum_weights=ctx.cum_weights, k=n_lines)
    quantities = rng.choices(QUANTITIES, cum_weights=QUANTITY_CUM_WEIGHTS, k=n_lines)
    sizes: list[int] = []
    remaining = n_lines
    while remaining > 0:
        size = min(remaining, weighted(rng, RECEIPT_SIZES, RECEIPT_CUM_WEIGHTS))
        sizes.append(size)
        remaining -= size
    random = rng.random
    times = sorted(OPENS + int(random() * (CLOSES - OPENS)) for _ in sizes)
    day_iso = day.isoformat()
    day_tag = f"{day:%y%m%d}"
    legacy_date = f"{day:%d.%m.%Y}"
    mark = "," if legacy else "."
    zero = cents_text(0, mark)
    money: dict[int, str] = {}
    priced: dict[int, tuple[int, str, tuple[str, ...]]] = {}
    first_ticket = rng.randint(1000, 60000)

    rows: list[list[str]] = []
    duplicates: list[tuple[int, list[str]]] = []
    rejected: dict[str, int] = {}
    valid = unknown = quantity_sum = net = return_lines = 0
    empty_receipt_used = False
    pick = 0
    switches = ctx.card_switches
    for receipt_no, (size, second) in enumerate(zip(sizes, times, strict=True), start=1):
        register = uniform_pick(rng, store.registers)
        cashier = uniform_pick(rng, store.cashiers)
        if random() < CARD_RATE:
            card = uniform_pick(rng, ctx.unknown_cards if random() < UNKNOWN_CARD_RATE else ctx.cards)
            switch = switches.get(card)
            if switch is not None and day >= switch[0]:
                card = switch[1]
        else:
            card = ""
        payment = weighted(rng, PAYMENTS, PAYMENT_CUM_WEIGHTS)
        is_return = random() < RETURN_RECEIPT_RATE
        hh, mm, ss = second // 3600, second // 60 % 60, second % 60
        if legacy:
            receipt = str(first_ticket + receipt_no)
            clock = f"{hh:02d}:{mm:02d}"
        else:
            receipt = f"{register}-{day_tag}-{receipt_no:05d}"
            clock = f"{day_iso}T{hh:02d}:{mm:02d}:{ss:02d}"
        for line_no in range(1, size + 1):
            quantity = quantities[pick]
            product_index = product_picks[pick]
            pick += 1
            if random() < UNKNOWN_SKU_RATE:
                sku = uniform_pick(rng, LOCAL_ITEM_CODES if legacy and random() < 0.25 else ctx.unknown_skus)
                price = rng.randint(1, 40) * 100 - 1
                price_text = cents_text(price, mark)
                known = False
            else:
                cached = priced.get(product_index)
                if cached is None:
                    product = catalog[product_index]
                    price = product.price_on(day)
                    cached = priced[product_index] = (price, cents_text(price, mark), product.printed)
                price, price_text, printed = cached
                v = random()
                sku = printed[0 if v < 0.85 else 1 if v < 0.9 else 2 if v < 0.95 else 3]
                known = True
            if is_return:
                quantity = -min(quantity, 2)
            discount = 0
            discount_text = zero
            if random() < DISCOUNT_RATE:
                discount = abs(quantity) * price * uniform_pick(rng, DISCOUNT_PERCENTS) // 100
                discount_text = money.get(discount) or money.setdefault(discount, cents_text(discount, mark))
            if legacy:
                row = [receipt, LINE_TEXT[line_no], legacy_date, clock, sku, QUANTITY_TEXT[abs(quantity)],
                       price_text, discount_text, card, "R" if is_return else "S"]
            else:
                row = [receipt, LINE_TEXT[line_no], clock, register, cashier, sku, QUANTITY_TEXT[quantity],
                       price_text, discount_text, card, payment]
            reason = None
            if dirty and random() < DIRT_RATE:
                reason = rng.choice(LEGACY_REASONS if legacy else STANDARD_REASONS)
                if reason == "duplicate_line":
                    # The terminal sends the line again a little later; the first occurrence stays valid.
                    duplicates.append((len(rows) + rng.randint(1, 40), list(row)))
                    rejected[reason] = rejected.get(reason, 0) + 1
                    reason = None
                else:
                    if reason == "missing_value" and not empty_receipt_used and rng.random() < 0.5:
                        # At most one empty receipt id a file, so two never look like one duplicated key.
                        empty_receipt_used = True
                        row[RECEIPT] = ""
                    else:
                        _corrupt(rng, row, reason, legacy, day)
                    rejected[reason] = rejected.get(reason, 0) + 1
            rows.append(row)
            if reason is None:
                valid += 1
                quantity_sum += quantity
                net += quantity * price - (discount if quantity > 0 else -discount)
                unknown += not known
                return_lines += quantity < 0
    if duplicates:
        rows = _insert_duplicates(rows, duplicates)
    stats = {
        "lines": len(rows),
        "valid_lines": valid,
        "rejected": dict(sorted(rejected.items())),
        "unknown_sku_lines": unknown,
        "quantity": quantity_sum,
        "net_amount": cents_amount(net),
        "return_lines": return_lines,
    }
    return StoreDay(rows, stats)


def _insert_duplicates(rows: list[list[str]], duplicates: list[tuple[int, list[str]]]) -> list[list[str]]:
    merged: list[list[str]] = []
    pending = sorted(duplicates, key=itemgetter(0))
    k = 0
    for position, row in enumerate(rows):
        merged.append(row)
        while k < len(pending) and pending[k][0] <= position:
            merged.append(pending[k][1])
            k += 1
    merged.extend(row for _, row in pending[k:])
    return merged


def _corrupt(rng: random.Random, row: list[str], reason: str, legacy: bool, day: date) -> None:
    """Break exactly one rule in ``row``, in a way no sensible parser can read as valid."""
    if reason == "missing_value":
        row[L_ITEM if legacy else S_SKU] = ""
    elif reason == "quantity_invalid":
        row[L_QTY if legacy else S_QTY] = rng.choice(("0", "2,5", "abc") if legacy else ("0", "2.5", "abc", "two"))
    elif reason == "price_invalid":
        index = L_PRICE if legacy else S_PRICE
        row[index] = rng.choice(("-" + row[index], "abc", "N/A", "#VALUE!"))
    elif reason == "discount_invalid":
        index = L_DISC if legacy else S_DISC
        row[index] = rng.choice(("-1,00" if legacy else "-1.00", "abc", "n/a"))
    elif reason == "sold_at_invalid":
        other_day = day + timedelta(days=rng.choice((-1, 1)))
        choice = rng.randrange(3)
        if legacy:
            if choice == 0:
                row[L_DATE] = f"{other_day:%d.%m.%Y}"
            elif choice == 1:
                row[L_DATE] = f"32.{day:%m.%Y}"
            else:
                row[L_TIME] = rng.choice(("25:10", "xx:yy", "12:75"))
        elif choice == 0:
            row[S_SOLD] = f"{other_day.isoformat()}{row[S_SOLD][10:]}"
        elif choice == 1:
            row[S_SOLD] = f"{day:%Y-%m}-32{row[S_SOLD][10:]}"
        else:
            row[S_SOLD] = rng.choice(("not a time", f"{day.isoformat()}T25:10:00", "#########"))
    elif reason == "payment_method_invalid":
        row[S_PAY] = rng.choice(("bitcoin", "cheque", "voucher", "barter"))
    elif reason == "type_invalid":
        row[L_TYPE] = rng.choice(("X", "V", "?"))
    else:
        raise ValueError(reason)


def header_names(store: Store, day: date) -> list[str]:
    """The header row a store's terminal writes on ``day``, in canonical column order."""
    if store.layout == "legacy":
        return list(LEGACY_COLUMNS)
    names = list(STANDARD_COLUMNS)
    if store.firmware_from is not None and day >= store.firmware_from:
        names.append("firmware_version")
    if store.header_case == "upper":
        return [n.upper() for n in names]
    if store.header_case == "title":
        return ["_".join(part.capitalize() for part in n.split("_")) for n in names]
    return names


def encode_sales_file(store: Store, day: date, rows: Sequence[list[str]], *, drop_column: str | None = None) -> bytes:
    """Bytes of a sales file as the store's terminal writes it (layout, order, encoding, BOM, line ends, gzip).

    ``drop_column`` leaves one column out, as a broken firmware does.
    """
    header = header_names(store, day)
    buffer = io.StringIO()
    if store.layout == "legacy":
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue().encode("cp1252")

    firmware = len(header) > len(STANDARD_COLUMNS)
    order = list(store.column_order) + ([len(STANDARD_COLUMNS)] if firmware else [])
    if drop_column is not None:
        order.remove(STANDARD_COLUMNS.index(drop_column))
    reorder = itemgetter(*order)
    writer = csv.writer(buffer, lineterminator="\r\n" if store.crlf else "\n")
    writer.writerow(reorder(header))
    if firmware:
        writer.writerows(reorder([*row, FIRMWARE]) for row in rows)
    else:
        writer.writerows(map(reorder, rows))
    data = ("\ufeff" if store.bom else "") + buffer.getvalue()
    encoded = data.encode("utf-8")
    # mtime=0 and no file name in the gzip header keep the bytes identical run after run.
    return gzip.compress(encoded, compresslevel=6, mtime=0) if store.gzip else encoded


def encode_stock_file(store: Store, day: date, rng: random.Random, catalog: Sequence[Product],
                      on_hand: dict[int, int]) -> tuple[bytes, int]:
    """Close-of-day stock count of the store's counted products; updates ``on_hand`` in place."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("sku", "on_hand", "counted_at"))
    count_second = 22 * 3600 + rng.randrange(300, 2700)
    counted_at = f"{day.isoformat()}T{count_second // 3600:02d}:{count_second // 60 % 60:02d}:{count_second % 60:02d}"
    # The old terminals print SKUs without the dash, in stock counts too.
    printed = 2 if store.layout == "legacy" else 0
    for product_index in store.stock_products:
        level = on_hand.get(product_index)
        if level is None:
            level = rng.randint(0, 120)
        else:
            level = max(0, level - rng.randint(0, 8))
            if level < 12 and rng.random() < 0.5:
                level += rng.choice((24, 48, 96))
        on_hand[product_index] = level
        writer.writerow((catalog[product_index].printed[printed], level, counted_at))
    return buffer.getvalue().encode("utf-8"), len(store.stock_products)
