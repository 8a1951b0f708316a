"""The online shop and the CRM on real servers: MariaDB (MySQL protocol, pymysql) and PostgreSQL.

Each test gets databases of its own on each server, dropped afterwards. ``retail-etl generate --online-store-url
--crm-url`` writes the sample company's shop and CRM there (creating the databases), the whole graph runs on them,
and the warehouse holds exactly what the SQLite run of the same seed holds. The types a server hands back
differently (DECIMAL, DATETIME without zone and TIMESTAMP in a session time zone, TINYINT booleans,
case-insensitive collations) are read the same (``resources/sql_source.py``), and the late-change sensors work on
a server shop as they do on SQLite.

MariaDB is the server on 127.0.0.1:3306 (root, empty password; ``RETAIL_TEST_MYSQL_URL`` to point elsewhere);
``.ci/run`` starts it when it is down. A test that cannot reach it fails with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retail_assets.resources import SqlSource, Warehouse
from retail_assets.resources.urls import ConfigError
from retail_assets_tests.conftest import (
    SMALL_COMPANY,
    drop_pg_database,
    pg_url,
    platform_environment,
)

MYSQL_ADMIN_URL = os.environ.get("RETAIL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
NEW_YORK = ZoneInfo("America/New_York")
DAY = "2025-03-04"


@pytest.fixture(scope="session")
def mysql_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_ADMIN_URL} ({exc.orig}); start it "
                    "(start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd) or set "
                    "RETAIL_TEST_MYSQL_URL")
    yield engine
    engine.dispose()


@dataclass
class Server:
    """Fresh databases on one server for one test; every database named here is dropped afterwards."""

    kind: str
    admin: sa.Engine
    names: list[str] = field(default_factory=list)

    def url(self, create: bool = False, query: str = "") -> str:
        """The URL of a database of a new name; created now when ``create`` (else ``generate`` creates it)."""
        name = f"retail_test_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        if self.kind == "postgresql":
            url = pg_url(name)
        else:
            url = sa.make_url(MYSQL_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        if create:
            with self.admin.connect() as conn:  # the server's default collation, case-insensitive on MariaDB
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"' if self.kind == "postgresql"
                                     else f"CREATE DATABASE `{name}`")
        return url + (f"?{query}" if query else "")

    def drop(self) -> None:
        for name in self.names:
            if self.kind == "postgresql":
                drop_pg_database(self.admin, name)
            else:
                with self.admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(params=["mariadb", "postgresql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    admin = request.getfixturevalue("pg_admin" if request.param == "postgresql" else "mysql_admin")
    found = Server(request.param, admin)
    yield found
    found.drop()


# --- the whole graph on a server shop and CRM, against the SQLite run of the same seed ----------------------------

def _warehouse_state(url: str) -> dict[str, pd.DataFrame]:
    """What the reconciliation compares: facts per store-day and channel (lines, net to the cent), every fact row,
    both SCD2 dimensions and every rejection, without run ids."""
    warehouse = Warehouse(url=url)
    try:
        with warehouse.engine.connect() as conn:
            def table(name: str) -> pd.DataFrame:
                frame = pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn).drop(columns="run_id", errors="ignore")
                return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)

            per_day = pd.read_sql(sa.text(
                "SELECT store_key, business_date, channel, COUNT(*) AS lines, SUM(net_amount) AS net "
                "FROM fact_sales GROUP BY store_key, business_date, channel ORDER BY 1, 2, 3"), conn)
            return {"per_store_day": per_day, **{n: table(n) for n in ("fact_sales", "dim_customer", "dim_product",
                                                                       "rejections")}}
    finally:
        warehouse.dispose()


def _run(env: dict[str, str]) -> list[str]:
    from retail_assets.runner import run_graph

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert run_graph(echo=lines.append) == 0, "\n".join(lines)
    return lines


@pytest.fixture(scope="module")
def sqlite_run(small_company: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The small company on its SQLite files, run once per module: what every server run must match."""
    base = tmp_path_factory.mktemp("sqlite_run")
    shutil.copytree(small_company[0], base / "company")
    url = f"duckdb:///{base / 'warehouse.duckdb'}"
    _run(platform_environment(base / "company", url, base / "dagster_home"))
    return {"state": _warehouse_state(url), "manifest": small_company[1]}


def test_the_graph_on_a_server_shop_and_crm_reconciles_with_sqlite(server: Server, sqlite_run: dict,
                                                                   tmp_path: Path, capsys):
    from retail_assets.cli import main

    shop, crm = server.url(), server.url()  # new names: generate creates the databases
    params = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL_COMPANY.items()]
    assert main(["generate", "--out", str(tmp_path / "company"), *params,
                 "--online-store-url", shop, "--crm-url", crm]) == 0
    printed = capsys.readouterr().out
    assert "set RETAIL_ONLINE_STORE_URL to this URL" in printed and "set RETAIL_CRM_URL to this URL" in printed
    assert not (tmp_path / "company" / "online_store.db").exists() and not (tmp_path / "company" / "crm.db").exists()
    manifest = json.loads((tmp_path / "company" / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(sqlite_run["manifest"])), "the same seed, the same company"

    env = platform_environment(tmp_path / "company", f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
                               tmp_path / "dagster_home")
    env.update(RETAIL_ONLINE_STORE_URL=shop, RETAIL_CRM_URL=crm)
    _run(env)
    state, expected = _warehouse_state(env["RETAIL_WAREHOUSE_URL"]), sqlite_run["state"]
    per_day = state["per_store_day"]
    assert (per_day["channel"] == "online").any() and len(per_day) == len(expected["per_store_day"])
    assert [Decimal(str(n)) for n in per_day["net"]] == [Decimal(str(n)) for n in expected["per_store_day"]["net"]]
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(state[name], frame, obj=name)
    assert len(state["dim_customer"]) > 1 and (state["rejections"]["source_system"] == "online").any()


def test_generate_replaces_its_own_tables_and_refuses_a_database_it_did_not_write(server: Server, tmp_path: Path):
    from retail_assets.generator import generate_company

    small = {**SMALL_COMPANY, "stores": 1, "days": 1, "lines_per_store_day": 5}
    shop, crm = server.url(), server.url()
    first = generate_company(tmp_path / "a", **small, online_store_url=shop, crm_url=crm)
    again = generate_company(tmp_path / "b", **small, online_store_url=shop, crm_url=crm)
    assert first == again
    engine = sa.create_engine(shop.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one() == first["orders"], "not twice"
    engine.dispose()

    foreign = server.url(create=True)
    engine = sa.create_engine(foreign)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (order_id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1)")
    with pytest.raises(ConfigError, match="already has table.*orders.*did not write"):
        generate_company(tmp_path / "c", **small, online_store_url=foreign, crm_url=crm)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM orders").scalar_one() == 1, "nothing dropped"
    engine.dispose()


# --- the types a server hands back ----------------------------------------------------------------------------

# A table written the way shops on these servers write it: money with four decimals, a boolean with a NULL, a
# zoned timestamp (MySQL TIMESTAMP, PostgreSQL timestamptz) inserted from a session five hours east of UTC next to
# a DATETIME without zone, and SKUs that only a case-insensitive collation takes for equal.
TYPES_DDL = {
    "mariadb": "CREATE TABLE kinds (id INTEGER PRIMARY KEY, active BOOLEAN NULL, price DECIMAL(20,4), "
               "zoned TIMESTAMP NULL, plain DATETIME, sku VARCHAR(20)) COLLATE utf8mb4_general_ci",
    "postgresql": "CREATE TABLE kinds (id INTEGER PRIMARY KEY, active BOOLEAN NULL, price NUMERIC(20,4), "
                  "zoned TIMESTAMPTZ NULL, plain TIMESTAMP, sku VARCHAR(20))",
}
TYPES_ROWS = ("INSERT INTO kinds VALUES (1, TRUE, 19.9900, '2025-03-04 05:30:00', '2025-03-04 00:30:00', 'SKU-a1'), "
              "(2, NULL, 0.1000, NULL, '2025-03-04 00:30:00', 'sku-A1 '), "
              "(3, FALSE, 0.2000, '2025-03-04 04:59:59', '2025-03-03 23:59:59', 'SKU-B2')")
FIVE_EAST = {"mariadb": "SET time_zone = '+05:00'", "postgresql": "SET TIME ZONE 'Asia/Karachi'"}
# The reader's own session starts five hours east too (a server whose default zone is not UTC): it must not matter.
SESSION_EAST = {"mariadb": "init_command=SET+time_zone%3D%27%2B05%3A00%27",
                "postgresql": "options=-c%20TimeZone%3DAsia/Karachi"}


def test_decimal_datetime_boolean_and_collation_are_read_the_same_on_each_server(server: Server):
    url = server.url(create=True)
    writer = sa.create_engine(url)
    with writer.begin() as conn:
        conn.exec_driver_sql(TYPES_DDL[server.kind])
        conn.exec_driver_sql(FIVE_EAST[server.kind])
        conn.exec_driver_sql(TYPES_ROWS)
        equal = conn.exec_driver_sql("SELECT COUNT(*) FROM kinds WHERE sku = 'SKU-A1'").scalar_one()
    writer.dispose()
    assert equal == (2 if server.kind == "mariadb" else 0), "the collation under test is (not) case-insensitive"

    for source_url in (url, f"{url}?{SESSION_EAST[server.kind]}"):
        source = SqlSource(url=source_url, name="online shop")
        kinds = source.table("kinds")
        frame = source.read(sa.select(kinds).order_by(kinds.c.id))
        assert frame["active"].tolist() == [True, None, False], "TINYINT(1) read as a boolean, NULL kept"
        assert frame["price"].tolist() == [Decimal("19.99"), Decimal("0.1"), Decimal("0.2")]
        assert sum(frame["price"]) == Decimal("20.29"), "exact: as floats 0.1 + 0.2 is not 0.3"
        assert frame["zoned"].tolist()[0] == pd.Timestamp("2025-03-04 00:30:00"), "naive UTC"
        assert pd.isna(frame["zoned"].tolist()[1]) and frame["zoned"].dt.tz is None
        assert frame["zoned"].tolist()[2] == pd.Timestamp("2025-03-03 23:59:59")
        assert frame["plain"].tolist()[0] == pd.Timestamp("2025-03-04 00:30:00"), "a DATETIME is taken as written"
        assert frame["sku"].tolist() == ["SKU-a1", "sku-A1 ", "SKU-B2"], "text as stored: case, trailing space"
        # A partition's bounds are naive UTC: the zoned column is compared in UTC, whatever the session's zone.
        day = source.read(sa.select(kinds.c.id).where(kinds.c.zoned >= datetime(2025, 3, 4),
                                                      kinds.c.zoned < datetime(2025, 3, 5)))
        assert day["id"].tolist() == [1]
        source.teardown_after_execution(None)


# --- the late-change sensors on a server shop ---------------------------------------------------------------------

def _placed_on(engine: sa.Engine, day: str) -> int:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT order_id, placed_at FROM orders ORDER BY order_id")).all()
    return next(order_id for order_id, placed in rows
                if placed.replace(tzinfo=UTC).astimezone(NEW_YORK).date().isoformat() == day)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_the_online_sensors_see_late_changes_in_a_server_shop(server: Server, small_company, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    """A cancellation after the day was loaded, a return entered late, and an order line edited in place on a
    recent day: the orders, returns and re-check sensors each ask for the day again, as they do on SQLite."""
    from retail_assets.assets.sources.online import raw_online_order_items, raw_online_orders, raw_online_returns
    from retail_assets.automation.sensors import online_orders_sensor, online_recheck_sensor, online_returns_sensor
    from retail_assets.generator import generate_company

    shop, crm = server.url(), server.url()
    generate_company(tmp_path / "company", **SMALL_COMPANY, online_store_url=shop, crm_url=crm)
    env = platform_environment(tmp_path / "company", f"duckdb:///{tmp_path / 'warehouse.duckdb'}", tmp_path / "h")
    env.update(RETAIL_ONLINE_STORE_URL=shop, RETAIL_CRM_URL=crm, RETAIL_TIMEZONE="America/New_York")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resources = {"online_store": SqlSource(url=shop, name="online shop"),
                 "warehouse": Warehouse(url=env["RETAIL_WAREHOUSE_URL"])}
    engine = sa.create_engine(shop.replace("postgresql://", "postgresql+psycopg://"))
    yesterday = (datetime.now(NEW_YORK).date() - timedelta(days=1)).isoformat()

    def tick(sensor, cursor=None):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return sensor(context)

    def load(day: str, *assets) -> None:
        assert dg.materialize(list(assets), instance=instance, resources=resources, partition_key=day).success
        resources["warehouse"].dispose()

    (tmp_path / "h").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "h"), overrides={"telemetry": {"enabled": False}}) as instance:
        load(DAY, raw_online_orders, raw_online_returns)
        orders_quiet = tick(online_orders_sensor)
        returns_quiet = tick(online_returns_sensor)
        assert not orders_quiet.run_requests and not returns_quiet.run_requests
        time.sleep(1)  # a DATETIME keeps whole seconds: the change must fall in a later second than the load

        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET status = 'cancelled', updated_at = :now WHERE order_id = :o"),
                         {"now": _now(), "o": _placed_on(engine, DAY)})
            order_id, line_no = conn.execute(sa.text("SELECT order_id, line_no FROM order_items "
                                                     "ORDER BY order_id, line_no LIMIT 1")).one()
            return_id = conn.execute(sa.text("SELECT COALESCE(MAX(return_id), 0) + 1 FROM returns")).scalar_one()
            conn.execute(sa.text("INSERT INTO returns VALUES (:r, :o, :l, 1, 9.99, :at, 'late')"),
                         {"r": return_id, "o": order_id, "l": line_no, "at": f"{DAY} 17:00:00"})
        asked = tick(online_orders_sensor, orders_quiet.cursor)
        assert [r.partition_key for r in asked.run_requests] == [DAY]
        asked = tick(online_returns_sensor, returns_quiet.cursor)
        assert [(r.partition_key, r.run_key) for r in asked.run_requests] == [(DAY, f"returns:{DAY}:{return_id}")]

        placed = datetime.fromisoformat(f"{yesterday}T11:00:00").replace(tzinfo=NEW_YORK).astimezone(UTC)
        with engine.begin() as conn:
            new_order = conn.execute(sa.text("SELECT MAX(order_id) + 1 FROM orders")).scalar_one()
            conn.execute(sa.text("INSERT INTO orders VALUES (:o, NULL, 'guest@example.com', 'paid', :t, :t, 0, NULL)"),
                         {"o": new_order, "t": placed.strftime("%Y-%m-%d %H:%M:%S")})
            conn.execute(sa.text("INSERT INTO order_items VALUES (:o, 1, 1, 2, 9.99, 0)"), {"o": new_order})
        load(yesterday, raw_online_orders, raw_online_order_items, raw_online_returns)
        assert isinstance(tick(online_recheck_sensor), dg.SkipReason), "the load holds the shop's rows"
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE order_items SET quantity = 3 WHERE order_id = :o"), {"o": new_order})
        asked = tick(online_recheck_sensor)
        assert [r.partition_key for r in asked] == [yesterday]
    engine.dispose()
    resources["online_store"].teardown_after_execution(None)
    resources["warehouse"].dispose()
