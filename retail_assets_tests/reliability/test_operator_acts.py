"""The two operator acts on booked POS data, as a person types them: ``retail-etl accept`` applies a held re-send,
``retail-etl withdraw`` removes a store-day on purpose. Both are real ``retail-etl`` processes on a generated
company and a DuckDB warehouse; the summary names the held file; the warehouse is compared store-day by store-day.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from retail_assets.resources import Warehouse
from retail_assets_tests.conftest import platform_environment
from retail_assets_tests.reliability.test_preflight import retail_etl


def _store_days(wh: Warehouse, day: str):
    frame = wh.query("SELECT s.store_code, COUNT(*) AS n, CAST(SUM(f.net_amount) AS DECIMAL(18, 2)) AS net "
                     "FROM fact_sales f JOIN dim_store s ON s.store_key = f.store_key "
                     "WHERE f.business_date = CAST(:d AS DATE) GROUP BY 1 ORDER BY 1", d=day)
    return {r.store_code: (int(r.n), str(r.net)) for r in frame.itertuples()}


def test_accept_applies_a_held_resend_and_withdraw_removes_a_store_day(company, tmp_path: Path):
    root, manifest = company
    wh_url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    env = platform_environment(root, wh_url, tmp_path / "dagster_home")
    day = manifest["business_dates"][1]
    done = retail_etl("run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    store, info = next((s, e) for s, e in sorted(manifest["pos"][day].items()) if e["layout"] == "standard")
    path = root / "pos_drop" / info["file"]
    packed = path.suffix == ".gz"
    lines = (gzip.decompress(path.read_bytes()) if packed else path.read_bytes()).splitlines(keepends=True)
    wh = Warehouse(url=wh_url)
    try:
        before = _store_days(wh, day)
    finally:
        wh.dispose()
    assert before[store][0] > 4
    truncated = b"".join(lines[:3])  # a truncated export: the header and two lines
    path.write_bytes(gzip.compress(truncated) if packed else truncated)
    later = time.time() + 5
    os.utime(path, (later, later))

    done = retail_etl("run", "--start", day, "--end", day, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    held = done.stdout.split("POS files refused or held:")[1].split("\n\n")[0]
    assert f"{store}, {day}, {info['file']}, held: " in held, done.stdout
    wh = Warehouse(url=wh_url)
    try:
        assert _store_days(wh, day) == before  # held: the day keeps every booked line
    finally:
        wh.dispose()

    done = retail_etl("accept", "--date", day, "--store", store, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    wh = Warehouse(url=wh_url)
    try:
        after = _store_days(wh, day)
        assert after[store][0] == 2
        assert {s: v for s, v in after.items() if s != store} == {s: v for s, v in before.items() if s != store}
        status = wh.scalar("SELECT status FROM pos_file_ledger WHERE path = :p AND status <> 'superseded' "
                           "ORDER BY mtime DESC LIMIT 1", p=info["file"])
        assert status == "loaded"
    finally:
        wh.dispose()

    done = retail_etl("withdraw", "--date", day, "--store", store, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = retail_etl("run", "--start", day, "--end", day, env=env, cwd=tmp_path)  # the same bytes stay out
    assert done.returncode == 0, done.stdout + done.stderr
    wh = Warehouse(url=wh_url)
    try:
        withdrawn = _store_days(wh, day)
        assert store not in withdrawn
        assert withdrawn == {s: v for s, v in before.items() if s != store}
        assert wh.scalar("SELECT COUNT(*) FROM raw_pos_sales WHERE store_code = :s AND business_date = "
                         "CAST(:d AS DATE)", s=store, d=day) == 0
        assert wh.scalar("SELECT COUNT(*) FROM pos_file_ledger WHERE path = :p AND status = 'withdrawn'",
                         p=info["file"]) == 1
    finally:
        wh.dispose()
