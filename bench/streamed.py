"""A prototype of the change the benchmark recommends for ``raw_pos_sales``: land a business day file by file.

Not platform code. The asset in ``retail_assets/assets/sources/pos.py`` collects every file of the day into one
frame (``load_day``), validates it, and only then writes it, so its memory grows with the day and the database
waits while Python parses. Here the same steps run per file inside the day's one transaction: the day's rows are
deleted, one ``COPY`` (``WarehouseTx.appender``) stays open, and files are parsed, then validated and sent in
chunks of about ``CHUNK_ROWS`` rows while the server is still storing the previous chunk. Rejections and the ledger
(small) are written at the end. The same functions are used (``choose_files``, ``parse_pos_file``, ``validated``,
the checks), so the rows are the same.

The one difference in checks: the natural-key uniqueness that ``validated`` checks over the whole day is checked
per chunk here (a file holds one store's day, so the key cannot repeat across loaded files of a filename-store
layout; a ``store_from: column`` layout would need the key checked in SQL after the load).
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import date

import dagster as dg
import pandas as pd

from retail_assets.assets.common import OWNERS, SOURCES_GROUP, concat, validated
from retail_assets.assets.sources.pos import (
    _count_lines,
    _drop_unknown_row_stores,
    _reject,
    choose_files,
    completeness,
    raw_stores,
    reconcile_files,
    schema_drift,
)
from retail_assets.partitions import daily_partitions, partition_dates
from retail_assets.resources import PosDropFolder, Warehouse
from retail_assets.resources.pos_drop import file_hash
from retail_assets.schemas.sources import POS_FILE_LEDGER, RAW_POS_SALES, RAW_STORES, REJECTIONS
from retail_assets.settings import load_settings
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, parse_pos_file

CHUNK_ROWS = 100_000  # rows validated and sent together: bounded memory, pandera's per-call cost amortised


def iter_day(kind: str, day: date, pos_drop: PosDropFolder, stores: pd.DataFrame, run_id: str, asset: str,
             max_rejected_rate: float) -> Iterator[tuple[ParsedFile | None, dict]]:
    """``load_day`` one file at a time: (what became of the file, its ledger row). Only one file's bytes and
    frames are alive at once (the hashes are taken first: which file wins depends on all of them)."""
    layouts = pos_drop.layouts()
    files = [f for f in pos_drop.scan(layouts) if f.kind == kind and f.business_date == day]
    hashes = {f.path: file_hash(pos_drop.read_bytes(f.path)) for f in files}
    decisions = choose_files(files, hashes)
    store_layout = dict(zip(stores["store_code"], stores["pos_layout"], strict=True))
    for f in files:
        status, reason = decisions[f.path]
        layout = layouts[f.layout]
        ctx = FileContext(f.path, day, f.store_code, hashes[f.path], run_id, asset, max_rejected_rate)
        data = pos_drop.read_bytes(f.path)
        parsed: ParsedFile | None = None
        if status == "loaded":
            if layout.store_from != "column" and f.store_code not in store_layout:
                parsed = _reject(data, layout, ctx, "unknown_store",
                                 f"file {f.path} is for store {f.store_code}, which is not in stores.csv; add the "
                                 "store to stores.csv (or fix the file name) and the file will load on the next run")
            elif kind == "sales" and layout.store_from == "filename" and store_layout[f.store_code] != layout.name:
                parsed = _reject(data, layout, ctx, "layout_mismatch",
                                 f"file {f.path} is named like layout {layout.name} but stores.csv puts store "
                                 f"{f.store_code} on layout {store_layout[f.store_code]}; fix one of them")
            else:
                parsed = parse_pos_file(data, layout, ctx)
                if layout.store_from == "column" and len(parsed.rows):
                    parsed = _drop_unknown_row_stores(parsed, set(store_layout), ctx)
            if parsed.file_error:
                status, reason = "rejected", parsed.file_error
            elif parsed.extra_columns:
                reason = f"schema drift: extra column(s) {', '.join(parsed.extra_columns)} ignored"
        yield parsed, {"path": f.path, "content_hash": hashes[f.path], "size": f.size, "mtime": f.mtime,
                       "kind": kind, "store_code": f.store_code, "business_date": pd.Timestamp(day),
                       "layout": f.layout, "status": status, "reason": reason,
                       "lines": parsed.lines if parsed else _count_lines(data),
                       "rows_loaded": len(parsed.rows) if parsed else 0, "run_id": run_id}


def _send(append, pending: list[pd.DataFrame], checks: list, day: date) -> int:
    """Validate the pending frames as one and append them."""
    rows, check = validated(RAW_POS_SALES, concat(pending), day.isoformat())
    checks.append(check)
    pending.clear()
    return append(rows)


@dg.asset(name="raw_pos_sales", group_name=SOURCES_GROUP, kinds={"csv", "pandas"}, owners=OWNERS,
          partitions_def=daily_partitions, deps=[raw_stores])
def raw_pos_sales_streamed(context: dg.AssetExecutionContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    """raw_pos_sales landed file by file in the day's one transaction (see the module doc)."""
    settings = load_settings()
    stores = warehouse.read(RAW_STORES, columns=["store_code", "pos_layout", "opened_on", "closed_on"])
    checks, totals = [], defaultdict(int)
    for day in partition_dates(context):
        rejected, ledger, day_rows = [], [], 0
        with warehouse.transaction() as tx:
            for spec, where in ((RAW_POS_SALES, {"business_date": day}),
                                (REJECTIONS, {"business_date": day, "asset": "raw_pos_sales"}),
                                (POS_FILE_LEDGER, {"business_date": day, "kind": "sales"})):
                tx.delete(spec, where)
            with tx.appender(RAW_POS_SALES) as append:
                pending: list[pd.DataFrame] = []
                for parsed, entry in iter_day("sales", day, pos_drop, stores, context.run.run_id, "raw_pos_sales",
                                              settings.max_rejected_line_rate):
                    ledger.append(entry)
                    if parsed is None:
                        continue
                    pending.append(parsed.rows)
                    rejected.append(parsed.rejections)
                    if sum(len(p) for p in pending) >= CHUNK_ROWS:  # validation has a fixed cost per call
                        day_rows += _send(append, pending, checks, day)
                if pending:
                    day_rows += _send(append, pending, checks, day)
            rejected_day = concat(rejected)
            ledger_day = pd.DataFrame(ledger) if ledger else POS_FILE_LEDGER.empty()
            tx.append(REJECTIONS, rejected_day)
            tx.append(POS_FILE_LEDGER, ledger_day)
        checks += [reconcile_files(ledger_day, pd.DataFrame(index=range(day_rows)), rejected_day),
                   schema_drift(ledger_day), completeness(stores, ledger_day, day)]
        totals["rows"] += day_rows
        totals["rejected_lines"] += len(rejected_day)
    return dg.MaterializeResult(metadata={"dagster/row_count": totals["rows"],
                                          "rejected_lines": totals["rejected_lines"]})
