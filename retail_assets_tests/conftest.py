"""Fixtures on real engines: SQLite sources, DuckDB and PostgreSQL warehouses, a temporary DAGSTER_HOME.

PostgreSQL is the server on 127.0.0.1:5432 (``RETAIL_TEST_PG_URL`` to point elsewhere); each test that asks for
it gets a database of its own, dropped afterwards. When the server cannot be reached the tests that need it fail
with the reason: ``.ci/run`` and ``python3 -m retail_assets test`` start it on this kind of machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("RETAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SMALL_COMPANY = {"stores": 4, "days": 3, "start": date(2025, 3, 3), "lines_per_store_day": 60, "seed": 7}


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}); start it "
                    "(pg_ctlcluster --skip-systemctl-redirect 15 main start) or set RETAIL_TEST_PG_URL")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_database(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its URL."""
    name = create_pg_database(pg_admin)
    yield pg_url(name)
    drop_pg_database(pg_admin, name)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The warehouse on each engine the platform supports."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture(scope="session")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A small generated company (read-only for tests: copy it before changing anything)."""
    from retail_assets.generator import generate_company

    out = tmp_path_factory.mktemp("company")
    manifest = generate_company(out, **SMALL_COMPANY)
    return out, manifest


@pytest.fixture
def company(small_company: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict]:
    """A private copy of the small company, free to change."""
    src, manifest = small_company
    dst = tmp_path / "company"
    shutil.copytree(src, dst)  # copy2 keeps the mtimes, which decide which of two files wins
    return dst, manifest


def engine_warehouse(request: pytest.FixtureRequest, folder: Path) -> tuple[str, str | None]:
    """For a fixture parametrised by engine: the warehouse URL (a DuckDB file in ``folder``, or a new PostgreSQL
    database) and the PostgreSQL database's name, for ``drop_pg_database`` afterwards (None for DuckDB)."""
    if request.param == "duckdb":
        return f"duckdb:///{folder / 'warehouse.duckdb'}", None
    database = create_pg_database(request.getfixturevalue("pg_admin"))
    return pg_url(database), database


def pg_url(database: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def create_pg_database(admin: sa.Engine) -> str:
    name = f"retail_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_sources(folder: Path) -> dict[str, str]:
    """An online shop and a CRM with their tables and no rows (SQLite files in ``folder``); their URLs."""
    from retail_assets.generator.schema import crm_metadata, online_metadata

    urls = {"RETAIL_ONLINE_STORE_URL": f"sqlite:///{folder / 'online_store.db'}",
            "RETAIL_CRM_URL": f"sqlite:///{folder / 'crm.db'}"}
    for url, metadata in zip(urls.values(), (online_metadata, crm_metadata), strict=True):
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        engine.dispose()
    return urls


def platform_environment(root: Path, warehouse_url: str, home: Path) -> dict[str, str]:
    """The variables of SPEC section 6 for a company at ``root`` and a warehouse."""
    return {
        "RETAIL_POS_DROP_DIR": str(root / "pos_drop"),
        "RETAIL_POS_LAYOUTS_DIR": str(root / "layouts"),
        "RETAIL_ONLINE_STORE_URL": f"sqlite:///{root / 'online_store.db'}",
        "RETAIL_CRM_URL": f"sqlite:///{root / 'crm.db'}",
        "RETAIL_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(home),
    }


@pytest.fixture
def platform_env(company: tuple[Path, dict], warehouse_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> dict:
    """The environment of a whole platform on the company's sources and the warehouse under test."""
    root, manifest = company
    env = platform_environment(root, warehouse_url, tmp_path / "dagster_home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "dagster_home").mkdir()
    return {"root": root, "manifest": manifest, "env": env}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded_company(request: pytest.FixtureRequest, small_company: tuple[Path, dict],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A copy of the small company run through ``retail-etl run`` once per module and engine (read-only)."""
    from retail_assets.resources import Warehouse
    from retail_assets.runner import run_graph

    base = tmp_path_factory.mktemp(f"loaded_{request.param}")
    shutil.copytree(small_company[0], base / "company")
    url, database = engine_warehouse(request, base)
    env = platform_environment(base / "company", url, base / "dagster_home")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        lines: list[str] = []
        code = run_graph(echo=lines.append)
        assert code == 0, "\n".join(lines)
        warehouse = Warehouse(url=url)
        yield {"root": base / "company", "manifest": small_company[1], "env": env, "warehouse": warehouse,
               "output": lines, "backend": request.param}
        warehouse.dispose()
    if database:
        drop_pg_database(request.getfixturevalue("pg_admin"), database)


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started with start_new_session=True and everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    with contextlib.suppress(ProcessLookupError):  # children the group leader left behind
        os.killpg(proc.pid, signal.SIGKILL)


# --- the fast inner loop -------------------------------------------------------------------------------------------
# `python3 -m retail_assets test -m "not slow"` leaves out the tests below (marked `slow` here, the one place that says
# which are slow and why); CI runs everything. Chosen by measured durations (`pytest --durations=0`): the servers,
# browser, daemon, Celery, benchmark, command-line and whole-graph tests, and single tests of many seconds.
# Keys: a module, a test (all its parameters) or one parametrised case, relative to this folder.
SLOW = {
    "automation/test_daemon.py": "a dagster-daemon process: sensors, run queue and a backfill in real time",
    "automation/test_webserver_ui.py": "dagster-webserver and Chromium",
    "automation/test_backfill.py": "`dagster job backfill` processes through the run queue",
    "automation/test_alerts.py": "failing runs told to SMTP and HTTP servers on localhost",
    "marts/test_report_browser.py": "the report in Chromium, on a company loaded on each engine",
    "marts/test_report.py::test_report_renders_in_a_browser": "Chromium",
    "scaling/test_celery.py": "a Celery cluster (RabbitMQ, Redis, two workers, a daemon): ten-day backfills",
    "sources/test_server_sources.py": "the whole graph on MariaDB and PostgreSQL sources, against a SQLite run",
    "test_bench_quick.py": "bench/run.py --quick: every measurement a process of its own",
    "e2e/test_run_graph.py": "the whole graph on a generated company, once per engine",
    "e2e/test_changes.py": "the whole graph, then source changes and reloads, on both engines",
    "e2e/test_uci.py": "the real UCI Online Retail files through the whole graph, on both engines",
    "e2e/test_demo_history.py": "the demo's two loads through `retail-etl` processes",
    "quality/test_checks.py": "the reference and daily jobs run again and again, on both engines",
    "reliability/test_drop_safety.py": "daily_load run after run on a company loaded once per engine",
    "reliability/test_operator_acts.py": "`retail-etl` processes loading, accepting and withdrawing store-days",
    "reliability/test_chunked_day.py": "a company through the graph twice, files whole and in chunks",
    "reliability/test_concurrent_ddl.py": "first runs racing in processes of their own on PostgreSQL",
    "reliability/test_cli_errors.py": "`retail-etl` processes running the graph, failing each way",
    "reliability/test_preflight.py": "`retail-etl check`, `run` and `report` processes, and a run waiting on retries",
    "reliability/test_chunked_parse.py": "every awkward file read whole and in chunks down to one byte, in Python",
    "automation/test_pos_drop_sensor.py::test_a_busy_duckdb_warehouse_defers_the_day_instead_of_failing":
        "waits out a DuckDB lock held by another process",
    "automation/test_retry.py::test_a_duckdb_file_held_past_the_wait_is_retried": "waits out a held DuckDB file",
    "automation/test_retry.py::test_a_warehouse_out_of_reach_for_a_while_is_retried": "a run waiting on retries",
    "automation/test_online_and_daily.py::test_recent_rows_deleted_or_edited_in_the_shop_reload_their_day":
        "several daily runs and sensor ticks",
    "automation/test_online_and_daily.py::test_a_return_entered_after_its_day_was_loaded_reloads_that_day":
        "several daily runs and sensor ticks",
    "transforms/test_facts.py::test_pos_performance_smoke_is_correct_on_200k_rows": "200,000 lines on both engines",
    "scaling/test_executors.py::test_the_definitions_load_with_the_executor_the_configuration_names_and_refuse_celery"
    "_on_duckdb": "loads the definitions in fresh processes, once per executor",
    "test_generator.py::test_scale_smoke_keeps_memory_modest": "a company generated under tracemalloc",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of SLOW `slow` (with the reason); warn of a key that names no test any more."""
    here = Path(__file__).parent
    for key in SLOW:
        module, _, test = key.partition("::")
        path = here / module
        if not path.is_file() or (test and f"def {test.partition('[')[0]}(" not in path.read_text()):
            config.issue_config_time_warning(pytest.PytestConfigWarning(f"SLOW in {__file__}: no test {key}"), 2)
    for item in items:
        module = item.path.relative_to(here).as_posix() if item.path.is_relative_to(here) else ""
        test = f"{module}::{item.nodeid.partition('::')[2]}"
        reason = SLOW.get(test) or SLOW.get(test.partition("[")[0]) or SLOW.get(module)
        if reason:
            item.add_marker(pytest.mark.slow(reason=reason))
