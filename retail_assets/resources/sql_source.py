"""A read-only SQL source (the online shop, the CRM): any SQLAlchemy URL.

SQLite, MySQL/MariaDB and PostgreSQL hand the same source table back differently; what the assets get is the same
on each (tested in ``retail_assets_tests/sources/test_server_sources.py``):

- DECIMAL/NUMERIC money arrives as ``Decimal`` from every engine (SQLAlchemy's Numeric does it for SQLite too), so
  amounts stay exact until they are turned into cents.
- Timestamps are naive UTC. A ``DATETIME`` or ``timestamp without time zone`` is taken as written (the sources
  store UTC). MySQL converts a ``TIMESTAMP`` to the session's time zone and PostgreSQL hands ``timestamptz`` back
  in it, so the session runs in UTC, and a column with a time zone is read as naive UTC (``UtcDateTime``), a naive
  bound value taken as UTC.
- MySQL has no boolean type: ``BOOLEAN`` is ``TINYINT(1)``, which would come back as 0/1, and as a float column
  with NaN when a row holds NULL, which a cast to bool turns into True. It is read as a boolean (NULL stays NULL).
- Case-insensitive collations (MySQL's defaults) make ``'SKU-a1' = 'sku-A1 '`` true on the server. Values come back
  as stored, and no query here compares, groups or sorts text on the server: matching text is the platform's own
  rule (SKUs ignoring case, normalised emails), applied after reading, the same on every engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import PrivateAttr
from sqlalchemy.dialects import mysql

from retail_assets.resources.urls import ConfigError, display_url, make_engine, normalise_url, redact

# The variable each source's URL comes from (definitions.py binds them by these names), named in every error.
SOURCE_VARIABLES = {"online shop": "RETAIL_ONLINE_STORE_URL", "CRM": "RETAIL_CRM_URL"}


MYSQL_BACKENDS = ("mysql", "mariadb")


class UtcDateTime(sa.types.TypeDecorator):
    """A timestamp column with a time zone, read as naive UTC like every other source timestamp; a naive value
    bound to it (a partition's UTC bounds) is UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value

    def process_result_value(self, value, dialect):
        return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) and value.tzinfo else value


def _reflected_type(inspector, table, column: dict) -> None:
    """The type a reflected source column is read with (the module docstring says why)."""
    kind = column["type"]
    if isinstance(kind, mysql.TINYINT) and getattr(kind, "display_width", None) == 1:
        column["type"] = sa.Boolean(create_constraint=False)
    elif isinstance(kind, sa.DateTime) and getattr(kind, "timezone", False):
        column["type"] = UtcDateTime()


def _utc_session(engine: sa.Engine) -> None:
    """Run each MySQL session in UTC (``SET time_zone`` is not transactional there: it holds for the session)."""
    @sa.event.listens_for(engine, "connect")
    def _set_time_zone(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        cursor.close()


def _session_args(url: str) -> dict | None:
    """Connection arguments that put a PostgreSQL session in UTC (a SET would be undone by the pool's rollback)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "postgresql" and "options" not in parsed.query:
        return {"options": "-c TimeZone=UTC"}
    return None


class SqlSource(dg.ConfigurableResource):
    """A source database read through SQLAlchemy. The URL is bound from an environment variable."""

    url: str
    name: str = "source"

    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def variable(self) -> str:
        return SOURCE_VARIABLES.get(self.name, "the source's URL")

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                engine = make_engine(self.url, create=False, connect_args=_session_args(self.url))
                if engine.dialect.name in MYSQL_BACKENDS:
                    _utc_session(engine)
                self._engine = engine
            except ConfigError as exc:
                raise ConfigError(f"the {self.name} database {self.variable}={self.display_url}", exc.cause,
                                  f"{exc.fix}; fix {self.variable}") from None
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    def _failed(self, exc: sa.exc.SQLAlchemyError) -> RuntimeError:
        # Raised ``from None`` (one traceback, not two); retry.transient_reason still finds the driver's error
        # through __context__ and retries an unreachable source like any other transient failure.
        cause = redact(str(exc.orig) if getattr(exc, "orig", None) else str(exc)).strip()
        return RuntimeError(f"Reading the {self.name} database {self.variable}={self.display_url} failed: "
                            f"{type(exc).__name__}: {cause}")

    def read(self, query: sa.Executable, **params: Any) -> pd.DataFrame:
        """Run a SQLAlchemy Core query; the frame's columns are the query's labels."""
        try:
            with self.engine.connect() as conn:
                result = conn.execute(query, params)
                return _frame(result.fetchall(), list(result.keys()))
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed(exc) from None

    def table(self, name: str) -> sa.Table:
        """The source table reflected from the database (names come from our code, never from data)."""
        try:
            return sa.Table(name, sa.MetaData(), autoload_with=self.engine,
                            listeners=[("column_reflect", _reflected_type)])
        except sa.exc.NoSuchTableError:
            raise ConfigError(f"the {self.name} database {self.variable}={self.display_url}", f"it has no table {name}",
                              f"point {self.variable} at the {self.name}'s database") from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._failed(exc) from None


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """The rows as a frame built column by column: the dtypes pandas infers are those of ``pd.DataFrame(rows)``
    (tested on every source table), at about half the cost for tens of thousands of rows. No rows: the row-wise
    constructor, which keeps the columns as object."""
    if not rows:
        return pd.DataFrame(rows, columns=columns)
    frame = pd.DataFrame({i: list(values) for i, values in enumerate(zip(*rows, strict=True))})
    frame.columns = columns
    return frame
