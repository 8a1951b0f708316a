"""A fast generator of one business day of POS sales in the ``standard`` layout, for the load benchmark.

Vectorised with numpy and written with pyarrow's CSV writer: 10 million lines take well under a minute. It writes
the drop folder ``<out>/pos_drop/`` (``stores.csv`` and ``sales/sales_<STORE>_<YYYYMMDD>.csv``, one file per store),
``<out>/online_store.db`` and ``<out>/crm.db`` (the catalog and loyalty cards fact_sales looks up, no online orders)
and ``<out>/manifest.json``, and is deterministic for a seed. It does not use ``retail_assets.generator``: the
benchmark must not move when the demo company does. With ``--stores 1`` the whole day is one file
(``sales_S0001_<YYYYMMDD>.csv``): the one-file rows of ``run.py --one-file``.

Dirt, kept at a realistic level (``bad_rate``, default 1 line in 2,000): the SKU as terminals print it (lower
case, no dash, surrounding spaces), payment methods in mixed case, and a few lines that the platform rejects but a
typed ``COPY`` still accepts (an unknown payment method, a negative discount, a sale time on another day, a
duplicated receipt line), so that every loader in the benchmark reads exactly the same bytes.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADER = ["receipt_id", "line_no", "sold_at", "register_id", "cashier_id", "sku", "quantity", "unit_price",
          "discount", "loyalty_card", "payment_method"]
STORES_HEADER = "store_code,store_name,city,region,country,timezone,pos_layout,opened_on,closed_on"
DEFAULT_DAY = date(2025, 3, 3)
CATALOG = 20_000
TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")


def store_codes(stores: int) -> list[str]:
    return [f"S{i:04d}" for i in range(1, stores + 1)]


def write_stores(root: Path, stores: int) -> Path:
    path = root / "stores.csv"
    lines = [STORES_HEADER]
    for i, code in enumerate(store_codes(stores)):
        lines.append(f"{code},Store {code},City {i % 50},Region {i % 7},US,{TIMEZONES[i % len(TIMEZONES)]},"
                     "standard,2020-01-01,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _catalog(rng: np.random.Generator, catalog: int) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """SKU variants as terminals print them (4 spellings per product), and each product's price in cents."""
    ids = np.arange(catalog)
    base = np.char.add("HB-", np.char.zfill(ids.astype(str), 6))
    plain = np.char.add("HB", np.char.zfill(ids.astype(str), 6))
    variants = np.concatenate([base, np.char.lower(base), plain, np.char.add(np.char.add(" ", base), " ")])
    cents = rng.integers(49, 25_000, catalog)
    return pa.array(variants.tolist()), pa.array([f"{c // 100}.{c % 100:02d}" for c in cents]), cents


def _day(lines: int, stores: int, day: date, seed: int, bad_rate: float, catalog: int
         ) -> tuple[pa.Table, np.ndarray]:
    """(all lines of the day as text columns, store index of each line), ordered by store."""
    rng = np.random.default_rng(seed)
    skus, prices, cents = _catalog(rng, catalog)
    store_of_line = np.sort(rng.integers(0, stores, lines))
    # receipts of 1-6 lines; receipt numbers restart per store
    sizes = rng.choice(np.arange(1, 7), size=lines, p=[0.35, 0.25, 0.17, 0.11, 0.07, 0.05])
    starts = np.cumsum(sizes)
    starts = starts[starts < lines]
    receipt_of_line = np.zeros(lines, dtype=np.int64)
    receipt_of_line[starts] = 1
    receipt_of_line = np.cumsum(receipt_of_line)
    store_change = np.r_[True, store_of_line[1:] != store_of_line[:-1]]
    new_receipt = np.r_[True, receipt_of_line[1:] != receipt_of_line[:-1]] | store_change
    receipt_no = np.cumsum(new_receipt)
    first_receipt_of_store = np.maximum.accumulate(np.where(store_change, receipt_no, 0))
    local_receipt = receipt_no - first_receipt_of_store + 1
    pos = np.arange(lines)
    receipt_start = np.maximum.accumulate(np.where(new_receipt, pos, 0))
    line_no = pos - receipt_start + 1

    seconds = rng.integers(8 * 3600, 22 * 3600 - 60, lines)
    seconds = seconds[np.lexsort((seconds, store_of_line))]  # time goes forward within each store's file
    receipt_secs = seconds[receipt_start] + (line_no - 1) * 4
    stamps = np.datetime64(day.isoformat()) + receipt_secs.astype("timedelta64[s]")

    product = rng.integers(0, catalog, lines)
    variant = rng.choice(4, size=lines, p=[0.85, 0.07, 0.05, 0.03]) * catalog + product
    qty = rng.choice(np.array([1, 2, 3, 4, 5, 6, 8, 10]), size=lines,
                     p=[0.6, 0.2, 0.1, 0.055, 0.03, 0.007, 0.005, 0.003])
    is_return = rng.random(lines) < 0.03
    qty = np.where(is_return, -qty, qty)
    discounted = rng.random(lines) < 0.15
    disc_cents = np.where(discounted, (cents[product] * np.abs(qty) * rng.choice([5, 10, 15, 20, 25], lines)) // 100, 0)
    disc_text = np.where(disc_cents > 0, np.char.add(np.char.add((disc_cents // 100).astype(str), "."),
                                                     np.char.zfill((disc_cents % 100).astype(str), 2)), "0.00")
    card = rng.random(lines) < 0.40
    card_no = np.char.add("LC", np.char.zfill(rng.integers(1, 500_000, lines).astype(str), 8))
    payments = np.array(["cash", "card", "mobile", "gift_card", "Card", "CASH"])
    pay = rng.choice(len(payments), size=lines, p=[0.24, 0.53, 0.15, 0.05, 0.02, 0.01])
    register = np.char.add("T", np.char.zfill(rng.integers(1, 9, lines).astype(str), 2))[receipt_start]
    cashier = np.char.add("C", np.char.zfill(rng.integers(1, 40, lines).astype(str), 3))[receipt_start]
    card, card_no = card[receipt_start], card_no[receipt_start]
    pay = pay[receipt_start]

    table = pa.table({
        "receipt_id": pa.array(np.char.add("R", np.char.zfill(local_receipt.astype(str), 6)).tolist()),
        "line_no": pa.array(line_no),
        "sold_at": pc.strftime(pa.array(stamps.astype("datetime64[s]")), format="%Y-%m-%dT%H:%M:%S"),
        "register_id": pa.array(register.tolist()),
        "cashier_id": pa.array(cashier.tolist()),
        "sku": skus.take(pa.array(variant)),
        "quantity": pa.array(qty),
        "unit_price": prices.take(pa.array(product)),
        "discount": pa.array(disc_text.tolist()),
        "loyalty_card": pa.array(np.where(card, card_no, "").tolist()),
        "payment_method": pa.array(payments[pay].tolist()),
    })
    table = _dirty(table, rng, bad_rate, day)
    return table, store_of_line


def _dirty(table: pa.Table, rng: np.random.Generator, bad_rate: float, day: date) -> pa.Table:
    """A few lines the platform rejects (one defect each) that a typed COPY still accepts."""
    n = table.num_rows
    bad = np.flatnonzero(rng.random(n) < bad_rate)
    if not len(bad):
        return table
    kind = rng.integers(0, 4, len(bad))
    cols = {name: table.column(name).to_numpy(zero_copy_only=False).astype(object) for name in
            ("payment_method", "discount", "sold_at", "line_no")}
    other_day = (day.replace(day=1) if day.day != 1 else day.replace(day=2)).isoformat()
    for i, k in zip(bad.tolist(), kind.tolist(), strict=True):
        if k == 0:
            cols["payment_method"][i] = "bitcoin"
        elif k == 1:
            cols["discount"][i] = "-1.00"
        elif k == 2:
            cols["sold_at"][i] = other_day + cols["sold_at"][i][10:]
        elif i > 0 and cols["line_no"][i] > 1:  # the line number of the previous line of the receipt again
            cols["line_no"][i] = cols["line_no"][i - 1]
    for name, values in cols.items():
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values.tolist()))
    return table


def generate(out: Path, lines: int, stores: int, day: date = DEFAULT_DAY, seed: int = 42,
             bad_rate: float = 1 / 2000, catalog: int = CATALOG, contacts: int = 50_000) -> dict:
    """Write the day; a manifest (also saved as ``manifest.json``) says what was written."""
    out = Path(out)
    sales = out / "pos_drop" / "sales"
    sales.mkdir(parents=True, exist_ok=True)
    write_stores(out / "pos_drop", stores)
    write_sources(out, seed, catalog, contacts)
    table, store_of_line = _day(lines, stores, day, seed, bad_rate, catalog)
    codes = store_codes(stores)
    bounds = np.searchsorted(store_of_line, np.arange(stores + 1))
    stamp = day.strftime("%Y%m%d")
    files, total_bytes = [], 0
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")  # no value needs quotes
    for s in range(stores):
        part = table.slice(bounds[s], bounds[s + 1] - bounds[s])
        if part.num_rows == 0:
            continue
        path = sales / f"sales_{codes[s]}_{stamp}.csv"
        with path.open("wb") as fh:  # pyarrow quotes header names whatever the style: write the header itself
            fh.write((",".join(HEADER) + "\n").encode())
            pacsv.write_csv(part, fh, opts)
        files.append(str(path))
        total_bytes += path.stat().st_size
    manifest = {"day": day.isoformat(), "lines": lines, "stores": stores, "files": len(files), "bytes": total_bytes,
                "seed": seed, "bad_rate": bad_rate, "catalog": catalog, "contacts": contacts,
                "generated_at": datetime.now().isoformat(timespec="seconds")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--day", type=date.fromisoformat, default=DEFAULT_DAY)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--catalog", type=int, default=CATALOG, help="products in the online shop's catalog")
    parser.add_argument("--contacts", type=int, default=50_000, help="CRM contacts with a loyalty card")
    args = parser.parse_args()
    print(json.dumps(generate(args.out, args.lines, args.stores, args.day, args.seed, catalog=args.catalog,
                              contacts=args.contacts)))



def write_sources(out: Path, seed: int = 42, catalog: int = CATALOG, contacts: int = 50_000) -> None:
    """The two other sources fact_sales reads, reduced to what a POS day needs: the online shop's catalog (every SKU
    the day sells, in its catalog form) and CRM contacts holding loyalty cards; no online orders."""
    import sqlite3

    rng = np.random.default_rng(seed)
    shop = out / "online_store.db"
    shop.unlink(missing_ok=True)
    con = sqlite3.connect(shop)
    con.executescript("""
        CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,
            phone TEXT, country TEXT, created_at TIMESTAMP, updated_at TIMESTAMP);
        CREATE TABLE products (product_id INTEGER PRIMARY KEY, sku TEXT UNIQUE, name TEXT, category TEXT,
            subcategory TEXT, brand TEXT, unit_cost NUMERIC(12,2), list_price NUMERIC(12,2), is_active BOOLEAN,
            updated_at TIMESTAMP);
        CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER, guest_email TEXT, status TEXT,
            placed_at TIMESTAMP, updated_at TIMESTAMP, shipping_amount NUMERIC(12,2), promo_code TEXT);
        CREATE TABLE order_items (order_id INTEGER, line_no INTEGER, product_id INTEGER, quantity INTEGER,
            unit_price NUMERIC(12,2), discount_amount NUMERIC(12,2), PRIMARY KEY (order_id, line_no));
        CREATE TABLE returns (return_id INTEGER PRIMARY KEY, order_id INTEGER, line_no INTEGER, quantity INTEGER,
            refund_amount NUMERIC(12,2), returned_at TIMESTAMP, reason TEXT);
        CREATE TABLE inventory (product_id INTEGER, warehouse_code TEXT, on_hand INTEGER, updated_at TIMESTAMP);
    """)
    cents = rng.integers(49, 25_000, catalog)
    con.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (i + 1, f"HB-{i:06d}", f"Product {i}", f"Category {i % 12}", f"Sub {i % 60}", f"Brand {i % 90}",
         round(int(c) * 0.6) / 100, int(c) / 100, True, "2024-06-01 00:00:00") for i, c in enumerate(cents)])
    con.commit()
    con.close()
    crm = out / "crm.db"
    crm.unlink(missing_ok=True)
    con = sqlite3.connect(crm)
    con.execute("""CREATE TABLE contacts (contact_id TEXT PRIMARY KEY, email TEXT, phone TEXT, first_name TEXT,
        last_name TEXT, birth_date DATE, city TEXT, region TEXT, country TEXT, loyalty_card TEXT, loyalty_tier TEXT,
        marketing_opt_in BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP, is_deleted BOOLEAN)""")
    tiers = ("bronze", "silver", "gold", "platinum")
    cards = rng.choice(np.arange(1, 500_000), size=contacts, replace=False)
    con.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (f"C{i:07d}", f"person{i}@example.com", None, "First", f"Last{i}", None, "City", "Region", "US",
         f"LC{int(card):08d}", tiers[i % 4], True, "2024-01-01 00:00:00", "2024-01-01 00:00:00", False)
        for i, card in enumerate(cards.tolist())])
    con.commit()
    con.close()


if __name__ == "__main__":
    main()
