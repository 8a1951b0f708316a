"""The benchmark's report: the markdown that goes to ``bench/RESULTS.md`` (or ``--out``) and to standard output.

The results table of one business day, the lower bound of a day on this design under it, the scaling table, the
header that says where and how it was measured, and the closing ``end_to_end_vs_copy=X.XX`` ratio.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from harness import DAY, Outcome, machine, pg_version, versions


def main_table(outcomes: list[Outcome], limits: dict[str, float | None], runs: int) -> list[str]:
    lines = ["| measurement | engine | seconds (median) | lines/s | peak RSS MB | vs limit | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for o in outcomes:
        m = o.measure
        limit = limits.get(m.engine)
        if o.median is None:
            lines.append(f"| {m.label} | {m.engine} | - | - | - | - | {o.error or 'not run'} |")
            continue
        ratio = f"{o.median / limit:.2f}x" if limit else "-"
        note = [f"{len(o.seconds)} run(s): " + ", ".join(f"{s:.2f}" for s in o.seconds)]
        for key in ("rejected", "fact_rows", "parse_seconds", "validate_seconds", "reference_seconds", "history_days",
                    "raw_seconds", "fact_seconds", "unindexed_seconds"):
            if key in o.extra:
                value = o.extra[key]
                note.append(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value:,}")
        if "cpu_seconds" in o.extra:
            note.append(f"cpu {o.extra['cpu_seconds']:.2f} s")
        lines.append(f"| {m.label} | {m.engine} | {o.median:.2f} | {o.lines / o.median:,.0f} | "
                     f"{o.peak_mb:,.0f} | {ratio} | {'; '.join(note)} |")
    return lines


def scale_rows(results: list[Outcome], n_lines: int, stores: int, label: str) -> list[str]:
    """The scaling table's rows of one run of each measurement on a day of ``n_lines`` lines in ``stores`` files."""
    base = {r.measure.engine: r.median for r in results if r.measure.role == "limit"}
    out = []
    for r in results:
        if r.median is None:
            if r.error and "fact_sales" not in (r.error or ""):
                out.append(f"| {label} | {r.measure.name} | - | - | {r.peak_mb or 0:,.0f} | - | {r.error} |")
            continue
        limit = base.get(r.measure.engine)
        note = [f"{key} {r.extra[key]:,}" for key in ("rows", "rejected", "fact_rows") if key in r.extra
                and stores == 1]
        note.append(f"cpu {r.extra.get('cpu_seconds', 0):.2f} s")
        out.append(f"| {label} | {r.measure.name} | {r.median:.2f} | {n_lines / r.median:,.0f} | "
                   f"{r.peak_mb:,.0f} | {f'{r.median / limit:.2f}x' if limit else '-'} | {'; '.join(note)} |")
    return out


def scale_table(rows: list[str], one_file: bool) -> list[str]:
    """The scaling table around its rows, and what its one-file rows are when there are any."""
    table = rows
    if table:
        table = ["| lines | measurement | seconds | lines/s | peak RSS MB | vs limit | note |",
                 "|---:|---|---:|---:|---:|---:|---|", *table]
    if one_file:
        from retail_assets.settings import DEFAULTS

        chunk = int(os.environ.get("RETAIL_POS_CHUNK_BYTES", DEFAULTS["RETAIL_POS_CHUNK_BYTES"]))
        table += ["", f"`(one file)`: the day's lines all in one sales file of one store "
                      f"(`sales_S0001_{DAY:%Y%m%d}.csv`), which the platform reads in chunks of {chunk:,} bytes "
                      "(`RETAIL_POS_CHUNK_BYTES`); the note gives the day's raw rows, rejected lines and fact "
                      "rows."]
    return table


def end_to_end_ratio(by_name: dict[str, Outcome], limits: dict[str, float | None]) -> tuple[str, float]:
    """(what was divided by what, the ratio): the day against PostgreSQL's ``COPY``, or the DuckDB pair."""
    e2e = by_name.get("platform_day")
    e2e = e2e if e2e and e2e.median else by_name.get("platform_e2e")
    raw = by_name.get("platform_raw")
    copy = limits["postgres"]
    basis = e2e.measure.name if e2e and e2e.median else "platform_raw"
    numerator = (e2e.median if e2e and e2e.median else raw.median if raw else None)
    if copy is None or numerator is None:  # no PostgreSQL: the DuckDB pair stands in
        duck = next((d for d in map(by_name.get, ("duckdb_platform_day", "duckdb_platform_e2e", "duckdb_platform_raw"))
                     if d and d.median), None)
        numerator, copy = (duck.median if duck else None), limits["duckdb"]
        basis = f"{duck.measure.name if duck else 'duckdb_platform_raw'} vs duckdb_read_csv (no PostgreSQL)"
    ratio = numerator / copy if numerator and copy else float("nan")
    return basis, ratio


def header(started: datetime, load: tuple[float, float, float], pg_url: str, lines: int, runs: int,
           manifest: dict | None, skip_day: bool, basis: str, argv: list[str]) -> list[str]:
    command = f"command: `{' '.join(['bench/run.py', *argv])}`"
    return [
        "# POS load benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M}",
        f"- machine: {machine()}",
        f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work shares this machine)",
        f"- PostgreSQL {pg_version(pg_url)} on {pg_url.split('@')[-1]}; {versions()}",
        f"- day {DAY}: N = {lines:,} lines in {manifest['files']} files ({manifest['bytes'] / 2**20:,.1f} MB),"
        f" {runs} run(s) per measurement, median shown; {command}" if manifest else
        f"- day {DAY}: no business day of --lines measured (`--skip-day`); {command}",
        "- end_to_end_vs_copy: none (no business day of --lines measured)" if skip_day else
        f"- end_to_end_vs_copy: {basis} / pg_copy_typed" if "vs duckdb" not in basis else f"- ratio: {basis}",
        "",
    ]


def lower_bounds(by_name: dict[str, Outcome], limits: dict[str, float | None]) -> list[str]:
    """Under the table, per engine whose floor and fixed cost were both measured: the lower bound of a day."""
    body = []
    for engine, floor_name, fixed_name, day_name in (
            ("postgres", "pg_floor", "platform_day_empty", "platform_day"),
            ("duckdb", "duckdb_floor", "duckdb_platform_day_empty", "duckdb_platform_day")):
        floor, fixed, day, limit = (by_name.get(floor_name), by_name.get(fixed_name), by_name.get(day_name),
                                    limits[engine])
        if floor and floor.median and fixed and fixed.median and limit:
            bound = floor.median + fixed.median
            unindexed = floor.extra.get("unindexed_seconds")
            body += [f"Lower bound of a day on this design, {engine}: the floor ({floor.median:.2f} s) + the day's "
                     f"fixed cost ({fixed.median:.2f} s) = {bound:.2f} s, **{bound / limit:.2f}x** the limit"
                     + (f" (without the indexes: {(unindexed + fixed.median) / limit:.2f}x)" if unindexed else "")
                     + "; no line parsed, joined or checked in it."
                     + (f" `{day_name}` takes {day.median / bound:.2f}x this bound." if day and day.median else ""),
                     ""]
    return body


def document(head: list[str], ordered: list[Outcome], by_name: dict[str, Outcome], limits: dict[str, float | None],
             runs: int, skip_day: bool, scaling: list[str]) -> str:
    """The whole report but its closing ratio line."""
    table = main_table(ordered, limits, runs)
    body = [*head, *(["## One business day", "", *table, ""] if not skip_day else [])]
    body += lower_bounds(by_name, limits)
    if scaling:
        body += ["## Scaling (one run each)", "", *scaling, ""]
    return "\n".join(body)


def write(text: str, ratio: float, out: Path) -> None:
    """The report to ``out``, its closing line included."""
    out.write_text(text + f"\nend_to_end_vs_copy={ratio:.2f}\n")
