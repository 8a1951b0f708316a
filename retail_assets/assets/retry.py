"""Transient failures are retried; every other failure fails the step at once.

A step that failed because a database was briefly out of reach (restarting, failing over, out of connection
slots), because the connection dropped mid-statement, because PostgreSQL chose it as a deadlock or serialization
victim, or because another process held the embedded DuckDB file past the wait, will most likely pass a minute
later: ``retries_transient`` turns those errors into ``dg.RetryRequested`` with a growing wait, and Dagster starts
the step again (each day is one transaction, so the failed attempt left nothing behind). Bad data, a failed check,
a wrong password or a missing table fail at once: the same input would fail again.

Knobs (environment): ``RETAIL_TRANSIENT_RETRIES`` (3) attempts after the first, ``RETAIL_TRANSIENT_RETRY_SECONDS``
(30) before the first retry, doubled for each further one.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dagster as dg
import sqlalchemy as sa

from retail_assets.resources.urls import WarehouseLocked, redact
from retail_assets.settings import setting

F = TypeVar("F", bound=Callable[..., Any])
MARKER = "_retail_retries_transient"

# SQLSTATEs a retry can cure: connection exceptions (class 08), serialization failure, deadlock, too many
# connections, lock_timeout expired, administrator shutdown / crash / not accepting connections yet.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03"}
# What drivers say when the server is out of reach and give no SQLSTATE (a connection that never started).
_TRANSIENT_MESSAGES = (
    "connection refused", "could not connect", "server closed the connection", "connection timed out",
    "timeout expired", "connection reset", "could not receive data", "could not send data", "ssl syscall error",
    "temporary failure in name resolution", "the database system is starting up",
    "the database system is shutting down", "the database system is in recovery mode", "too many clients",
    "remaining connection slots are reserved", "not currently accepting connections", "terminating connection",
    "can't connect to mysql server", "lost connection to mysql server", "mysql server has gone away",
    "database is locked", "database table is locked",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth a retry (its first line, passwords redacted), or None when it is not."""
    for e in _chain(exc):
        sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        by_state = isinstance(sqlstate, str) and (sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08"))
        # Drivers' OperationalError (psycopg, sqlite3, pymysql, ...) covers a refused connection and a missing
        # table alike: only its message tells them apart.
        operational = isinstance(e, sqlite3.OperationalError) or type(e).__name__ == "OperationalError"
        by_message = operational and any(m in str(e).lower() for m in _TRANSIENT_MESSAGES)
        invalidated = isinstance(e, sa.exc.DBAPIError) and e.connection_invalidated
        if isinstance(e, WarehouseLocked) or invalidated or by_state or by_message:
            return redact(message)
    return None


def retry_wait(attempt: int) -> float:
    """Seconds before retry number ``attempt + 1`` (0 = the first retry)."""
    return float(setting("RETAIL_TRANSIENT_RETRY_SECONDS")) * 2 ** attempt


@contextmanager
def _retry_on_transient() -> Iterator[None]:
    try:
        yield
    except dg.RetryRequested:
        raise
    except Exception as exc:
        reason = transient_reason(exc)
        if reason is None:
            raise
        retries = int(setting("RETAIL_TRANSIENT_RETRIES"))
        context = dg.OpExecutionContext.get()
        attempt = context.retry_number
        wait = retry_wait(attempt)
        if attempt < retries:
            context.log.warning(f"transient failure ({reason}); retry {attempt + 1} of {retries} in {wait:.0f}s")
        raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from exc


def retries_transient(fn: F) -> F:
    """Decorate an asset's compute function (below ``@dg.asset``): transient errors become ``dg.RetryRequested``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _retry_on_transient():
                yield from fn(*args, **kwargs)
        wrapped: Any = generator
    else:
        @functools.wraps(fn)
        def function(*args: Any, **kwargs: Any) -> Any:
            with _retry_on_transient():
                return fn(*args, **kwargs)
        wrapped = function
    setattr(wrapped, MARKER, True)
    return wrapped
