"""The real UCI Online Retail files as the POS files of one store, through the whole graph, on both engines.

The expected figures are computed here straight from the gzipped CSVs with the csv module and Decimal, not by
any code of the platform: per day, the number of lines, and units and net amount of the lines that are sales.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from retail_assets.resources import Warehouse
from retail_assets_tests.conftest import empty_sources

UCI = Path(__file__).parent.parent / "fixtures" / "uci"


def independent_figures() -> dict[str, dict]:
    """Per day: lines, and lines/units/net of the lines a retailer can book (price >= 0 in whole cents)."""
    out = {}
    for path in sorted((UCI / "pos_drop" / "uk").glob("*.csv.gz")):
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode("utf-8"))))
        booked = [r for r in rows if Decimal(r["UnitPrice"]) >= 0
                  and Decimal(r["UnitPrice"]) == Decimal(r["UnitPrice"]).quantize(Decimal("0.01"))]
        out[path.name[:10]] = {
            "lines": len(rows),
            "booked": len(booked),
            "units": sum(int(r["Quantity"]) for r in booked),
            "net": sum((int(r["Quantity"]) * Decimal(r["UnitPrice"]) for r in booked), Decimal("0.00")),
        }
    return out


@pytest.fixture
def uci_env(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    shutil.copytree(UCI / "pos_drop", tmp_path / "pos_drop")
    env = {
        "RETAIL_POS_DROP_DIR": str(tmp_path / "pos_drop"),
        "RETAIL_POS_LAYOUTS_DIR": str(UCI / "layouts"),
        **empty_sources(tmp_path),
        "RETAIL_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_uci_days_land_to_the_line_and_to_the_cent(uci_env: dict):
    from retail_assets.runner import run_graph

    lines: list[str] = []
    assert run_graph(echo=lines.append) == 0, "\n".join(lines)
    expected = independent_figures()
    wh = Warehouse(url=uci_env["RETAIL_WAREHOUSE_URL"])
    try:
        raw = wh.query("SELECT CAST(business_date AS VARCHAR(10)) AS day, COUNT(*) AS n FROM raw_pos_sales GROUP BY 1")
        rejected = wh.query("SELECT CAST(business_date AS VARCHAR(10)) AS day, reason_code, COUNT(*) AS n "
                            "FROM rejections GROUP BY 1, 2")
        facts = wh.query("SELECT CAST(business_date AS VARCHAR(10)) AS day, COUNT(*) AS n, SUM(quantity) AS units, "
                         "CAST(SUM(net_amount) AS VARCHAR(32)) AS net, "
                         "SUM(CASE WHEN customer_key = -1 THEN 1 ELSE 0 END) AS anonymous FROM fact_sales GROUP BY 1")
    finally:
        wh.dispose()
    raw_n = {r.day: int(r.n) for r in raw.itertuples()}
    rej_n = Counter()
    for r in rejected.itertuples():
        assert r.reason_code == "price_invalid"  # negative bad-debt adjustments and sub-cent prices, nothing else
        rej_n[r.day] += int(r.n)
    for day, figures in expected.items():
        assert raw_n[day] + rej_n[day] == figures["lines"], day
        assert raw_n[day] == figures["booked"], day
    got = {r.day: (int(r.n), int(r.units), Decimal(r.net).quantize(Decimal("0.01")), int(r.anonymous))
           for r in facts.itertuples()}
    # The CRM here is empty, so no CustomerID is a known loyalty card: every line is customer -1.
    assert got == {day: (f["booked"], f["units"], f["net"], f["booked"]) for day, f in expected.items()}
