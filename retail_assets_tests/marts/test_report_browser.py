"""The report of a whole loaded company in a real browser: Chromium (Debian's /usr/bin/chromium, driven by
Playwright) opens the page ``retail-etl report`` wrote, and a full-page screenshot is kept in the test's folder."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.cli import main
from retail_assets.report import product_label, sku_text
from retail_assets.transforms.normalise import normalise_sku

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Each trace of the inventory chart as drawn (decoded): its panel (``meta``), its stock status and the sum of its bars.
INVENTORY_TRACES = """() => document.getElementById('inventory-chart')._fullData.map(
    t => ({panel: t.meta, status: t.name, xs: Array.from(t.x), total: Array.from(t.y).reduce((a, b) => a + b, 0)}))"""

ROW_CELLS = "rows => rows.map(r => [...r.cells].map(c => c.innerText))"


def _svg_texts(locator) -> list[str]:
    """The text of SVG elements (which have no innerText)."""
    return locator.evaluate_all("els => els.map(e => e.textContent)")


def _failed_checks_of_the_run(output: list[str]) -> int:
    match = re.search(r"^failed checks: (\d+)", "\n".join(output), re.MULTILINE)
    assert match, output
    return int(match.group(1))


@pytest.mark.parametrize("loaded_company", ["duckdb"], indirect=True)
def test_report_screenshot_in_chromium(loaded_company: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not CHROMIUM.exists():
        pytest.fail("needs Debian's chromium at /usr/bin/chromium: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright

    warehouse = loaded_company["warehouse"]
    rejected = warehouse.query("SELECT reason_code, COUNT(*) AS n FROM rejections GROUP BY reason_code")
    expected = {str(r.reason_code): int(r.n) for r in rejected.itertuples()}
    assert len(expected) >= 3  # the sample company is dirty on purpose
    stores = set(warehouse.query(  # the chart shows the latest business date's stock
        "SELECT DISTINCT store_code FROM mart_inventory_health "
        "WHERE business_date = (SELECT MAX(business_date) FROM mart_inventory_health)")["store_code"])
    assert "ONLINE" in stores and len(stores) > 1
    skus = set(warehouse.query("SELECT DISTINCT sku FROM mart_product_performance")["sku"])
    warehouse.dispose()  # DuckDB admits one process at a time: let the command's resource open the file

    for key, value in loaded_company["env"].items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "report.html"
    assert main(["report", "--out", str(out)]) == 0
    shot = tmp_path / "report.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(out.as_uri())
            page.locator("#inventory-chart .main-svg").first.wait_for()
            page.locator("#rejections-chart .main-svg").first.wait_for()
            page.screenshot(path=str(shot), full_page=True)

            quality = page.locator("section#data-quality")
            quality.scroll_into_view_if_needed()
            expect(quality).to_be_visible()
            expect(quality.get_by_role("heading", name="Data quality")).to_be_visible()
            # the table of rejected rows by reason: the warehouse's reasons with the warehouse's counts
            table = quality.locator("#rejections-by-reason table")
            expect(table).to_be_visible()
            cells = table.locator("tbody tr").evaluate_all(ROW_CELLS)
            assert {reason: int(n.replace(",", "")) for reason, n in cells} == expected
            # the chart names every reason too (its axis labels are drawn in SVG)
            ticks = _svg_texts(quality.locator("#rejections-chart .ytick text"))
            assert set(expected) <= set(ticks), ticks
            # the failed checks come from the Dagster instance the run wrote to: as many as the run reported
            failed = _failed_checks_of_the_run(loaded_company["output"])
            if failed:
                expect(quality.locator("#failed-checks table tbody tr")).to_have_count(failed)
                expect(quality.locator("#checks-chart .gtitle")).to_have_text(f"Failed checks by day: {failed}")
            else:
                expect(quality.locator("#failed-checks")).to_contain_text("No failed checks")

            # inventory: the stores have their own panel, apart from ONLINE, and its bars are drawn
            traces = page.evaluate(INVENTORY_TRACES)
            store_traces = [t for t in traces if t["panel"] == "stores"]
            assert store_traces and sum(t["total"] for t in store_traces) > 0, traces
            assert {x for t in store_traces for x in t["xs"]} == stores - {"ONLINE"}
            assert {x for t in traces if t["panel"] == "ONLINE" for x in t["xs"]} == {"ONLINE"}
            assert page.locator("#inventory-chart .subplot.xy .point").count() > 0  # stores' bars drawn

            # SKUs: the product chart's labels and the inventory table's product column use one format
            labels = _svg_texts(page.locator(".js-plotly-plot").nth(1).locator(".ytick text"))
            assert labels and all(label.split(" · ")[0] in {sku_text(s) for s in skus} for label in labels), labels
            products = page.locator("section#inventory table.grid tbody tr td:nth-child(2)").all_inner_texts()
            assert products and all(re.fullmatch(r"[A-Z0-9]+ · .+", p) for p in products), products
            assert all(re.fullmatch(r"[A-Z0-9]+ · .+", label) for label in labels), labels
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000


def test_one_format_for_skus() -> None:
    # the catalog writes KT-832954, the facts and POS files KT832954: the page writes both as the warehouse's key
    for raw in (" kt-832954 ", "KT832954", "kt 832954"):
        assert sku_text(raw) == "KT832954" == normalise_sku(pd.Series([raw]))[0]
    assert product_label("AP-035684", "Sage Tee") == product_label("ap035684", "Sage Tee") == "AP035684 · Sage Tee"
    assert product_label("AP035684", None) == "AP035684"
    assert product_label("UNKNOWN", "x") == product_label(None, None) == "SKUs missing from the catalog"


def test_data_quality_without_instance_or_rejections(tmp_path: Path) -> None:
    from retail_assets.report import build_report
    from retail_assets.resources import Warehouse

    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        page = build_report(warehouse, instance_note="no Dagster instance at DAGSTER_HOME (/nowhere)")
    finally:
        warehouse.dispose()
    assert 'id="data-quality"' in page and "No rejected rows" in page and "No POS file refused or held" in page
    assert "Failed checks are not shown: no Dagster instance at DAGSTER_HOME (/nowhere)." in page
    assert page.count("No rows in") == 4  # the four marts; an empty rejections table is good news, not missing
