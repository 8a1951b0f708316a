"""Corrupted inputs of every kind SPEC 2.5 lists: the exact check outcomes, the rejected rows and their reasons.

A drop folder is written by hand here (no generator), loaded through the real assets with the real resources,
and the check evaluations Dagster records are compared with what each corruption must produce.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from retail_assets.resources import Warehouse
from retail_assets.schemas.sources import POS_FILE_LEDGER
from retail_assets_tests.automation.conftest import evaluate
from retail_assets_tests.conftest import empty_sources

DAY = "2025-03-03"
HEADER = ("receipt_id,line_no,sold_at,register_id,cashier_id,sku,quantity,unit_price,discount,loyalty_card,"
          "payment_method")
STORES = """store_code,store_name,city,region,country,timezone,pos_layout,opened_on,closed_on
S1,One,Boston,northeast,US,America/New_York,standard,2020-01-01,
S2,Two,Chicago,midwest,US,America/Chicago,legacy,2020-01-01,
S3,Three,Denver,mountain,US,America/Denver,standard,2020-01-01,
S4,Four,Austin,south,US,America/Chicago,standard,2020-01-01,
S5,Five,Closed,south,US,America/Chicago,standard,2020-01-01,2025-02-01
"""


def line(receipt: str, n: int, qty: str = "1", price: str = "2.50", pay: str = "cash", day: str = DAY) -> str:
    return f"{receipt},{n},{day}T10:00:00,T1,K1,HB-000001,{qty},{price},0,,{pay}"


def write(path: Path, text: str | bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    if mtime:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def drop(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    root = tmp_path / "pos_drop"
    write(root / "stores.csv", STORES)
    # S1: a good file with two bad lines and a drift column, an identical retry, and an upload in progress.
    s1 = "\n".join([HEADER + ",firmware", *(line("R1", i) + ",2.1" for i in range(1, 5)),
                    line("R2", 1, qty="0") + ",2.1", line("R2", 2, pay="bitcoin") + ",2.1"]) + "\n"
    write(root / "a" / "sales_S1_20250303.csv", s1, 1_741_000_000)
    write(root / "retry" / "sales_S1_20250303.csv", s1, 1_741_003_600)
    write(root / "sales_S1_20250303.csv.part", s1[:40])
    # S2 (legacy): a file in UTF-16, not cp1252.
    write(root / "S2_03032025.txt", "TICKET;LINE\r\n1;1\r\n".encode("utf-16"))
    # S3: a file without the quantity column.
    write(root / "sales_S3_20250303.csv.gz", gzip.compress(
        ("receipt_id,line_no,sold_at,register_id,cashier_id,sku,unit_price,discount,loyalty_card,payment_method\n"
         f"R1,1,{DAY}T10:00:00,T1,K1,HB-1,1.00,0,,cash\n").encode()))
    # S4 sends nothing; X9 is no store; a name no layout knows.
    write(root / "sales_X9_20250303.csv", HEADER + "\n" + line("R1", 1) + "\n")
    write(root / "misc" / "readme.txt", "hello\nworld\n")
    env = {"RETAIL_POS_DROP_DIR": str(root), "RETAIL_POS_LAYOUTS_DIR": str(tmp_path / "layouts"),
           **empty_sources(tmp_path), "RETAIL_WAREHOUSE_URL": warehouse_url,
           "DAGSTER_HOME": str(tmp_path / "home")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "home").mkdir()
    yield {"root": root, "env": env}
    shutil.rmtree(root, ignore_errors=True)


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], tuple[bool, str]]:
    return {(e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
            for e in result.get_asset_check_evaluations()}


def _run(job: str, partition: str | None = None) -> dg.ExecuteInProcessResult:
    from retail_assets.definitions import defs

    return defs.resolve_job_def(job).execute_in_process(instance=dg.DagsterInstance.get(), partition_key=partition,
                                                        raise_on_error=False)


def test_each_corruption_gets_its_reason_and_its_check_outcome(drop: dict):
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    reference = _run(REFERENCE_JOB)
    assert reference.success
    assert _checks(reference)[("pos_unrecognised_files", "no_unrecognised_files")] == (False, "WARN")
    daily = _run(DAILY_JOB, DAY)
    assert daily.success
    checks = _checks(daily)
    assert checks[("raw_pos_sales", "schema")] == (True, "ERROR")
    assert checks[("raw_pos_sales", "reconciled")] == (True, "ERROR")
    assert checks[("raw_pos_sales", "no_schema_drift")] == (False, "WARN")
    assert checks[("raw_pos_sales", "complete")] == (False, "WARN")
    complete = next(e for e in daily.get_asset_check_evaluations() if e.check_name == "complete")
    assert complete.metadata["missing"].value == "S2, S3, S4"  # S5 closed in February: not expected

    wh = Warehouse(url=drop["env"]["RETAIL_WAREHOUSE_URL"])
    try:
        raw = wh.query("SELECT receipt_id, line_no, source_file FROM raw_pos_sales ORDER BY receipt_id, line_no")
        rejected = wh.query("SELECT source_ref, source_key, reason_code, reason FROM rejections "
                            "ORDER BY source_ref, source_key")
        ledger = wh.query("SELECT path, status, reason FROM pos_file_ledger ORDER BY path")
    finally:
        wh.dispose()
    assert raw["source_file"].unique().tolist() == ["a/sales_S1_20250303.csv"]  # the copy received first
    assert raw[["receipt_id", "line_no"]].values.tolist() == [["R1", 1], ["R1", 2], ["R1", 3], ["R1", 4]]
    got = set(zip(rejected["source_ref"], rejected["source_key"].fillna(""), rejected["reason_code"], strict=True))
    assert got == {
        ("S2_03032025.txt", "line 2", "decode_error"),
        ("a/sales_S1_20250303.csv", "line 6", "quantity_invalid"),
        ("a/sales_S1_20250303.csv", "line 7", "payment_method_invalid"),
        ("misc/readme.txt", "", "no_layout"),
        ("sales_S3_20250303.csv.gz", "line 2", "missing_column"),
        ("sales_X9_20250303.csv", "line 2", "unknown_store"),
    }
    reasons = dict(zip(rejected["reason_code"], rejected["reason"], strict=False))
    assert "quantity" in reasons["missing_column"] and "UTF-16" in reasons["decode_error"]
    assert "not in stores.csv" in reasons["unknown_store"]
    assert "bitcoin" in reasons["payment_method_invalid"]
    status = dict(zip(ledger["path"], ledger["status"], strict=True))
    assert status == {"a/sales_S1_20250303.csv": "loaded", "retry/sales_S1_20250303.csv": "duplicate",
                      "S2_03032025.txt": "rejected", "sales_S3_20250303.csv.gz": "rejected",
                      "sales_X9_20250303.csv": "rejected", "misc/readme.txt": "rejected"}
    drift = ledger.loc[ledger["path"] == "a/sales_S1_20250303.csv", "reason"].iloc[0]
    assert "firmware" in drift


def test_an_error_check_stops_everything_downstream(drop: dict, monkeypatch: pytest.MonkeyPatch):
    """fact_sales writes a duplicate natural key: its blocking schema check fails and the marts do not run."""
    from retail_assets.assets.warehouse import facts
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    assert _run(REFERENCE_JOB).success
    real = facts.insert_fact_sales

    def duplicating(*args, **kwargs):  # the day's lines inserted twice
        real(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(facts, "insert_fact_sales", duplicating)
    result = _run(DAILY_JOB, DAY)
    checks = _checks(result)
    assert checks[("fact_sales", "schema")] == (False, "ERROR")
    failed = next(e for e in result.get_asset_check_evaluations()
                  if e.asset_key.to_user_string() == "fact_sales" and e.check_name == "schema")
    assert failed.metadata["failure_count"].value >= 1
    assert "unique natural key" in failed.metadata["failures_by_rule"].value
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "fact_sales" in materialized and "raw_pos_sales" in materialized
    assert "mart_daily_sales" not in materialized


def _stores_fixed_tick(instance: dg.DagsterInstance, warehouse: Warehouse, cursor: str | None) -> dg.SensorResult:
    from retail_assets.automation.sensors import pos_reload_after_stores_change

    return evaluate(pos_reload_after_stores_change, instance, {"warehouse": warehouse}, cursor)


def _add_store_and_tick(drop: dict, store_row: str, tick: Callable[[str | None], dg.SensorResult],
                        cursor: str | None) -> dg.SensorResult:
    """``store_row`` added to stores.csv and refresh_reference run: the sensor's next tick asks for DAY again."""
    from retail_assets.jobs import REFERENCE_JOB

    write(drop["root"] / "stores.csv", STORES + store_row)
    assert _run(REFERENCE_JOB).success
    asked = tick(cursor)
    assert [r.partition_key for r in asked.run_requests] == [DAY]
    return asked


def test_a_file_rejected_for_an_unknown_store_loads_once_stores_csv_has_it(drop: dict):
    """sales_X9 is rejected (X9 is not in stores.csv); after X9 is added and refresh_reference has run, the sensor
    asks for that day again, and that run loads the file. A refresh that changes nothing asks for nothing."""
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    instance = dg.DagsterInstance.get()
    warehouse = Warehouse(url=drop["env"]["RETAIL_WAREHOUSE_URL"])

    def tick(cursor: str | None = None) -> dg.SensorResult:
        return _stores_fixed_tick(instance, warehouse, cursor)

    def ledger_status(path: str) -> str:
        ledger = warehouse.read(POS_FILE_LEDGER)
        return ledger.loc[ledger["path"] == path, "status"].item()

    try:
        assert _run(REFERENCE_JOB).success and _run(DAILY_JOB, DAY).success
        assert ledger_status("sales_X9_20250303.csv") == "rejected"
        quiet = tick()
        assert not quiet.run_requests, "X9 is still unknown; the UTF-16 file of S2 is rejected for another reason"

        asked = _add_store_and_tick(drop, "X9,Nine,Miami,south,US,America/New_York,standard,2020-01-01,\n", tick,
                                    quiet.cursor)
        assert asked.run_requests[0].tags["retail/trigger"] == "stores_fixed"

        assert _run(DAILY_JOB, DAY).success
        assert ledger_status("sales_X9_20250303.csv") == "loaded"
        assert warehouse.scalar("SELECT COUNT(*) FROM raw_pos_sales WHERE store_code = 'X9'") == 1

        assert _run(REFERENCE_JOB).success
        assert not tick(asked.cursor).run_requests, "the file loaded: nothing more to reload"
    finally:
        warehouse.dispose()


MULTI_STORE_LAYOUT = r"""name: multi_store
kind: sales
file_pattern: '^multi_(?P<date>\d{8})\.csv$'
file_date_format: '%Y%m%d'
store_from: {column: store}
columns: {receipt_id: receipt_id, line_no: line_no, sku: sku, quantity: quantity, unit_price: unit_price,
          discount: discount, payment_method: payment_method}
sold_at: {columns: [sold_at], format: '%Y-%m-%dT%H:%M:%S'}
sign: signed
required: [receipt_id, line_no, sold_at, sku, quantity, unit_price, discount, payment_method]
"""


def test_lines_rejected_for_an_unknown_store_load_once_stores_csv_has_it(drop: dict):
    """A file with a store column: its line for X8 is rejected (X8 is not in stores.csv) while S1's line loads.
    Once X8 is in stores.csv and refresh_reference has run, the sensor asks for the day again, which loads it."""
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    write(Path(drop["env"]["RETAIL_POS_LAYOUTS_DIR"]) / "multi_store.yaml", MULTI_STORE_LAYOUT)
    header = "store,receipt_id,line_no,sold_at,sku,quantity,unit_price,discount,payment_method"
    write(drop["root"] / "multi_20250303.csv", f"{header}\nS1,M1,1,{DAY}T11:00:00,HB-000002,1,4.00,0,cash\n"
                                               f"X8,M2,1,{DAY}T11:05:00,HB-000002,2,4.00,0,card\n")
    instance = dg.DagsterInstance.get()
    warehouse = Warehouse(url=drop["env"]["RETAIL_WAREHOUSE_URL"])

    def tick(cursor: str | None = None) -> dg.SensorResult:
        return _stores_fixed_tick(instance, warehouse, cursor)

    def x8_lines() -> int:
        return warehouse.scalar("SELECT COUNT(*) FROM raw_pos_sales WHERE store_code = 'X8'")

    try:
        assert _run(REFERENCE_JOB).success and _run(DAILY_JOB, DAY).success
        assert x8_lines() == 0
        assert warehouse.scalar("SELECT COUNT(*) FROM rejections WHERE reason = 'store X8 is not in stores.csv'") == 1
        quiet = tick()
        assert not quiet.run_requests, "X8 is still unknown"

        asked = _add_store_and_tick(drop, "X8,Eight,Tampa,south,US,America/New_York,standard,2020-01-01,\n", tick,
                                    quiet.cursor)

        assert _run(DAILY_JOB, DAY).success
        assert x8_lines() == 1
        assert _run(REFERENCE_JOB).success
        assert not tick(asked.cursor).run_requests, "the line loaded: nothing more to reload"
    finally:
        warehouse.dispose()
