"""``generate_company``: the sample company in all three sources, plus a manifest of what a loader must find."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ._common import epoch, local_midnight_utc, substream, write_file
from .crm import write_crm
from .drop import write_pos_drop, write_stores_csv
from .online import write_online
from .pos import SalesContext
from .reference import make_people, make_products, make_stores, make_unknown_skus, move_categories

OUTPUTS = ("pos_drop", "online_store.db", "crm.db", "manifest.json")


def generate_company(
    out: Path,
    *,
    stores: int = 8,
    days: int = 14,
    start: date = date(2025, 3, 3),
    lines_per_store_day: int = 200,
    seed: int = 42,
    timezone: str = "America/New_York",
    progress: Callable[[str], None] | None = None,
    online_store_url: str | None = None,
    crm_url: str | None = None,
    as_of_start: bool = False,
) -> dict:
    """Generate a realistic, dirty, deterministic retail company under ``out`` and return its manifest.

    Writes ``out/pos_drop/`` (``stores.csv``, sales and stock files at any depth), ``out/online_store.db``,
    ``out/crm.db`` and ``out/manifest.json``, replacing earlier outputs. The same arguments give the same bytes
    and file modification times. The manifest states, per store-day and per online business day, what a
    correct loader accepts, rejects (and why) and sums to; its layout is documented in the package docstring.
    ``online_store_url`` and ``crm_url`` put those sources on a server instead (``target.py``); the data and the
    manifest are the same.

    The company changes during the period, as a real one does, and its sources keep only the current state with
    ``updated_at``: prices change (some names too), one subcategory moves to another category, contacts move,
    change loyalty tier, opt in or out, give a new phone, a few sign up again (a duplicate the platform merges)
    or are deleted (manifest ``history``). A warehouse loaded once sees only the end state; ``as_of_start``
    writes the sources as they stood when the period began (the catalog, contacts and shop accounts before those
    changes, no sales yet), so loading that first and then the full company makes every change a version valid
    from its ``updated_at``.

    Memory stays flat with volume: each POS file is written before the next is built and database rows are
    inserted in batches.
    """
    if stores < 1 or days < 1 or lines_per_store_day < 1:
        raise ValueError("stores, days and lines_per_store_day must be at least 1")
    report = progress or (lambda _message: None)
    zone = ZoneInfo(timezone)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_outputs(out)

    dates = [start + timedelta(days=i) for i in range(days)]
    # The moment the sources are extracted: the end of the last business day in the reporting timezone.
    now = local_midnight_utc(dates[-1] + timedelta(days=1), zone)
    n_products = max(300, stores * 20)
    store_list = make_stores(substream(seed, "stores"), stores, start, days, n_products)
    catalog = make_products(substream(seed, "products"), n_products, start, days)
    moved = move_categories(substream(seed, "history", "catalog"), catalog, start, days)
    popularity = substream(seed, "popularity")
    active = [i for i, product in enumerate(catalog) if product.is_active]
    popularity.shuffle(active)
    # Long tail: a few products sell often, most rarely.
    cum_weights = list(itertools.accumulate(1 / (rank + 8) for rank in range(len(active))))
    unknown_skus = make_unknown_skus(substream(seed, "unknown_skus"), {p.sku for p in catalog})

    n_contacts = max(500, stores * 60)
    n_duplicates = round(n_contacts * 0.05)
    n_crm_people = n_contacts - n_duplicates
    n_customers = max(400, stores * 50)
    n_online_only = n_customers - n_customers * 35 // 100
    people = make_people(substream(seed, "people"), n_crm_people + n_online_only, store_list)

    report("CRM contacts")
    crm = write_crm(crm_url or out / "crm.db", substream(seed, "crm"), people[:n_crm_people], n_duplicates, start, now,
                    history=substream(seed, "history", "crm"), cities=[(s.city, s.region) for s in store_list],
                    opening=as_of_start)
    report("online shop")
    online = write_online(
        online_store_url or out / "online_store.db",
        lambda *parts: substream(seed, *parts),
        catalog,
        active,
        cum_weights,
        people[:n_crm_people],
        people[n_crm_people:],
        n_customers,
        dates,
        zone,
        now,
        max(40, lines_per_store_day * stores // 4),
        report,
        opening=as_of_start,
    )
    if as_of_start:
        # Before the period: head office's store list (a closure in the period not yet recorded), no sales yet.
        write_stores_csv(out / "pos_drop", [replace(s, closed_on=None) for s in store_list], dates)
        drop = {"pos": {}, "pos_missing": [], "pos_inventory": {}, "bad_files": [], "ignored_files": [],
                "duplicate_files": [], "superseded_files": []}
    else:
        ctx = SalesContext(catalog, active, cum_weights, unknown_skus, crm.cards, crm.unknown_cards,
                           crm.card_switches)
        drop = write_pos_drop(out / "pos_drop", seed, ctx, store_list, dates, lines_per_store_day, report)

    manifest = {
        "params": {
            "stores": stores,
            "days": days,
            "start": start.isoformat(),
            "lines_per_store_day": lines_per_store_day,
            "seed": seed,
            "timezone": timezone,
        },
        "business_dates": [] if as_of_start else [day.isoformat() for day in dates],
        **drop,
        "online": online.by_day,
        "crm": {"contacts": crm.contacts, "deleted": crm.deleted, "duplicate_contacts": crm.duplicate_contacts},
        "online_customers": online.customers,
        "products": len(catalog),
        "orders": online.orders,
    }
    if as_of_start:
        manifest["params"]["as_of_start"] = True
    else:
        repriced = sum(1 for p in catalog if p.changed_at is not None) - moved
        manifest["history"] = {"products": {"price_changed": repriced, "category_moved": moved},
                               "contacts": dict(sorted(crm.changes.items()))}
    extracted = epoch(local_midnight_utc(dates[0], zone) if as_of_start else now)
    for database, url in (("online_store.db", online_store_url), ("crm.db", crm_url)):
        if url is None:
            os.utime(out / database, (extracted, extracted))
    write_file(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode("utf-8"), extracted)
    report("done")
    return manifest


def _remove_outputs(out: Path) -> None:
    for name in OUTPUTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for leftover in ("online_store.db-journal", "crm.db-journal"):
        (out / leftover).unlink(missing_ok=True)
