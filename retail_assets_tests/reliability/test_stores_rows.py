"""One bad row of stores.csv does not stop the chain: it is rejected with its line, value and rule, the other
stores load, and raw_stores' blocking schema check passes.

stores.csv is edited by hand: a store code with a semicolon or a space, a non-ASCII code, an empty name. Before,
such a row passed ``clean_stores``, was written to raw_stores, and the schema check failed every day after (the
CLI said only ``1 blocking asset check failed with ERROR severity:``).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from retail_assets.checks import FAILED_RULES, validate_frame
from retail_assets.layouts import load_layouts
from retail_assets.resources import PosDropFolder, Warehouse
from retail_assets.schemas.sources import RAW_STORES
from retail_assets.transforms.stores import STORES_REQUIRED, clean_stores

HEADER = ",".join(STORES_REQUIRED)
RULE = "str_matches('^[A-Za-z0-9_-]+$')"
LONG = "S" + "9" * 300
# line in the file -> row
ROWS = {
    2: "S1,One,Boston,northeast,US,America/New_York,standard,2020-01-01,",
    3: "S0;DROP,Bobby,Austin,south,US,America/Chicago,standard,2020-01-01,",
    4: "S 2,Space,Austin,south,US,America/Chicago,standard,2020-01-01,",
    5: "Sé,Accent,Lyon,south,FR,Europe/Paris,standard,2020-01-01,",
    6: "S3,,Denver,mountain,US,America/Denver,standard,2020-01-01,",
    7: f"{LONG},Long,Denver,mountain,US,America/Denver,standard,2020-01-01,",
    8: "S4,Four,Austin,south,US,America/Chicago,legacy,,",
}


def _stores_csv(folder: Path, rows: dict[int, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stores.csv").write_text("\n".join([HEADER, *rows.values()]) + "\n", encoding="utf-8")
    return folder


def test_every_row_the_model_refuses_is_rejected_alone_with_line_value_and_rule(tmp_path: Path):
    frame = PosDropFolder(path=str(_stores_csv(tmp_path / "pos_drop", ROWS))).read_stores()
    stores, rejected = clean_stores(frame, load_layouts(None), "run-1")

    reasons = {int(k.removeprefix("line ")): (code, reason)
               for k, code, reason in zip(rejected["source_key"], rejected["reason_code"], rejected["reason"],
                                          strict=True)}
    assert reasons[3] == ("store_code_invalid", f"line 3: store_code 'S0;DROP' breaks rule {RULE}: use letters, "
                                                "digits, _ or -")
    for line, value in ((4, "'S 2'"), (5, "'Sé'")):
        code, reason = reasons[line]
        assert code == "store_code_invalid" and f"line {line}: store_code {value} breaks rule {RULE}" in reason
    assert reasons[6][0] == "missing_value" and "line 6: store_name" in reasons[6][1]
    assert "not_nullable" in reasons[6][1]
    assert {"S1", "S4"} <= set(stores["store_code"])
    # Every line is a store or a rejection, never both, never neither (a code as long as this one may be either,
    # as the model decides); the rejection keeps the row as received.
    assert sorted([*stores["source_line"], *reasons]) == list(ROWS)
    assert set(rejected["record"]) >= {ROWS[3], ROWS[4], ROWS[5]}
    assert set(rejected["asset"]) == {"raw_stores"} and set(rejected["run_id"]) == {"run-1"}
    # What is left passes the model raw_stores' blocking check applies.
    assert validate_frame(RAW_STORES, stores)[1] is None


def test_a_code_used_twice_keeps_its_first_usable_row(tmp_path: Path):
    """The first S1 breaks the model (no name): the second S1 is the store, not a duplicate of a rejected row."""
    rows = {2: "S1,,Boston,northeast,US,America/New_York,standard,2020-01-01,",
            3: "S1,One,Boston,northeast,US,America/New_York,standard,2020-01-01,",
            4: "S1,Again,Boston,northeast,US,America/New_York,standard,2020-01-01,"}
    frame = PosDropFolder(path=str(_stores_csv(tmp_path / "pos_drop", rows))).read_stores()
    stores, rejected = clean_stores(frame, load_layouts(None), "r")
    assert stores[["store_code", "store_name", "source_line"]].values.tolist() == [["S1", "One", 3]]
    assert dict(zip(rejected["source_key"], rejected["reason_code"], strict=True)) == {
        "line 2": "missing_value", "line 4": "duplicate_store"}


def test_clean_rows_are_kept_as_they_were(tmp_path: Path):
    """A file without a bad row: every store, values trimmed, empty as missing, dates as dates, no rejection."""
    rows = {2: " S1 ,One, Boston ,,US,America/New_York,standard,2020-01-01,2024-06-30",
            3: "S2,Two,,,,Europe/Paris,legacy,,"}
    frame = PosDropFolder(path=str(_stores_csv(tmp_path / "pos_drop", rows))).read_stores()
    stores, rejected = clean_stores(frame, load_layouts(None), "r")
    assert rejected.empty
    assert stores["store_code"].tolist() == ["S1", "S2"] and stores["city"].tolist()[0] == "Boston"
    assert pd.isna(stores["region"].tolist()[0]) and pd.isna(stores["opened_on"].tolist()[1])
    assert stores["closed_on"].tolist()[0] == pd.Timestamp("2024-06-30")
    assert stores["source_line"].tolist() == [2, 3] and validate_frame(RAW_STORES, stores)[1] is None


def test_the_raw_stores_asset_loads_the_good_store_and_rejects_the_bad_one(tmp_path: Path):
    """Through Dagster on a DuckDB warehouse: raw_stores and dim_store after it. The schema check passes, the good
    store is in raw_stores and dim_store, the bad row in rejections with its line, value and rule."""
    from retail_assets.assets.sources.pos import raw_stores
    from retail_assets.assets.warehouse.dimensions import dim_store

    drop = _stores_csv(tmp_path / "pos_drop", {2: ROWS[3], 3: ROWS[2]})
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    result = dg.materialize([raw_stores, dim_store], raise_on_error=False,
                            resources={"pos_drop": PosDropFolder(path=str(drop)), "warehouse": Warehouse(url=url)})
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    schema = checks[("raw_stores", "schema")]
    assert schema.passed, schema.metadata.get(FAILED_RULES)
    assert result.success
    warehouse = Warehouse(url=url)
    try:
        assert warehouse.query("SELECT store_code FROM raw_stores")["store_code"].tolist() == ["S1"]
        assert "S1" in set(warehouse.query("SELECT store_code FROM dim_store")["store_code"])
        rejected = warehouse.query("SELECT source_key, reason_code, reason, record FROM rejections "
                                   "WHERE asset = 'raw_stores'")
    finally:
        warehouse.dispose()
    assert rejected.values.tolist() == [[
        "line 2", "store_code_invalid",
        f"line 2: store_code 'S0;DROP' breaks rule {RULE}: use letters, digits, _ or -", ROWS[3]]]


def test_a_failed_schema_check_names_its_rules_and_failing_values():
    """What the CLI prints of a failed ERROR check (``failed_rules``): each broken rule with a few of its values and
    its row count, missing values as empty; the metadata it had before is still there."""
    from retail_assets.assets.common import validated

    frame = pd.DataFrame({
        "store_code": ["S1", "S0;DROP", "S 2"], "store_name": ["One", None, "Two"], "city": None, "region": None,
        "country": None, "timezone": "UTC", "pos_layout": "standard", "opened_on": pd.NaT, "closed_on": pd.NaT,
        "source_line": [2, 3, 4], "run_id": "r"})
    _, check = validated(RAW_STORES, frame)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    text = check.metadata[FAILED_RULES].value
    assert text == f"store_code {RULE}: 'S0;DROP', 'S 2' (2 rows); store_name not_nullable: empty (1 row)"
    assert {"rows_checked", "failure_count", "failures_by_rule", "sample_failure_cases"} <= set(check.metadata)


def test_a_failed_check_over_several_days_names_each_failed_day():
    """Combined over partitions, a failed ERROR check made without ``failed_rules`` (a reconciliation) gets one from
    its figures, per failed day; a WARN check gets none."""
    from retail_assets.checks import RECONCILED_CHECK, combine

    def reconciled(day: str, lines: int, rows: int) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(check_name=RECONCILED_CHECK, passed=lines == rows,
                                   severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"partition": day, "source_lines": lines, "raw_rows": rows})

    warn = dg.AssetCheckResult(check_name="complete", passed=False, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"missing": "S2"})
    out = {r.check_name: r for r in combine([reconciled("2025-03-03", 5, 5), reconciled("2025-03-04", 5, 4),
                                             warn])}
    assert out[RECONCILED_CHECK].metadata[FAILED_RULES].value == (
        "2025-03-04: reconciled: source_lines 5, raw_rows 4")
    assert out[RECONCILED_CHECK].metadata["partitions_failed"].value == 1
    assert FAILED_RULES not in out["complete"].metadata
