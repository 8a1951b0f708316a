"""The store rules a POS day applies to its parsed files, and what the day's load writes about them: pure functions
over parsed files, ledger rows and frames (the reading, hashing and writing is ``assets/sources/pos.py``'s)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

import pandas as pd

from retail_assets.layouts import Layout
from retail_assets.resources.pos_drop import DropFile
from retail_assets.transforms.pos_files import BOOKED, Content, DayPlan
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, StreamedFile, lossy_text, reject_whole_file

Chunks = Iterable[ParsedFile]  # one file's rows and rejections, in one piece or chunk by chunk

UNKNOWN_STORE = "unknown_store"
LAYOUT_MISMATCH = "layout_mismatch"
KEPT = "; kept: "


def parts(result: ParsedFile | StreamedFile) -> Chunks:
    return result.parts() if isinstance(result, StreamedFile) else (result,)


def row_count(result: ParsedFile | StreamedFile) -> int:
    return result.rows if isinstance(result, StreamedFile) else len(result.rows)


def refuse_for_store(f: DropFile, layout: Layout, ctx: FileContext, kind: str, store_layout: dict[str, str],
                     read: Callable[[], bytes]) -> ParsedFile | None:
    """The whole file rejected before parsing it (``read`` gives its bytes, to quote its lines): a store stores.csv
    does not have, or on another layout; None when its store is fine."""
    if layout.store_from != "column" and f.store_code not in store_layout:
        return _reject(read(), layout, ctx, UNKNOWN_STORE,
                       f"file {f.path} is for store {f.store_code}, which is not in stores.csv; add the "
                       "store to stores.csv (the date reloads after the next refresh_reference run) or "
                       "fix the file name")
    if kind == "sales" and layout.store_from == "filename" and store_layout[f.store_code] != layout.name:
        return _reject(read(), layout, ctx, LAYOUT_MISMATCH,
                       f"file {f.path} is named like layout {layout.name} but stores.csv puts store "
                       f"{f.store_code} on layout {store_layout[f.store_code]}; fix one of them (a "
                       "fixed stores.csv reloads the date after the next refresh_reference run)")
    return None


def _reject(data: bytes, layout: Layout, ctx: FileContext, code: str, reason: str) -> ParsedFile:
    return reject_whole_file(ctx, lossy_text(data, layout), code, reason)


def drop_unknown_row_stores(parsed: ParsedFile, known: set[str], ctx: FileContext) -> ParsedFile:
    """Of a file with a store column, the lines whose store stores.csv does not have are rejected. The rejection
    carries the store in ``store_code``: the sensor that reloads the day once stores.csv has the store joins on it
    (never on the reason, which is for people)."""
    unknown = ~parsed.rows["store_code"].isin(known)
    if not unknown.any():
        return parsed
    bad = parsed.rows[unknown]
    rej = pd.DataFrame({
        "business_date": pd.Timestamp(ctx.business_date), "asset": ctx.asset, "source_system": "pos",
        "source_ref": ctx.path, "source_key": "line " + bad["source_line"].astype(str),
        "reason_code": UNKNOWN_STORE, "reason": "store " + bad["store_code"].astype(str) + " is not in stores.csv",
        "record": None, "store_code": bad["store_code"].astype(str), "run_id": ctx.run_id,
    })
    parsed.rows = parsed.rows[~unknown].reset_index(drop=True)
    parsed.rejections = _concat([parsed.rejections, rej])
    return parsed


def keep_booked(plan: DayPlan, loaded: list[dict[str, object]], present: list[Content], why: str) -> set[str]:
    """The unit's booked files stay booked, their lines and rejections untouched, and are said to be gone when
    they are no longer in the folder; the hashes of the booked contents."""
    paths = {(f.path, c.content_hash) for c in present for f in c.copies}
    for e in loaded:
        if (str(e["path"]), str(e["content_hash"])) in paths:
            note = f"{str(e['reason'] or 'booked').split(KEPT)[0]}{KEPT}{why}"  # one 'kept', however many reruns
        else:
            plan.missing.append(str(e["path"]))
            note = (f"booked by run {str(e['run_id'])[:8]}; no longer in the drop folder (archived or moved?): its "
                    "lines stay until a newer file for this store-day replaces them or an operator withdraws them")
        plan.carried.append({**e, "reason": note})
    return {str(e["content_hash"]) for e in loaded}


def may_repeat(chunk_stores: list[set[str]]) -> bool:
    """Whether a natural key (store, day, receipt, line) can repeat across the day's chunks: only when a store has
    lines in two of them (a file with a store column next to another file of that store), since each chunk's
    own keys are checked when it is validated. Then the warehouse finds the repeats."""
    seen: set[str] = set()
    for stores in chunk_stores:
        if seen & stores:
            return True
        seen |= stores
    return False


def with_refused_files(rejected: pd.DataFrame, entries: list[dict[str, object]], run_id: str, asset: str,
                       day: date) -> pd.DataFrame:
    """The day's rejected lines, plus one row per file refused as a whole with no line to reject (empty, or
    unreadable), so every refused file is in ``rejections`` with its reason (source_key NULL: not a line)."""
    quoted = set(rejected["source_ref"]) if len(rejected) else set()
    extra = [{"business_date": pd.Timestamp(day), "asset": asset, "source_system": "pos", "source_ref": e["path"],
              "source_key": None, "reason_code": "file_refused", "reason": e["reason"], "record": None,
              "run_id": run_id}
             for e in entries if e["status"] == "rejected" and e["path"] not in quoted]
    return _concat([rejected, pd.DataFrame(extra)]) if extra else rejected


def counted_lines(ledger: pd.DataFrame) -> int:
    """Source lines of the files the day booked or refused (what ``reconciled`` balances)."""
    counted = ledger[ledger["status"].isin([BOOKED, "rejected"])] if len(ledger) else ledger
    return int(counted["lines"].sum()) if len(counted) else 0


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
