"""The web UI in a real browser: from the asset graph, materialise one partition of one asset and watch it succeed.

`dagster-webserver` serves the code location on a free port with a temporary DAGSTER_HOME and the small company;
Chromium (Debian's /usr/bin/chromium, driven by Playwright) does what a person would do.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retail_assets_tests.automation.conftest import source_env, stop_process_group

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ASSET, DAY = "raw_online_orders", "2025-03-04"
# Launches start at once in the webserver (the sensors and the queue need the daemon, which is not running here).
INSTANCE_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dagster-webserver did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def _orders_placed_on(shop_url: str, day: str) -> int:
    engine = sa.create_engine(shop_url)
    with engine.connect() as conn:
        placed = pd.read_sql("SELECT placed_at FROM orders", conn)["placed_at"]
    engine.dispose()
    local = pd.to_datetime(placed).dt.tz_localize("UTC").dt.tz_convert("America/New_York").dt.date
    return int((local.astype(str) == day).sum())


@pytest.fixture
def webserver(company, tmp_path, monkeypatch):
    root, _ = company
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    warehouse_url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    env = source_env(root, warehouse_url, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    port = _free_port()
    log = tmp_path / "webserver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-m", "retail_assets.definitions",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, proc, log)
        yield {"url": url, "home": home, "env": env, "warehouse_url": warehouse_url, "log": log}
    finally:
        stop_process_group(proc)


def test_materialise_one_partition_from_the_asset_graph(webserver, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium at /usr/bin/chromium: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright

    url = webserver["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # On 127.0.0.1 the UI invites a first visitor to join the community, a second after the page loads,
        # closing whatever menu is open: this visitor has already declined.
        page.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}/asset-groups")  # the global asset graph
            jump = page.get_by_placeholder("Jump to…")
            jump.wait_for()
            jump.fill(ASSET)
            page.get_by_role("menuitem", name=ASSET).wait_for()
            jump.press("ArrowDown")  # the suggestion list re-renders while statuses load: pick it with the keyboard
            jump.press("Enter")
            page.get_by_role("button", name="Materialize selected…").click()

            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text(f"Launch runs to materialize {ASSET}")).to_be_visible()
            show_all = dialog.get_by_text("Show all partitions")
            if show_all.is_visible():
                show_all.click()
            partitions = dialog.locator("input").first
            partitions.fill(DAY)
            partitions.press("Enter")
            expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
            dialog.get_by_role("button", name="Launch 1 run").click()
            expect(dialog).to_be_hidden(timeout=60_000)  # "Launching..." until the run process started

            page.goto(f"{url}/runs")
            newest = page.locator("a[href^='/runs/']").first  # the run list, newest first
            newest.click()
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=120_000)
            page.screenshot(path=str(tmp_path / "run.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
        assert len(records) == 1
        run = records[0].dagster_run
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == DAY
        assert run.asset_selection == {dg.AssetKey(ASSET)}
        event = instance.get_latest_materialization_event(dg.AssetKey(ASSET))
        assert event is not None and event.dagster_event.partition == DAY

    warehouse = sa.create_engine(webserver["warehouse_url"], poolclass=sa.pool.NullPool)
    with warehouse.connect() as conn:
        loaded = conn.exec_driver_sql(f"SELECT count(*) FROM {ASSET} WHERE business_date = DATE '{DAY}'").scalar()
    warehouse.dispose()
    assert loaded == _orders_placed_on(webserver["env"]["RETAIL_ONLINE_STORE_URL"], DAY) > 0
