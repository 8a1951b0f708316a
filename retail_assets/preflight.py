"""``retail-etl check``: every setting tried before a command touches anything, and the log a failed command leaves.

Each item prints one line, ``OK``, ``WARN`` or ``FAIL``; a ``FAIL`` says what is wrong and which variable to change,
and never shows a password. ``retail-etl run`` runs the same checks first and stops before it writes anything (no
Dagster run, no warehouse file, no DAGSTER_HOME) when one fails: a wrong URL is then one line, not a traceback from
the middle of a load. Nothing here creates a file, a folder or a table.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import sqlalchemy as sa

from retail_assets.resources.urls import (
    ConfigError,
    display_url,
    make_engine,
    missing_driver,
    normalise_url,
    redact,
)
from retail_assets.settings import Settings, dagster_home

OK, WARN, FAIL = "OK", "WARN", "FAIL"
ONLINE_TABLES = ("customers", "products", "orders", "order_items", "returns", "inventory")  # SPEC 3
CRM_TABLES = ("contacts",)  # SPEC 4
# A server that drops packets instead of refusing them would otherwise hold the check for minutes.
CONNECT_TIMEOUT_SECONDS = 10
MAX_CAUSE = 200
DATES_ITEM = "data dates"


@dataclass(frozen=True)
class Item:
    status: str
    name: str
    text: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<13} {self.text}"


@dataclass
class Preflight:
    items: list[Item]
    days: list[date] = field(default_factory=list)  # business dates with source data, as far as they could be read

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == FAIL]


def short(text: object, limit: int = MAX_CAUSE) -> str:
    """The first non-empty line of ``text``, passwords hidden, SQL statements left out, at most ``limit`` chars."""
    lines = [line.strip() for line in redact(str(text)).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = first.split("[SQL:", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 3].rstrip() + "..."


def cause_of(exc: BaseException) -> str:
    """What went wrong, in one short line: the driver's own message when SQLAlchemy wraps one."""
    inner = getattr(exc, "orig", None) or exc
    return short(inner) or type(inner).__name__


def _connect_args(url: sa.URL) -> dict | None:
    if url.get_backend_name() in ("postgresql", "mysql", "mariadb"):
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return None


def _parse(url: str, name: str, variable: str) -> tuple[sa.URL | None, Item | None]:
    """The normalised URL, or the FAIL item saying why it cannot be used (unparsable, driver missing)."""
    shown = f"{variable}={display_url(url)}"
    try:
        parsed = normalise_url(url)
    except sa.exc.ArgumentError:
        return None, Item(FAIL, name, f"{shown}: not a database URL; set {variable} to a SQLAlchemy URL such as "
                                      "postgresql://user:password@host:5432/database")
    problem = missing_driver(parsed)
    if problem is not None:
        return None, Item(FAIL, name, f"{shown}: {problem.cause}; {problem.fix}, or fix {variable}")
    return parsed, None


def check_source(url: str, name: str, variable: str, tables: tuple[str, ...]) -> Item:
    """A source database: the URL parses, its driver is installed, it is reachable, and has the SPEC tables."""
    shown = f"{variable}={display_url(url)}"
    parsed, problem = _parse(url, name, variable)
    if problem is not None:
        return problem
    try:
        engine = make_engine(url, create=False, connect_args=_connect_args(parsed))
    except ConfigError as exc:
        return Item(FAIL, name, f"{shown}: {exc.cause}; fix {variable} (retail-etl generate writes a sample "
                                "company into data/)")
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            present = {t.lower() for t in [*inspector.get_table_names(), *inspector.get_view_names()]}
    except sa.exc.SQLAlchemyError as exc:
        from retail_assets.assets.retry import transient_reason

        if transient_reason(exc):  # a server down for now: the run's steps retry it like any transient failure
            return Item(WARN, name, f"{shown}: unreachable now ({cause_of(exc)}); the run goes on and its steps "
                                    f"retry it (RETAIL_TRANSIENT_RETRIES); if it stays down, fix {variable}")
        return Item(FAIL, name, f"{shown}: cannot connect: {cause_of(exc)}; is the server up and the URL right? "
                                f"fix {variable}")
    finally:
        engine.dispose()
    missing = [t for t in tables if t not in present]
    if missing:
        return Item(FAIL, name, f"{shown}: table(s) missing: {', '.join(missing)}; point {variable} at the "
                                f"{name}'s database")
    return Item(OK, name, f"{shown}: reachable, its {len(tables)} SPEC table(s) present")


def check_warehouse(url: str, *, must_exist: bool = False) -> Item:
    """The warehouse: URL, driver, folder of a file database, and a connection that changes nothing.

    A DuckDB or SQLite file that is not there yet is fine for a run (it is created in an existing folder), not
    for ``must_exist`` (the report reads what a run wrote). An existing DuckDB file is opened read-only."""
    variable, name = "RETAIL_WAREHOUSE_URL", "warehouse"
    shown = f"{variable}={display_url(url)}"
    parsed, problem = _parse(url, name, variable)
    if problem is not None:
        return problem
    backend, database = parsed.get_backend_name(), parsed.database or ""
    target: str | sa.URL = parsed
    if backend in ("duckdb", "sqlite") and database not in ("", ":memory:") and not database.startswith("md:"):
        path = Path(database).expanduser()
        if not path.exists():
            if must_exist:
                return Item(FAIL, name, f"{shown}: {path} does not exist; run `retail-etl run` first, or fix "
                                        f"{variable}")
            folder = path.parent
            if not folder.is_dir():
                return Item(FAIL, name, f"{shown}: the folder {folder} does not exist; fix {variable}, or create "
                                        "the folder for a new warehouse")
            if not os.access(folder, os.W_OK | os.X_OK):
                return Item(FAIL, name, f"{shown}: the folder {folder} is not writable by this user; fix "
                                        f"{variable} or the folder's permissions")
            return Item(OK, name, f"{shown}: new {backend} file, will be created in {folder}")
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            return Item(FAIL, name, f"{shown}: {path} is not a file this user can read and write; fix {variable} "
                                    "or the file's permissions")
        if backend == "duckdb":
            target = parsed.update_query_dict({"access_mode": "read_only"})
    try:
        engine = make_engine(target, create=backend != "sqlite", connect_args=_connect_args(parsed))
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - whatever stops the connection is the one line to print
        return Item(FAIL, name, f"{shown}: cannot connect: {cause_of(exc)}; is the server up and the URL right? "
                                f"fix {variable}")
    return Item(OK, name, f"{shown}: reachable")


def check_drop_folder(path: Path) -> Item:
    variable, name = "RETAIL_POS_DROP_DIR", "POS drop"
    shown = f"{variable}={path}"
    if not path.exists():
        return Item(FAIL, name, f"{shown}: the folder does not exist (unmounted share?); set {variable} to the "
                                "folder the stores upload into (retail-etl generate writes data/pos_drop)")
    if not path.is_dir():
        return Item(FAIL, name, f"{shown}: not a folder; set {variable} to the folder the stores upload into")
    if not os.access(path, os.R_OK | os.X_OK):
        return Item(FAIL, name, f"{shown}: the folder is not readable by this user; give it read access or fix "
                                f"{variable}")
    stores = path / "stores.csv"
    if not stores.is_file() or not os.access(stores, os.R_OK):
        return Item(FAIL, name, f"{shown}: no readable stores.csv at its root (SPEC 2.1); put it there or fix "
                                f"{variable}")
    return Item(OK, name, f"{shown}: readable, stores.csv present")


def check_layouts(path: Path) -> Item:
    from retail_assets.layouts import load_layouts

    variable, name = "RETAIL_POS_LAYOUTS_DIR", "POS layouts"
    shown = f"{variable}={path}"
    if path.exists() and not path.is_dir():
        return Item(FAIL, name, f"{shown}: not a folder; set {variable} to a folder of layout YAML files")
    try:
        layouts = load_layouts(path)
    except Exception as exc:  # noqa: BLE001 - a broken layout file stops every POS load: say which one
        return Item(FAIL, name, f"{shown}: {short(exc)}; fix the file or {variable}")
    return Item(OK, name, f"{shown}: layouts {', '.join(sorted(layouts))}")


def check_dagster_home(path: Path) -> Item:
    variable, name = "DAGSTER_HOME", "Dagster home"
    shown = f"{variable}={path}"
    if path.exists():
        if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
            return Item(FAIL, name, f"{shown}: not a folder this user can write; fix {variable} or its permissions")
        return Item(OK, name, f"{shown}: writable")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        return Item(FAIL, name, f"{shown}: does not exist and {ancestor} is not writable; fix {variable}")
    return Item(OK, name, f"{shown}: will be created")


def check_settings(settings: Settings) -> Item:
    """The values the dates are computed with: the timezone and the first partition."""
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return Item(FAIL, "settings", f"RETAIL_TIMEZONE={settings.timezone}: not an IANA timezone; set it to one "
                                      "such as America/New_York")
    try:
        date.fromisoformat(settings.partition_start)
    except ValueError:
        return Item(FAIL, "settings", f"RETAIL_PARTITION_START={settings.partition_start}: not a date; set it as "
                                      "YYYY-MM-DD")
    return Item(OK, "settings", f"RETAIL_TIMEZONE={settings.timezone}, "
                                f"RETAIL_PARTITION_START={settings.partition_start}")


def _local_dates(stamps: pd.Series, timezone: str) -> set[date]:
    stamps = pd.to_datetime(stamps.dropna())
    if stamps.empty:
        return set()
    local = stamps.dt.tz_localize("UTC").dt.tz_convert(timezone)
    return set(local.dt.date.unique())


def pos_days(settings: Settings) -> set[date]:
    from retail_assets.resources import PosDropFolder

    drop = PosDropFolder(path=str(settings.pos_drop_dir), layouts_dir=str(settings.pos_layouts_dir))
    return {f.business_date for f in drop.scan() if f.business_date}


def online_days(settings: Settings) -> set[date]:
    from retail_assets.resources import SqlSource

    shop = SqlSource(url=settings.online_store_url, name="online shop")
    days: set[date] = set()
    try:
        for table_name, column in (("orders", "placed_at"), ("returns", "returned_at")):
            table = shop.table(table_name)
            frame = shop.read(sa.select(table.c[column]))
            days |= _local_dates(frame[column], settings.timezone)
    finally:
        shop.engine.dispose()
    return days


def source_days(settings: Settings, online: bool = True) -> list[date]:
    """Every business date for which some source holds data (``online`` False: the POS files' only)."""
    return sorted(pos_days(settings) | (online_days(settings) if online else set()))


def check_dates(settings: Settings, readable: bool, online: bool = True) -> tuple[Item, list[date]]:
    """The business dates with source data, and whether RETAIL_PARTITION_START leaves some of them out; with the
    online shop out of reach for now (``online`` False), the POS files' dates."""
    name = DATES_ITEM
    if not readable:
        return Item(WARN, name, "not known: fix the items above first"), []
    try:
        days = source_days(settings, online)
    except Exception as exc:  # noqa: BLE001 - reading the dates is the first real read of the sources
        return Item(FAIL, name, f"cannot read the sources' dates: {short(exc)}"), []
    if not online:
        return Item(WARN, name, f"{len(days)} day(s) with POS files; the online shop's days are not known while "
                                "it is out of reach"), days
    start = date.fromisoformat(settings.partition_start)
    if not days:
        return Item(WARN, name, "no business date has source data yet: a run loads nothing"), days
    early = [d for d in days if d < start]
    span = f"{days[0]} .. {days[-1]} ({len(days)} day(s) with data)"
    if early:
        return Item(WARN, name, f"{span}: {len(early)} day(s) before RETAIL_PARTITION_START={start} are skipped "
                                f"({early[0]} .. {early[-1]}); set it to {early[0]} or earlier to load them"), days
    return Item(OK, name, f"{span}, none before RETAIL_PARTITION_START={start}"), days


def run_checks(settings: Settings) -> Preflight:
    """Every check, in the order a run needs them."""
    items = [
        check_source(settings.online_store_url, "online shop", "RETAIL_ONLINE_STORE_URL", ONLINE_TABLES),
        check_source(settings.crm_url, "CRM", "RETAIL_CRM_URL", CRM_TABLES),
        check_warehouse(settings.warehouse_url),
        check_drop_folder(settings.pos_drop_dir),
        check_layouts(settings.pos_layouts_dir),
        check_dagster_home(settings.dagster_home),
        check_settings(settings),
    ]
    readable = all(i.status == OK for i in (items[3], items[4], items[6])) and items[0].status != FAIL
    dates, days = check_dates(settings, readable, online=items[0].status == OK)
    return Preflight([*items, dates], days)


# ------------------------------------------------------------------------------- the log of a failed command


def log_folder() -> Path:
    """``logs/`` beside DAGSTER_HOME (``data/logs`` by default) when that folder exists and is writable, else a
    folder in the system's temporary directory: writing a log never creates ``data/``."""
    parent = dagster_home().parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return parent / "logs"
    return Path(tempfile.gettempdir()) / "retail-etl-logs"


class LogFile:
    """Where a command writes what the terminal only summarises (tracebacks, Dagster's own log); made on first
    write, so a command that has nothing to say leaves no file. Passwords in URLs are hidden here too."""

    def __init__(self, path: Path | None = None):
        self._path = path
        self.used = False

    @property
    def path(self) -> Path:
        # Decided on first use: by then the command has read its settings (DAGSTER_HOME may come from .env).
        if self._path is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            self._path = log_folder() / f"retail-etl-{stamp}-{os.getpid()}.log"
        return self._path

    def write(self, text: str) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(redact(text))
        self.used = True
        return len(text)

    def exception(self, exc: BaseException, heading: str = "") -> None:
        self.write(f"{heading or 'error'}:\n{''.join(traceback.format_exception(exc))}\n")
