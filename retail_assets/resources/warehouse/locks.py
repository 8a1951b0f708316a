"""Advisory locks: the keys a slice's replacement or a DDL step takes, so concurrent runs wait for each other
(PostgreSQL; DuckDB admits one writing process and SQLite one writer, which need none)."""

from __future__ import annotations

import hashlib
import itertools
import math
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from retail_assets.resources.warehouse.reads import Filter

_MAX_SLICE_LOCKS = 1_000


def _lock_key(*parts: object) -> int:
    """A signed 64-bit advisory lock key for a table or one (table, column, value)."""
    text = "\x00".join(str(pd.Timestamp(p).isoformat()) if isinstance(p, date | datetime) else repr(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


# The one advisory lock under which every process creates or alters warehouse tables (see Warehouse.table).
DDL_LOCK = _lock_key("warehouse DDL")


def slice_locks(table: str, where: Filter) -> list[tuple[bool, int]]:
    """The advisory locks (shared?, key) a delete of the slice ``where`` of ``table`` takes, in a fixed order.

    A slice locks the table shared and itself exclusively: one key per combination of its columns' values (a list,
    such as a backfill's days, gives one per value), so two deletes of the same day wait for each other whether
    they name it alone or in a list, while other days (and other assets' rejections) go on in parallel. A
    whole-table delete, or a slice of more than ``_MAX_SLICE_LOCKS`` combinations, locks the table exclusively.
    Slices that can be replaced at the same time are described by the same columns everywhere in the platform (a
    business_date, with the asset or kind that tells them apart in a shared table)."""
    columns = sorted(where)
    values = [sorted(set(v), key=repr) if isinstance(v, list | tuple | set | frozenset) else [v]
              for v in (where[c] for c in columns)]
    if not where or math.prod(len(v) for v in values) > _MAX_SLICE_LOCKS:
        return [(False, _lock_key(table))]
    keys = {_lock_key(table, *(x for pair in zip(columns, combo, strict=True) for x in pair))
            for combo in itertools.product(*values)}
    return [(True, _lock_key(table)), *((False, key) for key in sorted(keys))]



def lock_slice(conn: sa.Connection, table: str, where: Filter) -> None:
    """Take the ``slice_locks`` of ``where`` until the transaction ends (PostgreSQL)."""
    for shared, key in slice_locks(table, where):
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {function}(:key)"), {"key": key})


def lock_ddl(conn: sa.Connection) -> None:
    """Take ``DDL_LOCK`` until the transaction ends (PostgreSQL)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK})
