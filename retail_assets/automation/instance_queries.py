"""What the automation asks the Dagster instance: when was something loaded, is a run of a job under way."""

from __future__ import annotations

import dagster as dg

ACTIVE_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                   dg.DagsterRunStatus.STARTED]
EXECUTING_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def loaded_at(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> float | None:
    """When the data of the latest materialisation of ``asset`` (one partition of it) was read from its source.

    That is the start of the run that materialised it (epoch seconds), not the event's time: a change committed
    while the run was extracting may have been missed, so it counts as newer than the load.
    """
    records = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset),
                                    asset_partitions=[partition] if partition is not None else None)
    result = instance.fetch_materializations(records, limit=1)
    if not result.records:
        return None
    record = result.records[0]
    run = instance.get_run_record_by_id(record.run_id) if record.run_id else None
    if run is not None and run.start_time is not None:
        return float(run.start_time)
    return float(record.timestamp)


def active_run(instance: dg.DagsterInstance, job_name: str | None = None,
               statuses: list[dg.DagsterRunStatus] | None = None) -> dg.RunRecord | None:
    """A queued or running run (of ``job_name``), if there is one."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=statuses or ACTIVE_STATUSES), limit=1
    )
    return records[0] if records else None


def partition_busy(instance: dg.DagsterInstance, partition: str) -> bool:
    """Whether a run of the business date ``partition`` is queued or running (it will read the sources anew)."""
    return bool(instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": partition}, statuses=ACTIVE_STATUSES), limit=1))
