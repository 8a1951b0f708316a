"""What every asset does the same way: validate with the table's model, write, and report."""


from collections.abc import Iterable

import dagster as dg
import pandas as pd

from retail_assets.checks import schema_result, validate_frame
from retail_assets.schemas.base import TableSpec

SOURCES_GROUP = "sources"
WAREHOUSE_GROUP = "warehouse"
MARTS_GROUP = "marts"
OWNERS = ["team:data-platform"]


def table_metadata(spec: TableSpec) -> dict[str, object]:
    """Definition-time metadata: the column schema from the model, and the table name."""
    return {"dagster/column_schema": spec.column_schema(), "dagster/table_name": spec.name}


def describe(spec: TableSpec, extra: str = "") -> str:
    return "\n\n".join(filter(None, [spec.description + ".", extra.strip(), spec.markdown_doc()]))


def validated(spec: TableSpec, df: pd.DataFrame, partition: str | None = None
              ) -> tuple[pd.DataFrame, dg.AssetCheckResult]:
    """The frame coerced to its model and the schema check's result for it."""
    out, failures = validate_frame(spec, df, partition)
    return out, schema_result(spec, failures, len(out), partition)


def preview(df: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if len(df) else "_no rows_")


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
