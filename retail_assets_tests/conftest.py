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
