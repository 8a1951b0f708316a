"""Tests of the sample-company generator: deterministic, honest about what it wrote, dirty in every promised way.

The manifest is what the loaders' tests compare to, so it is re-derived here independently: the drop folder is
read with the csv module by a small reference loader written from SPEC 2 (not from the generator's code), and
the databases are queried with sqlite3.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import sqlite3
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from retail_assets.generator import generate_company

STANDARD = re.compile(r"^sales_(?P<store>[A-Za-z0-9]+)_(?P<date>\d{8})\.csv(?:\.gz)?$")
LEGACY = re.compile(r"^(?P<store>[A-Za-z0-9]+)_(?P<day>\d{2})(?P<month>\d{2})(?P<year>\d{4})\.txt$")
STOCK = re.compile(r"^stock_(?P<store>[A-Za-z0-9]+)_(?P<date>\d{8})\.csv$")
STANDARD_COLUMNS = ("receipt_id", "line_no", "sold_at", "register_id", "cashier_id", "sku", "quantity",
                    "unit_price", "discount", "loyalty_card", "payment_method")
LEGACY_COLUMNS = ["TICKET", "LINE", "DATE", "TIME", "ITEM", "QTY", "PRICE", "DISC", "CARD", "TYPE"]
PAYMENTS = {"cash", "card", "mobile", "gift_card"}
SALE_STATUSES = {"paid", "shipped", "delivered"}


@pytest.fixture(scope="module")
def default_company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("company")
    return out, generate_company(out)


@pytest.fixture(scope="module")
def drop(default_company: tuple[Path, dict]) -> dict:
    out, _ = default_company
    return read_drop(out / "pos_drop", catalog_skus(out / "online_store.db"))


# --- a reference loader, written from SPEC 2 -------------------------------------------------------------------

def normalise_sku(sku: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", sku).upper()


def catalog_skus(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {normalise_sku(sku) for (sku,) in conn.execute("SELECT sku FROM products")}


def decode(path: Path, data: bytes, layout: str) -> list[list[str]]:
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if layout == "legacy":
        return list(csv.reader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def money(text: str, mark: str) -> Decimal | None:
    pattern = r"\d+(,\d{1,2})?" if mark == "," else r"\d+(\.\d{1,2})?"
    if not re.fullmatch(pattern, text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def load_sales_file(path: Path, data: bytes, layout: str, day: date, skus: set[str]) -> dict:
    """What a correct loader makes of one sales file: the manifest's per store-day entry (or a bad file)."""
    records = decode(path, data, layout)
    header, rows = records[0], records[1:]
    stats = {"lines": len(rows), "valid_lines": 0, "rejected": Counter(), "unknown_sku_lines": 0,
             "quantity": 0, "net_amount": Decimal("0.00"), "return_lines": 0}
    if layout == "legacy":
        assert header == LEGACY_COLUMNS
        columns = {name: i for i, name in enumerate(header)}
    else:
        columns = {name.strip().lower(): i for i, name in enumerate(header)}
        if any(required not in columns for required in STANDARD_COLUMNS):
            return {"missing_column": True, "lines": len(rows)}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if layout == "legacy":
            receipt, line, sku = row[columns["TICKET"]], row[columns["LINE"]], row[columns["ITEM"]]
        else:
            receipt, line, sku = (row[columns[c]] for c in ("receipt_id", "line_no", "sku"))
        reason, quantity, net = check_line(row, columns, layout, day)
        if not receipt or not sku.strip():
            reason = "missing_value"
        elif (receipt, line) in seen:
            reason = "duplicate_line"
        if receipt:
            seen.add((receipt, line))
        if reason:
            stats["rejected"][reason] += 1
            continue
        stats["valid_lines"] += 1
        stats["quantity"] += quantity
        stats["net_amount"] += net
        stats["return_lines"] += quantity < 0
        stats["unknown_sku_lines"] += normalise_sku(sku) not in skus
    stats["rejected"] = dict(sorted(stats["rejected"].items()))
    stats["net_amount"] = f"{stats['net_amount']:.2f}"
    return stats


def check_line(row: list[str], columns: dict[str, int], layout: str, day: date) -> tuple[str | None, int, Decimal]:
    """(reason, signed quantity, net amount) of a line that has its receipt id and sku."""
    def field(name: str) -> str:
        return row[columns[name]]

    if layout == "legacy":
        qty_text, price, discount = field("QTY"), money(field("PRICE"), ","), money(field("DISC"), ",")
        kind = field("TYPE")
        try:
            sold = datetime.strptime(f"{field('DATE')} {field('TIME')}", "%d.%m.%Y %H:%M")
        except ValueError:
            sold = None
        if not re.fullmatch(r"\d+", qty_text) or int(qty_text) == 0:
            return "quantity_invalid", 0, Decimal(0)
        quantity = int(qty_text) * (-1 if kind == "R" else 1)
        if kind not in ("S", "R"):
            return "type_invalid", 0, Decimal(0)
    else:
        qty_text, price, discount = field("quantity"), money(field("unit_price"), "."), money(field("discount"), ".")
        try:
            sold = datetime.strptime(field("sold_at"), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            sold = None
        if not re.fullmatch(r"-?\d+", qty_text) or int(qty_text) == 0:
            return "quantity_invalid", 0, Decimal(0)
        quantity = int(qty_text)
        if field("payment_method") not in PAYMENTS:
            return "payment_method_invalid", 0, Decimal(0)
    if price is None:
        return "price_invalid", 0, Decimal(0)
    if discount is None:
        return "discount_invalid", 0, Decimal(0)
    if sold is None or sold.date() != day:
        return "sold_at_invalid", 0, Decimal(0)
    assert discount <= abs(quantity) * price
    return None, quantity, quantity * price - (discount if quantity > 0 else -discount)


def read_drop(root: Path, skus: set[str]) -> dict:
    """Walk the drop folder as a loader would and re-derive the manifest's POS sections."""
    stores = {row["store_code"]: row for row in csv.DictReader(io.StringIO((root / "stores.csv").read_text("utf-8")))}
    candidates: dict[tuple[str, str, str], list[tuple[int, str, bytes]]] = defaultdict(list)
    result: dict = {"pos": defaultdict(dict), "pos_inventory": defaultdict(dict), "bad_files": [],
                    "ignored_files": [], "duplicate_files": [], "superseded_files": []}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        if relative == "stores.csv":
            continue
        if path.name.endswith(".part"):
            result["ignored_files"].append(relative)
            continue
        data = path.read_bytes()
        if stock := STOCK.match(path.name):
            day = datetime.strptime(stock["date"], "%Y%m%d").date().isoformat()
            result["pos_inventory"][day][stock["store"]] = len(data.decode("utf-8").splitlines()) - 1
            continue
        standard, legacy = STANDARD.match(path.name), LEGACY.match(path.name)
        if standard:
            store, layout = standard["store"], "standard"
            day = datetime.strptime(standard["date"], "%Y%m%d").date().isoformat()
        elif legacy:
            store, layout = legacy["store"], "legacy"
            day = f"{legacy['year']}-{legacy['month']}-{legacy['day']}"
        else:
            lines = len(data.decode("utf-8", "replace").splitlines()) - 1
            result["bad_files"].append({"file": relative, "reason": "no_layout", "lines": lines})
            continue
        if store not in stores:
            lines = len(decode(path, data, layout)) - 1
            result["bad_files"].append({"file": relative, "reason": "unknown_store", "lines": lines})
            continue
        assert stores[store]["pos_layout"] == layout
        candidates[(day, store, layout)].append((path.stat().st_mtime_ns, relative, data))

    for (day, store, layout), files in sorted(candidates.items()):
        by_content: dict[bytes, list[tuple[int, str]]] = defaultdict(list)
        for mtime, relative, data in files:
            by_content[hashlib.sha256(data).digest()].append((mtime, relative))
        newest = max(by_content.values(), key=lambda copies: max(copies))
        for copies in by_content.values():
            copies.sort()
            if copies is newest:
                result["duplicate_files"].extend(relative for _, relative in copies[1:])
            else:
                result["superseded_files"].extend(relative for _, relative in copies)
        winner = newest[0][1]
        data = next(d for _, r, d in files if r == winner)
        stats = load_sales_file(root / winner, data, layout, date.fromisoformat(day), skus)
        if stats.get("missing_column"):
            result["bad_files"].append({"file": winner, "reason": "missing_column", "lines": stats["lines"]})
            continue
        result["pos"][day][store] = {"file": winner, "layout": layout, **stats}
    result["bad_files"].sort(key=lambda entry: entry["file"])
    for key in ("ignored_files", "duplicate_files", "superseded_files"):
        result[key].sort()
    result["stores"] = stores
    return result


def utc_to_day(text: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).astimezone(zone).date().isoformat()


def snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


# --- tests -----------------------------------------------------------------------------------------------------

def test_same_seed_same_bytes_and_mtimes_other_seed_differs(
    default_company: tuple[Path, dict], tmp_path: Path
) -> None:
    out, manifest = default_company
    again = generate_company(tmp_path / "again")
    assert again == manifest
    assert snapshot(tmp_path / "again") == snapshot(out)

    small = {"stores": 4, "days": 3, "lines_per_store_day": 40}
    first = generate_company(tmp_path / "s1", seed=1, **small)
    second = generate_company(tmp_path / "s2", seed=2, **small)
    assert first["pos"] != second["pos"]
    assert (tmp_path / "s1/crm.db").read_bytes() != (tmp_path / "s2/crm.db").read_bytes()
    assert (tmp_path / "s1/online_store.db").read_bytes() != (tmp_path / "s2/online_store.db").read_bytes()


def test_rerun_replaces_earlier_outputs(tmp_path: Path) -> None:
    generate_company(tmp_path, stores=4, days=3, lines_per_store_day=30, seed=5)
    stray = tmp_path / "pos_drop" / "old" / "sales_S001_20240101.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("left over")
    manifest = generate_company(tmp_path, stores=2, days=2, lines_per_store_day=30, seed=5)
    assert not stray.exists()
    assert set(manifest["pos"]["2025-03-03"]) <= {"S001", "S002"}
    assert not list((tmp_path / "pos_drop").rglob("*S003*"))


def test_manifest_pos_matches_the_files(default_company: tuple[Path, dict], drop: dict) -> None:
    _, manifest = default_company
    assert {d: s for d, s in manifest["pos"].items() if s} == dict(drop["pos"])
    assert {d: s for d, s in manifest["pos_inventory"].items() if s} == dict(drop["pos_inventory"])
    for key in ("bad_files", "ignored_files", "duplicate_files", "superseded_files"):
        assert drop[key] == manifest[key], key


def test_missing_store_days_are_exactly_the_open_days_without_files(
    default_company: tuple[Path, dict], drop: dict
) -> None:
    _, manifest = default_company
    bad_store_days = set()
    for entry in manifest["bad_files"]:
        name = entry["file"].rsplit("/", 1)[-1]
        if entry["reason"] == "missing_column" and (m := STANDARD.match(name)):
            bad_store_days.add((datetime.strptime(m["date"], "%Y%m%d").date().isoformat(), m["store"]))
    expected = []
    for day in manifest["business_dates"]:
        for code, row in drop["stores"].items():
            open_ = row["opened_on"] <= day and (not row["closed_on"] or day < row["closed_on"])
            if open_ and code not in manifest["pos"][day] and (day, code) not in bad_store_days:
                expected.append([day, code])
            if not open_:
                assert code not in manifest["pos"][day] and code not in manifest["pos_inventory"][day]
    assert manifest["pos_missing"] == expected
    assert len(expected) == 1
    day, code = expected[0]
    assert code not in manifest["pos_inventory"][day]


def test_manifest_online_matches_the_database(default_company: tuple[Path, dict]) -> None:
    out, manifest = default_company
    zone = ZoneInfo(manifest["params"]["timezone"])
    expected = {day: {"order_lines": 0, "sale_lines": 0, "not_sale_lines": 0, "returns": 0, "quantity": 0,
                      "net_amount": Decimal("0")} for day in manifest["business_dates"]}
    with sqlite3.connect(out / "online_store.db") as conn:
        for placed_at, status, quantity, price, discount in conn.execute(
            "SELECT o.placed_at, o.status, i.quantity, i.unit_price, i.discount_amount "
            "FROM orders o JOIN order_items i ON i.order_id = o.order_id"
        ):
            day = expected[utc_to_day(placed_at, zone)]
            day["order_lines"] += 1
            if status in SALE_STATUSES:
                day["sale_lines"] += 1
                day["quantity"] += quantity
                day["net_amount"] += quantity * Decimal(str(price)) - Decimal(str(discount))
            else:
                day["not_sale_lines"] += 1
        for returned_at, quantity, refund in conn.execute("SELECT returned_at, quantity, refund_amount FROM returns"):
            day = expected[utc_to_day(returned_at, zone)]
            day["returns"] += 1
            day["quantity"] -= quantity
            day["net_amount"] -= Decimal(str(refund))
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products), (SELECT count(*) FROM orders)"
        ).fetchone()
    for day in expected.values():
        day["net_amount"] = f"{day['net_amount']:.2f}"
    assert manifest["online"] == expected
    assert counts == (manifest["online_customers"], manifest["products"], manifest["orders"])
    assert min(day["order_lines"] for day in expected.values()) >= 40


def test_manifest_crm_matches_the_database(default_company: tuple[Path, dict]) -> None:
    out, manifest = default_company
    with sqlite3.connect(out / "crm.db") as conn:
        rows = conn.execute("SELECT email, is_deleted FROM contacts").fetchall()
    people = {email.strip().lower() for email, _ in rows}
    assert manifest["crm"] == {
        "contacts": len(rows),
        "deleted": sum(deleted for _, deleted in rows),
        "duplicate_contacts": len(rows) - len(people),
    }


def test_pos_files_carry_every_kind_of_dirt(default_company: tuple[Path, dict], drop: dict) -> None:
    out, manifest = default_company
    root = out / "pos_drop"
    entries = [entry for stores in manifest["pos"].values() for entry in stores.values()]
    reasons = Counter()
    for entry in entries:
        reasons.update(entry["rejected"])
    assert set(reasons) == {"quantity_invalid", "price_invalid", "discount_invalid", "sold_at_invalid",
                            "payment_method_invalid", "duplicate_line", "type_invalid", "missing_value"}
    lines = sum(entry["lines"] for entry in entries)
    assert 1 / 400 < sum(reasons.values()) / lines < 1 / 100
    assert 0.001 < sum(entry["unknown_sku_lines"] for entry in entries) / lines < 0.01
    assert 0.01 < sum(entry["return_lines"] for entry in entries) / lines < 0.06

    standard = [root / e["file"] for e in entries if e["layout"] == "standard"]
    raw = {path: path.read_bytes() for path in standard}
    text = {path: (gzip.decompress(b) if path.name.endswith(".gz") else b) for path, b in raw.items()}
    assert any(path.name.endswith(".csv.gz") for path in standard)
    assert any(b.startswith(b"\xef\xbb\xbf") for b in text.values())
    assert any(b"\r\n" in b for b in text.values()) and any(b"\r\n" not in b for b in text.values())
    headers = [b.decode("utf-8-sig").splitlines()[0].split(",") for b in text.values()]
    assert any(h[:11] != list(STANDARD_COLUMNS) and [c.lower() for c in h[:11]] != list(STANDARD_COLUMNS)
               for h in headers), "some store writes its columns in another order"
    assert any(any(c.isupper() for c in "".join(h)) for h in headers)
    assert any(h == [c.lower() for c in h] for h in headers)
    assert any("firmware_version" in [c.lower() for c in h] for h in headers)
    assert any("firmware_version" not in [c.lower() for c in h] for h in headers)

    legacy = [root / e["file"] for e in entries if e["layout"] == "legacy"]
    assert legacy
    sample = legacy[0].read_bytes().decode("cp1252")
    assert sample.startswith(";".join(LEGACY_COLUMNS) + "\r\n")
    assert re.search(r";\d+,\d\d;", sample), "decimal comma"
    legacy_bytes = b"".join(path.read_bytes() for path in legacy)
    assert re.search(rb"[\x80-\xff]", legacy_bytes), "a non-ASCII Windows-1252 byte somewhere"
    with pytest.raises(UnicodeDecodeError):
        legacy_bytes.decode("utf-8")

    body = b"".join(text.values()).decode("utf-8-sig")
    assert re.search(r",[a-z]{2}-\d{6},", body), "lower-case sku"
    assert re.search(r",[A-Z]{2}\d{6},", body), "sku without its dash"
    assert re.search(r", [A-Z]{2}-\d{6} ,", body), "sku with spaces"
    with sqlite3.connect(out / "crm.db") as conn:
        cards = {card for (card,) in conn.execute("SELECT loyalty_card FROM contacts WHERE loyalty_card IS NOT NULL")}
    used = set(re.findall(r"LC\d{8}", body))
    assert used & cards and used - cards, "known and unknown loyalty cards"
    depths = {f.count("/") for f in (e["file"] for e in entries)}
    assert 0 in depths and max(depths) >= 3, "files at the root and deep in sub-folders"


def test_delivery_dirt(default_company: tuple[Path, dict], drop: dict) -> None:
    out, manifest = default_company
    root = out / "pos_drop"
    assert {entry["reason"] for entry in manifest["bad_files"]} == {"no_layout", "unknown_store", "missing_column"}
    assert any(entry["file"] == "notes.txt" for entry in manifest["bad_files"])

    (superseded,) = manifest["superseded_files"]
    winner = next(e["file"] for stores in manifest["pos"].values() for e in stores.values()
                  if e["file"].rsplit("/", 1)[-1] == superseded.rsplit("/", 1)[-1])
    assert winner != superseded
    assert (root / winner).read_bytes() != (root / superseded).read_bytes()
    assert (root / winner).stat().st_mtime > (root / superseded).stat().st_mtime

    (copy,) = manifest["duplicate_files"]
    original = next(e["file"] for stores in manifest["pos"].values() for e in stores.values()
                    if e["file"].rsplit("/", 1)[-1] == copy.rsplit("/", 1)[-1])
    assert original != copy and (root / original).read_bytes() == (root / copy).read_bytes()

    (part,) = manifest["ignored_files"]
    assert part.endswith(".part") and (root / part).stat().st_mtime == max(
        p.stat().st_mtime for p in root.rglob("*") if p.is_file())

    closed = [row for row in drop["stores"].values() if row["closed_on"]]
    assert len(closed) == 1 and manifest["business_dates"][0] < closed[0]["closed_on"] <= manifest["business_dates"][-1]
    layouts = Counter(row["pos_layout"] for row in drop["stores"].values())
    assert layouts == {"standard": 6, "legacy": 2}
    assert len({row["timezone"] for row in drop["stores"].values()}) == 4


def test_online_and_crm_dirt(default_company: tuple[Path, dict]) -> None:
    out, manifest = default_company
    start = datetime.fromisoformat(manifest["business_dates"][0])
    with sqlite3.connect(out / "online_store.db") as online, sqlite3.connect(out / "crm.db") as crm:
        statuses = Counter(s for (s,) in online.execute("SELECT status FROM orders"))
        guests = online.execute("SELECT count(*) FROM orders WHERE customer_id IS NULL AND guest_email IS NOT NULL"
                                ).fetchone()[0]
        late_cancels = online.execute(
            "SELECT count(*) FROM orders "
            "WHERE status = 'cancelled' AND julianday(updated_at) - julianday(placed_at) >= 2"
        ).fetchone()[0]
        bad_refunds = online.execute(
            "SELECT count(*) FROM returns r "
            "JOIN order_items i USING (order_id, line_no) JOIN orders o USING (order_id) "
            "WHERE r.refund_amount > r.quantity * i.unit_price - i.discount_amount * r.quantity / i.quantity + 0.001 "
            "OR r.quantity > i.quantity OR o.status != 'delivered' OR r.returned_at <= o.placed_at"
        ).fetchone()[0]
        repriced = online.execute("SELECT count(*) FROM products WHERE updated_at >= ?", (str(start),)).fetchone()[0]
        bad_products = online.execute("SELECT count(*) FROM products WHERE unit_cost >= list_price").fetchone()[0]
        warehouses = online.execute("SELECT count(DISTINCT warehouse_code) FROM inventory").fetchone()[0]
        placed = [p for (p,) in online.execute("SELECT placed_at FROM orders LIMIT 5")]
        online_emails = [e for (e,) in online.execute("SELECT email FROM customers")]
        contacts = crm.execute("SELECT email, phone, loyalty_card, loyalty_tier, created_at FROM contacts").fetchall()

    assert set(statuses) == {"pending", "paid", "shipped", "delivered", "cancelled"}
    assert statuses["delivered"] + statuses["shipped"] + statuses["paid"] > 0.8 * manifest["orders"]
    assert 0.05 < guests / manifest["orders"] < 0.15
    assert late_cancels > 0 and bad_refunds == 0 and bad_products == 0 and 2 <= warehouses <= 3
    assert repriced > 0
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", p) for p in placed), "UTC, no offset"

    crm_emails = [email for email, *_ in contacts]
    assert any(e != e.strip() for e in crm_emails) and any(e.strip() != e.strip().lower() for e in crm_emails)
    normalised_crm = {e.strip().lower() for e in crm_emails}
    shared = [e for e in online_emails if e.strip().lower() in normalised_crm]
    assert shared and any(e not in crm_emails for e in shared)
    phone_shapes = {re.sub(r"\d", "9", phone) for _, phone, *_ in contacts if phone}
    assert len(phone_shapes) >= 5
    cards = [card for _, _, card, _, _ in contacts if card]
    assert len(cards) == len(set(cards)) and all(re.fullmatch(r"LC\d{8}", c) for c in cards)
    assert {tier for *_, tier, _ in contacts if tier} == {"bronze", "silver", "gold", "platinum"}
    # Everyone was in the CRM before the period, except the few who sign up again during it.
    late = [created for *_, created in contacts if datetime.fromisoformat(created) >= start]
    assert len(late) == manifest["history"]["contacts"]["signed_up_again"] >= 1


def test_scale_smoke_keeps_memory_modest(tmp_path: Path) -> None:
    # tracemalloc slows allocation-heavy code about tenfold, hence a modest company; memory is flat in volume
    # because every store-day is written before the next is built (200 stores x 10,000 lines peaked at 77 MB RSS).
    tracemalloc.start()
    try:
        manifest = generate_company(tmp_path, stores=10, days=2, lines_per_store_day=2_000, seed=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    lines = sum(e["lines"] for stores in manifest["pos"].values() for e in stores.values())
    assert lines > 35_000
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB"


def test_mtimes_follow_the_business_date(default_company: tuple[Path, dict]) -> None:
    out, manifest = default_company
    root = out / "pos_drop"
    for day, stores in manifest["pos"].items():
        for entry in stores.values():
            received = datetime.fromtimestamp(os.stat(root / entry["file"]).st_mtime, UTC).date()
            assert date.fromisoformat(day) < received <= date.fromisoformat(day) + timedelta(days=4)


def _rows(db: Path, sql: str) -> dict:
    with sqlite3.connect(db) as conn:
        return {row[0]: row[1:] for row in conn.execute(sql)}


def test_the_company_changes_during_the_period_and_as_of_start_is_before(
    default_company: tuple[Path, dict], tmp_path: Path
) -> None:
    out, manifest = default_company
    opening = generate_company(tmp_path / "opening", as_of_start=True)
    start = manifest["business_dates"][0]
    assert opening["params"] == {**manifest["params"], "as_of_start": True}
    assert opening["business_dates"] == [] and opening["pos"] == {} and opening["online"] == {}
    assert opening["orders"] == 0 and "history" not in opening
    assert sorted(p.relative_to(tmp_path / "opening").as_posix() for p in (tmp_path / "opening").rglob("*")
                  if p.is_file()) == ["crm.db", "manifest.json", "online_store.db", "pos_drop/stores.csv"]
    with sqlite3.connect(tmp_path / "opening" / "online_store.db") as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_items) "
                            "+ (SELECT count(*) FROM returns)").fetchone() == (0,)
    history = manifest["history"]

    # The catalog: each product changes at most once, at 10:00 UTC on a day after the first (before stores open).
    sql = "SELECT sku, name, category, subcategory, list_price, unit_cost, is_active, updated_at FROM products"
    now, then = _rows(out / "online_store.db", sql), _rows(tmp_path / "opening" / "online_store.db", sql)
    assert now.keys() == then.keys()
    changed = {sku for sku in now if now[sku][:6] != then[sku][:6]}
    assert len(changed) == history["products"]["price_changed"] + history["products"]["category_moved"]
    assert sum(now[s][1] != then[s][1] for s in changed) == history["products"]["category_moved"] > 0
    assert sum(now[s][3] != then[s][3] for s in changed) == history["products"]["price_changed"] > 0
    for sku in changed:
        moment = datetime.fromisoformat(now[sku][6])
        assert str(moment.date()) > start and moment.time().hour == 10, sku
        assert datetime.fromisoformat(then[sku][6]) < datetime.fromisoformat(start)
        assert now[sku][4:6] == then[sku][4:6]  # cost and active flag stay
    assert all(now[sku] == then[sku] for sku in now.keys() - changed)

    # The CRM: contacts updated in the period each changed one thing; the people who signed up again are new.
    sql = ("SELECT contact_id, city, region, loyalty_tier, marketing_opt_in, phone, is_deleted, email, "
           "loyalty_card, created_at, updated_at FROM contacts")
    now, then = _rows(out / "crm.db", sql), _rows(tmp_path / "opening" / "crm.db", sql)
    assert then.keys() <= now.keys()
    assert len(now.keys() - then.keys()) == history["contacts"]["signed_up_again"]
    kinds = Counter()
    for contact_id, before in then.items():
        after = now[contact_id]
        diff = [name for name, a, b in zip(("city", "region", "tier", "opt_in", "phone", "deleted"), before, after,
                                           strict=False) if a != b]
        if diff:
            kinds[{"city": "moved"}.get(diff[0], diff[0])] += 1
            assert diff in (["city", "region"], ["city"], ["tier"], ["opt_in"], ["phone"], ["deleted"])
            assert after[-1] >= start > before[-1], contact_id
        else:
            assert after[7:] == before[7:]
    assert kinds == Counter({k: v for k, v in history["contacts"].items() if v and k != "signed_up_again"})
    assert {"moved", "tier"} <= set(kinds)
    opening_manifest = opening["crm"]
    assert opening_manifest["contacts"] == len(then) and opening_manifest["contacts"] < manifest["crm"]["contacts"]

    # A person who signed up again pays with the new card from the day after, never before.
    first_day = {}
    for contact_id in now.keys() - then.keys():
        email, card, created = now[contact_id][6], now[contact_id][7], now[contact_id][8]
        assert any(v[6].strip().lower() == email.strip().lower() for k, v in then.items()), "same person"
        first_day[card] = datetime.fromisoformat(created).date() + timedelta(days=1)
    used_on: dict[str, set[date]] = defaultdict(set)
    for day, stores in manifest["pos"].items():
        for entry in stores.values():
            path = out / "pos_drop" / entry["file"]
            data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
            for card in set(re.findall(rb"LC\d{8}", data)) & {c.encode() for c in first_day}:
                used_on[card.decode()].add(date.fromisoformat(day))
    assert used_on, "a new card is used at a till"
    assert all(min(days) >= first_day[card] for card, days in used_on.items())

    # The online shop: the accounts opened before the period, as they were.
    sql = "SELECT customer_id, email, first_name, last_name, phone, created_at FROM customers"
    now, then = _rows(out / "online_store.db", sql), _rows(tmp_path / "opening" / "online_store.db", sql)
    assert then == {k: v for k, v in now.items() if v[4] < start}
    assert len(then) == opening["online_customers"] < manifest["online_customers"]
