"""The benchmark's harness: where it runs and how. Its constants, the generated days (``gen.py`` in a child process),
one measurement in a fresh child process watched for time and memory (``spawn``) and a list of them (``run_measures``),
and the description of the machine, the packages and the PostgreSQL server the report opens with.

Nothing here knows what a measurement does (that is ``measure.py``) or how results are written (``report.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from measure import Measure

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RUN = BENCH / "run.py"  # the command line, which a child process runs with --child

DAY = date(2025, 3, 3)
EMPTY_DAY = date(2025, 3, 4)  # no POS file is generated for it: the graph's fixed cost
PG_URL = os.environ.get("RETAIL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/retail_bench")
TIMEOUT_SECONDS = 1800  # a measurement running longer is stopped
MEM_CAP_GB = 12  # a measurement resident above this is stopped
HISTORY_DAYS = int(os.environ.get("RETAIL_BENCH_HISTORY_DAYS", "7"))  # earlier days for platform_day_history


def pg_conn(url: str):
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    return psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                           password=u.password, dbname=u.database, autocommit=False)


def generate(out: Path, lines: int, stores: int, day: date, quick: bool) -> dict:
    """In a child process, so that this one stays small: a child's peak RSS counts its parent's at fork."""
    cmd = [sys.executable, str(BENCH / "gen.py"), str(out), "--lines", str(lines), "--stores", str(stores),
           "--day", day.isoformat(), *(["--catalog", "2000", "--contacts", "2000"] if quick else [])]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- child processes -----------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    measure: Measure
    lines: int
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def peak_mb(self) -> float | None:
        return max(self.rss_mb) if self.rss_mb else None


def _rss_mb(pid: int) -> float:
    """Resident memory of a running process, from /proc (0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def spawn(name: str, data: Path, workdir: Path, pg_url: str, timeout: float, mem_cap_mb: float) -> tuple[dict, float]:
    """(the child's report, its peak RSS in MB); a child over the memory cap or the time limit is stopped."""
    cmd = [sys.executable, str(RUN), "--child", name, "--data", str(data), "--workdir", str(workdir),
           "--pg-url", pg_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir)
    killed: list[str] = []
    done = threading.Event()  # proc.poll() here would reap the child before os.wait4 can read its rusage

    def watch() -> None:
        started = time.monotonic()
        while not done.is_set():
            rss = _rss_mb(proc.pid)
            if rss > mem_cap_mb:
                killed.append(f"stopped at {rss:,.0f} MB resident (cap {mem_cap_mb:,.0f} MB)")
                proc.kill()
                return
            if time.monotonic() - started > timeout:
                killed.append(f"stopped after {timeout:.0f} s")
                proc.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    stdout = "".join(out_chunks)
    report = next((json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines()
                   if line.startswith("BENCH_RESULT ")), None)
    if report is not None and "error" in report:
        return report, rss_mb
    if report is None:
        tail = "".join(err_chunks).strip().splitlines()[-3:]
        reason = killed[0] if killed else f"exit {proc.returncode}: {' | '.join(tail)[-400:]}"
        return {"error": reason}, rss_mb
    return report, rss_mb


def run_measures(measures: list[Measure], data: Path, lines: int, runs: int, pg_url: str, timeout: float,
            mem_cap_gb: float, workdir: Path, log: Callable[[str], None]) -> list[Outcome]:
    """``runs`` runs of each measurement, each in a child process; a measurement stops at its first failure."""
    outcomes = []
    for m in measures:
        name = m.name
        o = Outcome(m, lines)
        for i in range(runs):
            report, rss = spawn(name, data, workdir, pg_url, timeout, mem_cap_gb * 1024)
            if "error" in report or "skipped" in report:
                o.error = report.get("error") or report.get("skipped")
                o.rss_mb.append(rss)
                break
            o.seconds.append(report["seconds"])
            o.rss_mb.append(rss)
            o.extra = report
            log(f"  {name} run {i + 1}/{runs}: {report['seconds']:.2f} s, {report.get('rows', 0):,} rows, "
                f"peak {rss:,.0f} MB")
        if o.error:
            log(f"  {name}: {o.error}")
        outcomes.append(o)
    return outcomes


# --- the environment -----------------------------------------------------------------------------------------------

def pg_available(url: str) -> str | None:
    """None when PostgreSQL answers (the benchmark database is created if missing), else why not."""
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    try:
        with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                             password=u.password, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{u.database}"')
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("dagster", "pandas", "pyarrow", "sqlalchemy", "psycopg", "duckdb", "pandera", "dlt"):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{pkg} {version(pkg)}")
    return ", ".join(out)


def pg_version(url: str) -> str:
    try:
        with pg_conn(url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001
        return "unavailable"
