"""The POS drop folder: stores.csv, one sales and one stock file per open store-day, and delivery dirt.

Delivery dirt (SPEC 2.5), each on its own store-day: a corrected re-send (older and newer version of one file
name in two sub-folders), an identical copy in another sub-folder, a store-day with no files at all, an upload
still in progress (``.part``), and whole files a loader must reject (no layout, unknown store, missing column).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

from ._common import epoch, substream, utc_at, write_file
from .pos import SalesContext, build_store_day, encode_sales_file, encode_stock_file
from .reference import STANDARD_COLUMNS, Store

STORES_HEADER = ("store_code", "store_name", "city", "region", "country", "timezone", "pos_layout", "opened_on",
                 "closed_on")
UNKNOWN_STORE = "X999"
StoreDayKey = tuple[date, str]


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """Which store-day carries which delivery dirt (``None`` when the company is too small for it)."""

    resent: StoreDayKey | None = None
    copied: StoreDayKey | None = None
    uploading: StoreDayKey | None = None
    no_layout: StoreDayKey | None = None
    missing_column: StoreDayKey | None = None
    missing: StoreDayKey | None = None


def plan_deliveries(rng: random.Random, stores: Sequence[Store], dates: Sequence[date]) -> DeliveryPlan:
    """Pick a distinct store-day for each kind of delivery dirt.

    Dirt that loses a store-day's data (a missing file, a file rejected whole) is only planned when enough
    store-days remain that the company still has data to load.
    """
    candidates = [(day, store) for day in dates for store in stores if store.is_open(day)]
    taken: set[StoreDayKey] = set()

    def pick(accept: Callable[[date, Store], bool]) -> StoreDayKey | None:
        options = [(d, s.code) for d, s in candidates if (d, s.code) not in taken and accept(d, s)]
        if not options:
            return None
        choice = rng.choice(options)
        taken.add(choice)
        return choice

    has_legacy = any(s.layout == "legacy" for s in stores)
    resent = pick(lambda d, s: s.layout == "standard" and (d < dates[-1] or len(dates) == 1))
    copied = pick(lambda d, s: s.layout == "legacy" or not has_legacy)
    uploading = pick(lambda d, s: True)
    no_layout = pick(lambda d, s: s.layout == "standard")
    enough = len(candidates) >= 8
    missing_column = pick(lambda d, s: s.layout == "standard") if enough else None
    missing = pick(lambda d, s: True) if enough else None
    return DeliveryPlan(resent, copied, uploading, no_layout, missing_column, missing)


def _path(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _line_count(rng: random.Random, lines_per_store_day: int, day: date) -> int:
    weekday = (1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 0.9)[day.weekday()]
    return max(1, round(lines_per_store_day * weekday * rng.uniform(0.9, 1.1)))


def _arrival(rng: random.Random, store: Store, day: date) -> int:
    """Upload time of a store-day's files: the next morning (UTC), a few days late now and then."""
    late = rng.choice((1, 2)) if rng.random() < 0.04 else 0
    return epoch(utc_at(day + timedelta(days=1 + late), 7)) + store.index * 47 + rng.randrange(3600)


def write_pos_drop(
    root: Path,
    seed: int,
    ctx: SalesContext,
    stores: Sequence[Store],
    dates: Sequence[date],
    lines_per_store_day: int,
    progress: Callable[[str], None],
) -> dict:
    """Write the drop folder under ``root`` and return the manifest's POS sections."""
    plan = plan_deliveries(substream(seed, "deliveries"), stores, dates)
    # Everything else has arrived by then: the in-progress upload is the newest file in the folder.
    drop_now = epoch(utc_at(dates[-1] + timedelta(days=4)))
    write_stores_csv(root, stores, dates)

    pos: dict[str, dict] = {}
    inventory: dict[str, dict] = {}
    missing: list[list[str]] = []
    bad_files: list[dict] = []
    ignored: list[str] = []
    duplicates: list[str] = []
    superseded: list[str] = []
    on_hand: dict[str, dict[int, int]] = {store.code: {} for store in stores}

    for day in dates:
        day_iso = day.isoformat()
        pos[day_iso] = {}
        inventory[day_iso] = {}
        progress(f"POS files {day_iso}")
        for store in stores:
            if not store.is_open(day):
                continue
            key = (day, store.code)
            if key == plan.missing:
                missing.append([day_iso, store.code])
                continue
            rng = substream(seed, "pos", store.code, day_iso)
            store_day = build_store_day(rng, ctx, store, day, _line_count(rng, lines_per_store_day, day))
            folder = store.folder_on(day)
            name = store.sales_name(day)
            path = _path(folder, name)
            arrival = _arrival(rng, store, day)
            if key == plan.missing_column:
                data = encode_sales_file(store, day, store_day.rows, drop_column="quantity")
                write_file(root / path, data, arrival)
                bad_files.append({"file": path, "reason": "missing_column", "lines": len(store_day.rows)})
            else:
                data = encode_sales_file(store, day, store_day.rows)
                if key == plan.resent:
                    # The first upload was cut short; the store re-sends the full day two days later.
                    old_rows = store_day.rows[: max(1, len(store_day.rows) * 85 // 100)]
                    write_file(root / path, encode_sales_file(store, day, old_rows), arrival)
                    superseded.append(path)
                    path = _path(folder, "resend", name)
                    write_file(root / path, data, arrival + 2 * 86_400 + 3 * 3600)
                else:
                    write_file(root / path, data, arrival)
                if key == plan.copied:
                    copy = _path("retry", store.code, name)
                    write_file(root / copy, data, arrival + 3600)
                    duplicates.append(copy)
                if key == plan.uploading:
                    part = path + ".part"
                    write_file(root / part, data[: len(data) // 2], drop_now)
                    ignored.append(part)
                pos[day_iso][store.code] = {"file": path, "layout": store.layout, **store_day.stats}
            if key == plan.no_layout:
                bad_files.append(_write_no_layout_copy(root, seed, ctx, store, day, arrival + 600))
            stock, counted = encode_stock_file(store, day, rng, ctx.catalog, on_hand[store.code])
            write_file(root / _path(folder, f"stock_{store.code}_{day:%Y%m%d}.csv"), stock, arrival + 30)
            inventory[day_iso][store.code] = counted

    bad_files.append(_write_unknown_store(root, seed, ctx, stores, dates))
    bad_files.append(_write_notes(root, stores, dates))
    return {
        "pos": pos,
        "pos_missing": missing,
        "pos_inventory": inventory,
        "bad_files": sorted(bad_files, key=lambda entry: entry["file"]),
        "ignored_files": sorted(ignored),
        "duplicate_files": sorted(duplicates),
        "superseded_files": sorted(superseded),
    }


def write_stores_csv(root: Path, stores: Sequence[Store], dates: Sequence[date]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STORES_HEADER)
    writer.writerows(store.stores_csv_row() for store in stores)
    closings = [store.closed_on for store in stores if store.closed_on is not None]
    # Head office last edited the file when it recorded the closure (or just before the period).
    edited = max(closings) if closings else dates[0] - timedelta(days=1)
    write_file(root / "stores.csv", buffer.getvalue().encode("utf-8"), epoch(utc_at(edited, 14)))


def _write_no_layout_copy(root: Path, seed: int, ctx: SalesContext, store: Store, day: date, mtime: int) -> dict:
    """A manager's hand export of part of the day, named with a dashed date that no layout matches."""
    rng = substream(seed, "pos", "no_layout")
    store = dataclasses.replace(store, gzip=False)
    store_day = build_store_day(rng, ctx, store, day, rng.randint(15, 30), dirty=False)
    path = _path(store.folder_on(day), f"sales_{store.code}_{day:%Y-%m-%d}.csv")
    write_file(root / path, encode_sales_file(store, day, store_day.rows), mtime)
    return {"file": path, "reason": "no_layout", "lines": len(store_day.rows)}


def _write_unknown_store(root: Path, seed: int, ctx: SalesContext, stores: Sequence[Store],
                         dates: Sequence[date]) -> dict:
    """A file from a store code head office has not added to stores.csv yet."""
    rng = substream(seed, "pos", UNKNOWN_STORE)
    template = next(s for s in stores if s.layout == "standard")
    store = dataclasses.replace(
        template, code=UNKNOWN_STORE, gzip=False, bom=False, crlf=False, firmware_from=None,
        column_order=tuple(range(len(STANDARD_COLUMNS))), header_case="lower",
    )
    day = dates[min(1, len(dates) - 1)]
    store_day = build_store_day(rng, ctx, store, day, rng.randint(20, 40), dirty=False)
    path = _path(template.region, UNKNOWN_STORE, f"sales_{UNKNOWN_STORE}_{day:%Y%m%d}.csv")
    write_file(root / path, encode_sales_file(store, day, store_day.rows), _arrival(rng, template, day))
    return {"file": path, "reason": "unknown_store", "lines": len(store_day.rows)}


def _write_notes(root: Path, stores: Sequence[Store], dates: Sequence[date]) -> dict:
    """A note a store manager dropped next to the data; ``lines`` counts the lines after the first."""
    store = stores[-1]
    day = dates[len(dates) // 2]
    text = (
        f"Upload notes, store {store.code}\n"
        f"Register {store.registers[-1]} was offline 14:00-15:30 on {day.isoformat()}; sales keyed on "
        f"{store.registers[0]}.\n"
        "Stock count redone the next morning.\n"
    )
    write_file(root / "notes.txt", text.encode("utf-8"), epoch(utc_at(day + timedelta(days=1), 15)))
    return {"file": "notes.txt", "reason": "no_layout", "lines": text.count("\n") - 1}
