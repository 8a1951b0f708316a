"""The whole graph on a generated company, through the Dagster instance, on DuckDB and on PostgreSQL.

What the generator wrote down (its manifest) is compared with what landed: per source and business day, row
counts, rejected lines with their reasons, units and net amounts to the cent. Then a day is run again and nothing
may change.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import WarehouseTx
from retail_assets.schemas.warehouse import FACT_SALES


def _frame(warehouse: Warehouse, sql: str, **params) -> pd.DataFrame:
    return warehouse.query(sql, **params)


@pytest.fixture
def loaded(loaded_company: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    for key, value in loaded_company["env"].items():
        monkeypatch.setenv(key, value)
    return loaded_company


def test_raw_tables_hold_exactly_what_the_sources_hold(loaded: dict):
    manifest, wh = loaded["manifest"], loaded["warehouse"]
    raw = _frame(wh, "SELECT CAST(business_date AS VARCHAR(10)) AS day, store_code, source_file, COUNT(*) AS n "
                     "FROM raw_pos_sales GROUP BY 1, 2, 3")
    got = {(r.day, r.store_code): (r.source_file, int(r.n)) for r in raw.itertuples()}
    expected = {(day, store): (s["file"], s["valid_lines"]) for day, stores in manifest["pos"].items()
                for store, s in stores.items()}
    assert got == expected

    rejected = _frame(wh, "SELECT CAST(business_date AS VARCHAR(10)) AS day, source_ref, reason_code, COUNT(*) AS n "
                          "FROM rejections WHERE asset = 'raw_pos_sales' GROUP BY 1, 2, 3")
    got_rej = {(r.day, r.source_ref, r.reason_code): int(r.n) for r in rejected.itertuples()}
    bad_files = {f["file"]: f for f in manifest["bad_files"]}
    expected_rej = {(day, s["file"], code): n for day, stores in manifest["pos"].items() for s in stores.values()
                    for code, n in s["rejected"].items()}
    whole_files = {ref: (code, n) for (_day, ref, code), n in got_rej.items() if ref in bad_files}
    assert whole_files == {f["file"]: (f["reason"], f["lines"]) for f in manifest["bad_files"]
                           if f["reason"] != "no_layout"}
    assert {k: v for k, v in got_rej.items() if k[1] not in bad_files} == expected_rej

    unrecognised = _frame(wh, "SELECT source_ref, reason FROM rejections WHERE reason_code = 'no_layout'")
    assert set(unrecognised["source_ref"]) == {f["file"] for f in manifest["bad_files"] if f["reason"] == "no_layout"}

    inventory = _frame(wh, "SELECT CAST(business_date AS VARCHAR(10)) AS day, store_code, COUNT(*) AS n "
                           "FROM raw_pos_inventory GROUP BY 1, 2")
    assert {(r.day, r.store_code): int(r.n) for r in inventory.itertuples()} == {
        (day, store): n for day, stores in manifest["pos_inventory"].items() for store, n in stores.items()}

    ledger = _frame(wh, "SELECT path, status FROM pos_file_ledger")
    status = dict(zip(ledger["path"], ledger["status"], strict=True))
    assert all(status[p] == "duplicate" for p in manifest["duplicate_files"])
    assert all(status[p] == "superseded" for p in manifest["superseded_files"])
    assert not any(p in status for p in manifest["ignored_files"])  # .part uploads are not touched

    items = _frame(wh, "SELECT CAST(business_date AS VARCHAR(10)) AS day, COUNT(*) AS n FROM raw_online_order_items "
                       "GROUP BY 1")
    assert {r.day: int(r.n) for r in items.itertuples()} == {
        day: d["order_lines"] for day, d in manifest["online"].items() if d["order_lines"]}
    returns = _frame(wh, "SELECT CAST(business_date AS VARCHAR(10)) AS day, COUNT(*) AS n FROM raw_online_returns "
                         "GROUP BY 1")
    assert {r.day: int(r.n) for r in returns.itertuples()} == {
        day: d["returns"] for day, d in manifest["online"].items() if d["returns"]}
    assert wh.scalar("SELECT COUNT(*) FROM raw_crm_contacts") == manifest["crm"]["contacts"]
    assert wh.scalar("SELECT COUNT(*) FROM raw_online_customers") == manifest["online_customers"]
    assert wh.scalar("SELECT COUNT(*) FROM raw_online_products") == manifest["products"]


def test_fact_sales_reconciles_to_the_cent_per_store_and_day(loaded: dict):
    manifest, wh = loaded["manifest"], loaded["warehouse"]
    facts = _frame(wh, "SELECT CAST(f.business_date AS VARCHAR(10)) AS day, s.store_code, COUNT(*) AS n, "
                       "SUM(f.quantity) AS qty, CAST(SUM(f.net_amount) AS VARCHAR(32)) AS net "
                       "FROM fact_sales f JOIN dim_store s ON s.store_key = f.store_key GROUP BY 1, 2")
    got = {(r.day, r.store_code): (int(r.n), int(r.qty), Decimal(r.net).quantize(Decimal("0.01")))
           for r in facts.itertuples()}
    expected = {(day, store): (s["valid_lines"], s["quantity"], Decimal(s["net_amount"]))
                for day, stores in manifest["pos"].items() for store, s in stores.items()}
    for day, d in manifest["online"].items():
        if d["sale_lines"] or d["returns"]:
            expected[(day, "ONLINE")] = (d["sale_lines"] + d["returns"], d["quantity"], Decimal(d["net_amount"]))
    assert got == expected


def test_every_source_line_is_a_fact_or_a_rejection(loaded: dict):
    manifest, wh = loaded["manifest"], loaded["warehouse"]
    pos_source = sum(s["lines"] for stores in manifest["pos"].values() for s in stores.values())
    pos_source += sum(f["lines"] for f in manifest["bad_files"] if f["reason"] != "no_layout")
    pos_fact = wh.scalar("SELECT COUNT(*) FROM fact_sales WHERE source_system = 'pos'")
    pos_rejected = wh.scalar("SELECT COUNT(*) FROM rejections WHERE asset = 'raw_pos_sales'")
    assert pos_source == pos_fact + pos_rejected
    online_source = sum(d["order_lines"] + d["returns"] for d in manifest["online"].values())
    online_fact = wh.scalar("SELECT COUNT(*) FROM fact_sales WHERE source_system = 'online'")
    online_rejected = wh.scalar("SELECT COUNT(*) FROM rejections WHERE asset = 'fact_sales'")
    assert online_source == online_fact + online_rejected
    assert any("rejected rows:" in line for line in loaded["output"])


def test_rerunning_a_day_changes_nothing(loaded: dict):
    from retail_assets.definitions import defs
    from retail_assets.jobs import DAILY_JOB

    wh = loaded["warehouse"]
    day = loaded["manifest"]["business_dates"][1]
    tables = ["raw_pos_sales", "raw_pos_inventory", "raw_online_orders", "raw_online_order_items", "fact_sales",
              "fact_inventory", "rejections", "pos_file_ledger"]

    def snapshot() -> dict[str, pd.DataFrame]:
        out = {}
        for t in tables:
            frame = wh.query(f"SELECT * FROM {t}").drop(columns=["run_id"])  # noqa: S608 - fixed table names
            out[t] = frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)
        return out

    before = snapshot()
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(instance=dg.DagsterInstance.get(), partition_key=day)
    assert result.success
    after = snapshot()
    for t in tables:
        pd.testing.assert_frame_equal(before[t], after[t], obj=t)
    runs = wh.scalar("SELECT COUNT(DISTINCT run_id) FROM fact_sales WHERE business_date = :d",
                     d=pd.Timestamp(day).date())
    assert runs == 1


def test_every_check_result_is_in_the_dagster_instance(loaded: dict):
    """After `retail-etl run`, each asset check of the graph has an evaluation stored in the instance (the UI), but
    freshness, which runs on its own schedule about today's date (test_freshness.py)."""
    from retail_assets.automation.freshness import FRESHNESS_CHECK
    from retail_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    missing = []
    for check_key in defs.resolve_asset_graph().asset_check_keys:
        if check_key.name == FRESHNESS_CHECK:
            continue
        history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
        if not history:
            missing.append(check_key.to_user_string())
    assert missing == []
    fact_sales = dg.AssetCheckKey(dg.AssetKey("fact_sales"), "reconciled")
    latest = instance.event_log_storage.get_asset_check_execution_history(fact_sales, limit=1)[0]
    assert latest.status.value == "SUCCEEDED"


def test_a_failed_load_leaves_the_previous_state(loaded: dict, monkeypatch: pytest.MonkeyPatch):
    """The load raises after the day's old rows are deleted: the transaction rolls back, nothing is half done."""
    from retail_assets.definitions import defs
    from retail_assets.jobs import DAILY_JOB

    wh = loaded["warehouse"]
    day = loaded["manifest"]["business_dates"][1]
    before = wh.query("SELECT sale_line_id, net_amount, run_id FROM fact_sales WHERE business_date = :d "
                      "ORDER BY sale_line_id", d=date.fromisoformat(day))
    assert len(before) > 0
    original = WarehouseTx.delete
    deleted = []

    def delete_then_fail(self: WarehouseTx, spec, where, *also):
        count = original(self, spec, where, *also)
        if spec is FACT_SALES:
            left = self.conn.execute(sa.text("SELECT COUNT(*) FROM fact_sales WHERE business_date = :d"),
                                     {"d": date.fromisoformat(day)}).scalar()
            deleted.append((count, left))
            raise RuntimeError("disk full (simulated)")
        return count

    monkeypatch.setattr(WarehouseTx, "delete", delete_then_fail)
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(instance=dg.DagsterInstance.get(), partition_key=day,
                                                                raise_on_error=False)
    assert not result.success
    assert deleted == [(len(before), 0)]  # the old rows were gone inside the transaction when it failed
    monkeypatch.setattr(WarehouseTx, "delete", original)
    after = wh.query("SELECT sale_line_id, net_amount, run_id FROM fact_sales WHERE business_date = :d "
                     "ORDER BY sale_line_id", d=date.fromisoformat(day))
    pd.testing.assert_frame_equal(before, after)


def test_online_lines_are_conformed_in_the_warehouse(loaded: dict):
    """fact_sales reads no dimension into Python: the statement that conforms the store lines resolves the online
    lines' products and customers too, guest checkouts by their normalised email included."""
    wh = loaded["warehouse"]
    online = wh.query("SELECT f.product_key, f.customer_key, o.customer_id, o.guest_email FROM fact_sales f "
                      "JOIN raw_online_orders o ON f.receipt_ref = 'online:order:' || CAST(o.order_id AS VARCHAR) "
                      "WHERE f.source_system = 'online' AND NOT f.is_return")
    emails = set(wh.query("SELECT source_key FROM bridge_customer_identity WHERE source_system = 'email'")
                 ["source_key"])
    assert len(online) > 100 and (online["product_key"] != -1).mean() > 0.9
    assert (online.loc[online["customer_id"].notna(), "customer_key"] != -1).all()
    guests = online[online["customer_id"].isna() & online["guest_email"].str.strip().str.lower().isin(emails)]
    assert len(guests) > 0 and (guests["customer_key"] != -1).all()
