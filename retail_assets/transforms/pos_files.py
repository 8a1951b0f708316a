"""Which POS file books a store-day: pure rules over the files of one business day and what is already booked.

A store-day (for a layout whose files carry many stores: the layout's whole day) is a *unit*. Per unit, the
different contents present are tried newest first: a content refused as a whole (undecodable, unparseable, a
required column missing, too many bad lines, a corrupt archive) never replaces anything and the next older one is
tried; the first acceptable one replaces the unit's booked lines, unless it would remove more than
``RETAIL_RESEND_HOLD_SHARE`` of them, when it is held for an operator. A unit with no acceptable file keeps what
was booked: files that were archived or a share that is gone erase nothing. Withdrawing a unit is an operator's act
(the run tag ``WITHDRAW_TAG``), and so is applying a held re-send (``ACCEPT_TAG``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from retail_assets.resources.pos_drop import DropFile

ACCEPT_TAG = "retail/accept_held"
WITHDRAW_TAG = "retail/withdraw"
ALL_UNITS = "*"
# Ledger statuses that stand for lines in the warehouse, or for a decision that outlives the files.
BOOKED = "loaded"
WITHDRAWN = "withdrawn"
HELD = "held"


@dataclass
class Content:
    """One distinct content of a unit: its copies, earliest first (the first is the one that counts)."""

    content_hash: str
    copies: list[DropFile]

    @property
    def first(self) -> DropFile:
        return self.copies[0]

    @property
    def latest(self) -> DropFile:
        return self.copies[-1]


def contents_by_unit(files: Iterable[DropFile], hashes: Mapping[str, str]) -> dict[str | None, list[Content]]:
    """unit -> its distinct contents, the one delivered last first (identical bytes count once: a retry, a copy
    in another folder); a unit is the store code of the files' names, None for files that carry a store column."""
    by_unit: dict[str | None, dict[str, list[DropFile]]] = defaultdict(dict)
    for f in sorted(files, key=lambda f: (f.mtime, f.path)):
        by_unit[f.store_code].setdefault(hashes[f.path], []).append(f)
    return {unit: sorted((Content(h, copies) for h, copies in contents.items()),
                         key=lambda c: (c.latest.mtime, c.latest.path), reverse=True)
            for unit, contents in by_unit.items()}


def unit_set(tag: str | None) -> frozenset[str]:
    """The units a run tag names: store codes separated by commas, or ``*`` for every unit of the day."""
    return frozenset(part.strip() for part in (tag or "").split(",") if part.strip())


def names(units: frozenset[str], unit: str | None) -> bool:
    return ALL_UNITS in units or (unit is not None and unit in units)


def hold_reason(unit: str | None, day: str, path: str, rows: int, booked_rows: int, share: float,
                accepted: bool) -> str | None:
    """Why a re-send is held (None: it may replace what is booked): it would remove more than ``share`` of the
    unit's booked lines and no operator accepted it."""
    if accepted or booked_rows == 0 or booked_rows - rows <= share * booked_rows:
        return None
    who = f"store {unit}" if unit else "the stores of this layout"
    return (f"{path} would replace the {booked_rows} booked line(s) of {who} on {day} with {rows} (more than "
            f"{share:.0%} would go; a truncated or empty export?). The day keeps its booked lines. To apply it, run "
            f"the day with tag {ACCEPT_TAG}={unit or ALL_UNITS} (retail-etl accept --date {day} --store "
            f"{unit or ALL_UNITS}); to keep what is booked, re-send the complete file")


@dataclass
class DayPlan:
    """What a day's load did to what was booked, filled while ``iter_day`` runs."""

    carried: list[dict[str, object]] = field(default_factory=list)  # ledger rows kept as they were booked
    replaced: list[dict[str, object]] = field(default_factory=list)  # booked ledger rows whose lines go
    missing: list[str] = field(default_factory=list)  # booked files no longer in the drop folder, lines kept

    def kept_pairs(self) -> list[tuple[str, str]]:
        """(file, run) of the booked files whose lines and rejections stay."""
        return [(str(e["path"]), str(e["run_id"])) for e in self.carried if e["status"] == BOOKED]

    def replaced_pairs(self) -> list[tuple[str, str]]:
        return [(str(e["path"]), str(e["run_id"])) for e in self.replaced]
