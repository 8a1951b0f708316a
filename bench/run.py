"""Load benchmark of the POS path: one business day of N sales lines, loaded by the platform and by the usual
alternatives, against the limit of the database itself.

    .venv/bin/python bench/run.py [--lines 1000000] [--stores 200] [--runs 3] [--scales 1000000,3000000,10000000]
                                  [--one-file 1000000,3000000,10000000] [--chunk-bytes N] [--skip-day]
                                  [--quick] [--only NAME,...] [--out bench/RESULTS.md]

Every measurement runs in a fresh Python process (``--child``); the parent times nothing itself but reads the
child's own report (seconds of the measured work, after imports and setup) and the child's peak resident memory
(``os.wait4``'s ``ru_maxrss``: the whole process, imports included; the database server's memory is not in it).
Results go to ``bench/RESULTS.md`` as markdown tables and to standard output; the last line printed is
``end_to_end_vs_copy=X.XX``. See bench/README.md for what each figure means.

This file is the command line; the measurements are in ``measure.py``, the data, child processes and machine
description in ``harness.py``, the tables in ``report.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]

import harness  # noqa: E402 - from bench/, whatever the current directory
import report  # noqa: E402
from harness import DAY, HISTORY_DAYS, MEM_CAP_GB, PG_URL, TIMEOUT_SECONDS, Outcome  # noqa: E402
from measure import BY_NAME, MEASURES, ONE_FILE, QUICK, QUICK_ONE_FILE, SCALED, run_child  # noqa: E402

QUICK_ONE_FILE_LINES = 20_000
QUICK_CHUNK_BYTES = 1 << 18  # the quick one-file day's file is read in several chunks


def parse_args() -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description="POS load benchmark (see bench/README.md)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="sales lines in the business day")
    parser.add_argument("--stores", type=int, default=200, help="stores, one file each")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--scales", default="", help="comma-separated line counts for the scaling table, e.g. "
                                                     "1000000,3000000,10000000 (one run each)")
    parser.add_argument("--one-file", default="", help="comma-separated line counts of a day whose lines are all in "
                                                       "ONE sales file (one run each, in the scaling table)")
    parser.add_argument("--chunk-bytes", type=int, default=0,
                        help="RETAIL_POS_CHUNK_BYTES for the platform: a file larger is read in chunks of this size "
                             "(default: the platform's own default)")
    parser.add_argument("--skip-day", action="store_true",
                        help="no business day of --lines: only the --scales and --one-file rows")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 lines, 20 stores, 1 run, no scaling, a day of 20,000 lines in one file: CI")
    parser.add_argument("--only", default="", help="comma-separated measurement names (default: all)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--data-dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS,
                        help="seconds before a measurement is stopped")
    parser.add_argument("--mem-cap-gb", type=float, default=MEM_CAP_GB, help="resident memory before one is stopped")
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS,
                        help="earlier days already loaded for platform_day_history (default %(default)s)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser, parser.parse_args()


def log(msg: str) -> None:
    print(msg, flush=True)


def main() -> None:
    parser, args = parse_args()
    os.environ["RETAIL_BENCH_HISTORY_DAYS"] = str(args.history_days)  # the children's --history-days
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.lines, args.stores, args.runs, args.scales = 20_000, 20, 1, ""
        args.one_file, args.chunk_bytes = str(QUICK_ONE_FILE_LINES), args.chunk_bytes or QUICK_CHUNK_BYTES
    if args.chunk_bytes:
        os.environ["RETAIL_POS_CHUNK_BYTES"] = str(args.chunk_bytes)  # the children's platform reads it

    default = QUICK if args.quick else [m.name for m in MEASURES]
    names = [n for n in (args.only.split(",") if args.only else default) if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; known: {', '.join(BY_NAME)}")
    missing = {m.name: m.needs for m in MEASURES if m.needs and importlib.util.find_spec(m.needs) is None}
    pg_problem = harness.pg_available(args.pg_url)
    skipped: dict[str, str] = {}
    for n in names:
        if n in missing:
            skipped[n] = f"{missing[n]} is not installed (pip install -e '.[bench]')"
        elif BY_NAME[n].engine == "postgres" and pg_problem:
            skipped[n] = f"PostgreSQL unavailable: {pg_problem}"

    root = Path(args.data_dir or tempfile.mkdtemp(prefix="retail_bench_"))
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = datetime.now()
    log(f"machine: {harness.machine()}")
    log(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    data = root / f"day_{args.lines}"
    manifest = None
    if not args.skip_day:
        log(f"generating {args.lines:,} lines in {args.stores} store files for {DAY} under {root}")
        t = time.perf_counter()
        manifest = harness.generate(data, args.lines, args.stores, DAY, args.quick)
        log(f"  {manifest['files']} files, {manifest['bytes'] / 2**20:,.1f} MB in {time.perf_counter() - t:.1f} s")

    def run(run_names: list[str], day_data: Path, lines: int, runs: int) -> list[Outcome]:
        return harness.run_measures([BY_NAME[n] for n in run_names], day_data, lines, runs, args.pg_url,
                                    args.timeout, args.mem_cap_gb, workdir, log)

    run_names = [n for n in names if n not in skipped and not args.skip_day]
    outcomes = run(run_names, data, args.lines, args.runs)
    by_name = {o.measure.name: o for o in outcomes}
    for n in names:
        if n in skipped:
            by_name[n] = Outcome(BY_NAME[n], args.lines, error=skipped[n])
    ordered = [by_name[n] for n in names if n in by_name]
    limits = {"postgres": by_name.get("pg_copy_typed", Outcome(BY_NAME["pg_copy_typed"], 0)).median,
              "duckdb": by_name.get("duckdb_read_csv", Outcome(BY_NAME["duckdb_read_csv"], 0)).median}

    def scale_rows(n_lines: int, stores: int, scale_names: list[str], label: str) -> list[str]:
        """One run of each of ``scale_names`` on a day of ``n_lines`` lines in ``stores`` files."""
        if n_lines == args.lines and stores == args.stores and not args.skip_day:
            sdata = data
        else:
            sdata = root / f"day_{n_lines}_{stores}"
            harness.generate(sdata, n_lines, stores, DAY, args.quick)
        out = report.scale_rows(run(scale_names, sdata, n_lines, 1), n_lines, stores, label)
        if sdata != data and not args.data_dir:
            shutil.rmtree(sdata, ignore_errors=True)
        return out

    scale_rows_done: list[str] = []
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    one_file = [int(s) for s in args.one_file.split(",") if s.strip()]
    for n_lines in scales:
        log(f"scale {n_lines:,} lines in {args.stores} files")
        scale_rows_done += scale_rows(n_lines, args.stores, [n for n in SCALED if n in names and n not in skipped],
                                      f"{n_lines:,}")
    one_names = [n for n in (QUICK_ONE_FILE if args.quick else ONE_FILE)
                 if (n in names or (args.quick and not args.only)) and n not in skipped]
    for n_lines in one_file:
        log(f"scale {n_lines:,} lines in one file")
        scale_rows_done += scale_rows(n_lines, 1, one_names, f"{n_lines:,} (one file)")
    scaling = report.scale_table(scale_rows_done, bool(one_file))

    basis, ratio = report.end_to_end_ratio(by_name, limits)
    head = report.header(started, load, args.pg_url, args.lines, args.runs, manifest, args.skip_day, basis,
                         sys.argv[1:])
    text = report.document(head, ordered, by_name, limits, args.runs, args.skip_day, scaling)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick or args.out != BENCH / "RESULTS.md":
        report.write(text, ratio, args.out)
    print(text)
    if not args.data_dir:
        shutil.rmtree(root, ignore_errors=True)
    print(f"end_to_end_vs_copy={ratio:.2f}")


if __name__ == "__main__":
    main()
