"""Small helpers shared by the generator modules: seeded random streams, money, time and file writing."""

from __future__ import annotations

import os
import random
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Table, create_engine, event

BATCH_ROWS = 10_000


def substream(seed: int, *parts: object) -> random.Random:
    """A random stream of its own for one part of the company.

    Each part (a store-day, the CRM, the online shop) draws from a stream keyed by the seed and its name, so a
    change in one part (more lines at one store) does not reshuffle every other part. String seeds are hashed
    with SHA-512 by ``random.Random``, which keeps them stable across processes and ``PYTHONHASHSEED``.
    """
    return random.Random("|".join([str(seed), *map(str, parts)]))


def cents_text(cents: int, decimal_mark: str = ".") -> str:
    """Format integer cents the way a terminal prints money: ``1250`` -> ``12.50``."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}{decimal_mark}{cents % 100:02d}"


def cents_amount(cents: int) -> str:
    """Integer cents as the manifest's exact 2-decimal amount string (via Decimal)."""
    return format(Decimal(cents).scaleb(-2), ".2f")


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant (naive) at which ``day`` starts in ``zone``; DST-correct."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def utc_to_local_date(instant: datetime, zone: ZoneInfo) -> date:
    """Business date of a naive UTC instant in ``zone``."""
    return instant.replace(tzinfo=UTC).astimezone(zone).date()


def epoch(instant: datetime) -> int:
    """Seconds since the epoch of a naive UTC datetime (used for file mtimes)."""
    return int(instant.replace(tzinfo=UTC).timestamp())


def utc_at(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A naive UTC datetime on ``day``."""
    return datetime(day.year, day.month, day.day, hour, minute, second)


def random_instant(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A whole-second instant uniformly in ``[start, end)``."""
    span = max(1, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randrange(span))


def write_file(path: Path, data: bytes, mtime: int) -> None:
    """Write ``data`` and stamp the file with a deterministic modification time.

    The mtime stands for when the file was received; loaders pick the newest of two versions by it, so it must
    not depend on when the generator ran.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def sqlite_engine(path: Path) -> Engine:
    """An engine for a new SQLite source file, tuned for a one-off bulk load.

    Journal and fsync are off because a failed generation is simply rerun; neither setting is stored in the
    file, so the database bytes stay the same.
    """
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _bulk_load_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    return engine


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Sequence[object]]) -> None:
    """Insert positional rows (values in the table's column order) with one executemany.

    Every value goes through its column type's bind processor, so it is stored exactly as a Core insert would
    store it; only Core's per-row dictionary handling is skipped, which dominates a load of millions of rows.
    """
    if not rows:
        return
    dialect = conn.dialect
    processors = [
        (position, processor)
        for position, column in enumerate(table.columns)
        if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:
        converted = []
        for row in rows:
            values = list(row)
            for position, processor in processors:
                values[position] = processor(values[position])
            converted.append(values)
        rows = converted
    statement = str(table.insert().compile(dialect=dialect))
    if not dialect.positional:  # psycopg's placeholders are named: the values go by column name
        names = [column.key for column in table.columns]
        conn.exec_driver_sql(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    conn.exec_driver_sql(statement, [tuple(row) for row in rows])


def weighted(rng: random.Random, values: Sequence, cum_weights: Sequence[float]):  # type: ignore[no-untyped-def]
    """One weighted pick; ``random.choices`` does the same but costs ten times more per call."""
    return values[bisect_right(cum_weights, rng.random() * cum_weights[-1])]


def uniform_pick(rng: random.Random, values: Sequence):  # type: ignore[no-untyped-def]
    """One uniform pick, cheaper than ``random.choice`` in the hot loops."""
    return values[int(rng.random() * len(values))]
