"""A read-only SQL source (the online shop, the CRM): any SQLAlchemy URL."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import PrivateAttr

from retail_assets.resources.urls import make_engine, redact


class SqlSource(dg.ConfigurableResource):
    """A source database read through SQLAlchemy. The URL is bound from an environment variable."""

    url: str
    name: str = "source"

    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def read(self, query: sa.Executable, **params: Any) -> pd.DataFrame:
        """Run a SQLAlchemy Core query; the frame's columns are the query's labels."""
        try:
            with self.engine.connect() as conn:
                result = conn.execute(query, params)
                return _frame(result.fetchall(), list(result.keys()))
        except sa.exc.SQLAlchemyError as exc:
            raise RuntimeError(
                f"Reading the {self.name} database at {self.display_url} failed: {type(exc).__name__}: "
                f"{redact(str(exc.orig) if getattr(exc, 'orig', None) else str(exc))}"
            ) from None

    def table(self, name: str) -> sa.Table:
        """The source table reflected from the database (names come from our code, never from data)."""
        return sa.Table(name, sa.MetaData(), autoload_with=self.engine)


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """The rows as a frame built column by column: the dtypes pandas infers are those of ``pd.DataFrame(rows)``
    (tested on every source table), at about half the cost for tens of thousands of rows. No rows: the row-wise
    constructor, which keeps the columns as object."""
    if not rows:
        return pd.DataFrame(rows, columns=columns)
    frame = pd.DataFrame({i: list(values) for i, values in enumerate(zip(*rows, strict=True))})
    frame.columns = columns
    return frame
