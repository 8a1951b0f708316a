"""What one tick of the POS drop sensor decides, as pure functions of a folder scan, a cursor and the ledger.

A file is keyed by ``(path, size, mtime)``, so unchanged files are never read. Per business date the cursor keeps
a fingerprint of those keys as they were when the date was last settled; a tick looks closer only at dates whose
fingerprint moved (or that still wait for a file to settle). For those it asks the warehouse ledger which files
were loaded, hashes only the files the ledger and the cursor do not know, and requests a run for the date when
some content is new. Identical bytes (a retry, a copy in another folder) are not new; a corrected re-send is.

Stability: a file whose mtime is younger than the settle time, or whose (size, mtime) changed since the previous
tick, is still being written. A date waits until all its files are stable, so one run loads the whole delivery.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from retail_assets.resources.pos_drop import DropFile
from retail_assets.resources.urls import WarehouseBusy

FileKey = tuple[str, int, float]
CURSOR_VERSION = 1
INFLIGHT_MAX_AGE_SECONDS = 2 * 86_400
# Requested files remembered one by one until the ledger confirms them. A normal day is a few hundred files; a
# first tick over years of history would be the whole folder (megabytes of cursor on every tick), so beyond this
# the oldest requests are forgotten: their dates' fingerprints still stop them from being requested again.
INFLIGHT_MAX_FILES = 2_000
HASH_CHARS = 32  # of the SHA-256 hex digest kept in the cursor: 128 bits tell contents apart


def _mtime(value: float) -> float:
    return float(value)  # exact: os.stat, JSON (repr) and a DOUBLE column all keep every bit


def file_key(f: DropFile) -> FileKey:
    return f.path, f.size, float(f.mtime)


def fingerprint(keys: Iterable[FileKey]) -> str:
    """SHA-256 over the sorted (path, size, mtime) keys: equal exactly when the same files are there unchanged."""
    text = "\n".join(f"{path}\0{size}\0{mtime!r}" for path, size, mtime in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class InFlight:
    """A file whose content a run was requested for, not yet confirmed by the ledger."""

    size: int
    mtime: float
    content_hash: str
    day: str
    requested_at: float


class LedgerEntry(NamedTuple):
    """A row of pos_file_ledger: how a file was seen and treated by the load of its business date."""

    path: str
    size: int
    mtime: float
    content_hash: str | None
    status: str


@dataclass
class DropCursor:
    """The sensor's memory, kept small: a fingerprint per date, files still settling, requests not yet loaded."""

    days: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[int, float]] = field(default_factory=dict)
    inflight: dict[str, InFlight] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> DropCursor:
        if not text:
            return cls()
        raw = json.loads(text)
        if raw.get("v") != CURSOR_VERSION:
            return cls()
        return cls(
            days=dict(raw.get("d", {})),
            pending={p: (int(s), float(m)) for p, (s, m) in raw.get("p", {}).items()},
            inflight={p: InFlight(int(v[0]), float(v[1]), v[2], v[3], float(v[4]))
                      for p, v in raw.get("f", {}).items()},
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "d": dict(sorted(self.days.items())),
                "p": {p: [s, m] for p, (s, m) in sorted(self.pending.items())},
                "f": {p: [i.size, i.mtime, i.content_hash, i.day, round(i.requested_at, 3)]
                      for p, i in sorted(self.inflight.items())},
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class DayRequest:
    day: date
    run_key: str
    new_files: tuple[str, ...]
    files: int


@dataclass
class TickPlan:
    requests: list[DayRequest]
    cursor: DropCursor
    waiting: dict[str, list[str]] = field(default_factory=dict)  # date -> files still being written
    duplicates: list[str] = field(default_factory=list)  # new paths whose bytes were already loaded or requested
    out_of_range: list[str] = field(default_factory=list)  # dated outside the partitions
    deferred: list[str] = field(default_factory=list)  # settled dates left for the next tick
    ledger_unavailable: bool = False  # why they were left: the ledger could not be read (else the hash budget)


def is_stable(f: DropFile, previous: dict[str, tuple[int, float]], now: float, settle_seconds: float) -> bool:
    if f.mtime > now - settle_seconds:
        return False
    seen = previous.get(f.path)
    return seen is None or seen == (int(f.size), _mtime(f.mtime))


def day_run_key(day: date, keys: Iterable[FileKey]) -> str:
    return f"pos:{day.isoformat()}:{fingerprint(keys)[:24]}"


LedgerReader = Callable[[Sequence[date]], dict[date, list[LedgerEntry]]]


def plan_tick(
    files: Sequence[DropFile],
    cursor: DropCursor,
    *,
    now: float,
    settle_seconds: float,
    first_day: date,
    last_day: date,
    read_ledger: LedgerReader | None,
    content_hash: Callable[[str], str],
    budget_seconds: float | None = None,
) -> TickPlan:
    """Which business dates to load now, and the cursor after this tick.

    ``read_ledger`` None (or raising WarehouseBusy) means the warehouse cannot be read now: dates that settled
    are left for the next tick. ``content_hash`` hashes a file the way the loader does (FileNotFoundError: the
    file went away since the scan). Once ``budget_seconds`` are spent hashing, the remaining dates wait for the
    next tick, so a first tick over years of files stays within the sensor's time limit.
    """
    started = time.monotonic()
    plan = TickPlan(requests=[], cursor=DropCursor(days={}, pending={}, inflight={}))
    by_day: dict[date, list[DropFile]] = defaultdict(list)
    for f in files:
        if f.layout is None or f.business_date is None:
            continue
        if not first_day <= f.business_date <= last_day:
            plan.out_of_range.append(f.path)
            continue
        by_day[f.business_date].append(f)

    present = {f.path for f in files}
    days = {iso: fp for iso, fp in cursor.days.items() if date.fromisoformat(iso) in by_day}
    inflight = {p: i for p, i in cursor.inflight.items()
                if p in present and i.requested_at >= now - INFLIGHT_MAX_AGE_SECONDS}
    pending: dict[str, tuple[int, float]] = {}

    candidates: list[tuple[date, list[DropFile], str]] = []
    for day in sorted(by_day):
        group = by_day[day]
        iso = day.isoformat()
        fp = fingerprint(file_key(f) for f in group)
        if days.get(iso) == fp and not any(f.path in cursor.pending for f in group):
            continue
        unstable = [f for f in group if not is_stable(f, cursor.pending, now, settle_seconds)]
        if unstable:
            for f in unstable:
                pending[f.path] = (int(f.size), _mtime(f.mtime))
            plan.waiting[iso] = sorted(f.path for f in unstable)
            continue
        candidates.append((day, group, fp))

    ledger: dict[date, list[LedgerEntry]] | None = None
    if candidates:
        wanted = sorted({d for d, _, _ in candidates} | {date.fromisoformat(i.day) for i in inflight.values()})
        try:
            ledger = read_ledger(wanted) if read_ledger is not None else None
        except WarehouseBusy:
            ledger = None
    if ledger is None:
        plan.deferred = [d.isoformat() for d, _, _ in candidates]
        plan.ledger_unavailable = bool(candidates)
        candidates = []
    else:
        confirmed: dict[str, set] = {}
        for path, entry in list(inflight.items()):
            if entry.day not in confirmed:
                rows = ledger.get(date.fromisoformat(entry.day), [])
                confirmed[entry.day] = ({(e.path, int(e.size), _mtime(e.mtime)) for e in rows}
                                        | {(e.path, (e.content_hash or "")[:HASH_CHARS]) for e in rows})
            if {(path, entry.size, entry.mtime), (path, entry.content_hash)} & confirmed[entry.day]:
                del inflight[path]

    inflight_by_day: dict[str, list[tuple[str, InFlight]]] = defaultdict(list)
    for path, entry in inflight.items():
        inflight_by_day[entry.day].append((path, entry))

    for day, group, fp in candidates:
        iso = day.isoformat()
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            plan.deferred.append(iso)
            continue
        entries = ledger.get(day, []) if ledger else []
        known = {(e.path, int(e.size), _mtime(e.mtime)) for e in entries}
        known |= {(p, i.size, i.mtime) for p, i in inflight_by_day[iso]}
        # The same bytes at the same path as the ledger has them: that file, unchanged (mtimes read back from a
        # warehouse may have lost precision, so this is decided by content).
        same_file = {(e.path, e.content_hash[:HASH_CHARS]) for e in entries if e.content_hash}
        # A superseded file's bytes are not what is loaded: the same bytes arriving again (newer) would win.
        hashes = {e.content_hash[:HASH_CHARS] for e in entries if e.content_hash and e.status != "superseded"}
        hashes |= {i.content_hash for _, i in inflight_by_day[iso]}
        new = [f for f in group if file_key(f) not in known]
        if not new:
            days[iso] = fp
            continue
        try:
            new_hashes = {f.path: content_hash(f.path)[:HASH_CHARS] for f in new}
        except FileNotFoundError:
            plan.deferred.append(iso)
            continue
        new = [f for f in new if (f.path, new_hashes[f.path]) not in same_file]
        novel = [f for f in new if new_hashes[f.path] not in hashes]
        for f in new:
            inflight[f.path] = InFlight(int(f.size), _mtime(f.mtime), new_hashes[f.path], iso, now)
        if novel:
            plan.requests.append(DayRequest(day, day_run_key(day, (file_key(f) for f in group)),
                                            tuple(f.path for f in novel), len(group)))
        novel_paths = {f.path for f in novel}
        plan.duplicates.extend(f.path for f in new if f.path not in novel_paths)
        days[iso] = fp

    if len(inflight) > INFLIGHT_MAX_FILES:
        newest = sorted(inflight.items(), key=lambda item: (item[1].requested_at, item[0]))[-INFLIGHT_MAX_FILES:]
        inflight = dict(newest)
    plan.cursor = DropCursor(days=days, pending=pending, inflight=inflight)
    return plan
