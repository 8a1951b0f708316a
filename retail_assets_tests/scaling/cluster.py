"""A Celery deployment on this machine, as docs/scaling.md sets one up on several hosts: the Dagster daemon, Celery
workers as separate processes, the instance in PostgreSQL (deploy/celery/dagster.yaml), a PostgreSQL warehouse, the
broker (RabbitMQ) and the result backend (Redis). Used by the tests of this folder and by bench/scaling.py.

Every process is started in a session of its own and stopped with its whole process group; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from retail_assets_tests.conftest import platform_environment, stop_group

REPO = Path(__file__).resolve().parents[2]
CELERY_DIR = REPO / "deploy" / "celery"
INSTANCE_YAML = CELERY_DIR / "dagster.yaml"
WORKER_YAML = CELERY_DIR / "celery.yaml"
BIN = Path(sys.executable).parent
BROKER = os.environ.get("RETAIL_TEST_CELERY_BROKER", "pyamqp://guest@127.0.0.1//")
BACKEND = os.environ.get("RETAIL_TEST_CELERY_BACKEND", "redis://127.0.0.1:6379/0")
ACTIVE = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
WORKER_KEY = "Celery worker"  # the engine event a worker writes when it starts a step names it under this key


def instance_env(instance_url: str) -> dict[str, str]:
    """deploy/celery/dagster.yaml's variables for a PostgreSQL database URL."""
    url = sa.make_url(instance_url)
    return {"DAGSTER_PG_HOST": url.host or "127.0.0.1", "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": url.username or "postgres", "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": url.database or ""}


def platform_env(root: Path, warehouse_url: str, home: Path) -> dict[str, str]:
    """The platform's variables for a generated company at ``root``, with the automation kept quiet: the runs
    under test are the ones the test submits (files never settle, so the drop-folder sensors request nothing)."""
    return {
        **platform_environment(root, warehouse_url, home),
        "RETAIL_TIMEZONE": "America/New_York",
        "RETAIL_POS_SETTLE_SECONDS": "1000000000",
        "RETAIL_POS_SENSOR_INTERVAL_SECONDS": "3600",
        "RETAIL_ONLINE_SENSOR_INTERVAL_SECONDS": "3600",
        "RETAIL_DAILY_SCHEDULE_CRON": "0 6 1 1 *",
    }


def wait_for(what: str, condition: Callable[[], object], timeout: float, every: float = 1.0,
             explain: Callable[[], str] | None = None):
    """Poll ``condition`` until it returns something true; fail with ``what`` (and ``explain()``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s" + (f"; {explain()}" if explain else ""))
        time.sleep(every)


@dataclass
class Cluster:
    """The processes of one deployment and what they share. ``env`` is every process's environment."""

    workdir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path, company: Path, warehouse_url: str, instance_url: str, *,
               executor: str = "celery", max_concurrent_runs: int | None = None,
               broker: str = BROKER, backend: str = BACKEND) -> Cluster:
        home = workdir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        text = INSTANCE_YAML.read_text()
        if max_concurrent_runs is not None:
            text = text.replace("max_concurrent_runs: 4", f"max_concurrent_runs: {max_concurrent_runs}")
        (home / "dagster.yaml").write_text(text)
        env = {
            **os.environ,
            **platform_env(company, warehouse_url, home),
            **instance_env(instance_url),
            "RETAIL_EXECUTOR": executor,
            "RETAIL_CELERY_BROKER": broker,
            "RETAIL_CELERY_BACKEND": backend,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
        return cls(workdir, env)

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(args, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        """``dagster-celery worker start``, the command of docs/scaling.md, named ``name``."""
        return self._start(name, [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                                  "-y", str(WORKER_YAML), "-n", name, "--", f"--concurrency={concurrency}"])

    def wait_workers_ready(self, names: Iterable[str], timeout: float = 90) -> None:
        for name in names:
            wait_for(f"worker {name} ready", lambda name=name: self._ready(name), timeout,
                     explain=lambda name=name: self.tail(name))

    def _ready(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"worker {name} exited with {proc.returncode}: {self.tail(name)}")
        return f"{name}@" in (text := self.logs[name].read_text(errors="replace")) and " ready." in text

    def start_daemon(self) -> subprocess.Popen:
        return self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-m", "retail_assets.definitions"])

    def dagster(self, *args: str, timeout: float = 180) -> str:
        """One `dagster` command on the deployment's instance and code (a CLI call, as an operator would)."""
        done = subprocess.run([str(BIN / "dagster"), *args], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AssertionError(f"dagster {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-3000:]}")
        return done.stdout

    def launch(self, job: str) -> None:
        self.dagster("job", "launch", "-m", "retail_assets.definitions", "-j", job)

    def backfill(self, job: str, first: str, last: str) -> None:
        out = self.dagster("job", "backfill", "-m", "retail_assets.definitions", "-j", job, "--from", first,
                           "--to", last, "--noprompt")
        assert "Launched backfill job" in out, out

    def instance(self) -> dg.DagsterInstance:
        """The deployment's instance, opened in this process (close it, or use it in a with block)."""
        saved = {k: os.environ.get(k) for k in self.env if k.startswith("DAGSTER_PG_")}
        os.environ.update({k: self.env[k] for k in saved})
        try:
            return dg.DagsterInstance.from_config(str(self.home))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs.get(name)
        return f"[{name} log] " + (path.read_text(errors="replace")[-chars:] if path and path.exists() else "-")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_group(proc, sig)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def clean(self) -> None:
        """Remove what the workers wrote into DAGSTER_HOME (generated Celery configuration)."""
        shutil.rmtree(self.home / "dagster_celery", ignore_errors=True)


def wait_runs_done(instance: dg.DagsterInstance, job: str, count: int, timeout: float,
                   filters: dg.RunsFilter | None = None) -> list[dg.DagsterRun]:
    """The runs of ``job`` once ``count`` exist and none is queued or in progress (bounded by ``timeout``)."""
    def runs() -> list[dg.DagsterRun]:
        return [r for r in instance.get_runs(filters=filters) if r.job_name == job]

    def done() -> list[dg.DagsterRun] | None:
        found = runs()
        return found if len(found) >= count and not any(r.status in ACTIVE for r in found) else None

    return wait_for(f"{count} run(s) of {job} finished", done, timeout, every=2,
                    explain=lambda: ", ".join(f"{r.tags.get('dagster/partition', '-')}:{r.status.value}"
                                              for r in runs()))


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """For each step of a run, the Celery workers that started it, in order (from the run's engine events)."""
    out: dict[str, list[str]] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        metadata = event.engine_event_data.metadata if event and event.engine_event_data else {}
        worker = metadata.get(WORKER_KEY)
        if worker is not None:
            out.setdefault(event.step_key or "-", []).append(str(getattr(worker, "value", worker)))
    return out


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@dataclass
class PrivateBroker:
    """A RabbitMQ node of the test's own (its port, its data folder, the machine's RabbitMQ installation), so that
    a test may stop and restart it without touching the machine's broker that other processes use."""

    folder: Path
    port: int = field(default_factory=lambda: free_port())
    dist_port: int = field(default_factory=lambda: free_port())
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"pyamqp://guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        name = f"retail{self.port}"
        return {**os.environ, "HOME": str(self.folder), "RABBITMQ_NODENAME": f"{name}@localhost",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.folder / "log"), "RABBITMQ_PID_FILE": str(self.folder / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config")}

    def start(self, timeout: float = 60) -> None:
        if not RABBITMQ_SERVER.exists():
            raise AssertionError(f"{RABBITMQ_SERVER} is missing: install the rabbitmq-server package "
                                 "(.ci/run starts the machine's broker and needs it too)")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")
        with (self.folder / "server.log").open("ab") as out:
            self.proc = subprocess.Popen([str(RABBITMQ_SERVER)], cwd=self.folder, env=self.env(), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(f"RabbitMQ node on port {self.port} accepting connections", self.reachable, timeout, every=0.5,
                 explain=lambda: (self.folder / "server.log").read_text(errors="replace")[-2000:])

    def reachable(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"RabbitMQ node exited with {self.proc.returncode}: "
                                 + (self.folder / "server.log").read_text(errors="replace")[-2000:])
        import socket

        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM, timeout=30)
            self.proc = None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def day_figures(warehouse_url: str, days: Iterable[str]) -> dict[str, dict]:
    """Per business date what a load must reproduce exactly: fact_sales rows, net_amount per store (NUMERIC, to
    the cent), fact_inventory rows, and rejections by asset and reason."""
    days = sorted(days)
    engine = sa.create_engine(warehouse_url)
    out: dict[str, dict] = {day: {"fact_rows": 0, "net_by_store": {}, "inventory_rows": 0, "rejections": {}}
                            for day in days}
    params = {"lo": days[0], "hi": days[-1]}
    try:
        with engine.connect() as conn:
            for day, store, rows, net in conn.execute(sa.text(
                    "SELECT f.business_date, coalesce(s.store_code, '?'), count(*), sum(f.net_amount) "
                    "FROM fact_sales f LEFT JOIN dim_store s ON s.store_key = f.store_key "
                    "WHERE f.business_date BETWEEN :lo AND :hi GROUP BY 1, 2"), params):
                figures = out[str(day)[:10]]
                figures["fact_rows"] += rows
                figures["net_by_store"][store] = net
            for day, rows in conn.execute(sa.text(
                    "SELECT business_date, count(*) FROM fact_inventory WHERE business_date BETWEEN :lo AND :hi "
                    "GROUP BY 1"), params):
                out[str(day)[:10]]["inventory_rows"] = rows
            for day, asset, reason, rows in conn.execute(sa.text(
                    "SELECT business_date, asset, reason_code, count(*) FROM rejections "
                    "WHERE business_date BETWEEN :lo AND :hi GROUP BY 1, 2, 3"), params):
                out[str(day)[:10]]["rejections"][f"{asset}/{reason}"] = rows
    finally:
        engine.dispose()
    return out
