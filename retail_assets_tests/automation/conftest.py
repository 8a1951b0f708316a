"""Fixtures of the automation tests: a private company, a temporary instance, resources bound to both."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from retail_assets.resources import PosDropFolder, SqlSource, Warehouse
from retail_assets_tests.conftest import (
    create_pg_database,
    drop_pg_database,
    pg_url,
    platform_environment,
    stop_group,
)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on SQLite in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home), overrides={"telemetry": {"enabled": False}}) as inst:
        yield inst


@pytest.fixture
def drop(company: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The company's sources and an embedded DuckDB warehouse, as resources, with a 1-second settle time."""
    root, manifest = company
    monkeypatch.setenv("RETAIL_POS_SETTLE_SECONDS", "1")  # for definitions a test builds (build_definitions)
    warehouse_url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    env = platform_environment(root, warehouse_url, tmp_path / "dagster_home")
    del env["DAGSTER_HOME"]  # the `instance` fixture owns the instance
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resources = {
        "pos_drop": PosDropFolder(path=env["RETAIL_POS_DROP_DIR"], layouts_dir=env["RETAIL_POS_LAYOUTS_DIR"],
                                  settle_seconds=1),
        "warehouse": Warehouse(url=warehouse_url),
        "online_store": SqlSource(url=env["RETAIL_ONLINE_STORE_URL"], name="online shop"),
        "crm": SqlSource(url=env["RETAIL_CRM_URL"], name="CRM"),
    }
    return {"root": root, "drop_dir": root / "pos_drop", "manifest": manifest, "env": env, "resources": resources,
            "warehouse_url": warehouse_url}


def evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: dict,
             cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


def copy_aged(src: Path, dst: Path, age: float = 3600) -> None:
    """Copy a file and date it ``age`` seconds ago (a finished upload)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    stamp = time.time() - age
    os.utime(dst, (stamp, stamp))


@pytest.fixture
def pg_warehouse_url(pg_admin) -> Iterator[str]:
    """A second fresh PostgreSQL database (``pg_database`` holds the instance), for the warehouse."""
    name = create_pg_database(pg_admin)
    yield pg_url(name)
    drop_pg_database(pg_admin, name)


def source_env(root: Path, warehouse_url: str, home: Path) -> dict[str, str]:
    """The platform's variables (SPEC section 6) for a company at ``root``, reporting in New York time."""
    return {**platform_environment(root, warehouse_url, home), "RETAIL_TIMEZONE": "America/New_York"}


def stop_process_group(proc) -> None:
    """Stop a process started with start_new_session=True and everything it started."""
    stop_group(proc, timeout=15)
