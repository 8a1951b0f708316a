"""What happens at the sources after a load: cancellations, corrected files, a tier change, a failed load.

Each is the SPEC section 5 rule a data team relies on, shown on both engines through the real Dagster jobs.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from retail_assets.resources import Warehouse
from retail_assets.transforms.pos_files import ACCEPT_TAG

STANDARD_HEADER = ("receipt_id,line_no,sold_at,register_id,cashier_id,sku,quantity,unit_price,discount,loyalty_card,"
                   "payment_method")


@pytest.fixture
def loaded(platform_env: dict) -> dict:
    from retail_assets.runner import run_graph

    lines: list[str] = []
    assert run_graph(echo=lines.append) == 0, "\n".join(lines)
    warehouse = Warehouse(url=platform_env["env"]["RETAIL_WAREHOUSE_URL"])
    yield {**platform_env, "warehouse": warehouse}
    warehouse.dispose()


def _run(job: str, day: str | None = None, **kwargs) -> dg.ExecuteInProcessResult:
    from retail_assets.definitions import defs

    return defs.resolve_job_def(job).execute_in_process(instance=dg.DagsterInstance.get(), partition_key=day,
                                                        raise_on_error=False, **kwargs)


def _catalog_sku(root) -> tuple[str, float]:
    with sqlite3.connect(root / "online_store.db") as conn:
        sku, price = conn.execute("SELECT sku, list_price FROM products ORDER BY product_id LIMIT 1").fetchone()
    return sku, float(price)


def test_source_changes_after_a_load(loaded: dict):
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    root, manifest, wh = loaded["root"], loaded["manifest"], loaded["warehouse"]
    days = manifest["business_dates"]

    # 1. An order paid on day 1 is cancelled afterwards: the next run of day 1 takes it out of the warehouse.
    start, end = (pd.Timestamp(days[0]).tz_localize("America/New_York").tz_convert("UTC").tz_localize(None)
                  + pd.Timedelta(days=i) for i in (0, 1))
    with sqlite3.connect(root / "online_store.db") as conn:
        order_id, = conn.execute("SELECT order_id FROM orders WHERE status IN ('paid', 'shipped', 'delivered') "
                                 "AND placed_at >= ? AND placed_at < ? ORDER BY order_id LIMIT 1",
                                 (str(start), str(end))).fetchone()
        conn.execute("UPDATE orders SET status = 'cancelled', updated_at = '2025-03-20 10:00:00.000000' "
                     "WHERE order_id = ?", (order_id,))
    prefix = f"online:order:{order_id}:%"
    assert wh.scalar("SELECT COUNT(*) FROM fact_sales WHERE sale_line_id LIKE :p", p=prefix) > 0
    assert _run(DAILY_JOB, days[0]).success
    assert wh.scalar("SELECT COUNT(*) FROM fact_sales WHERE sale_line_id LIKE :p", p=prefix) == 0
    assert wh.scalar("SELECT COUNT(*) FROM rejections WHERE reason_code = 'not_a_sale_cancelled' "
                     "AND source_key LIKE :k", k=f"%{order_id}%") > 0

    # 2. A store re-sends a corrected file for day 2: it replaces that store-day, the old file is superseded.
    store, entry = next((s, e) for s, e in manifest["pos"][days[1]].items() if e["layout"] == "standard")
    sku, price = _catalog_sku(root)
    corrected = root / "pos_drop" / "late" / f"sales_{store}_{days[1].replace('-', '')}.csv"
    corrected.parent.mkdir()
    corrected.write_text("\n".join([STANDARD_HEADER,
                                    f"C1,1,{days[1]}T10:00:00,T1,K1,{sku.lower()},3,{price:.2f},1.50,,card",
                                    f"C1,2,{days[1]}T10:00:00,T1,K1,{sku},-1,{price:.2f},0,,card"]) + "\n")
    os.utime(corrected, (time.time(), time.time()))
    day2 = date.fromisoformat(days[1])
    booked = wh.query("SELECT source_file, quantity FROM raw_pos_sales WHERE store_code = :s AND business_date = :d",
                      s=store, d=day2)
    # Two lines for a store-day that booked dozens would remove most of it: held until an operator accepts it.
    assert _run(DAILY_JOB, days[1]).success
    raw = wh.query("SELECT source_file, quantity FROM raw_pos_sales WHERE store_code = :s AND business_date = :d",
                   s=store, d=day2)
    assert sorted(raw["quantity"].tolist()) == sorted(booked["quantity"].tolist()) and len(raw) > 4
    held = wh.scalar("SELECT status FROM pos_file_ledger WHERE path = :p", p=f"late/{corrected.name}")
    assert held == "held"
    assert _run(DAILY_JOB, days[1], tags={ACCEPT_TAG: store}).success
    raw = wh.query("SELECT source_file, quantity FROM raw_pos_sales WHERE store_code = :s AND business_date = :d",
                   s=store, d=day2)
    assert sorted(raw["quantity"].tolist()) == [-1, 3] and set(raw["source_file"]) == {f"late/{corrected.name}"}
    net = wh.scalar("SELECT SUM(f.net_amount) FROM fact_sales f JOIN dim_store s ON s.store_key = f.store_key "
                    "WHERE s.store_code = :s AND f.business_date = :d", s=store, d=day2)
    assert round(float(net), 2) == round(3 * price - 1.50 - price, 2)
    ledger = wh.query("SELECT path, status FROM pos_file_ledger WHERE business_date = :d AND store_code = :s "
                      "AND kind = 'sales'", d=day2, s=store)
    assert dict(zip(ledger["path"], ledger["status"], strict=True))[entry["file"]] == "superseded"

    # 3. A loyalty tier changes at the CRM: a new customer version; the earlier sales keep the old one.
    sale = wh.query("SELECT f.customer_key, c.customer_id, c.crm_contact_id, c.loyalty_tier, c.loyalty_card "
                    "FROM fact_sales f JOIN dim_customer c ON c.customer_key = f.customer_key "
                    "WHERE f.channel = 'store' AND f.customer_key <> -1 ORDER BY f.sale_line_id LIMIT 1").iloc[0]
    new_tier = "platinum" if sale["loyalty_tier"] != "platinum" else "bronze"
    with sqlite3.connect(root / "crm.db") as conn:
        conn.execute("UPDATE contacts SET loyalty_tier = ?, updated_at = '2025-03-10 09:00:00.000000' "
                     "WHERE contact_id = ?", (new_tier, sale["crm_contact_id"]))
    assert _run(REFERENCE_JOB).success
    versions = wh.query("SELECT customer_key, loyalty_tier, valid_from, valid_to, is_current FROM dim_customer "
                        "WHERE customer_id = :c ORDER BY valid_from", c=sale["customer_id"])
    assert versions["loyalty_tier"].tolist()[-2:] == [sale["loyalty_tier"], new_tier]
    assert versions["is_current"].tolist()[-2:] == [False, True]
    assert pd.Timestamp(versions["valid_from"].iloc[-1]) == pd.Timestamp("2025-03-10 09:00:00")
    assert pd.Timestamp(versions["valid_to"].iloc[-2]) == pd.Timestamp("2025-03-10 09:00:00")
    assert _run(DAILY_JOB, days[0]).success  # reloading an old day keeps the old version
    keys = wh.query("SELECT DISTINCT customer_key FROM fact_sales WHERE customer_key IN (:a, :b)",
                    a=int(versions["customer_key"].iloc[-2]), b=int(versions["customer_key"].iloc[-1]))
    assert keys["customer_key"].tolist() == [int(versions["customer_key"].iloc[-2])]

    # A sale after the change points at the new version.
    later = "2025-03-11"
    new_file = root / "pos_drop" / f"sales_{store}_{later.replace('-', '')}.csv"
    new_file.write_text("\n".join([STANDARD_HEADER, f"N1,1,{later}T12:00:00,T1,K1,{sku},1,{price:.2f},0,"
                                                    f"{sale['loyalty_card']},cash"]) + "\n")
    assert _run(DAILY_JOB, later).success
    key = wh.scalar("SELECT customer_key FROM fact_sales WHERE business_date = :d", d=date.fromisoformat(later))
    assert key == int(versions["customer_key"].iloc[-1])
