"""POS drop folder: the stores reference, sales lines and stock counts, and files nobody can read."""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retail_assets.assets.common import OWNERS, SOURCES_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.assets.retry import TRANSIENT_RETRY, retries_transient
from retail_assets.checks import (
    RECONCILED_CHECK,
    check_spec,
    combine,
    repeated_keys,
    schema_check_spec,
    schema_result,
    validate_frame,
)
from retail_assets.layouts import Layout
from retail_assets.partitions import backfill_policy, daily_partitions, partition_dates
from retail_assets.resources import PosDropFolder, Warehouse
from retail_assets.resources.pos_drop import DropFile, DropFolderUnavailable
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import POS_FILE_LEDGER, RAW_POS_INVENTORY, RAW_POS_SALES, RAW_STORES, REJECTIONS
from retail_assets.transforms.pos_day import (
    Chunks,
    counted_lines,
    drop_unknown_row_stores,
    keep_booked,
    parts,
    refuse_for_store,
    row_count,
    with_refused_files,
)
from retail_assets.transforms.pos_day import may_repeat as _may_repeat  # under the name tests import from here
from retail_assets.transforms.pos_files import (
    ACCEPT_TAG,
    BOOKED,
    HELD,
    WITHDRAW_TAG,
    WITHDRAWN,
    Content,
    DayPlan,
    contents_by_unit,
    hold_reason,
    names,
    unit_set,
)
from retail_assets.transforms.pos_parse import (
    FileContext,
    ParsedFile,
    StreamedFile,
    parse_pos_file,
    parse_sales_files,
    parse_stream,
)
from retail_assets.transforms.stores import clean_stores


@dg.asset(
    group_name=SOURCES_GROUP, kinds={"csv", "pandas"}, owners=OWNERS,
    description=describe(RAW_STORES, "Edited by hand at head office: bad rows go to `rejections`."),
    metadata=table_metadata(RAW_STORES), check_specs=[schema_check_spec(RAW_STORES)],
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def raw_stores(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    stores, bad = clean_stores(pos_drop.read_stores(), pos_drop.layouts(), context.run.run_id)
    stores, check = validated(RAW_STORES, stores)
    with warehouse.transaction() as tx:
        tx.replace(RAW_STORES, stores, {})
        tx.replace(REJECTIONS, bad, {"asset": "raw_stores"})
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(stores), "rejected_rows": len(bad), "preview": preview(stores)},
        check_results=[check],
    )


BATCH_BYTES = 8 * 1024 * 1024  # sales files parsed together (see parse_sales_files): ~100,000 lines


@dataclass
class _Try:
    """One content of a unit being tried: the copy that counts, and how it is read."""

    unit: str | None
    content: Content
    ctx: FileContext


def iter_day(kind: str, day: date, pos_drop: PosDropFolder, stores: pd.DataFrame, run_id: str, asset: str,
             max_rejected_rate: float, *, booked: pd.DataFrame | None = None, plan: DayPlan | None = None,
             hold_share: float = 0.5, accept: frozenset[str] = frozenset(), withdraw: frozenset[str] = frozenset(),
             chunk_bytes: int = BATCH_BYTES) -> Iterator[tuple[Chunks, dict[str, object]]]:
    """(the file's rows and rejections, its ledger row) for every file of ``kind`` for business date ``day``, as
    ``transforms.pos_files`` decides which file books each store-day; ``booked`` is the day's ledger as the
    warehouse has it, and ``plan`` collects what becomes of it (rows kept, rows replaced, files gone).

    A few MB of files are alive at a time: the hashes are taken first (which file wins depends on all of them),
    then the files are read again and parsed, consecutive small sales files of one layout together up to
    ``BATCH_BYTES``, a file larger than ``chunk_bytes`` chunk by chunk, so a day or a file of ten million lines
    fits in bounded memory. The chunks of a file must be consumed before the next item is asked for.
    """
    layouts = pos_drop.layouts()
    plan = plan if plan is not None else DayPlan()
    iso = day.isoformat()
    files = [f for f in pos_drop.scan(layouts) if f.kind == kind and f.business_date == day]
    digests = {f.path: pos_drop.digest(f.path) for f in files}
    units = contents_by_unit(files, {path: d.content_hash for path, d in digests.items()})
    store_layout = dict(zip(stores["store_code"], stores["pos_layout"], strict=True))
    earlier: dict[str | None, list[dict[str, object]]] = defaultdict(list)
    for row in (booked.to_dict("records") if booked is not None and len(booked) else []):
        if row["status"] in (BOOKED, WITHDRAWN):
            earlier[None if pd.isna(row["store_code"]) else row["store_code"]].append(row)

    def entry(f: DropFile, status: str, reason: str | None, lines: int | None = None, rows: int = 0
              ) -> dict[str, object]:
        return {"path": f.path, "content_hash": digests[f.path].content_hash, "size": f.size, "mtime": f.mtime,
                "kind": kind, "store_code": f.store_code, "business_date": pd.Timestamp(day), "layout": f.layout,
                "status": status, "reason": reason,
                "lines": pos_drop.count_lines(f.path) if lines is None else lines, "rows_loaded": rows,
                "run_id": run_id}

    def copies(content: Content, status: str | None, reason: str | None = None
               ) -> Iterator[tuple[Chunks, dict[str, object]]]:
        """The content's first copy with ``status`` (None: said by the caller), its others as duplicates of it;
        a file the carried ledger rows already stand for (a withdrawn one) is not listed twice."""
        if status is not None and (content.first.path, content.content_hash) not in carried:
            yield (), entry(content.first, status, reason)
        for f in content.copies[1:]:
            if (f.path, content.content_hash) not in carried:
                yield (), entry(f, "duplicate", f"same bytes as {content.first.path}; counted once")

    carried: set[tuple[str, str]] = set()

    pending: dict[str | None, list[Content]] = {}
    for unit in sorted(set(units) | set(earlier), key=lambda u: (u is not None, u or "")):
        before = earlier.get(unit, [])
        loaded = [e for e in before if e["status"] == BOOKED]
        gone = {str(e["content_hash"]) for e in before if e["status"] == WITHDRAWN}
        plan.carried += [e for e in before if e["status"] == WITHDRAWN]
        carried |= {(str(e["path"]), str(e["content_hash"])) for e in before if e["status"] == WITHDRAWN}
        present = units.get(unit, [])
        if names(withdraw, unit):
            note = (f"withdrawn by an operator in run {run_id[:8]}: these bytes are not booked again; a different "
                    "re-send is")
            plan.replaced += loaded
            plan.carried += [{**e, "status": WITHDRAWN, "reason": note, "rows_loaded": 0} for e in loaded]
            carried |= {(str(e["path"]), str(e["content_hash"])) for e in loaded}
            for content in present:
                yield from copies(content, WITHDRAWN, note)
            continue
        # Only what arrived after the booked file may replace it: an older export still in the folder (the booked
        # re-send archived, or overwritten by a refused upload) never comes back.
        newest_booked = max(((float(e["mtime"]), str(e["path"])) for e in loaded), default=None)
        tries = []
        for content in present:
            digest = digests[content.first.path]
            if digest.error_code:  # refused whatever its age: nobody can read it, and the sender should know
                yield (), entry(content.first, "rejected", digest.error, 0)
                yield from copies(content, None)
            elif content.content_hash in gone:
                yield from copies(content, WITHDRAWN, "these bytes were withdrawn by an operator; not booked again")
            elif (newest_booked is not None and content.content_hash not in {str(e["content_hash"]) for e in loaded}
                  and (content.latest.mtime, content.latest.path) < newest_booked):
                yield from copies(content, "superseded", f"older than the booked {newest_booked[1]}, which stays")
            else:
                tries.append(content)
        if tries:
            pending[unit] = tries
        else:
            keep_booked(plan, loaded, units.get(unit, []), "no file for this store-day is in the drop folder now")

    # Newest content of every unit first; a unit whose newest is refused tries its next one in the next round.
    while pending:
        this_round = []
        for unit, tries in pending.items():
            content = tries.pop(0)
            f = content.first
            this_round.append(_Try(unit, content, FileContext(f.path, day, f.store_code, run_id, asset,
                                                              max_rejected_rate)))
        for attempt, result in _parse_round(this_round, kind, layouts, pos_drop, store_layout,
                                            chunk_bytes):
            unit, content, f = attempt.unit, attempt.content, attempt.content.first
            loaded = [e for e in earlier.get(unit, []) if e["status"] == BOOKED]
            if result.file_error:
                yield parts(result), entry(f, "rejected", result.file_error, result.lines)
                yield from copies(content, None)
                if not pending[unit]:
                    del pending[unit]
                    keep_booked(plan, loaded, units.get(unit, []), f"the file received for it was refused ({f.path})")
                continue
            rows = row_count(result)
            booked_rows = sum(int(e["rows_loaded"]) for e in loaded)
            same = content.content_hash in {str(e["content_hash"]) for e in loaded}
            held = None if same else hold_reason(unit, iso, f.path, rows, booked_rows, hold_share,
                                                 names(accept, unit))
            older = pending.pop(unit)
            if held:
                yield (), entry(f, HELD, held, result.lines)
                yield from copies(content, None)
                kept = keep_booked(plan, loaded, units.get(unit, []), f"a re-send is held ({f.path})")
                for content_older in older:
                    status = None if content_older.content_hash in kept else "superseded"
                    yield from copies(content_older, status, f"older than {f.path}, which is held")
                continue
            plan.replaced += loaded
            reason = (f"schema drift: extra column(s) {', '.join(result.extra_columns)} ignored"
                      if result.extra_columns else None)
            yield parts(result), entry(f, BOOKED, reason, result.lines, rows)
            yield from copies(content, None)
            for content_older in older:
                yield from copies(content_older, "superseded", f"replaced by {f.path}, received later")


def _parse_round(tries: list[_Try], kind: str, layouts: dict[str, Layout], pos_drop: PosDropFolder,
                 store_layout: dict[str, str], chunk_bytes: int
                 ) -> Iterator[tuple[_Try, ParsedFile | StreamedFile]]:
    """What each tried file holds: small sales files of one layout read together (``parse_sales_files``), a file
    larger than ``chunk_bytes`` streamed (``parse_stream``: its rows are read when its parts are)."""
    batch: list[tuple[_Try, bytes]] = []

    def flush() -> Iterator[tuple[_Try, ParsedFile]]:
        if batch:
            layout = layouts[batch[0][0].content.first.layout]
            parsed = parse_sales_files([(data, t.ctx) for t, data in batch], layout)
            yield from zip([t for t, _ in batch], parsed, strict=True)
            batch.clear()

    for t in sorted(tries, key=lambda t: (t.content.first.layout, t.content.first.path)):
        f = t.content.first
        layout = layouts[f.layout]
        refused = refuse_for_store(f, layout, t.ctx, kind, store_layout, lambda f=f: pos_drop.read_bytes(f.path))
        if refused is None and pos_drop.content_size(f) > chunk_bytes:
            yield from flush()
            streamed = parse_stream(lambda f=f: pos_drop.open(f.path), layout, t.ctx, chunk_bytes)
            if layout.store_from == "column":
                read, known = streamed.parts, set(store_layout)
                streamed.parts = lambda read=read, known=known, ctx=t.ctx: (
                    drop_unknown_row_stores(p, known, ctx) if len(p.rows) else p for p in read())
            yield t, streamed
            continue
        if refused is not None:
            yield from flush()
            yield t, refused
            continue
        data = pos_drop.read_bytes(f.path)
        if kind == "sales" and layout.store_from != "column":
            if batch and (batch[0][0].content.first.layout != f.layout
                          or sum(len(d) for _, d in batch) + len(data) > BATCH_BYTES):
                yield from flush()
            batch.append((t, data))
            continue
        yield from flush()
        parsed = parse_pos_file(data, layout, t.ctx)
        if layout.store_from == "column" and len(parsed.rows):
            parsed = drop_unknown_row_stores(parsed, set(store_layout), t.ctx)
        yield t, parsed
    yield from flush()


def load_day(kind: str, day: date, pos_drop: PosDropFolder, stores: pd.DataFrame, run_id: str, asset: str,
             max_rejected_rate: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows, rejections, ledger) of the whole day at once on an empty warehouse (``iter_day`` collected; small
    days and tools)."""
    rows, rejections, ledger = [], [], []
    for chunks, entry in iter_day(kind, day, pos_drop, stores, run_id, asset, max_rejected_rate):
        ledger.append(entry)
        for parsed in chunks:
            rows.append(parsed.rows)
            rejections.append(parsed.rejections)
    return concat(rows), concat(rejections), pd.DataFrame(ledger)


DRIFT_CHECK = "no_schema_drift"
COMPLETE_CHECK = "complete"
FILES_CHECK = "no_refused_or_held_files"


def reconcile_files(ledger: pd.DataFrame, rows: int, rejected_lines: int) -> dg.AssetCheckResult:
    """Source lines = raw rows + rejected lines, over the files the day booked or refused."""
    lines = counted_lines(ledger)
    return dg.AssetCheckResult(
        check_name=RECONCILED_CHECK, passed=lines == rows + rejected_lines, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"source_lines": lines, "raw_rows": rows, "rejected_lines": rejected_lines},
    )


def refused_or_held(ledger: pd.DataFrame) -> dg.AssetCheckResult:
    """WARN naming every file of the day that was refused as a whole or held (store, day, file, reason)."""
    bad = ledger[ledger["status"].isin(["rejected", HELD])] if len(ledger) else ledger
    return dg.AssetCheckResult(
        check_name=FILES_CHECK, passed=bad.empty, severity=dg.AssetCheckSeverity.WARN,
        metadata={"files_refused": int((bad["status"] == "rejected").sum()) if len(bad) else 0,
                  "files_held": int((bad["status"] == HELD).sum()) if len(bad) else 0,
                  "files": "\n".join(file_line(r) for r in bad.head(20).to_dict("records")) or "none"},
    )


def file_line(e: dict[str, object]) -> str:
    """One line a person reads about a file: store, day, file, what became of it and why."""
    day = pd.Timestamp(e["business_date"]).date() if not pd.isna(e["business_date"]) else "undated"
    return f"store {e['store_code'] or '-'}, {day}, {e['path']}: {e['status']}: {e['reason']}"


def schema_drift(ledger: pd.DataFrame) -> dg.AssetCheckResult:
    drift = ledger[ledger["reason"].fillna("").str.startswith("schema drift")] if len(ledger) else ledger
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK, passed=drift.empty, severity=dg.AssetCheckSeverity.WARN,
        metadata={"files_with_extra_columns": len(drift),
                  "sample": "; ".join(f"{r.path}: {r.reason}" for r in drift.head(5).itertuples()) or "none"},
    )


def completeness(stores: pd.DataFrame, ledger: pd.DataFrame, day: date) -> dg.AssetCheckResult:
    """WARN: a store open on ``day`` (opened_on <= day < closed_on) sent no loadable sales file for it."""
    ts = pd.Timestamp(day)
    opened = pd.to_datetime(stores["opened_on"])
    closed = pd.to_datetime(stores["closed_on"])
    open_stores = set(stores.loc[(opened.isna() | (opened <= ts)) & (closed.isna() | (closed > ts)), "store_code"])
    loaded = set(ledger.loc[ledger["status"] == "loaded", "store_code"]) if len(ledger) else set()
    missing = sorted(open_stores - loaded)
    return dg.AssetCheckResult(
        check_name=COMPLETE_CHECK, passed=not missing, severity=dg.AssetCheckSeverity.WARN,
        metadata={"open_stores": len(open_stores), "stores_without_sales_file": len(missing),
                  "missing": ", ".join(missing) or "none"},
    )


CHUNK_ROWS = 100_000  # rows validated and sent together: bounded memory, pandera's fixed cost per call amortised


def _send(spec: TableSpec, append, pending: list[pd.DataFrame], checks: list, day: date,
          chunk_stores: list[set[str]]) -> int:
    """Validate the pending frames as one chunk and send it; the chunk's schema result joins ``checks`` and its
    store codes join ``chunk_stores`` (chunks are validated one by one: see ``pos_day.may_repeat``)."""
    if not pending:
        return 0
    rows, failures = validate_frame(spec, concat(pending), day.isoformat())
    checks.append(failures)
    chunk_stores.append(set(rows["store_code"].unique()))
    pending.clear()
    return append(rows)


def _day_schema_result(spec: TableSpec, chunk_failures: list, repeats: pd.DataFrame | None, rows: int, day: date
                       ) -> dg.AssetCheckResult:
    failures = [f for f in (*chunk_failures, repeats) if f is not None]
    return schema_result(spec, pd.concat(failures, ignore_index=True) if failures else None, rows, day.isoformat())


def _pos_day_asset(spec, kind: str, doc: str):
    checks_of_kind = [
        schema_check_spec(spec),
        check_spec(spec.name, RECONCILED_CHECK, "Per day: the lines of the files booked or refused = raw rows + "
                   "rejected lines", blocking=True),
        check_spec(spec.name, DRIFT_CHECK, "No file carries columns its layout does not know (WARN)"),
        check_spec(spec.name, FILES_CHECK, "No file of the day was refused as a whole or held for an operator "
                   "(WARN; names store, day, file and reason)"),
    ]
    if kind == "sales":
        checks_of_kind.append(check_spec(spec.name, COMPLETE_CHECK,
                                         "Every store open that day sent a sales file that could be loaded (WARN)"))

    @dg.asset(
        name=spec.name, group_name=SOURCES_GROUP, kinds={"csv", "pandas"}, owners=OWNERS,
        partitions_def=daily_partitions, deps=[raw_stores], description=describe(spec, doc),
        metadata=table_metadata(spec), check_specs=checks_of_kind, backfill_policy=backfill_policy,
        retry_policy=TRANSIENT_RETRY,
    )
    @retries_transient
    def _asset(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
        try:
            pos_drop.check_root()
        except DropFolderUnavailable as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        stores = warehouse.read(RAW_STORES, columns=["store_code", "pos_layout", "opened_on", "closed_on"])
        tags = context.run.tags
        operator = {"accept": unit_set(tags.get(ACCEPT_TAG)), "withdraw": unit_set(tags.get(WITHDRAW_TAG))}
        checks, totals = [], defaultdict(int)
        for day in partition_dates(context):
            day_checks, rejected, entries, day_rows, chunk_stores = [], [], [], 0, []
            plan = DayPlan()
            with warehouse.transaction() as tx:
                booked = _booked(warehouse, tx, day, kind)
                tx.lock(spec, {"business_date": day})
                if booked.empty:  # nothing to keep: the day's slice goes before its rows arrive, as one delete
                    tx.delete(spec, {"business_date": day})
                with tx.appender(spec) as append:
                    pending: list[pd.DataFrame] = []
                    for chunks, entry in iter_day(kind, day, pos_drop, stores, context.run.run_id, spec.name,
                                                  pos_drop.max_rejected_line_rate, booked=booked, plan=plan,
                                                  hold_share=pos_drop.resend_hold_share,
                                                  chunk_bytes=pos_drop.chunk_bytes, **operator):
                        entries.append(entry)
                        for parsed in chunks:
                            pending.append(parsed.rows)
                            rejected.append(parsed.rejections)
                            if sum(len(p) for p in pending) >= CHUNK_ROWS:
                                day_rows += _send(spec, append, pending, day_checks, day, chunk_stores)
                    day_rows += _send(spec, append, pending, day_checks, day, chunk_stores)
                table = warehouse.table(spec, tx.conn)
                if plan.replaced:
                    tx.delete(spec, {"business_date": day},
                              sa.tuple_(table.c.source_file, table.c.run_id).in_(plan.replaced_pairs()))
                rejections = warehouse.table(REJECTIONS, tx.conn)
                kept = plan.kept_pairs()
                tx.delete(REJECTIONS, {"business_date": day, "asset": spec.name},
                          *([sa.not_(sa.tuple_(rejections.c.source_ref, rejections.c.run_id).in_(kept))]
                            if kept else []))
                rejected_day = with_refused_files(concat(rejected), entries, context.run.run_id, spec.name, day)
                tx.append(REJECTIONS, rejected_day)
                ledger = pd.DataFrame(entries + plan.carried) if entries or plan.carried else POS_FILE_LEDGER.empty()
                tx.replace(POS_FILE_LEDGER, ledger, {"business_date": day, "kind": kind})
                in_day = table.c.business_date == day
                repeats = (repeated_keys(tx.conn, table, spec.natural_key, in_day, "unique natural key")
                           if kept or _may_repeat(chunk_stores) else None)
                stored = tx.conn.execute(sa.select(sa.func.count()).select_from(table).where(in_day)).scalar_one()
                stored_rejected = tx.conn.execute(
                    sa.select(sa.func.count()).select_from(rejections).where(
                        rejections.c.business_date == day, rejections.c.asset == spec.name,
                        rejections.c.source_key.is_not(None))).scalar_one()
            checks += [_day_schema_result(spec, day_checks, repeats, day_rows, day),
                       reconcile_files(ledger, int(stored), int(stored_rejected)), schema_drift(ledger),
                       refused_or_held(ledger)]
            if kind == "sales":
                checks.append(completeness(stores, ledger, day))
            _tell(context, spec.name, day, ledger, plan, day_rows, len(rejected_day))
            totals["rows"] += day_rows
            totals["rejected_lines"] += len(rejected_day)
            totals["files"] += len(ledger)
            totals["booked_files_missing"] += len(plan.missing)
            for status in ("duplicate", "superseded", "rejected", HELD, WITHDRAWN):
                totals[f"files_{status}"] += int((ledger["status"] == status).sum()) if len(ledger) else 0
        return dg.MaterializeResult(
            metadata={"dagster/row_count": totals["rows"], **{k: v for k, v in totals.items() if k != "rows"}},
            check_results=combine(checks),
        )

    return _asset


def _booked(warehouse: Warehouse, tx, day: date, kind: str) -> pd.DataFrame:
    """The day's ledger rows that stand for booked lines or withdrawn files, read in the load's transaction."""
    ledger = warehouse.table(POS_FILE_LEDGER, tx.conn)
    query = sa.select(*(ledger.c[c] for c in POS_FILE_LEDGER.columns)).where(
        ledger.c.business_date == day, ledger.c.kind == kind, ledger.c.status.in_([BOOKED, WITHDRAWN]))
    frame = pd.DataFrame(tx.conn.execute(query).mappings().all(), columns=POS_FILE_LEDGER.columns)
    if len(frame):
        frame["business_date"] = pd.to_datetime(frame["business_date"])
    return frame


def _tell(context: dg.AssetExecutionContext, asset: str, day: date, ledger: pd.DataFrame, plan: DayPlan, rows: int,
          rejected: int) -> None:
    """What a person watching the run reads: one line per refused or held file, and the booked files gone."""
    context.log.info(f"{asset} {day}: {rows} rows from {len(ledger)} file(s), {rejected} line(s) rejected")
    for e in ledger.to_dict("records") if len(ledger) else []:
        if e["status"] in ("rejected", HELD):
            context.log.warning(file_line(e))
    if plan.missing:
        context.log.warning(f"{asset} {day}: {len(plan.missing)} booked file(s) no longer in the drop folder, their "
                            f"lines kept from the warehouse: {', '.join(plan.missing[:10])}")


raw_pos_sales = _pos_day_asset(
    RAW_POS_SALES, "sales",
    "Every sales file of the business day, whatever its layout. Identical copies count once; of two different "
    "files for one store-day the newest wins. Bad lines and unreadable files go to `rejections`, every file to "
    "`pos_file_ledger`.",
)
raw_pos_inventory = _pos_day_asset(
    RAW_POS_INVENTORY, "inventory", "Stock counts at close of business, one file per store and day.",
)


@dg.asset(
    group_name=SOURCES_GROUP, kinds={"csv"}, owners=OWNERS, deps=[raw_stores],
    description=describe(POS_FILE_LEDGER, "Files in the drop folder whose name matches no layout are recorded "
                                          "here (business_date empty) and in `rejections`: nobody can date them."),
    metadata=table_metadata(POS_FILE_LEDGER),
    check_specs=[schema_check_spec(POS_FILE_LEDGER, "pos_unrecognised_files"),
                 dg.AssetCheckSpec("no_unrecognised_files", asset="pos_unrecognised_files",
                                   description="Every file in the drop folder matches a layout and can be read; "
                                               "links, hidden and special entries are listed (WARN)")],
    retry_policy=TRANSIENT_RETRY,
)
@retries_transient
def pos_unrecognised_files(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    run_id = context.run.run_id
    skipped: list[tuple[str, str]] = []
    unmatched = [f for f in pos_drop.scan(skipped=skipped) if f.layout is None]
    ledger, rejected = [], []
    for f in unmatched:
        digest = pos_drop.digest(f.path)
        lines = pos_drop.count_lines(f.path)
        reason = (f"file name {f.path.rsplit('/', 1)[-1]!r} matches no POS layout (sales_<STORE>_<YYYYMMDD>.csv, "
                  "<STORE>_<DDMMYYYY>.txt, stock_<STORE>_<YYYYMMDD>.csv or a user layout); rename it and re-send")
        ledger.append({"path": f.path, "content_hash": digest.content_hash, "size": f.size, "mtime": f.mtime,
                       "kind": None, "store_code": None, "business_date": pd.NaT, "layout": None,
                       "status": "rejected", "reason": reason, "lines": lines, "rows_loaded": 0, "run_id": run_id})
        rejected.append({"business_date": pd.NaT, "asset": "pos_unrecognised_files", "source_system": "pos",
                         "source_ref": f.path, "source_key": None, "reason_code": "no_layout",
                         "reason": f"{reason} ({lines} data line(s) not loaded)", "record": None, "run_id": run_id})
    for path, reason in skipped:  # never read: a link is not followed, so nothing outside the folder is touched
        ledger.append({"path": path, "content_hash": None, "size": 0, "mtime": 0.0, "kind": None,
                       "store_code": None, "business_date": pd.NaT, "layout": None, "status": "skipped",
                       "reason": reason, "lines": 0, "rows_loaded": 0, "run_id": run_id})
    ledger_df, check = validated(POS_FILE_LEDGER, pd.DataFrame(ledger, columns=POS_FILE_LEDGER.columns))
    with warehouse.transaction() as tx:
        tx.replace(POS_FILE_LEDGER, ledger_df, {"business_date": None})
        tx.replace(REJECTIONS, pd.DataFrame(rejected), {"asset": "pos_unrecognised_files"})
    for path, reason in skipped:
        context.log.warning(f"drop folder: {path} not read: {reason}")
    warn = dg.AssetCheckResult(
        check_name="no_unrecognised_files", passed=not unmatched and not skipped, severity=dg.AssetCheckSeverity.WARN,
        metadata={"files": len(unmatched), "skipped": len(skipped),
                  "sample": ", ".join([f.path for f in unmatched[:5]] + [p for p, _ in skipped[:5]])},
    )
    return dg.MaterializeResult(metadata={"dagster/row_count": len(ledger_df),
                                          "lines_not_loaded": int(sum(r["lines"] for r in ledger))},
                                check_results=[check, warn])
