"""The report page: built from the marts, written by ``retail-etl report``, and rendered by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from retail_assets.assets.marts import (
    build_mart_customer_360,
    build_mart_daily_sales,
    build_mart_inventory_health,
    build_mart_product_performance,
)
from retail_assets.cli import main
from retail_assets.report import build_report, write_report
from retail_assets.resources import Warehouse

CHART_TITLES = ["Sales trend by channel", "Top 7 products by net revenue", "Categories: net revenue and margin",
                "Customer segments (RFM)", "Inventory at risk on 2025-03-16"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--virtual-time-budget=3000", "--dump-dom"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed to render the report: apt-get install -y chromium")


def _build_marts(warehouse: Warehouse) -> None:
    for offset in range(4):
        build_mart_daily_sales(warehouse, date(2025, 3, 13) + timedelta(days=offset))
    build_mart_product_performance(warehouse)
    build_mart_customer_360(warehouse)
    build_mart_inventory_health(warehouse, date(2025, 3, 16))


def test_report_command_on_each_engine(warehouse: Warehouse, warehouse_url: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _build_marts(warehouse)
    warehouse.dispose()  # DuckDB admits one process at a time: let the command's resource open the file
    monkeypatch.setenv("RETAIL_WAREHOUSE_URL", warehouse_url)
    out = tmp_path / "site" / "report.html"
    assert main(["report", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=", page)  # self-contained: nothing to fetch
    assert "No rows in" not in page
    for title in CHART_TITLES:
        assert title in page, title


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_report_renders_in_a_browser(warehouse: Warehouse, tmp_path: Path) -> None:
    _build_marts(warehouse)
    out = tmp_path / "report.html"
    out.write_text(build_report(warehouse), encoding="utf-8")
    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, out.as_uri()], capture_output=True, text=True,
                         timeout=90, check=True).stdout
    # plotly.js ran: every chart is drawn as SVG, with its title and its data
    assert dom.count('class="main-svg"') >= 2 * len(CHART_TITLES)
    titles = re.findall(r'class="gtitle"[^>]*>(.*?)</text>', dom)
    for title in CHART_TITLES:
        assert any(t.startswith(title) for t in titles), (title, titles)
    assert dom.count('class="point"') > 10  # bars of the bar charts
    assert 'class="scatterlayer' in dom and "S02" in dom and "Net revenue" in dom


def test_report_of_an_empty_warehouse(tmp_path: Path) -> None:
    out = write_report(tmp_path / "report.html", warehouse_url=f"duckdb:///{tmp_path / 'empty.duckdb'}")
    assert out.read_text(encoding="utf-8").count("No rows in") == 4
