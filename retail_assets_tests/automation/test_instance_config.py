"""deploy/dagster.yaml: PostgreSQL storage from environment variables, and a run queue that serialises days."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

DEPLOY_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"


def pg_instance_env(pg_url: str, max_runs: int = 1) -> dict[str, str]:
    url = sa.make_url(pg_url)
    return {"DAGSTER_PG_HOST": url.host or "127.0.0.1", "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": url.username or "postgres", "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": url.database, "RETAIL_MAX_CONCURRENT_RUNS": str(max_runs)}


def test_the_deploy_instance_stores_runs_in_postgres_and_queues_them(pg_database, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    for key, value in pg_instance_env(pg_database, max_runs=1).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon dequeues by
        assert queue.max_concurrent_runs == 1
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits["dagster/partition"] == {"key": "dagster/partition", "limit": 1,
                                               "value": {"applyLimitPerUniqueValue": True}}
        assert_retries_only_dead_runs(instance)
        instance.add_run(dg.DagsterRun(job_name="daily_load", run_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
                                       tags={"dagster/partition": "2025-03-03"}))
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 1
    engine.dispose()


def test_the_deploy_instance_names_a_missing_variable(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_DB", "RETAIL_MAX_CONCURRENT_RUNS"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(Exception, match="DAGSTER_PG_"):
        dg.DagsterInstance.get()


def assert_retries_only_dead_runs(instance: dg.DagsterInstance) -> None:
    """The daemon starts a run again when its process died, not when an asset or a check failed."""
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure is False


def test_the_embedded_instance_retries_only_dead_runs_too(tmp_path, monkeypatch):
    from retail_assets.runner import instance_for
    from retail_assets.settings import load_settings

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with instance_for(load_settings()) as instance:
        assert_retries_only_dead_runs(instance)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
