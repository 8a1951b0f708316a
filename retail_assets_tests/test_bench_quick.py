"""The load benchmark still runs: ``bench/run.py --quick`` end to end, on the real PostgreSQL and DuckDB.

A benchmark reports numbers, it does not pass or fail on them: this only checks that every measurement ran and
that the report has its shape (the results table and the closing ``end_to_end_vs_copy=`` line).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_its_table_and_ratio(tmp_path: Path, pg_database: str):
    out = tmp_path / "RESULTS.md"  # a database of its own: a benchmark run by hand may be using retail_bench
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out),
                           "--pg-url", pg_database],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"end_to_end_vs_copy=\d+\.\d\d", lines[-1]), lines[-5:]
    rows = [line for line in lines if re.match(r"\| .+ \| (postgres|duckdb) \| \d+\.\d\d \| [\d,]+ \| [\d,]+ \|", line)]
    names = "\n".join(rows)
    for label in ("COPY", "to_sql", "raw_pos_sales", "fact_sales", "DuckDB `read_csv`", "**the day**",
                  "reference_seconds", "history_days 7"):
        assert label in names, f"no timed row for {label}:\n{done.stdout[-3000:]}"
    floors = [row for row in rows if row.startswith("| the design's floor")]
    assert [row.split(" | ")[1] for row in floors] == ["postgres", "duckdb"], "\n".join(rows)
    assert all("raw_seconds" in row for row in floors), floors
    # the floors write the rows the platform stored: the day's facts, on either engine
    day_facts = re.search(r"fact_rows ([\d,]+)", next(r for r in rows if "**the day**" in r)).group(1)
    assert day_facts != "0"
    assert [re.search(r"fact_rows ([\d,]+)", row).group(1) for row in floors] == [day_facts, day_facts], floors
    assert "unindexed_seconds" in floors[0], floors[0]
    assert any(re.match(r"Lower bound of a day on this design, postgres: .* = \d+\.\d\d s, \*\*\d+\.\d\dx\*\*", line)
               for line in lines), done.stdout[-3000:]
    assert "- end_to_end_vs_copy: platform_day / pg_copy_typed" in lines
    assert out.read_text().strip().splitlines()[-1] == lines[-1]
