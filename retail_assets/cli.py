"""``retail-etl``: generate a sample company, check the settings, run the asset graph through the Dagster
instance, report.

A command that fails prints one line, ``retail-etl: <what failed>: <cause>; <what to fix>``, and the path of the
log file that holds the traceback: no traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from retail_assets.settings import load_settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from retail_assets.generator import generate_company
    from retail_assets.resources.urls import display_url

    started = time.monotonic()
    manifest = generate_company(
        Path(args.out), stores=args.stores, days=args.days, start=args.start,
        lines_per_store_day=args.lines_per_store_day, seed=args.seed, timezone=load_settings().timezone,
        progress=lambda msg: print(f"  {msg}", flush=True),
        online_store_url=args.online_store_url, crm_url=args.crm_url, as_of_start=args.as_of_start,
    )
    pos_lines = sum(s["lines"] for day in manifest["pos"].values() for s in day.values())
    online_lines = sum(d["order_lines"] for d in manifest["online"].values())
    if args.as_of_start:
        print(f"generated {args.out}: the company as it stood on {args.start}, before its {args.days} days (no sales "
              "yet); load it into a new warehouse with `retail-etl run`, then generate without --as-of-start and run "
              "again (loaded after a later state, its older rows would become new versions)")
    else:
        print(f"generated {args.out}: {args.stores} stores x {args.days} days, {pos_lines:,} POS lines, "
              f"{online_lines:,} online order lines in {time.monotonic() - started:.1f}s")
    for what, url, variable in (("online shop", args.online_store_url, "RETAIL_ONLINE_STORE_URL"),
                                ("CRM", args.crm_url, "RETAIL_CRM_URL")):
        if url:  # the run reads the default SQLite file unless told where this one went
            print(f"  {what} written to {display_url(url)}: set {variable} to this URL for `retail-etl run`")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from retail_assets.preflight import run_checks

    checks = run_checks(load_settings())
    for item in checks.items:
        print(item.line(), flush=True)
    counts = {status: sum(1 for i in checks.items if i.status == status) for status in ("OK", "WARN", "FAIL")}
    print(", ".join(f"{n} {status}" for status, n in counts.items())
          + ("; fix the variable named in each FAIL line" if checks.failed else ""))
    return 1 if checks.failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from retail_assets.runner import run_graph

    return run_graph(start=args.start, end=args.end, log=args.log)


def cmd_operator(args: argparse.Namespace) -> int:
    """``accept`` or ``withdraw``: the day's run with the operator's tag for the stores named."""
    from retail_assets.runner import run_graph
    from retail_assets.transforms.pos_files import ACCEPT_TAG, WITHDRAW_TAG

    tag = ACCEPT_TAG if args.command == "accept" else WITHDRAW_TAG
    return run_graph(start=args.date, end=args.date, log=args.log, day_tags={tag: args.store})


def cmd_report(args: argparse.Namespace) -> int:
    from retail_assets.preflight import FAIL, check_warehouse
    from retail_assets.report import write_report

    item = check_warehouse(load_settings().warehouse_url, must_exist=True)
    if item.status == FAIL:
        print(f"retail-etl: report: {item.text}", file=sys.stderr)
        return 1
    path = write_report(Path(args.out))
    print(f"report written to {path}")
    return 0


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help; an option without one says in its help what happens instead."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retail-etl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a realistic sample company into all three sources",
                         description="Write a realistic, dirty-on-purpose sample company: the POS drop folder, the "
                                     "online shop and the CRM, and manifest.json (what a correct load gives). The "
                                     "same arguments give the same company.",
                         formatter_class=_DefaultsShown)
    gen.add_argument("--out", default="data", metavar="DIR",
                     help="folder for pos_drop/, online_store.db, crm.db and manifest.json")
    gen.add_argument("--stores", type=int, default=8, metavar="N", help="number of stores")
    gen.add_argument("--days", type=int, default=14, metavar="N", help="number of business days")
    gen.add_argument("--start", type=_date, default=date(2025, 3, 3), metavar="YYYY-MM-DD", help="first business day")
    gen.add_argument("--lines-per-store-day", type=int, default=200, metavar="N",
                     help="POS lines a store sells on an average day (the online shop sells a quarter of all stores')")
    gen.add_argument("--seed", type=int, default=42, metavar="N", help="random seed")
    gen.add_argument("--online-store-url", metavar="URL",
                     help="write the online shop into this database on a server (SQLAlchemy URL, e.g. "
                          "mysql+pymysql://root@127.0.0.1:3306/shop; created when missing) (default: the SQLite "
                          "file DIR/online_store.db)")
    gen.add_argument("--crm-url", metavar="URL",
                     help="write the CRM into this database on a server (default: the SQLite file DIR/crm.db)")
    gen.add_argument("--as-of-start", action="store_true",
                     help="write the sources as they stood when the period began: the catalog, contacts and shop "
                          "accounts before the period's changes, no sales yet; load that first and the full "
                          "company after it, and the changes become history in the warehouse")
    gen.set_defaults(func=cmd_generate)
    check = sub.add_parser("check", help="try every source, the warehouse and DAGSTER_HOME; one line each")
    check.set_defaults(func=cmd_check)
    run = sub.add_parser("run", help="materialise the whole asset graph for every business day with data")
    run.add_argument("--start", type=_date, help="first business day (default: the first with source data)")
    run.add_argument("--end", type=_date, help="last business day, inclusive (default: the last with data)")
    run.set_defaults(func=cmd_run)
    for name, what in (("accept", "apply the held POS re-sends of the stores named (their booked lines go)"),
                       ("withdraw", "remove the POS sales of the stores named for the day, on purpose; the same "
                                    "files are not booked again")):
        act = sub.add_parser(name, help=what, description=f"{what}. Runs the day through the Dagster instance with "
                                                           "the operator's tag, so the act shows in the UI.")
        act.add_argument("--date", type=_date, required=True, help="business day (YYYY-MM-DD)")
        act.add_argument("--store", required=True, help="store code(s), comma-separated, or '*' for every store")
        act.set_defaults(func=cmd_operator)
    report = sub.add_parser("report", help="write one self-contained HTML page of charts over the marts")
    report.add_argument("--out", default="report.html", help="file to write (default report.html)")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "start", None) and getattr(args, "end", None) and args.end < args.start:
        print("retail-etl: --end is before --start", file=sys.stderr)
        return 2
    from retail_assets.preflight import LogFile

    args.log = LogFile()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("retail-etl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line here, its traceback goes to the log
        args.log.exception(exc, f"retail-etl {args.command}")
        print(f"retail-etl: {failure_line(args.command, exc)} (traceback in {args.log.path})", file=sys.stderr)
        return 1


def failure_line(command: str, exc: BaseException) -> str:
    """``<what failed>: <cause>; <what to fix>`` for any exception a command lets through."""
    import sqlalchemy as sa

    from retail_assets.preflight import cause_of
    from retail_assets.resources.urls import ConfigError

    if isinstance(exc, ConfigError):
        return f"{command}: {exc}"
    if isinstance(exc, ImportError):
        module = (exc.name or "").split(".")[0]
        return f"{command}: Python module {module!r} is not installed; pip install it, or fix the URL that needs it"
    if isinstance(exc, sa.exc.DBAPIError | sa.exc.NoSuchModuleError | sa.exc.ArgumentError):
        return (f"{command}: a database could not be used: {cause_of(exc)}; `retail-etl check` names the variable "
                "to fix")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{command}: {exc.strerror or cause_of(exc)}{where}; fix the path or its permissions"
    return f"{command} failed: {type(exc).__name__}: {cause_of(exc)}; the log file has the details"


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


if __name__ == "__main__":
    sys.exit(main())
