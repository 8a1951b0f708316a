"""The executor is chosen by configuration: in-process by default, Celery with RETAIL_EXECUTOR=celery; the Celery
profile refuses a DuckDB warehouse when the definitions load. deploy/celery holds the instance and worker config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from retail_assets.executors import (
    BACKEND_VAR,
    BROKER_VAR,
    CELERY_SETTINGS,
    DEFAULTS,
    ExecutorSettingError,
    executor_name,
    select_executor,
)
from retail_assets_tests.scaling.cluster import INSTANCE_YAML, WORKER_YAML, instance_env

PG = "postgresql+psycopg://etl@db.internal:5432/warehouse"


def test_the_default_is_in_process():
    assert executor_name({}) == "in_process"
    assert select_executor({}) is dg.in_process_executor
    assert select_executor({"RETAIL_EXECUTOR": "in_process", "RETAIL_WAREHOUSE_URL": "duckdb:///x.duckdb"}) \
        is dg.in_process_executor


def test_celery_is_chosen_by_configuration_with_broker_and_backend_by_name(monkeypatch):
    env = {"RETAIL_EXECUTOR": "Celery", "RETAIL_WAREHOUSE_URL": PG}
    executor = select_executor(env)
    assert executor.name == "celery"
    monkeypatch.setenv(BROKER_VAR, "pyamqp://guest@mq.internal//")
    monkeypatch.setenv(BACKEND_VAR, "redis://cache.internal:6379/1")
    config = executor.config_schema.resolve_config({}).value["config"]  # read when a run starts, by name
    assert config["broker"] == "pyamqp://guest@mq.internal//"
    assert config["backend"] == "redis://cache.internal:6379/1"
    assert config["config_source"] == CELERY_SETTINGS
    assert env[BROKER_VAR] == "pyamqp://guest@127.0.0.1//" == DEFAULTS[BROKER_VAR]
    assert env[BACKEND_VAR] == "redis://127.0.0.1:6379/0" == DEFAULTS[BACKEND_VAR]

    env = {"RETAIL_EXECUTOR": "celery", "RETAIL_WAREHOUSE_URL": PG, BROKER_VAR: "pyamqp://u@mq//"}
    select_executor(env)
    assert env[BROKER_VAR] == "pyamqp://u@mq//", "a broker that is set is kept"


def test_the_acknowledgement_settings_are_late_acks_without_prefetch():
    assert CELERY_SETTINGS["task_acks_late"] is True
    assert CELERY_SETTINGS["task_reject_on_worker_lost"] is True
    assert CELERY_SETTINGS["worker_prefetch_multiplier"] == 1
    assert CELERY_SETTINGS["worker_deduplicate_successful_tasks"] is True


@pytest.mark.parametrize("url", ["duckdb:///data/warehouse.duckdb", "duckdb:////srv/w.duckdb?memory_limit=4GB"])
def test_celery_with_a_duckdb_warehouse_is_refused_in_one_line(url):
    with pytest.raises(ExecutorSettingError) as caught:
        select_executor({"RETAIL_EXECUTOR": "celery", "RETAIL_WAREHOUSE_URL": url})
    message = str(caught.value)
    assert "\n" not in message
    assert "RETAIL_EXECUTOR=celery" in message and "DuckDB" in message and url in message
    assert "RETAIL_WAREHOUSE_URL=postgresql://" in message and "RETAIL_EXECUTOR=in_process" in message


def test_an_unknown_executor_names_the_choices():
    with pytest.raises(ExecutorSettingError, match=r"RETAIL_EXECUTOR='dask' .* in_process, celery"):
        executor_name({"RETAIL_EXECUTOR": "dask"})


def _load_definitions(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    code = ("from retail_assets.definitions import defs; "
            "print(defs.resolve_job_def('daily_load').executor_def.name)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RETAIL_")}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**clean, "DAGSTER_HOME": str(tmp_path / "home"), **env})


def test_the_definitions_load_with_the_executor_the_configuration_names_and_refuse_celery_on_duckdb(tmp_path):
    done = _load_definitions(tmp_path, RETAIL_EXECUTOR="celery", RETAIL_WAREHOUSE_URL=PG)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "celery"

    done = _load_definitions(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "in_process"

    done = _load_definitions(tmp_path, RETAIL_EXECUTOR="celery")  # the embedded DuckDB warehouse
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("retail_assets.executors.ExecutorSettingError: RETAIL_EXECUTOR=celery cannot write "
                           "the DuckDB warehouse (duckdb:///data/warehouse.duckdb)"), last


def test_the_worker_config_has_the_runs_settings_and_validates(monkeypatch):
    from dagster_celery.cli import get_validated_config

    config = yaml.safe_load(WORKER_YAML.read_text())["execution"]["config"]
    assert config["broker"] == {"env": BROKER_VAR} and config["backend"] == {"env": BACKEND_VAR}
    assert config["config_source"] == CELERY_SETTINGS, "deploy/celery/celery.yaml and executors.py disagree"
    monkeypatch.setenv(BROKER_VAR, "pyamqp://guest@mq.internal//")
    monkeypatch.setenv(BACKEND_VAR, "redis://cache.internal:6379/0")
    validated = get_validated_config(str(WORKER_YAML))
    assert validated["broker"] == "pyamqp://guest@mq.internal//"
    assert validated["backend"] == "redis://cache.internal:6379/0"


def test_the_celery_instance_keeps_runs_in_postgres_runs_days_at_once_one_run_a_date(pg_database, tmp_path,
                                                                                      monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML.read_text())
    for key, value in instance_env(pg_database).items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs > 1
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        for key in ("dagster/partition", "dagster/asset_partition_range_start"):
            assert limits[key] == {"key": key, "limit": 1, "value": {"applyLimitPerUniqueValue": True}}
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
