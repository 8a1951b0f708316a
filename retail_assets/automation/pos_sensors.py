"""The POS drop folder's sensors: a day's files new or changed (``pos_drop_sensor``), ``stores.csv`` changed or
files matching no layout (``pos_reference_sensor``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import date

import dagster as dg
import pandas as pd

from retail_assets.automation.common import LOG_DATES, TRIGGER_TAG, duckdb_held, partition_bounds
from retail_assets.automation.drop_watch import DropCursor, LedgerEntry, file_key, fingerprint, plan_tick
from retail_assets.automation.instance_queries import active_run, loaded_at
from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
from retail_assets.resources import PosDropFolder, Warehouse
from retail_assets.schemas.sources import POS_FILE_LEDGER
from retail_assets.settings import DEFINITION_SETTINGS

INTERVAL_SECONDS = DEFINITION_SETTINGS.pos_interval_seconds  # RETAIL_POS_SENSOR_INTERVAL_SECONDS
UNRECOGNISED_ASSET = "pos_unrecognised_files"
HASH_BUDGET_SECONDS = 20  # of hashing per tick; Dagster gives a sensor tick 60 seconds


def reference_not_ready(instance: dg.DagsterInstance) -> str | None:
    """Why a day must not load yet: the stores reference it validates against is missing or being refreshed."""
    if instance.get_latest_materialization_event(dg.AssetKey("raw_stores")) is None:
        return "raw_stores has never been materialised; the days load after the first refresh_reference run"
    run = active_run(instance, REFERENCE_JOB)
    if run is not None:
        return f"refresh_reference run {run.dagster_run.run_id[:8]} is {run.dagster_run.status.value.lower()}"
    return None


def _ledger_reader(warehouse: Warehouse, instance: dg.DagsterInstance):
    """Reads the ledger rows of some dates; None when the warehouse is an embedded DuckDB file a run holds."""
    if duckdb_held(warehouse, instance):
        return None

    def read(days: Sequence[date]) -> dict[date, list[LedgerEntry]]:
        with warehouse.brief_read():
            frame = warehouse.read(POS_FILE_LEDGER, where={"business_date": list(days)},
                                   columns=["business_date", "path", "size", "mtime", "content_hash", "status"])
        out: dict[date, list[LedgerEntry]] = {}
        for row in frame.itertuples(index=False):
            day = pd.Timestamp(row.business_date).date()
            out.setdefault(day, []).append(LedgerEntry(row.path, int(row.size), float(row.mtime),
                                                       None if pd.isna(row.content_hash) else row.content_hash,
                                                       row.status))
        return out

    return read


@dg.sensor(
    name="pos_drop_sensor", job_name=DAILY_JOB, minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches RETAIL_POS_DROP_DIR and requests one daily_load run per business date whose files are "
                "new or changed, once they have stopped changing (RETAIL_POS_SETTLE_SECONDS). Files are keyed by "
                "(path, size, mtime); only unknown ones are hashed, and bytes already loaded (pos_file_ledger) or "
                "requested (cursor) do not trigger again.",
)
def pos_drop_sensor(context: dg.SensorEvaluationContext, pos_drop: PosDropFolder, warehouse: Warehouse):
    cursor = DropCursor.from_json(context.cursor)
    now = time.time()
    files = pos_drop.scan()
    first, last = partition_bounds()
    blocked = reference_not_ready(context.instance)
    reader = None if blocked else _ledger_reader(warehouse, context.instance)
    plan = plan_tick(
        files, cursor, now=now, settle_seconds=pos_drop.settle_seconds, first_day=first, last_day=last,
        read_ledger=reader, content_hash=lambda path: pos_drop.digest(path).content_hash,
        budget_seconds=HASH_BUDGET_SECONDS,
    )
    for iso, paths in list(plan.waiting.items())[:LOG_DATES]:
        context.log.info(f"{iso}: waiting for {len(paths)} file(s) still being written, e.g. {paths[0]}")
    if plan.duplicates:
        context.log.info(f"{len(plan.duplicates)} new file(s) with bytes already loaded or requested, not "
                         f"loaded again: {', '.join(plan.duplicates[:5])}")
    if plan.out_of_range:
        context.log.warning(f"{len(plan.out_of_range)} file(s) dated outside the partitions ({first} .. {last}), "
                            f"e.g. {plan.out_of_range[0]}; set RETAIL_PARTITION_START earlier to load them")
    requests = [
        dg.RunRequest(
            run_key=r.run_key, partition_key=r.day.isoformat(),
            tags={TRIGGER_TAG: "pos_drop", "retail/new_files": str(len(r.new_files))},
        )
        for r in plan.requests
    ]
    for r in plan.requests[:LOG_DATES]:
        context.log.info(f"{r.day}: {len(r.new_files)} new file(s) of {r.files}, e.g. {r.new_files[0]}")
    if len(plan.requests) > LOG_DATES:
        context.log.info(f"... and {len(plan.requests) - LOG_DATES} more business date(s), "
                         f"{plan.requests[LOG_DATES].day} .. {plan.requests[-1].day}")
    skip = None
    if not requests:
        if plan.deferred:
            why = blocked or ("the warehouse is busy (the embedded DuckDB file is held by a run)"
                              if plan.ledger_unavailable else "hashing their files takes more than one tick")
            skip = f"{len(plan.deferred)} business date(s) ready, waiting: {why}"
        elif plan.waiting:
            skip = f"{len(plan.waiting)} business date(s) have files still being written"
        else:
            skip = "no new or changed POS files"
    return dg.SensorResult(run_requests=requests, cursor=plan.cursor.to_json(), skip_reason=skip)


@dg.sensor(
    name="pos_reference_sensor", job_name=REFERENCE_JOB, minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes the reference (refresh_reference) when stores.csv changes or was never loaded, and "
                "materialises pos_unrecognised_files when the set of files whose name matches no layout changes.",
)
def pos_reference_sensor(context: dg.SensorEvaluationContext, pos_drop: PosDropFolder):
    state = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    previous = {p: tuple(v) for p, v in state.get("p", {}).items()}
    pending: dict[str, list] = {}
    requests: list[dg.RunRequest] = []
    new_state: dict[str, object] = {"s": state.get("s"), "u": state.get("u")}

    def stable(path: str, size: int, mtime: float) -> bool:
        key = (int(size), round(mtime, 6))
        ok = mtime <= now - pos_drop.settle_seconds and previous.get(path, key) == key
        if not ok:
            pending[path] = list(key)
        return ok

    try:
        st = os.stat(pos_drop.stores_csv())
    except FileNotFoundError:
        st = None
    if st is not None:
        key = [st.st_size, round(st.st_mtime, 6)]
        if key != state.get("s") and stable("stores.csv", st.st_size, st.st_mtime):
            loaded = loaded_at(context.instance, "raw_stores")
            if loaded is None or loaded < st.st_mtime:
                requests.append(dg.RunRequest(run_key=f"stores:{key[0]}:{key[1]}", tags={TRIGGER_TAG: "stores_csv"}))
                context.log.info("stores.csv changed since raw_stores was last loaded: refreshing the reference")
            new_state["s"] = key

    unrecognised = [f for f in pos_drop.scan() if f.layout is None]
    settled = [stable(f.path, f.size, f.mtime) for f in unrecognised]  # every unsettled file is recorded
    if all(settled):
        fp = fingerprint(file_key(f) for f in unrecognised)
        if fp != state.get("u"):
            if (unrecognised or state.get("u")) and not requests:
                requests.append(dg.RunRequest(run_key=f"unrecognised:{fp[:24]}",
                                              asset_selection=[dg.AssetKey(UNRECOGNISED_ASSET)],
                                              tags={TRIGGER_TAG: "pos_unrecognised"}))
                context.log.info(f"{len(unrecognised)} file(s) match no layout, e.g. "
                                 f"{unrecognised[0].path if unrecognised else '-'}: recording them")
            new_state["u"] = fp
    new_state["p"] = pending
    cursor = json.dumps(new_state, separators=(",", ":"))
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    return dg.SensorResult(cursor=cursor, skip_reason="stores.csv and unrecognised files unchanged")
