"""Engine creation and URL redaction shared by the source and warehouse resources."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Text with any password inside a database URL replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def make_engine(url: str) -> sa.Engine:
    """An engine for any SQLAlchemy URL; PostgreSQL goes through psycopg 3 (COPY), file databases get their folder."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() in ("sqlite", "duckdb") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "duckdb":
        # One DuckDB file admits one writing process: the pooled connection holds the file's lock until the
        # resource disposes its engine at the end of the run, so runs never keep it between them.
        return sa.create_engine(parsed, pool_size=1, max_overflow=4)
    return sa.create_engine(parsed, pool_pre_ping=True)
