"""Fixtures on real engines: SQLite sources, DuckDB and PostgreSQL warehouses, a temporary DAGSTER_HOME.

PostgreSQL is the server on 127.0.0.1:5432 (``RETAIL_TEST_PG_URL`` to point elsewhere); each test that asks for
it gets a database of its own, dropped afterwards. When the server cannot be reached the tests that need it fail
with the reason: ``.ci/run`` and ``python3 -m retail_assets test`` start it on this kind of machine.
"""

from __future__ import annotations

import os
import shutil
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
    name = f"retail_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


@pytest.fixture
def platform_env(company: tuple[Path, dict], warehouse_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> dict:
    """The environment of a whole platform on the company's sources and the warehouse under test."""
    root, manifest = company
    env = {
        "RETAIL_POS_DROP_DIR": str(root / "pos_drop"),
        "RETAIL_POS_LAYOUTS_DIR": str(root / "layouts"),
        "RETAIL_ONLINE_STORE_URL": f"sqlite:///{root / 'online_store.db'}",
        "RETAIL_CRM_URL": f"sqlite:///{root / 'crm.db'}",
        "RETAIL_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "dagster_home").mkdir()
    return {"root": root, "manifest": manifest, "env": env}
