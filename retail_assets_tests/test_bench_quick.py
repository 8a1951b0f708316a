"""The load benchmark still runs: ``bench/run.py --quick`` end to end, on the real PostgreSQL and DuckDB.

A benchmark reports numbers, it does not pass or fail on them: this only checks that every measurement ran and
that the report has its shape (the results table, the rows of a day in one file, which the platform reads in chunks,
and the closing ``end_to_end_vs_copy=`` line).
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
    # the day in one file, read in chunks by the platform on either engine: every line of the file is a raw row or
    # a rejected line, and the raw rows became facts
    one_file = [re.fullmatch(r"\| ([\d,]+) \(one file\) \| (\w+) \| \d+\.\d\d \| [\d,]+ \| ([\d,]+) \| .* \| "
                             r"rows ([\d,]+); rejected ([\d,]+); fact_rows ([\d,]+); cpu .*\|", line)
                for line in lines if "(one file)" in line and line.startswith("|")]
    assert [m.group(2) for m in one_file if m] == ["platform_day", "duckdb_platform_day"], done.stdout[-3000:]
    for m in one_file:
        size, _, peak, rows, rejected, facts = (int(g.replace(",", "")) if g[0].isdigit() else g for g in m.groups())
        assert rows + rejected == size and rows > 0 and facts == rows and peak > 0, m.group(0)
    assert any(line.startswith("`(one file)`: the day's lines all in one sales file") and "262,144 bytes" in line
               for line in lines)
