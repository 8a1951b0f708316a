"""Backfills of the daily job from the command line go through the run queue, one run per business date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from retail_assets.jobs import DAILY_JOB
from retail_assets_tests.automation.conftest import source_env


def test_dagster_job_backfill_queues_one_run_per_business_date(company, tmp_path, monkeypatch):
    root, _ = company
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # queued runs: nothing starts them here
    env = source_env(root, f"duckdb:///{tmp_path / 'warehouse.duckdb'}", home)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "backfill", "-m", "retail_assets.definitions",
         "-j", DAILY_JOB, "--from", "2025-03-03", "--to", "2025-03-05", "--noprompt"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Launched backfill job" in done.stdout

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        backfills = instance.get_backfills()
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}, "the daemon's queue starts them"
    assert {r.job_name for r in runs} == {DAILY_JOB}
    assert [b.backfill_id for b in backfills] == [runs[0].tags["dagster/backfill"]]
