"""Database URLs: read in one place (``normalise_url``), shown without their password, opened as engines."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Text with any password inside a database URL replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def display_url(url: str) -> str:
    """The URL as the user wrote it, with its password hidden (also when it does not parse)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown through the regex instead
        return redact(url)


class ConfigError(RuntimeError):
    """A setting names something that is not there or cannot be used: what, why, and what to change."""

    def __init__(self, what: str, cause: str, fix: str):
        super().__init__(f"{what}: {cause}; {fix}")
        self.what, self.cause, self.fix = what, cause, fix

    def __reduce__(self):  # the message alone would not rebuild it (multiprocess executors pickle errors)
        return type(self), (self.what, self.cause, self.fix)


class MissingDriver(ConfigError):
    """The URL's SQLAlchemy dialect or its DBAPI driver is not installed; ``package`` is what to pip install."""

    def __init__(self, what: str, cause: str, fix: str, package: str = ""):
        super().__init__(what, cause, fix)
        self.package = package

    def __reduce__(self):
        return type(self), (self.what, self.cause, self.fix, self.package)


class MissingDatabase(ConfigError):
    """A file database (SQLite) that a reader expects is not there; opening it would create an empty one."""


# The pip package of each DBAPI module SQLAlchemy's dialects import, where the names differ or are worth stating.
DRIVER_PACKAGES = {
    "pymysql": "pymysql", "MySQLdb": "mysqlclient", "mysql": "mysql-connector-python", "mariadb": "mariadb",
    "psycopg": "psycopg", "psycopg2": "psycopg2-binary", "pg8000": "pg8000", "asyncpg": "asyncpg",
    "pyodbc": "pyodbc", "pymssql": "pymssql", "oracledb": "oracledb", "cx_Oracle": "cx_Oracle", "duckdb": "duckdb",
}
# Dialects that are not part of SQLAlchemy: the package that brings each.
DIALECT_PACKAGES = {
    "duckdb": "duckdb-engine", "snowflake": "snowflake-sqlalchemy", "bigquery": "sqlalchemy-bigquery",
    "redshift": "sqlalchemy-redshift", "databricks": "databricks-sqlalchemy", "clickhouse": "clickhouse-sqlalchemy",
    "trino": "trino", "cockroachdb": "sqlalchemy-cockroachdb",
}


def normalise_url(url: str | sa.URL) -> sa.URL:
    """The URL SQLAlchemy is given for ``url``: every place that opens a database goes through here.

    ``postgres://`` (what Heroku, Render and many hosting panels hand out) is PostgreSQL, a name SQLAlchemy dropped;
    PostgreSQL always goes through psycopg 3, whose ``COPY`` the warehouse's bulk load uses."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql") and (backend == "postgres" or parsed.get_driver_name() != "psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def missing_driver(url: str | sa.URL) -> MissingDriver | None:
    """What is not installed to open ``url`` (its dialect or its driver), or None when both are importable."""
    parsed = normalise_url(url)
    shown = parsed.drivername
    try:
        dialect = parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        package = DIALECT_PACKAGES.get(parsed.get_backend_name(), "")
        return MissingDriver(f"the database driver for {shown}://",
                             f"SQLAlchemy has no dialect {parsed.get_backend_name()!r}",
                             f"pip install {package}" if package else "install the SQLAlchemy dialect for it",
                             package)
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or str(exc)).split(".")[0]
        package = DRIVER_PACKAGES.get(module, module)
        return MissingDriver(f"the database driver for {shown}://", f"Python module {module!r} is not installed",
                             f"pip install {package} (into the environment retail-etl runs in)", package)
    return None


def _existing_sqlite(parsed: sa.URL) -> sa.URL:
    """The SQLite URL opened read-write on an existing file, never creating one (a URI with mode=rw)."""
    database = parsed.database or ""
    if database in ("", ":memory:") or str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return parsed
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise MissingDatabase(f"the SQLite database {path}", "the file does not exist",
                              "point the URL at an existing database file")
    return parsed.set(database=f"file:{quote(str(path))}").update_query_dict({"uri": "true", "mode": "rw"})


DUCKDB_LOCK_WAIT_SECONDS = 15.0
# DuckDB's own default is most of the machine's memory, which it fills with cached table pages during a large load
# (peak memory with and without this limit: bench/README.md, "Where the time goes"); operators past the limit
# spill to the folder next to the database file. A URL's own ?memory_limit=... wins.
DUCKDB_DEFAULT_MEMORY_LIMIT = "1GB"


class WarehouseBusy(RuntimeError):
    """A brief reader (a sensor) cannot read now: the embedded DuckDB file is held by a run; try on the next tick."""


class WarehouseLocked(RuntimeError):
    """The embedded DuckDB warehouse file stayed locked by another process."""


def _wait_for_duckdb_lock(dialect, conn_rec, cargs, cparams):
    """Connect, waiting a little while another process (a sensor tick, a finishing run) holds the file's lock."""
    deadline = time.monotonic() + DUCKDB_LOCK_WAIT_SECONDS
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                raise WarehouseLocked(
                    f"the DuckDB warehouse file is locked by another process for over {DUCKDB_LOCK_WAIT_SECONDS:.0f}s "
                    f"({str(exc).strip().splitlines()[0]}); DuckDB admits one writing process: stop the other one, "
                    "run one job at a time, or use a PostgreSQL warehouse"
                ) from None
            time.sleep(0.2)


def make_engine(url: str, *, create: bool = True, connect_args: dict | None = None) -> sa.Engine:
    """An engine for any SQLAlchemy URL (``normalise_url``).

    ``create=False`` (a source): a SQLite file must exist and is opened read-write, never created empty. No folder
    is ever made: a mistyped path would otherwise become a new, empty database that loads or reports nothing. A
    missing driver raises ``MissingDriver`` (with the package to install) instead of an import traceback."""
    parsed = normalise_url(url)
    problem = missing_driver(parsed)
    if problem is not None:
        raise problem
    if parsed.get_backend_name() == "sqlite" and not create:
        parsed = _existing_sqlite(parsed)
    kwargs = {"connect_args": connect_args} if connect_args else {}
    if parsed.get_backend_name() == "duckdb":
        if "memory_limit" not in parsed.query:
            parsed = parsed.update_query_dict({"memory_limit": DUCKDB_DEFAULT_MEMORY_LIMIT})
        # One DuckDB file admits one writing process: the pooled connection holds the file's lock until the
        # resource disposes its engine at the end of the run, so runs never keep it between them.
        engine = sa.create_engine(parsed, pool_size=1, max_overflow=4, **kwargs)
        sa.event.listen(engine, "do_connect", _wait_for_duckdb_lock)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
