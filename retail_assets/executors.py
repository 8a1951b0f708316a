"""Which executor runs a job's steps, chosen by configuration, not code.

``RETAIL_EXECUTOR=in_process`` (the default) runs every step of a run in the run's own process.
``RETAIL_EXECUTOR=celery`` hands each step to Celery workers (dagster-celery, the ``celery`` extra) through the
broker ``RETAIL_CELERY_BROKER`` (RabbitMQ) with results in ``RETAIL_CELERY_BACKEND`` (Redis): the runs of a
backfill then run days at once across the workers' hosts. The workers start with
``dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml -n <name>``
(docs/scaling.md).

The DuckDB warehouse admits one writing process, so the Celery profile with a DuckDB warehouse is refused when
the definitions load, with one line that says what to change.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, MutableMapping

import dagster as dg

EXECUTOR_VAR = "RETAIL_EXECUTOR"
BROKER_VAR = "RETAIL_CELERY_BROKER"
BACKEND_VAR = "RETAIL_CELERY_BACKEND"
IN_PROCESS = "in_process"
CELERY = "celery"
EXECUTORS = (IN_PROCESS, CELERY)
DEFAULTS: dict[str, str] = {
    EXECUTOR_VAR: IN_PROCESS,
    BROKER_VAR: "pyamqp://guest@127.0.0.1//",
    BACKEND_VAR: "redis://127.0.0.1:6379/0",
}

# Celery settings shared by the runs (which submit steps) and the workers (deploy/celery/celery.yaml holds the
# same, for `dagster-celery worker start`; a test keeps the two equal). Why each: docs/scaling.md.
CELERY_SETTINGS: dict[str, object] = {
    # A step's message is acknowledged when the step has finished, not when a worker takes it: a worker that dies
    # mid-step (killed, out of memory, host lost) leaves the message unacknowledged and the broker hands it to
    # another worker, which runs the step again; each step replaces its day in one transaction.
    "task_acks_late": True,
    # ... also when only the worker's pool process died (the worker's main process would otherwise acknowledge).
    "task_reject_on_worker_lost": True,
    # A worker reserves no step beyond those it runs: the next step goes to whichever worker is free.
    "worker_prefetch_multiplier": 1,
    # On a lost broker connection a worker finishes the step it runs. Celery's alternative, cancelling it, sends
    # the step SIGTERM, which Dagster records as a failed step and so a failed run.
    "worker_cancel_long_running_tasks_on_connection_loss": False,
    # A step whose message comes back (its acknowledgement was lost with the connection) is not run again when
    # its result is already stored as a success in the result backend.
    "worker_deduplicate_successful_tasks": True,
    # A run keeps trying to submit a step while the broker restarts, instead of failing at once; the broker
    # confirms each message it took, so a step is never submitted into a broker going down.
    "task_publish_retry": True,
    "task_publish_retry_policy": {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 2},
    "broker_transport_options": {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 2,
                                 "connect_retries_timeout": 120, "confirm_publish": True},
    "broker_connection_retry_on_startup": True,
    "broker_connection_max_retries": None,
}


class ExecutorSettingError(RuntimeError):
    """RETAIL_EXECUTOR (or what it needs) is not usable: one line with what, why and what to change."""


def _value(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or DEFAULTS[name]).strip()


def executor_name(env: Mapping[str, str] | None = None) -> str:
    """``in_process`` or ``celery``, from RETAIL_EXECUTOR; anything else is an error that lists the choices."""
    env = os.environ if env is None else env
    name = _value(env, EXECUTOR_VAR).lower().replace("-", "_")
    if name not in EXECUTORS:
        raise ExecutorSettingError(
            f"{EXECUTOR_VAR}={env.get(EXECUTOR_VAR)!r} is not an executor; set it to one of {', '.join(EXECUTORS)}")
    return name


def refuse_duckdb(warehouse_url: str) -> None:
    """The Celery profile runs steps in several processes at once: a DuckDB warehouse file admits one writer."""
    if warehouse_url.strip().lower().startswith("duckdb"):
        raise ExecutorSettingError(
            f"{EXECUTOR_VAR}=celery cannot write the DuckDB warehouse ({warehouse_url}): a DuckDB file admits one "
            "writing process and Celery runs steps in many; set RETAIL_WAREHOUSE_URL=postgresql://... or "
            f"{EXECUTOR_VAR}=in_process")


def select_executor(env: MutableMapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor the configuration names. For Celery it also fills the broker and backend variables with their
    defaults (the executor reads them by name, so the UI shows the names, never a URL with a password)."""
    env = os.environ if env is None else env
    if executor_name(env) == IN_PROCESS:
        return dg.in_process_executor
    refuse_duckdb(env.get("RETAIL_WAREHOUSE_URL") or "duckdb:///data/warehouse.duckdb")
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ExecutorSettingError(
            f"{EXECUTOR_VAR}=celery needs dagster-celery, which is not installed ({exc}); "
            "run `pip install -e .[celery]` or set RETAIL_EXECUTOR=in_process") from None
    for name in (BROKER_VAR, BACKEND_VAR):
        if not env.get(name):
            env[name] = DEFAULTS[name]
    return celery_executor.configured(
        {"broker": {"env": BROKER_VAR}, "backend": {"env": BACKEND_VAR}, "config_source": dict(CELERY_SETTINGS)},
        name="celery",
    )


FIRST_PASS_ASSETS = ("raw_online_orders", "raw_online_order_items")


def submit_first_pass(instance: dg.DagsterInstance, first: str, last: str) -> str:
    """Submit the first pass of a parallel backfill (docs/scaling.md): an asset backfill, run by the daemon, of the
    raw online orders and order lines of every date from ``first`` to ``last``. A date's facts look up the order
    lines its returns refer to, placed days earlier, so those must be loaded before dates run at once. Returns the
    backfill's id."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from retail_assets.definitions import defs
    from retail_assets.partitions import daily_partitions

    days = daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=defs.resolve_asset_graph(), partition_names=days,
        asset_selection=[dg.AssetKey(name) for name in FIRST_PASS_ASSETS], backfill_timestamp=time.time(),
        tags={}, dynamic_partitions_store=instance, all_partitions=False, title="online orders first",
        description=None, run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def main(argv: list[str] | None = None) -> int:
    """``python -m retail_assets.executors first-pass --from DAY --to DAY``: submit the first pass to the instance at
    DAGSTER_HOME (the daemon runs it)."""
    import argparse

    from retail_assets.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m retail_assets.executors")
    sub = parser.add_subparsers(dest="command", required=True)
    first_pass = sub.add_parser("first-pass", help="backfill the raw online orders of a range before its days")
    first_pass.add_argument("--from", dest="first", required=True)
    first_pass.add_argument("--to", dest="last", required=True)
    args = parser.parse_args(argv)
    load_settings()
    with dg.DagsterInstance.get() as instance:
        backfill_id = submit_first_pass(instance, args.first, args.last)
    print(f"submitted backfill {backfill_id}: {', '.join(FIRST_PASS_ASSETS)} {args.first} .. {args.last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
