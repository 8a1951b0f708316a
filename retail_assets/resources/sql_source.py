"""A read-only SQL source (the online shop, the CRM): any SQLAlchemy URL."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import PrivateAttr

from retail_assets.resources.urls import ConfigError, display_url, make_engine, redact

# The variable each source's URL comes from (definitions.py binds them by these names), named in every error.
SOURCE_VARIABLES = {"online shop": "RETAIL_ONLINE_STORE_URL", "CRM": "RETAIL_CRM_URL"}


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
                self._engine = make_engine(self.url, create=False)
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
            return sa.Table(name, sa.MetaData(), autoload_with=self.engine)
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
