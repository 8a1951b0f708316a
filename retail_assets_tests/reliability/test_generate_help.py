"""``retail-etl generate --help`` shows every flag with its default (or, for a flag without one, what happens)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from retail_assets.cli import build_parser


def _generate_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["generate"]


def test_generate_help_names_every_flag_with_its_default():
    command = Path(sys.executable).parent / "retail-etl"  # the installed console script, as a user runs it
    done = subprocess.run([str(command), "generate", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # the help is wrapped to the terminal: compare it unwrapped
    flags = [a for a in _generate_parser()._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in flags} >= {"out", "stores", "days", "start", "lines_per_store_day", "seed",
                                       "online_store_url", "crm_url"}
    for action in flags:
        flag = action.option_strings[-1]
        assert flag in text
        after = text.split(f"{flag} {action.metavar or ''}".strip(), 2)[-1]  # the flag's own help line
        shown = f"(default: {action.default})" if action.default is not None else "(default: the SQLite file"
        assert shown in after.split(" --")[0], f"{flag}: {after[:160]}"
    assert "(default: 2025-03-03)" in text and "(default: None)" not in text
