"""Asset checks made from the table models, plus the reconciliation checks that tie sources to facts.

``schema_check`` turns a ``TableSpec`` into a blocking Dagster check: the frame an asset writes is validated by
the table's pandera model, and a failure (severity ERROR) stops everything downstream. The failure counts per
rule and a sample of failure cases travel as metadata, visible in the UI for each partition.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import pandas as pd
import pandera.errors as pa_errors

from retail_assets.schemas.base import TableSpec

SCHEMA_CHECK = "schema"
RECONCILED_CHECK = "reconciled"
MAX_SAMPLE = 10


def schema_check_spec(spec: TableSpec, key: str | dg.AssetKey | None = None) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=SCHEMA_CHECK,
        asset=key or spec.name,
        blocking=True,
        description=f"Rows match the pandera model of {spec.name}: types, nullability, value rules, unique keys",
    )


def check_spec(key: str, name: str, description: str, *, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name=name, asset=key, blocking=blocking, description=description)


def validate_frame(spec: TableSpec, df: pd.DataFrame, partition: str | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(coerced frame, failure cases or None).

    On top of the model's column rules: the natural key is unique, and in a partitioned table every row belongs to
    the partition being written (a row of another day would be deleted by that day's next load).
    """
    failures = []
    try:
        out = spec.schema.validate(spec.conform(df), lazy=True)
    except pa_errors.SchemaErrors as exc:
        out = spec.conform(df)
        failures.append(exc.failure_cases[["column", "check", "failure_case", "index"]].astype(str))
    if spec.natural_key and len(out):
        dup = out.duplicated(list(spec.natural_key), keep=False)
        if dup.any():
            repeated = out.loc[dup, list(spec.natural_key)]
            failures.append(pd.DataFrame({
                "column": ",".join(spec.natural_key),
                "check": "unique natural key",
                "failure_case": repeated.astype(str).agg("|".join, axis=1),
                "index": repeated.index.astype(str),
            }))
    if partition and spec.partition_column and len(out):
        stray = pd.to_datetime(out[spec.partition_column]).dt.normalize() != pd.Timestamp(partition)
        if stray.any():
            failures.append(pd.DataFrame({
                "column": spec.partition_column, "check": f"inside partition {partition}",
                "failure_case": out.loc[stray, spec.partition_column].astype(str),
                "index": out.index[stray].astype(str),
            }))
    return out, (pd.concat(failures, ignore_index=True) if failures else None)


PLAUSIBLE_EMAILS_CHECK = "plausible_emails"
MAX_IMPLAUSIBLE_EMAIL_RATE = 0.01


def plausible_emails(df: pd.DataFrame, column: str = "email") -> dg.AssetCheckResult:
    """WARN when more than 1% of the non-empty emails, trimmed and lower-cased, do not look like an address."""
    from retail_assets.schemas.sources import EMAIL_PATTERN

    emails = df[column].dropna().astype(str).str.strip().str.lower() if len(df) else pd.Series(dtype=str)
    emails = emails[emails != ""]
    bad = emails[~emails.str.match(EMAIL_PATTERN)]
    rate = len(bad) / len(emails) if len(emails) else 0.0
    return dg.AssetCheckResult(
        check_name=PLAUSIBLE_EMAILS_CHECK, passed=rate <= MAX_IMPLAUSIBLE_EMAIL_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"implausible": len(bad), "checked": len(emails), "implausible_rate": rate,
                  "sample": ", ".join(bad.head(MAX_SAMPLE)) or "none"},
    )


def plausible_emails_spec(key: str) -> dg.AssetCheckSpec:
    return check_spec(key, PLAUSIBLE_EMAILS_CHECK,
                      f"At most {MAX_IMPLAUSIBLE_EMAIL_RATE:.0%} of the emails fail to look like name@domain.tld")


def schema_result(spec: TableSpec, failures: pd.DataFrame | None, rows: int,
                  partition: str | None = None) -> dg.AssetCheckResult:
    meta: dict[str, dg.RawMetadataValue] = {"rows_checked": rows}
    if partition:
        meta["partition"] = partition
    if failures is None:
        return dg.AssetCheckResult(check_name=SCHEMA_CHECK, passed=True, metadata=meta)
    counts = failures.groupby(["column", "check"]).size().reset_index(name="failures")
    meta["failure_count"] = len(failures)
    meta["failures_by_rule"] = dg.MetadataValue.md(counts.to_markdown(index=False))
    meta["sample_failure_cases"] = dg.MetadataValue.md(failures.head(MAX_SAMPLE).to_markdown(index=False))
    return dg.AssetCheckResult(check_name=SCHEMA_CHECK, passed=False,
                               severity=dg.AssetCheckSeverity.ERROR, metadata=meta)


def combine(results: Iterable[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """One result per check name for a run over several partitions: the worst one, with partitions counted."""
    by_name: dict[str, list[dg.AssetCheckResult]] = {}
    for r in results:
        by_name.setdefault(r.check_name or "", []).append(r)
    out = []
    for group in by_name.values():
        failed = [r for r in group if not r.passed]
        pick = failed[0] if failed else group[-1]
        if len(group) > 1:
            meta = dict(pick.metadata or {})
            meta["partitions_checked"] = len(group)
            meta["partitions_failed"] = len(failed)
            pick = dg.AssetCheckResult(check_name=pick.check_name, asset_key=pick.asset_key, passed=pick.passed,
                                       severity=pick.severity, metadata=meta)
        out.append(pick)
    return out
