"""One schema, many uses: a pandera model per table drives validation, DDL, UI column schema and docs.

A ``TableSpec`` pairs a pandera ``DataFrameModel`` with what the model cannot say itself: the table's name,
its natural key and the column that partitions it. Column SQL types come from the model's dtypes, refined by
``Field(metadata={"sql": ...})`` where the dtype is not enough (money is ``NUMERIC(14,2)``, a date is ``DATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

MONEY = {"sql": "money"}
DATE = {"sql": "date"}

_SQL_OVERRIDES: dict[str, sa.types.TypeEngine] = {
    "money": sa.Numeric(14, 2),
    "date": sa.Date(),
    "text": sa.Text(),
}


def _sql_type(column: pa.Column) -> sa.types.TypeEngine:
    override = (column.metadata or {}).get("sql")
    if override:
        return _SQL_OVERRIDES[override]
    kind = str(column.dtype).lower()
    if "int" in kind:
        return sa.BigInteger()
    if "float" in kind:
        return sa.Double()  # sa.Float is a 4-byte REAL on DuckDB
    if "bool" in kind:
        return sa.Boolean()
    if "datetime" in kind or "timestamp" in kind:
        return sa.DateTime()
    return sa.Text()


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table described once: its pandera model and its keys."""

    name: str
    model: type[pa.DataFrameModel]
    description: str
    natural_key: Sequence[str] = ()
    partition_column: str | None = None
    soft_checks: Sequence[str] = field(default_factory=tuple)

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)

    def money_columns(self) -> list[str]:
        return [n for n, c in self.schema.columns.items() if (c.metadata or {}).get("sql") == "money"]

    def date_columns(self) -> list[str]:
        return [n for n, c in self.schema.columns.items() if (c.metadata or {}).get("sql") == "date"]

    def sql_table(self, metadata: sa.MetaData) -> sa.Table:
        cols = [
            sa.Column(name, _sql_type(col), nullable=bool(col.nullable), comment=col.description)
            for name, col in self.schema.columns.items()
        ]
        return sa.Table(self.name, metadata, *cols, comment=self.description)

    def column_schema(self) -> dg.TableSchema:
        return dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=name,
                    type=str(_sql_type(col).compile(dialect=postgresql.dialect())),
                    description=col.description,
                    constraints=dg.TableColumnConstraints(nullable=bool(col.nullable)),
                )
                for name, col in self.schema.columns.items()
            ]
        )

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame with exactly the model's columns, in order, with money rounded to the cent."""
        out = df.reindex(columns=self.columns)
        for col in self.money_columns():
            out[col] = pd.to_numeric(out[col]).round(2)
        return out

    def empty(self) -> pd.DataFrame:
        return self.conform(pd.DataFrame({c: pd.Series(dtype="object") for c in self.columns}))

    def markdown_doc(self) -> str:
        lines = [f"### `{self.name}`", "", self.description, "", "| column | type | null | description |",
                 "|---|---|---|---|"]
        for name, col in self.schema.columns.items():
            sql = _sql_type(col).compile(dialect=postgresql.dialect())
            lines.append(f"| {name} | {sql} | {'yes' if col.nullable else 'no'} | {col.description or ''} |")
        return "\n".join(lines)
