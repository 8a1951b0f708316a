"""The CRM source (``crm.db``): one ``contacts`` table, the golden record of a customer.

Dirt it carries on purpose: emails in mixed case with stray spaces, about 5% of people entered twice (same
email modulo case and spaces, another contact_id, created later), phones in many formats, a few soft-deleted
contacts.

History it carries: the CRM keeps only the current row, updated in place with ``updated_at``. About one contact
in eight is updated during the period, and each such update changes something: the customer moved to another
city, their loyalty tier went up (or down), they opted in or out of marketing, or gave a new phone number. A few
people sign up again during the period (a new card at a till, same email): a second contact that the platform
merges into the first, and they pay with the new card from the next day on. ``opening=True`` writes the table as
it stood when the period began: without those updates, sign-ups and deletions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from ._common import BATCH_ROWS, random_instant, utc_at
from .reference import Person, format_phone, messy_email
from .schema import contacts, crm_metadata
from .target import open_target

TIERS = ("bronze", "silver", "gold", "platinum")
TIER_WEIGHTS = (55, 25, 15, 5)
CHANGE_KINDS = ("moved", "tier", "opt_in", "phone")
CHANGE_WEIGHTS_CARD = (35, 35, 15, 15)
CHANGE_WEIGHTS_NO_CARD = (50, 0, 25, 25)
SIGN_UP_AGAIN_RATE = 0.01


@dataclass(frozen=True, slots=True)
class CrmSummary:
    """What the POS generator needs from the CRM, and the manifest's ``crm`` counts and ``history``."""

    cards: list[str]
    unknown_cards: list[str]
    contacts: int
    deleted: int
    duplicate_contacts: int
    card_switches: dict[str, tuple[date, str]] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)


def write_crm(target: Path | str, rng: random.Random, people: list[Person], duplicates: int, start: date,
              now: datetime, *, history: random.Random | None = None,
              cities: list[tuple[str, str]] | None = None, opening: bool = False) -> CrmSummary:
    """Create ``crm.db`` (or the CRM at a server's URL) with one contact per person plus ``duplicates`` second
    contacts of some people; ``history`` (its own random stream) draws what changes during the period, ``cities``
    are where people move to. ``opening``: the contacts as they stood at the start of the period."""
    period_start = utc_at(start)
    rows: list[dict] = []
    for person in people:
        created = random_instant(rng, datetime(2018, 1, 1), period_start - timedelta(days=1))
        rows.append(_contact(rng, person, created, period_start, now))
    # A person is entered twice when they sign up again (new card at a till, a web form): always later.
    early = [i for i, row in enumerate(rows) if row["created_at"] < period_start - timedelta(days=30)]
    for i in rng.sample(early, min(duplicates, len(early))):
        created = random_instant(rng, rows[i]["created_at"] + timedelta(days=1), period_start)
        rows.append(_contact(rng, people[i], created, period_start, now))

    card_numbers = rng.sample(range(10_000_000, 100_000_000), len(rows) + 5)
    unknown_cards = [f"LC{n}" for n in card_numbers[len(rows):]]
    rows.sort(key=lambda row: (row["created_at"], row["email"]))
    deleted = set(rng.sample(range(len(rows)), max(1, len(rows) // 150)))
    cards = []
    for n, row in enumerate(rows):
        row["contact_id"] = f"C-{n + 1:06d}"
        # Some contacts came from a web form or a campaign and never got a card.
        if rng.random() < 0.9:
            row["loyalty_card"] = f"LC{card_numbers[n]}"
            row["loyalty_tier"] = rng.choices(TIERS, TIER_WEIGHTS)[0]
            cards.append(row["loyalty_card"])
        if n in deleted:
            before = row["updated_at"]
            row["is_deleted"] = True
            row["updated_at"] = max(row["updated_at"], random_instant(rng, row["created_at"], now))
            if row["updated_at"] >= period_start:
                row["_before"] = {"is_deleted": False,
                                  "updated_at": before if before < period_start else row["created_at"]}

    changes: dict[str, int] = {}
    switches: dict[str, tuple[date, str]] = {}
    if history is not None:
        changes["deleted"] = sum(1 for row in rows if row["is_deleted"] and "_before" in row)
        for row in rows:
            if row["is_deleted"] or row["updated_at"] < period_start:
                continue
            kind = _change(history, row, cities or [])
            changes[kind] = changes.get(kind, 0) + 1
        used = set(card_numbers)
        signed_up = _sign_ups_again(history, rows, period_start, now, used)
        for old, new in signed_up:
            switches[old["loyalty_card"]] = (new["created_at"].date() + timedelta(days=1), new["loyalty_card"])
        changes["signed_up_again"] = len(signed_up)

    if opening:
        rows = [{**row, **row.get("_before", {})} for row in rows if row["created_at"] < period_start]
    for row in rows:
        row.pop("_before", None)

    engine = open_target(target, crm_metadata, "CRM")
    try:
        with engine.begin() as conn:
            for offset in range(0, len(rows), BATCH_ROWS):
                conn.execute(contacts.insert(), rows[offset:offset + BATCH_ROWS])
    finally:
        engine.dispose()
    n_deleted = sum(1 for row in rows if row["is_deleted"])
    emails = {row["email"].strip().lower() for row in rows}
    return CrmSummary(cards, unknown_cards, len(rows), n_deleted, len(rows) - len(emails), switches, changes)


def _change(rng: random.Random, row: dict, cities: list[tuple[str, str]]) -> str:
    """What a contact's update in the period changed; the row before it goes to ``row["_before"]``."""
    before: dict = {"updated_at": row["created_at"]}
    weights = CHANGE_WEIGHTS_CARD if row["loyalty_tier"] else CHANGE_WEIGHTS_NO_CARD
    kind = rng.choices(CHANGE_KINDS, weights)[0]
    elsewhere = [(city, region) for city, region in cities if city != row["city"]]
    if kind == "moved" and not elsewhere:
        kind = "opt_in"
    if kind == "moved":
        before["city"], before["region"] = row["city"], row["region"]
        row["city"], row["region"] = rng.choice(elsewhere)
    elif kind == "tier":
        before["loyalty_tier"] = row["loyalty_tier"]
        rank = TIERS.index(row["loyalty_tier"])
        down = rank == len(TIERS) - 1 or (rank > 0 and rng.random() < 0.2)
        row["loyalty_tier"] = TIERS[rank - 1 if down else rank + 1]
    elif kind == "opt_in":
        before["marketing_opt_in"] = row["marketing_opt_in"]
        row["marketing_opt_in"] = not row["marketing_opt_in"]
    else:
        before["phone"] = row["phone"]
        digits = f"{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randrange(10_000):04d}"
        row["phone"] = format_phone(rng, digits)
    row["_before"] = before
    return kind


def _sign_ups_again(rng: random.Random, rows: list[dict], period_start: datetime, now: datetime,
                    used: set[int]) -> list[tuple[dict, dict]]:
    """People who sign up again at a till during the period: a new contact (same email, typed anew), a new card,
    the tier carried over. Appended to ``rows`` with the next contact ids; returns (old, new) pairs."""
    by_email: dict[str, int] = {}
    for row in rows:
        key = row["email"].strip().lower()
        by_email[key] = by_email.get(key, 0) + 1
    candidates = [row for row in rows if row["loyalty_card"] and not row["is_deleted"]
                  and row["updated_at"] < period_start and by_email[row["email"].strip().lower()] == 1]
    count = min(len(candidates), max(1, round(len(rows) * SIGN_UP_AGAIN_RATE)))
    latest = now - timedelta(hours=12)
    if count == 0 or latest <= period_start:
        return []
    pairs = []
    for old in rng.sample(candidates, count):
        number = rng.randrange(10_000_000, 100_000_000)
        while number in used:
            number = rng.randrange(10_000_000, 100_000_000)
        used.add(number)
        created = random_instant(rng, period_start, latest)
        new = {**old, "contact_id": None, "email": messy_email(rng, old["email"].strip().lower()),
               "loyalty_card": f"LC{number}", "marketing_opt_in": rng.random() < 0.6,
               "created_at": created, "updated_at": created, "is_deleted": False}
        pairs.append((old, new))
    for n, (_, new) in enumerate(sorted(pairs, key=lambda pair: pair[1]["created_at"]), start=len(rows) + 1):
        new["contact_id"] = f"C-{n:06d}"
    rows.extend(new for _, new in sorted(pairs, key=lambda pair: pair[1]["contact_id"]))
    return pairs


def _contact(rng: random.Random, person: Person, created: datetime, period_start: datetime,
             now: datetime) -> dict:
    if rng.random() < 0.12:
        updated = random_instant(rng, period_start, now)
    else:
        updated = random_instant(rng, created, period_start)
    return {
        "contact_id": None,
        "email": messy_email(rng, person.email),
        "phone": None if rng.random() < 0.05 else format_phone(rng, person.phone_digits),
        "first_name": person.first_name,
        "last_name": person.last_name,
        "birth_date": person.birth_date,
        "city": person.city,
        "region": person.region,
        "country": "US",
        "loyalty_card": None,
        "loyalty_tier": None,
        "marketing_opt_in": rng.random() < 0.6,
        "created_at": created,
        "updated_at": updated,
        "is_deleted": False,
    }
