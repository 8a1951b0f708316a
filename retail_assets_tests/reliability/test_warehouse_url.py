"""A DuckDB warehouse in a folder that does not exist is a mistake to report, not a new empty warehouse to make.

A mistyped RETAIL_WAREHOUSE_URL (or the default ``data/`` before ``retail-etl generate``) would otherwise load into,
or report on, a fresh empty database while the run looks fine. The error is one line that names the variable.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from retail_assets.resources import PosDropFolder, Warehouse
from retail_assets.schemas.sources import RAW_STORES

STORES = """store_code,store_name,city,region,country,timezone,pos_layout,opened_on,closed_on
S1,One,Boston,northeast,US,America/New_York,standard,2020-01-01,
"""


def _error(url: str) -> str:
    warehouse = Warehouse(url=url)
    try:
        with pytest.raises(Exception) as info:  # whatever its class, the message is what a person reads
            warehouse.table(RAW_STORES)
    finally:
        warehouse.dispose()
    return str(info.value)


def test_a_warehouse_file_in_a_missing_folder_is_an_error_naming_the_variable(tmp_path: Path):
    missing = tmp_path / "no_such_folder"
    message = _error(f"duckdb:///{missing / 'warehouse.duckdb'}")
    assert "RETAIL_WAREHOUSE_URL" in message and str(missing) in message and "does not exist" in message
    assert "\n" not in message
    assert not missing.exists()


def test_the_default_relative_path_before_generate_is_an_error_and_makes_no_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    message = _error("duckdb:///data/warehouse.duckdb")
    assert "RETAIL_WAREHOUSE_URL" in message and str(tmp_path / "data") in message
    assert not (tmp_path / "data").exists()


def test_a_new_warehouse_file_in_an_existing_folder_is_made(tmp_path: Path):
    """The rule is about the folder only: a first run on an existing folder creates its warehouse file."""
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    try:
        warehouse.table(RAW_STORES)
        assert warehouse.scalar("SELECT COUNT(*) FROM raw_stores") == 0
    finally:
        warehouse.dispose()
    assert (tmp_path / "warehouse.duckdb").is_file()


def test_an_asset_on_a_warehouse_in_a_missing_folder_fails_with_that_line(tmp_path: Path):
    """Through Dagster: raw_stores fails, its error's first line names the variable, and no folder appears."""
    from retail_assets.assets.sources.pos import raw_stores

    drop = tmp_path / "pos_drop"
    drop.mkdir()
    (drop / "stores.csv").write_text(STORES)
    missing = tmp_path / "typo"
    result = dg.materialize(
        [raw_stores], raise_on_error=False,
        resources={"pos_drop": PosDropFolder(path=str(drop)),
                   "warehouse": Warehouse(url=f"duckdb:///{missing / 'warehouse.duckdb'}")})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "RETAIL_WAREHOUSE_URL" in error.message.strip().splitlines()[0]
    assert not missing.exists()
