"""Engine creation and URL redaction shared by the source and warehouse resources."""

from __future__ import annotations

import re
import time
from pathlib import Path

import sqlalchemy as sa

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Text with any password inside a database URL replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


DUCKDB_LOCK_WAIT_SECONDS = 15.0
# DuckDB's own default is 80% of the machine's memory, which it fills with cached table pages during a large load
# (a 10M-line day peaked at 2.9 GB with it, 1.5 GB with this, and ran slightly faster); operators past the limit
# spill to the folder next to the database file. A URL's own ?memory_limit=... wins.
DUCKDB_DEFAULT_MEMORY_LIMIT = "1GB"


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


def make_engine(url: str) -> sa.Engine:
    """An engine for any SQLAlchemy URL; PostgreSQL goes through psycopg 3 (COPY), file databases get their folder."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() in ("sqlite", "duckdb") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "duckdb":
        if "memory_limit" not in parsed.query:
            parsed = parsed.update_query_dict({"memory_limit": DUCKDB_DEFAULT_MEMORY_LIMIT})
        # One DuckDB file admits one writing process: the pooled connection holds the file's lock until the
        # resource disposes its engine at the end of the run, so runs never keep it between them.
        engine = sa.create_engine(parsed, pool_size=1, max_overflow=4)
        sa.event.listen(engine, "do_connect", _wait_for_duckdb_lock)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)
