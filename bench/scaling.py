"""Scaling benchmark of the Celery profile: a backfill of N business days through the Dagster daemon, in-process
(one run at a time, today's embedded behaviour, and two runs at once) against Celery with one and with two workers.

    .venv/bin/python bench/scaling.py [--days 20] [--lines 200000] [--stores 40] [--quick]
                                      [--modes in_process,in_process_2,celery_1,celery_2] [--max-runs 4]
                                      [--out bench/RESULTS-scaling.md]

Each mode gets fresh PostgreSQL databases (instance and warehouse), the machine's RabbitMQ and Redis, and runs what
docs/scaling.md prescribes: the reference job, a first pass of the raw online orders of every date, then
`dagster job backfill` of daily_load over all the dates. Only the daily backfill is timed (submission to the last
run finished). Figures: days per minute, CPU seconds of the platform's processes (daemon, runs, workers) and of
the PostgreSQL server over that window, the machine's busy share (both cores; the machine may be shared), and
where the time of a step goes (Celery queue wait, the worker's set-up of a step, the step itself).
Results are appended to bench/RESULTS-scaling.md. `--quick` is a small size for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO)]

MODES = {  # name: (executor, workers, runs at once)
    "in_process": ("in_process", 0, 1),
    "in_process_2": ("in_process", 0, 2),
    "celery_1": ("celery", 1, None),
    "celery_2": ("celery", 2, None),
}
START = date(2025, 3, 3)
TIMEOUT_SECONDS = 3600
CLK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pids: set[int]) -> float:
    """CPU seconds of these processes, with those of their children they have waited for."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLK


def _pids(pgids: set[int] | None = None, comm: str | None = None) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if (pgids is not None and int(fields[2]) in pgids) or (comm is not None and name == comm):
            out.add(int(entry.name))
    return out


def _machine_busy() -> tuple[int, int]:
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Result:
    mode: str
    days: int
    seconds: float
    platform_cpu: float
    postgres_cpu: float
    busy_share: float
    first_pass_seconds: float
    steps: dict[str, list[float]] = field(default_factory=dict)
    queue_wait: list[float] = field(default_factory=list)
    setup: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def days_per_minute(self) -> float:
        return self.days / self.seconds * 60


def _timings(instance, run_ids: list[str], result: Result) -> None:
    import dagster as dg

    for run_id in run_ids:
        marks: dict[str, dict[str, float]] = defaultdict(dict)
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or not event.step_key:
                continue
            kind, key = event.event_type, event.step_key
            if kind == dg.DagsterEventType.ENGINE_EVENT and record.message.startswith("Submitting celery task"):
                marks[key]["submit"] = record.timestamp
            elif kind == dg.DagsterEventType.ENGINE_EVENT and "in celery worker" in (event.message or ""):
                marks[key]["exec"] = record.timestamp
            elif kind == dg.DagsterEventType.STEP_START:
                marks[key]["start"] = record.timestamp
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                marks[key]["end"] = record.timestamp
        for key, m in marks.items():
            if "start" in m and "end" in m:
                result.steps.setdefault(key, []).append(m["end"] - m["start"])
            if "submit" in m and "exec" in m:
                result.queue_wait.append(m["exec"] - m["submit"])
            if "exec" in m and "start" in m:
                result.setup.append(m["start"] - m["exec"])


def run_mode(mode: str, company: Path, days: list[str], work: Path, max_runs: int) -> Result:
    import dagster as dg
    import sqlalchemy as sa

    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB
    from retail_assets_tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database, pg_url
    from retail_assets_tests.scaling.cluster import Cluster, wait_runs_done
    from retail_assets_tests.scaling.test_celery import _load_online_orders_first

    executor, workers, runs_at_once = MODES[mode]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    databases = [create_pg_database(admin) for _ in range(2)]
    cluster = Cluster.create(work / mode, company, pg_url(databases[0]), pg_url(databases[1]), executor=executor,
                             max_concurrent_runs=runs_at_once or max_runs)
    instance = None
    try:
        names = [f"bench{i + 1}" for i in range(workers)]
        for name in names:
            cluster.start_worker(name)
        cluster.start_daemon()
        cluster.wait_workers_ready(names)
        instance = cluster.instance()
        cluster.launch(REFERENCE_JOB)
        [reference] = wait_runs_done(instance, REFERENCE_JOB, 1, TIMEOUT_SECONDS)
        assert reference.status == dg.DagsterRunStatus.SUCCESS, cluster.tail("daemon")
        t0 = time.monotonic()
        _load_online_orders_first(instance, days)
        first_pass = time.monotonic() - t0

        groups = {p.pid for p in cluster.procs.values()}
        cpu0, pg0, busy0 = _cpu_of(_pids(groups)), _cpu_of(_pids(comm="postgres")), _machine_busy()
        t0 = time.monotonic()
        cluster.backfill(DAILY_JOB, days[0], days[-1])
        runs = wait_runs_done(instance, DAILY_JOB, len(days), TIMEOUT_SECONDS)
        seconds = time.monotonic() - t0
        cpu1, pg1, busy1 = _cpu_of(_pids(groups)), _cpu_of(_pids(comm="postgres")), _machine_busy()
        result = Result(mode, len(days), seconds, cpu1 - cpu0, pg1 - pg0,
                        (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), first_pass)
        result.failed = [r.tags.get("dagster/partition", "?") for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        _timings(instance, [r.run_id for r in runs], result)
        return result
    finally:
        cluster.stop_all()
        if instance is not None:
            instance.dispose()
        cluster.clean()
        for name in databases:
            drop_pg_database(admin, name)
        admin.dispose()


def _mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f}" if values else "-"


def report(results: list[Result], args, generate_seconds: float) -> str:
    base = next((r for r in results if r.mode == "in_process"), results[0])
    lines = [
        f"\n## {datetime.now():%Y-%m-%d %H:%M} — {args.days} days x {args.lines:,} POS lines, {args.stores} stores"
        f"{' (--quick)' if args.quick else ''}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; PostgreSQL, "
        f"RabbitMQ and Redis on the same machine. "
        + (f"Company generated in {generate_seconds:.0f} s. " if not args.company else "Company reused (--company). ")
        + "Celery modes: "
        f"{args.max_runs} runs at once, each worker one process (`--concurrency=1`).",
        "",
        "| mode | days/min | vs in_process | backfill s | platform CPU s | PostgreSQL CPU s | machine busy |"
        " CPU s/day | first pass s | failed days |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.days_per_minute:.2f} | {r.days_per_minute / base.days_per_minute:.2f}x | "
            f"{r.seconds:.0f} | {r.platform_cpu:.0f} | {r.postgres_cpu:.0f} | {r.busy_share:.0%} | "
            f"{(r.platform_cpu + r.postgres_cpu) / r.days:.1f} | {r.first_pass_seconds:.0f} | "
            f"{', '.join(r.failed) or '-'} |")
    keys = sorted({k for r in results for k in r.steps}, key=lambda k: -statistics.mean(base.steps.get(k, [0])))
    lines += ["", "Where the time goes: mean seconds per day of each step (STEP_START to STEP_SUCCESS), and for Celery "
              "the queue wait (submitted to taken by a worker) and the worker's set-up of a step (taken to started).",
              "", "| step | " + " | ".join(r.mode for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_mean(r.steps.get(key, [])) for r in results) + " |")
    lines.append("| sum of steps, per day | " + " | ".join(
        f"{sum(sum(v) for v in r.steps.values()) / r.days:.1f}" for r in results) + " |")
    lines.append("| Celery queue wait, per step | " + " | ".join(_mean(r.queue_wait) for r in results) + " |")
    lines.append("| worker set-up, per step | " + " | ".join(_mean(r.setup) for r in results) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--lines", type=int, default=200_000, help="POS lines a business day, all stores")
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="6 days x 20,000 lines, 8 stores")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--max-runs", type=int, default=4, help="runs at once in the Celery modes")
    parser.add_argument("--company", type=Path, help="reuse a generated company (same size) instead of a new one")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-scaling.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.lines, args.stores = 6, 20_000, 8
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")

    from retail_assets.generator import generate_company

    work = Path(tempfile.mkdtemp(prefix="retail-scaling-"))
    try:
        t0 = time.monotonic()
        company = args.company
        if company is None:
            company = work / "company"
            print(f"generating {args.days} days x {args.lines:,} lines ...", flush=True)
            generate_company(company, stores=args.stores, days=args.days, start=START,
                             lines_per_store_day=max(1, args.lines // args.stores), seed=17)
        generate_seconds = time.monotonic() - t0
        days = [START.fromordinal(START.toordinal() + i).isoformat() for i in range(args.days)]
        results = []
        for mode in modes:
            print(f"{mode}: ...", flush=True)
            result = run_mode(mode, company, days, work, args.max_runs)
            print(f"{mode}: {result.days_per_minute:.2f} days/min, {result.seconds:.0f} s, platform CPU "
                  f"{result.platform_cpu:.0f} s, PostgreSQL CPU {result.postgres_cpu:.0f} s, busy "
                  f"{result.busy_share:.0%}", flush=True)
            results.append(result)
        text = report(results, args, generate_seconds)
        if not args.out.exists():
            args.out.write_text("# Scaling benchmark: in-process vs Celery workers (bench/scaling.py)\n")
        with args.out.open("a") as out:
            out.write(text)
        print(text)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
