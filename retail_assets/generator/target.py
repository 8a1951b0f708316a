"""Where a generated source database goes: a new SQLite file in the output folder, or a database on a server.

A server database is named by any SQLAlchemy URL (``mysql+pymysql://...``, ``postgresql://...``), opened like every
other connection of the platform (``resources.urls.make_engine``: the missing driver is named with its package).
The database is created when the server has none of that name. The source tables are then replaced, but only
tables this generator wrote: each carries a table comment that says so, and a database that already holds a table
of the same name without it (a real shop, say) is refused before anything is dropped.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retail_assets.resources.urls import ConfigError, display_url, make_engine, normalise_url

from ._common import sqlite_engine

GENERATED = "sample data written by retail-etl generate"
MYSQL_BACKENDS = ("mysql", "mariadb")
# What a shop on MySQL or MariaDB is created with: every character, compared ignoring case (as shops run them).
MYSQL_CHARSET = "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"


def open_target(target: Path | str, metadata: sa.MetaData, what: str) -> sa.Engine:
    """An engine on ``target`` (a new SQLite file, or a server's URL) whose database holds ``metadata``'s tables,
    new and empty."""
    if isinstance(target, Path):
        engine = sqlite_engine(target)
        metadata.create_all(engine)
        return engine
    if normalise_url(target).get_backend_name() == "sqlite":
        raise ConfigError(f"the {what} URL {display_url(target)}", "generate writes SQLite sources into --out",
                          "give a server's URL (MySQL, MariaDB, PostgreSQL), or leave the flag out")
    engine = make_engine(target, create=True)
    try:
        _ensure_database(engine, what)
        _replace_tables(engine, metadata, what)
    except Exception:
        engine.dispose()
        raise
    return engine


def _no_such_database(exc: sa.exc.OperationalError, url: sa.URL) -> bool:
    orig = exc.orig
    if url.get_backend_name() in MYSQL_BACKENDS:
        return bool(getattr(orig, "args", None)) and orig.args[0] == 1049  # ER_BAD_DB_ERROR
    return f'database "{url.database}" does not exist' in str(orig)


def _ensure_database(engine: sa.Engine, what: str) -> None:
    url = engine.url
    try:
        with engine.connect():
            return
    except sa.exc.OperationalError as exc:
        if not url.database or not _no_such_database(exc, url):
            raise
    name = engine.dialect.identifier_preparer.quote(url.database)
    backend = url.get_backend_name()
    if backend in MYSQL_BACKENDS:
        admin_url, ddl = url._replace(database=None), f"CREATE DATABASE IF NOT EXISTS {name} {MYSQL_CHARSET}"
    elif backend == "postgresql":
        admin_url, ddl = url.set(database="postgres"), f"CREATE DATABASE {name}"
    else:
        raise ConfigError(f"the {what} database {display_url(url)}", "it does not exist",
                          "create it, then run generate again")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(ddl)
    finally:
        admin.dispose()


def _replace_tables(engine: sa.Engine, metadata: sa.MetaData, what: str) -> None:
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    comments = engine.dialect.supports_comments

    def ours(name: str) -> bool:
        return comments and (inspector.get_table_comment(name) or {}).get("text") == GENERATED

    foreign = [t.name for t in metadata.sorted_tables if t.name in existing and not ours(t.name)]
    if foreign:
        raise ConfigError(f"the {what} database {display_url(engine.url)}",
                          f"it already has table(s) {', '.join(foreign)} that retail-etl generate did not write",
                          "point the URL at a new or empty database (generate creates a missing one), or drop them")
    marked = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(marked).comment = GENERATED if comments else None
    marked.drop_all(engine)
    marked.create_all(engine)
