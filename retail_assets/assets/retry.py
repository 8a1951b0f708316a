"""Transient failures are retried; every other failure fails the step at once.

A step that failed because a database was briefly out of reach (restarting, failing over, out of connection
slots), because the connection dropped mid-statement, because PostgreSQL chose it as a deadlock or serialization
victim, or because another process held the embedded DuckDB file past the wait, will most likely pass a minute
later. Every asset carries ``TRANSIENT_RETRY`` (Dagster's ``RetryPolicy`` with exponential backoff), and its
compute function is wrapped by ``retries_transient``: a transient error is left to the policy (each day is one
transaction, so the failed attempt left nothing behind); any other error (bad data, a failed check, a wrong
password, a missing table: the same input would fail again) becomes ``dg.Failure(allow_retries=False)``, which
the policy does not retry. ``transient_reason`` is the knowledge of which errors are transient.

Knobs (definition time, ``settings.DEFINITION_SETTINGS``): ``RETAIL_TRANSIENT_RETRIES`` (3) retries after the first
attempt, ``RETAIL_TRANSIENT_RETRY_SECONDS`` (30) before the first retry; Dagster's exponential backoff waits
``delay * (2**n - 1)`` before retry n (30 s, 90 s, 210 s by default).
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
from retail_assets.settings import DEFINITION_SETTINGS

F = TypeVar("F", bound=Callable[..., Any])
MARKER = "_retail_retries_transient"


def transient_retry_policy(retries: int, seconds: float) -> dg.RetryPolicy:
    return dg.RetryPolicy(max_retries=retries, delay=seconds, backoff=dg.Backoff.EXPONENTIAL)


TRANSIENT_RETRY = transient_retry_policy(DEFINITION_SETTINGS.transient_retries,
                                         DEFINITION_SETTINGS.transient_retry_seconds)

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


@contextmanager
def _fail_unless_transient() -> Iterator[None]:
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:
        reason = transient_reason(exc)
        if reason is None:
            # The error itself stays the cause, so the UI, the alerts and the terminal show it as before.
            raise dg.Failure(description=redact(f"{type(exc).__name__}: {exc}"), allow_retries=False) from exc
        context = dg.OpExecutionContext.get()
        # the asset's own policy, else its job's (the load jobs set it for every step)
        policy = context.job_def.get_retry_policy_for_handle(context.op_handle) if context is not None else None
        if context is not None and policy is not None and context.retry_number < policy.max_retries:
            attempt = context.retry_number + 1
            context.log.warning(f"transient failure ({reason}); retry {attempt} of {policy.max_retries} in "
                                f"{policy.calculate_delay(attempt):.0f}s")
        raise


def retries_transient(fn: F) -> F:
    """Decorate an asset's compute function (below ``@dg.asset(..., retry_policy=TRANSIENT_RETRY)``): a transient
    error is raised for the policy to retry, any other becomes ``dg.Failure(allow_retries=False)``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _fail_unless_transient():
                yield from fn(*args, **kwargs)
        wrapped: Any = generator
    else:
        @functools.wraps(fn)
        def function(*args: Any, **kwargs: Any) -> Any:
            with _fail_unless_transient():
                return fn(*args, **kwargs)
        wrapped = function
    setattr(wrapped, MARKER, True)
    return wrapped
