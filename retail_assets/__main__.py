"""Bootstrap on a bare Python 3: ``python3 -m retail_assets demo`` or ``python3 -m retail_assets test``.

Standard library only. Makes ``.venv`` beside the repository, installs the project into it (again only when
pyproject.toml changed), then either generates the sample company and runs the whole asset graph on the
embedded default (``demo``), or runs the test suite (``test``, extra arguments go to pytest).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".retail-installed"


def _say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def ensure_venv() -> None:
    """Create the virtual environment and install the project with its test extras, once per pyproject."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        _say(f"creating virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    _say("installing the project and its dependencies (a minute or two the first time)")
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def start_postgres() -> None:
    """Start the local PostgreSQL cluster when this machine has one that is down (tests use a real server)."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(os.listdir("/etc/postgresql")):
        probe = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
        if f"{version} main" in probe.stdout and "online" not in probe.stdout:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    os.chdir(ROOT)
    ensure_venv()
    env = dict(os.environ)
    if argv[0] == "demo":
        etl = str(BIN / "retail-etl")
        # The sources keep only their current rows, so history needs a load before the period's changes and one
        # after: the company as it stood when its period began is loaded first, then the whole period, and what
        # changed in between (prices, categories, customers' cities and tiers, a duplicate) becomes versions. A
        # warehouse that already exists is never removed here (that is an explicit act): the period loads on top.
        fresh = "RETAIL_WAREHOUSE_URL" not in env and not (ROOT / "data" / "warehouse.duckdb").exists()
        if fresh:
            _say("step 1 of 2: the company as it stood when its period began")
            subprocess.run([etl, "generate", "--as-of-start", *argv[1:]], check=True, env=env)
            if subprocess.run([etl, "run"], env=env).returncode:
                return 1
            _say("step 2 of 2: the whole period")
        else:
            _say("the warehouse exists already: loading the period on top of it (remove data/warehouse.duckdb "
                 "first for a demo whose history starts at the period's beginning)")
        subprocess.run([etl, "generate", *argv[1:]], check=True, env=env)
        return subprocess.run([etl, "run"], env=env).returncode
    start_postgres()
    return subprocess.run([str(BIN / "python"), "-m", "pytest", *argv[1:]], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
