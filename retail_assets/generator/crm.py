"""The CRM source (``crm.db``): one ``contacts`` table, the golden record of a customer.

Dirt it carries on purpose: emails in mixed case with stray spaces, about 5% of people entered twice (same
email modulo case and spaces, another contact_id, created later), phones in many formats, a few soft-deleted
contacts and rows updated in place during the period.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ._common import BATCH_ROWS, random_instant, utc_at
from .reference import Person, format_phone, messy_email
from .schema import contacts, crm_metadata
from .target import open_target

TIERS = ("bronze", "silver", "gold", "platinum")
TIER_WEIGHTS = (55, 25, 15, 5)


@dataclass(frozen=True, slots=True)
class CrmSummary:
    """What the POS generator needs from the CRM, and the manifest's ``crm`` counts."""

    cards: list[str]
    unknown_cards: list[str]
    contacts: int
    deleted: int
    duplicate_contacts: int


def write_crm(target: Path | str, rng: random.Random, people: list[Person], duplicates: int, start: date,
              now: datetime) -> CrmSummary:
    """Create ``crm.db`` (or the CRM at a server's URL) with one contact per person plus ``duplicates`` second
    contacts of some people."""
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
    duplicate_count = len(rows) - len(people)

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
            row["is_deleted"] = True
            row["updated_at"] = max(row["updated_at"], random_instant(rng, row["created_at"], now))

    engine = open_target(target, crm_metadata, "CRM")
    try:
        with engine.begin() as conn:
            for offset in range(0, len(rows), BATCH_ROWS):
                conn.execute(contacts.insert(), rows[offset:offset + BATCH_ROWS])
    finally:
        engine.dispose()
    return CrmSummary(cards, unknown_cards, len(rows), len(deleted), duplicate_count)


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
