"""What ``retail-etl`` prints when something fails: one short line per failure, the details in a log file.

No traceback and no SQL statement reaches the terminal; the log file whose path is printed holds them. The summary
of a run is printed whatever the warehouse does, says what the range held (days without data, days skipped, POS
files refused or held) and names the rule and failing values of a failed ERROR check.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from pathlib import Path

from retail_assets.resources import Warehouse
from retail_assets.schemas.warehouse import FACT_SALES
from retail_assets_tests.conftest import platform_environment
from retail_assets_tests.reliability.test_preflight import retail_etl


def _log_path(output: str) -> Path:
    found = re.findall(r"(/\S+/retail-etl-[\w-]+\.log)", output)
    assert found, output
    return Path(found[-1])


def _env(root: Path, tmp_path: Path, warehouse_url: str | None = None, **changes: str) -> dict[str, str]:
    url = warehouse_url or f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return {**platform_environment(root, url, tmp_path / "dagster_home"), **changes}


def test_a_failing_command_prints_one_line_and_logs_its_traceback(tmp_path: Path):
    (tmp_path / "a_file").write_text("")
    env = {"DAGSTER_HOME": str(tmp_path / "dagster_home")}
    done = retail_etl("generate", "--out", str(tmp_path / "a_file" / "company"), env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("retail-etl: generate: Not a directory")
    log = _log_path(done.stderr)
    assert log.parent == tmp_path / "logs"  # beside DAGSTER_HOME
    assert "Traceback" in log.read_text() and "NotADirectoryError" in log.read_text()


def test_a_step_failure_is_one_short_line_and_its_sql_is_in_the_log(company, pg_database: str, tmp_path: Path):
    """fact_sales refuses every row (a CHECK constraint): each day's failure is one line naming the asset and the
    database's reason; the INSERT ... SELECT and the traceback are in the log file only."""
    root, manifest = company
    warehouse = Warehouse(url=pg_database)
    try:
        warehouse.table(FACT_SALES)
        with warehouse.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE fact_sales ADD CONSTRAINT refuse_every_row CHECK (false) NOT VALID")
    finally:
        warehouse.dispose()
    day = manifest["business_dates"][0]
    done = retail_etl("run", "--start", day, "--end", day, env=_env(root, tmp_path, pg_database), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "Traceback" not in output and "INSERT INTO" not in output and "Stack Trace" not in output
    failed = [line for line in output.splitlines() if "asset fact_sales failed" in line]
    assert len(failed) == 1, output
    assert "refuse_every_row" in failed[0] and len(failed[0]) <= 300
    assert max(len(line) for line in output.splitlines()) <= 300
    log = _log_path(output).read_text()
    assert "INSERT INTO fact_sales" in log and "refuse_every_row" in log


def test_a_failed_error_check_names_the_rule_and_failing_values(company, tmp_path: Path):
    root, _ = company
    with sqlite3.connect(root / "crm.db") as crm:  # a tier the model does not know
        crm.execute("UPDATE contacts SET loyalty_tier = 'diamond' WHERE contact_id IN "
                    "(SELECT contact_id FROM contacts ORDER BY contact_id LIMIT 2)")
    done = retail_etl("run", env=_env(root, tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    check = [line for line in output.splitlines() if "raw_crm_contacts / schema (ERROR)" in line]
    assert len(check) == 1, output
    assert "loyalty_tier" in check[0] and "'diamond'" in check[0]
    failed = [line for line in output.splitlines() if "asset raw_crm_contacts failed" in line]
    assert len(failed) == 1 and failed[0].rstrip().endswith("raw_crm_contacts: schema"), failed


def test_the_summary_says_what_the_range_held(company, tmp_path: Path):
    """A range from before RETAIL_PARTITION_START to a day past the data: the skipped day, the day without data,
    and every POS file refused in the range (and the undated ones), one line each; counts labelled by scope."""
    root, manifest = company
    first, second, third = manifest["business_dates"]
    env = _env(root, tmp_path, RETAIL_PARTITION_START=second)
    done = retail_etl("run", "--start", first, "--end", "2025-03-06", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"days skipped before RETAIL_PARTITION_START={second}: 1 ({first})" in out
    assert "days in the range with no source data: 1 (2025-03-06)" in out
    assert f"rows in the range {second} .. 2025-03-06 (tables by business date):" in out
    assert "rows in the whole table (tables not split by business date):" in out
    refused = out.split("POS files refused or held:")[1].split("\n\n")[0].splitlines()[1:]
    expected = {f["file"] for f in manifest["bad_files"]}  # none of them is dated before the second day
    assert {line.split(", ")[2] for line in refused} == expected, out
    unknown = next(line for line in refused if "X999" in line.split(", ")[2])
    assert unknown.strip().startswith(f"X999, {second}, ") and "rejected: " in unknown
    undated = next(line for line in refused if "notes.txt" in line)
    assert undated.strip().startswith("-, -, notes.txt, rejected: ")


def test_the_summary_survives_a_warehouse_it_cannot_read(tmp_path: Path, monkeypatch):
    from retail_assets.preflight import LogFile
    from retail_assets.runner import RunOutcome, summary
    from retail_assets.settings import load_settings

    monkeypatch.setenv("RETAIL_WAREHOUSE_URL", "postgresql://etl:hunter2@127.0.0.1:1/warehouse")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    lines: list[str] = []
    log = LogFile(tmp_path / "run.log")
    outcomes = [RunOutcome("reference", True), RunOutcome("2025-03-03", False, ["2025-03-03: asset x failed: y"])]
    summary(load_settings(), [date(2025, 3, 3)], outcomes, lines.append, log=log)
    text = "\n".join(lines)
    assert "hunter2" not in text
    broken = [line for line in text.splitlines() if "cannot be read" in line]
    assert len(broken) == 1 and "RETAIL_WAREHOUSE_URL" in broken[0] and "Connection refused" in broken[0]
    assert "FAILED:\n  2025-03-03: asset x failed: y" in text and "days loaded: 0 of 1" in text
    assert "Traceback" in log.path.read_text() and str(log.path) in text
