"""POS drop folder: the stores reference, sales lines and stock counts, and files nobody can read."""


from collections import defaultdict
from collections.abc import Iterator, Sized
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import pandas as pd

from retail_assets.assets.common import OWNERS, SOURCES_GROUP, concat, describe, preview, table_metadata, validated
from retail_assets.assets.retry import retries_transient
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
from retail_assets.resources.pos_drop import DropFile, file_hash
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import POS_FILE_LEDGER, RAW_POS_INVENTORY, RAW_POS_SALES, RAW_STORES, REJECTIONS
from retail_assets.settings import load_settings
from retail_assets.transforms.pos_parse import (
    FileContext,
    ParsedFile,
    lossy_text,
    parse_pos_file,
    parse_sales_files,
    reject_whole_file,
)

STORES_REQUIRED = ["store_code", "store_name", "city", "region", "country", "timezone", "pos_layout", "opened_on",
                   "closed_on"]


def _store_rejection(line: int, code: str, reason: str, record: str, run_id: str) -> dict[str, object]:
    return {"business_date": pd.NaT, "asset": "raw_stores", "source_system": "pos", "source_ref": "stores.csv",
            "source_key": f"line {line}", "reason_code": code, "reason": reason, "record": record, "run_id": run_id}


def clean_stores(frame: pd.DataFrame, layouts: dict[str, Layout], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """stores.csv rows that can be used, and the ones that cannot with the reason."""
    missing = [c for c in STORES_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"stores.csv lacks column(s) {', '.join(missing)}; the header must be "
                         f"{','.join(STORES_REQUIRED)}")
    frame = frame.copy()
    frame["source_line"] = range(2, len(frame) + 2)
    good, bad = [], []
    seen: set[str] = set()
    for row in frame.to_dict("records"):
        code = row["store_code"].strip()
        record = ",".join(str(row[c]) for c in STORES_REQUIRED)
        problem = None
        try:
            ZoneInfo(row["timezone"].strip())
        except (ZoneInfoNotFoundError, ValueError):
            problem = ("timezone_invalid", f"timezone {row['timezone']!r} of store {code} is not an IANA name "
                                           "such as America/New_York")
        if not code:
            problem = ("missing_value", "store_code is empty")
        elif row["pos_layout"].strip() not in layouts:
            problem = ("layout_unknown", f"store {code} names layout {row['pos_layout']!r}; known layouts: "
                                         f"{', '.join(sorted(layouts))} (add a YAML file to RETAIL_POS_LAYOUTS_DIR)")
        elif code in seen:
            problem = ("duplicate_store", f"store {code} appears twice in stores.csv; the first row was kept")
        for col in ("opened_on", "closed_on"):
            value = row[col].strip()
            if value and pd.isna(pd.to_datetime(value, format="%Y-%m-%d", errors="coerce")):
                problem = problem or ("date_invalid", f"{col} {value!r} of store {code} is not YYYY-MM-DD")
        if problem:
            bad.append(_store_rejection(row["source_line"], problem[0], problem[1], record, run_id))
            continue
        seen.add(code)
        good.append({**{c: (row[c].strip() or None) for c in STORES_REQUIRED}, "store_code": code,
                     "source_line": row["source_line"], "run_id": run_id})
    stores = pd.DataFrame(good, columns=[*STORES_REQUIRED, "source_line", "run_id"])
    for col in ("opened_on", "closed_on"):
        stores[col] = pd.to_datetime(stores[col], format="%Y-%m-%d")
    return stores, pd.DataFrame(bad)


@dg.asset(
    group_name=SOURCES_GROUP, kinds={"csv", "pandas"}, owners=OWNERS,
    description=describe(RAW_STORES, "Edited by hand at head office: bad rows go to `rejections`."),
    metadata=table_metadata(RAW_STORES), check_specs=[schema_check_spec(RAW_STORES)],
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


def choose_files(files: list[DropFile], hashes: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """path -> (status, reason) for the files of one kind and day: per store the content received last wins.

    Identical bytes (a retry, a copy in another folder) count once, as the copy received first; of two different
    contents for the same store, day and kind, the one whose latest delivery is newest wins and the other is
    superseded.
    """
    out: dict[str, tuple[str, str | None]] = {}
    by_store: dict[str | None, list[DropFile]] = defaultdict(list)
    for f in files:
        by_store[f.store_code].append(f)
    for group in by_store.values():
        copies: dict[str, list[DropFile]] = defaultdict(list)
        for f in sorted(group, key=lambda f: (f.mtime, f.path)):
            copies[hashes[f.path]].append(f)
        latest = max(copies, key=lambda h: (copies[h][-1].mtime, copies[h][-1].path))
        winner = copies[latest][0]
        for h, same in copies.items():
            first = same[0]
            for f in same:
                if f is winner:
                    out[f.path] = ("loaded", None)
                elif f is first and h != latest:
                    out[f.path] = ("superseded", f"replaced by {winner.path}, received later")
                elif f is first:
                    out[f.path] = ("duplicate", f"same bytes as {winner.path}; counted once")
                else:
                    out[f.path] = ("duplicate", f"same bytes as {first.path}; counted once")
    return out


BATCH_BYTES = 8 * 1024 * 1024  # sales files parsed together (see parse_sales_files): ~100,000 lines


def iter_day(kind: str, day: date, pos_drop: PosDropFolder, stores: pd.DataFrame, run_id: str, asset: str,
             max_rejected_rate: float) -> Iterator[tuple[ParsedFile | None, dict[str, object]]]:
    """(what became of the file, its ledger row) for every file of ``kind`` for business date ``day``.

    A few MB of files are alive at a time: the hashes are taken first (which file wins depends on all of them),
    then the files are read again and parsed, consecutive sales files of one layout together up to
    ``BATCH_BYTES``, so a day of ten million lines fits in bounded memory.
    """
    layouts = pos_drop.layouts()
    files = [f for f in pos_drop.scan(layouts) if f.kind == kind and f.business_date == day]
    hashes = {f.path: file_hash(pos_drop.read_bytes(f.path)) for f in files}
    decisions = choose_files(files, hashes)
    store_layout = dict(zip(stores["store_code"], stores["pos_layout"], strict=True))

    def entry(f: DropFile, parsed: ParsedFile | None, data: bytes) -> tuple[ParsedFile | None, dict[str, object]]:
        status, reason = decisions[f.path]
        if parsed is not None and parsed.file_error:
            status, reason = "rejected", parsed.file_error
        elif parsed is not None and parsed.extra_columns:
            reason = f"schema drift: extra column(s) {', '.join(parsed.extra_columns)} ignored"
        return parsed, {"path": f.path, "content_hash": hashes[f.path], "size": f.size, "mtime": f.mtime,
                        "kind": kind, "store_code": f.store_code, "business_date": pd.Timestamp(day),
                        "layout": f.layout, "status": status, "reason": reason,
                        "lines": parsed.lines if parsed else _count_lines(data),
                        "rows_loaded": len(parsed.rows) if parsed else 0, "run_id": run_id}

    batch: list[tuple[DropFile, bytes, FileContext]] = []

    def parse_batch() -> Iterator[tuple[ParsedFile | None, dict[str, object]]]:
        if batch:
            layout = layouts[batch[0][0].layout]
            parsed = parse_sales_files([(data, ctx) for _, data, ctx in batch], layout)
            yield from (entry(f, p, data) for (f, data, _), p in zip(batch, parsed, strict=True))
            batch.clear()

    for f in files:
        layout = layouts[f.layout]
        ctx = FileContext(f.path, day, f.store_code, run_id, asset, max_rejected_rate)
        data = pos_drop.read_bytes(f.path)
        if decisions[f.path][0] != "loaded":
            yield from parse_batch()
            yield entry(f, None, data)
            continue
        parsed = _refuse(f, layout, ctx, data, kind, store_layout)
        if parsed is None and kind == "sales" and layout.store_from != "column":
            if batch and (batch[0][0].layout != f.layout or sum(len(b[1]) for b in batch) + len(data) > BATCH_BYTES):
                yield from parse_batch()
            batch.append((f, data, ctx))
            continue
        yield from parse_batch()
        if parsed is None:
            parsed = parse_pos_file(data, layout, ctx)
            if layout.store_from == "column" and len(parsed.rows):
                parsed = _drop_unknown_row_stores(parsed, set(store_layout), ctx)
        yield entry(f, parsed, data)
    yield from parse_batch()


def _refuse(f: DropFile, layout: Layout, ctx: FileContext, data: bytes, kind: str, store_layout: dict[str, str]
            ) -> ParsedFile | None:
    """The whole file rejected before reading it: a store stores.csv does not have, or on another layout."""
    if layout.store_from != "column" and f.store_code not in store_layout:
        return _reject(data, layout, ctx, "unknown_store",
                       f"file {f.path} is for store {f.store_code}, which is not in stores.csv; add the "
                       "store to stores.csv (the date reloads after the next refresh_reference run) or "
                       "fix the file name")
    if kind == "sales" and layout.store_from == "filename" and store_layout[f.store_code] != layout.name:
        return _reject(data, layout, ctx, "layout_mismatch",
                       f"file {f.path} is named like layout {layout.name} but stores.csv puts store "
                       f"{f.store_code} on layout {store_layout[f.store_code]}; fix one of them (a "
                       "fixed stores.csv reloads the date after the next refresh_reference run)")
    return None


def load_day(kind: str, day: date, pos_drop: PosDropFolder, stores: pd.DataFrame, run_id: str, asset: str,
             max_rejected_rate: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows, rejections, ledger) of the whole day at once (``iter_day`` collected; small days and tools)."""
    rows, rejections, ledger = [], [], []
    for parsed, entry in iter_day(kind, day, pos_drop, stores, run_id, asset, max_rejected_rate):
        ledger.append(entry)
        if parsed is not None:
            rows.append(parsed.rows)
            rejections.append(parsed.rejections)
    return concat(rows), concat(rejections), pd.DataFrame(ledger)


def _count_lines(data: bytes) -> int:
    return max(0, sum(1 for line in data.splitlines() if line.strip()) - 1)


def _reject(data: bytes, layout: Layout, ctx: FileContext, code: str, reason: str) -> ParsedFile:
    return reject_whole_file(ctx, lossy_text(data, layout), code, reason)


# A line whose store column names a store stores.csv does not have: "store <code> is not in stores.csv". The
# sensor that reloads such days once stores.csv has the store matches this text against raw_stores.
UNKNOWN_ROW_STORE = ("store ", " is not in stores.csv")


def _drop_unknown_row_stores(parsed: ParsedFile, known: set[str], ctx: FileContext) -> ParsedFile:
    unknown = ~parsed.rows["store_code"].isin(known)
    if not unknown.any():
        return parsed
    bad = parsed.rows[unknown]
    rej = pd.DataFrame({
        "business_date": pd.Timestamp(ctx.business_date), "asset": ctx.asset, "source_system": "pos",
        "source_ref": ctx.path, "source_key": "line " + bad["source_line"].astype(str),
        "reason_code": "unknown_store",
        "reason": UNKNOWN_ROW_STORE[0] + bad["store_code"].astype(str) + UNKNOWN_ROW_STORE[1],
        "record": None, "run_id": ctx.run_id,
    })
    parsed.rows = parsed.rows[~unknown].reset_index(drop=True)
    parsed.rejections = concat([parsed.rejections, rej])
    return parsed


DRIFT_CHECK = "no_schema_drift"
COMPLETE_CHECK = "complete"


def reconcile_files(ledger: pd.DataFrame, rows: Sized, rejected: pd.DataFrame) -> dg.AssetCheckResult:
    """Source lines = raw rows + rejected lines, over the files the day loaded or rejected."""
    counted = ledger[ledger["status"].isin(["loaded", "rejected"])] if len(ledger) else ledger
    lines = int(counted["lines"].sum()) if len(counted) else 0
    return dg.AssetCheckResult(
        check_name=RECONCILED_CHECK, passed=lines == len(rows) + len(rejected), severity=dg.AssetCheckSeverity.ERROR,
        metadata={"source_lines": lines, "raw_rows": len(rows), "rejected_lines": len(rejected)},
    )


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
    store codes join ``chunk_stores`` (chunks are validated one by one: see ``_may_repeat``)."""
    if not pending:
        return 0
    rows, failures = validate_frame(spec, concat(pending), day.isoformat())
    checks.append(failures)
    chunk_stores.append(set(rows["store_code"].unique()))
    pending.clear()
    return append(rows)


def _may_repeat(chunk_stores: list[set[str]]) -> bool:
    """Whether a natural key (store, day, receipt, line) can repeat across the day's chunks: only when a store has
    lines in two of them (a file with a store column next to another file of that store), since each chunk's
    own keys are checked by ``validate_frame``. Then the warehouse finds the repeats (``repeated_keys``)."""
    seen: set[str] = set()
    for stores in chunk_stores:
        if seen & stores:
            return True
        seen |= stores
    return False


def _day_schema_result(spec: TableSpec, chunk_failures: list, repeats: pd.DataFrame | None, rows: int, day: date
                       ) -> dg.AssetCheckResult:
    failures = [f for f in (*chunk_failures, repeats) if f is not None]
    return schema_result(spec, pd.concat(failures, ignore_index=True) if failures else None, rows, day.isoformat())


def _pos_day_asset(spec, kind: str, doc: str):
    checks_of_kind = [
        schema_check_spec(spec),
        check_spec(spec.name, RECONCILED_CHECK, "Per day: the lines of the files loaded or rejected = raw rows + "
                   "rejected lines", blocking=True),
        check_spec(spec.name, DRIFT_CHECK, "No file carries columns its layout does not know (WARN)"),
    ]
    if kind == "sales":
        checks_of_kind.append(check_spec(spec.name, COMPLETE_CHECK,
                                         "Every store open that day sent a sales file that could be loaded (WARN)"))

    @dg.asset(
        name=spec.name, group_name=SOURCES_GROUP, kinds={"csv", "pandas"}, owners=OWNERS,
        partitions_def=daily_partitions, deps=[raw_stores], description=describe(spec, doc),
        metadata=table_metadata(spec), check_specs=checks_of_kind, backfill_policy=backfill_policy,
    )
    @retries_transient
    def _asset(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
        settings = load_settings()
        stores = warehouse.read(RAW_STORES, columns=["store_code", "pos_layout", "opened_on", "closed_on"])
        checks, totals = [], defaultdict(int)
        for day in partition_dates(context):
            day_checks, rejected, entries, day_rows, chunk_stores = [], [], [], 0, []
            with warehouse.transaction() as tx:
                tx.delete(spec, {"business_date": day})
                with tx.appender(spec) as append:
                    pending: list[pd.DataFrame] = []
                    for parsed, entry in iter_day(kind, day, pos_drop, stores, context.run.run_id, spec.name,
                                                  settings.max_rejected_line_rate):
                        entries.append(entry)
                        if parsed is None:
                            continue
                        pending.append(parsed.rows)
                        rejected.append(parsed.rejections)
                        if sum(len(p) for p in pending) >= CHUNK_ROWS:
                            day_rows += _send(spec, append, pending, day_checks, day, chunk_stores)
                    day_rows += _send(spec, append, pending, day_checks, day, chunk_stores)
                rejected_day = concat(rejected)
                ledger = pd.DataFrame(entries) if entries else POS_FILE_LEDGER.empty()
                tx.replace(REJECTIONS, rejected_day, {"business_date": day, "asset": spec.name})
                tx.replace(POS_FILE_LEDGER, ledger, {"business_date": day, "kind": kind})
                table = warehouse.table(spec, tx.conn)
                repeats = repeated_keys(tx.conn, table, spec.natural_key, table.c.business_date == day,
                                        "unique natural key") if _may_repeat(chunk_stores) else None
            checks += [_day_schema_result(spec, day_checks, repeats, day_rows, day),
                       reconcile_files(ledger, range(day_rows), rejected_day), schema_drift(ledger)]
            if kind == "sales":
                checks.append(completeness(stores, ledger, day))
            totals["rows"] += day_rows
            totals["rejected_lines"] += len(rejected_day)
            totals["files"] += len(ledger)
            for status in ("duplicate", "superseded", "rejected"):
                totals[f"files_{status}"] += int((ledger["status"] == status).sum())
            context.log.info(f"{spec.name} {day}: {day_rows} rows from {len(ledger)} file(s), "
                             f"{len(rejected_day)} line(s) rejected")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": totals["rows"], **{k: v for k, v in totals.items() if k != "rows"}},
            check_results=combine(checks),
        )

    return _asset


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
                                   description="Every file in the drop folder matches a layout (WARN)")],
)
@retries_transient
def pos_unrecognised_files(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    run_id = context.run.run_id
    unmatched = [f for f in pos_drop.scan() if f.layout is None]
    ledger, rejected = [], []
    for f in unmatched:
        data = pos_drop.read_bytes(f.path)
        lines = _count_lines(data)
        reason = (f"file name {f.path.rsplit('/', 1)[-1]!r} matches no POS layout (sales_<STORE>_<YYYYMMDD>.csv, "
                  "<STORE>_<DDMMYYYY>.txt, stock_<STORE>_<YYYYMMDD>.csv or a user layout); rename it and re-send")
        ledger.append({"path": f.path, "content_hash": file_hash(data), "size": f.size, "mtime": f.mtime,
                       "kind": None, "store_code": None, "business_date": pd.NaT, "layout": None,
                       "status": "rejected", "reason": reason, "lines": lines, "rows_loaded": 0, "run_id": run_id})
        rejected.append({"business_date": pd.NaT, "asset": "pos_unrecognised_files", "source_system": "pos",
                         "source_ref": f.path, "source_key": None, "reason_code": "no_layout",
                         "reason": f"{reason} ({lines} data line(s) not loaded)", "record": None, "run_id": run_id})
    ledger_df, check = validated(POS_FILE_LEDGER, pd.DataFrame(ledger, columns=POS_FILE_LEDGER.columns))
    with warehouse.transaction() as tx:
        tx.replace(POS_FILE_LEDGER, ledger_df, {"business_date": None})
        tx.replace(REJECTIONS, pd.DataFrame(rejected), {"asset": "pos_unrecognised_files"})
    warn = dg.AssetCheckResult(
        check_name="no_unrecognised_files", passed=not unmatched, severity=dg.AssetCheckSeverity.WARN,
        metadata={"files": len(unmatched), "sample": ", ".join(f.path for f in unmatched[:5])},
    )
    return dg.MaterializeResult(metadata={"dagster/row_count": len(ledger_df),
                                          "lines_not_loaded": int(sum(r["lines"] for r in ledger))},
                                check_results=[check, warn])
