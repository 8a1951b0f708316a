"""``retail-etl check``, and ``retail-etl run`` stopping on it before it writes anything.

A wrong setting (an unreachable server, a driver that is not installed, a source file that is not there, a folder
without stores.csv) is one line naming the variable to change, never a traceback and never a password. The source
resources read URLs the same way (``postgres://`` included), never create a SQLite source, and an unreachable
source is a transient failure a run retries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from retail_assets.assets.retry import transient_reason
from retail_assets.resources import SqlSource, Warehouse
from retail_assets.resources.urls import ConfigError
from retail_assets_tests.conftest import platform_environment

UNREACHABLE = "postgres://reader:hunter2@127.0.0.1:1/shop"  # port 1 refuses at once; postgres:// as Heroku writes it


def retail_etl(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The command line as a user runs it, in a process of its own."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RETAIL_") and k != "DAGSTER_HOME"}
    return subprocess.run([sys.executable, "-m", "retail_assets.cli", *args], env={**full, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _env(company: tuple[Path, dict], tmp_path: Path, **changes: str) -> dict[str, str]:
    root, _ = company
    env = platform_environment(root, f"duckdb:///{tmp_path / 'warehouse.duckdb'}", tmp_path / "dagster_home")
    return {**env, **changes}


def test_check_on_a_good_configuration_says_ok_for_every_item_and_creates_nothing(company, tmp_path: Path):
    env = _env(company, tmp_path)
    done = retail_etl("check", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    items = [line for line in lines if line.split()[0] in ("OK", "WARN", "FAIL")]
    assert [line.split()[0] for line in items] == ["OK"] * 8, done.stdout
    for variable in ("RETAIL_ONLINE_STORE_URL", "RETAIL_CRM_URL", "RETAIL_WAREHOUSE_URL", "RETAIL_POS_DROP_DIR",
                     "RETAIL_POS_LAYOUTS_DIR", "DAGSTER_HOME", "RETAIL_PARTITION_START"):
        assert any(variable in line for line in items), variable
    assert any("2025-03-03 .. 2025-03-05" in line for line in items)  # the company's first and last day
    assert not (tmp_path / "warehouse.duckdb").exists() and not (tmp_path / "dagster_home").exists()


def test_check_names_the_variable_and_the_fix_of_each_problem_in_one_line(company, tmp_path: Path):
    (tmp_path / "empty_drop").mkdir()
    (tmp_path / "home_is_a_file").write_text("")
    env = _env(company, tmp_path,
               RETAIL_ONLINE_STORE_URL=UNREACHABLE,
               RETAIL_CRM_URL="mysql+mysqldb://crm:hunter2@crm-db/crm",  # mysqlclient is not installed
               RETAIL_WAREHOUSE_URL=f"duckdb:///{tmp_path / 'no_such_folder' / 'warehouse.duckdb'}",
               RETAIL_POS_DROP_DIR=str(tmp_path / "empty_drop"),
               DAGSTER_HOME=str(tmp_path / "home_is_a_file"))
    done = retail_etl("check", env=env, cwd=tmp_path)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "hunter2" not in output and "Traceback" not in output
    fails = {line.split("=")[0].split()[-1]: line for line in done.stdout.splitlines() if line.startswith("FAIL")}
    assert set(fails) == {"RETAIL_CRM_URL", "RETAIL_WAREHOUSE_URL", "RETAIL_POS_DROP_DIR", "DAGSTER_HOME"}, done.stdout
    # A server out of reach is a warning: the run's steps retry it like any transient failure.
    (shop,) = [line for line in done.stdout.splitlines() if "RETAIL_ONLINE_STORE_URL" in line]
    assert shop.startswith("WARN") and "Connection refused" in shop and "reader:***@" in shop
    assert "fix RETAIL_ONLINE_STORE_URL" in shop
    assert "pip install mysqlclient" in fails["RETAIL_CRM_URL"]
    assert "no_such_folder does not exist" in fails["RETAIL_WAREHOUSE_URL"]
    assert "stores.csv" in fails["RETAIL_POS_DROP_DIR"]
    for variable, line in fails.items():
        assert line.rstrip().endswith(variable) or f"fix {variable}" in line or f"set {variable}" in line, line
    assert not (tmp_path / "no_such_folder").exists()


def test_run_stops_before_writing_anything_when_a_setting_is_wrong(company, tmp_path: Path):
    env = _env(company, tmp_path, RETAIL_CRM_URL="mysql+mysqldb://crm:hunter2@crm-db/crm")
    done = retail_etl("run", env=env, cwd=tmp_path)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "hunter2" not in output
    named = [line for line in output.splitlines() if "RETAIL_CRM_URL" in line]
    assert len(named) == 1 and named[0].startswith("FAIL") and "pip install mysqlclient" in named[0]
    assert "stopped before loading anything" in output
    assert not (tmp_path / "dagster_home").exists()  # no Dagster instance, so no run
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_an_unreachable_source_is_retried_inside_the_run(company, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Not failed before the first step: the run starts, the steps reading the shop are retried by their retry
    policy, and the day's failure is one line naming the shop's variable."""
    import dagster as dg

    env = _env(company, tmp_path, RETAIL_ONLINE_STORE_URL=UNREACHABLE, RETAIL_TRANSIENT_RETRIES="1",
               RETAIL_TRANSIENT_RETRY_SECONDS="0.1")
    done = retail_etl("run", env=env, cwd=tmp_path)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "hunter2" not in output
    assert any(line.startswith("WARN") and "RETAIL_ONLINE_STORE_URL" in line for line in output.splitlines())
    failed = output.split("FAILED:")[1]
    assert "RETAIL_ONLINE_STORE_URL" in failed or "127.0.0.1:1" in failed, output
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        retried = [r for run in instance.get_runs() for r in instance.get_records_for_run(
            run_id=run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records]
    assert retried, "no step was retried"


def test_data_before_partition_start_is_a_warning_naming_the_variable(company, tmp_path: Path):
    env = _env(company, tmp_path, RETAIL_PARTITION_START="2025-03-04")
    done = retail_etl("check", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    warning = [line for line in done.stdout.splitlines() if line.startswith("WARN")]
    assert len(warning) == 1
    assert "RETAIL_PARTITION_START=2025-03-04" in warning[0] and "2025-03-03" in warning[0]


def test_report_on_a_missing_warehouse_fails_in_one_line_and_creates_nothing(company, tmp_path: Path):
    env = _env(company, tmp_path)
    done = retail_etl("report", "--out", str(tmp_path / "report.html"), env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("retail-etl: report:")
    assert "RETAIL_WAREHOUSE_URL" in done.stderr and "does not exist" in done.stderr
    assert not (tmp_path / "warehouse.duckdb").exists() and not (tmp_path / "report.html").exists()


def test_a_missing_sqlite_source_is_an_error_naming_the_variable_and_is_not_created(tmp_path: Path):
    missing = tmp_path / "no_folder" / "online_store.db"
    source = SqlSource(url=f"sqlite:///{missing}", name="online shop")
    with pytest.raises(ConfigError, match="RETAIL_ONLINE_STORE_URL") as info:
        source.table("orders")
    assert "does not exist" in str(info.value)
    assert not missing.parent.exists()

    (tmp_path / "no_folder").mkdir()
    with pytest.raises(ConfigError):
        SqlSource(url=f"sqlite:///{missing}", name="online shop").read(sa.text("SELECT 1"))
    assert not missing.exists()


def test_postgres_scheme_reads_like_postgresql(pg_database: str):
    """``postgres://`` is what many hosts hand out; the sources and the warehouse take it as ``postgresql://``."""
    url = sa.make_url(pg_database).set(drivername="postgres").render_as_string(hide_password=False)
    assert url.startswith("postgres://")
    source = SqlSource(url=url, name="CRM")
    assert source.read(sa.text("SELECT 42 AS answer"))["answer"].tolist() == [42]
    source.engine.dispose()
    warehouse = Warehouse(url=url)
    try:
        assert warehouse.scalar("SELECT 7") == 7
    finally:
        warehouse.dispose()


@pytest.mark.parametrize("url", [UNREACHABLE, UNREACHABLE.replace("postgres://", "postgresql://")])
def test_an_unreachable_source_is_a_transient_failure(url: str):
    """What the online assets call (reflect a table, read a day) fails transiently: the run retries it."""
    from retail_assets.assets.sources.online import extract_orders

    source = SqlSource(url=url, name="online shop")
    for attempt in (lambda: source.table("customers"),
                    lambda: extract_orders(source, date(2025, 3, 3), date(2025, 3, 4))):
        with pytest.raises(Exception) as info:
            attempt()
        reason = transient_reason(info.value)
        assert reason is not None and "refused" in reason.lower(), repr(info.value)
        assert "hunter2" not in str(info.value)
