"""Asset checks made from the table models, plus the reconciliation checks that tie sources to facts.

``schema_check`` turns a ``TableSpec`` into a blocking Dagster check: the frame an asset writes is validated by
the table's pandera model, and a failure (severity ERROR) stops everything downstream. The failure counts per
rule and a sample of failure cases travel as metadata, visible in the UI for each partition. Every failed ERROR
check also carries ``failed_rules`` (``FAILED_RULES``): one line naming each broken rule with a few failing values,
which the command line prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg
import pandas as pd
import pandera.errors as pa_errors
import sqlalchemy as sa

from retail_assets.schemas.base import TableSpec

SCHEMA_CHECK = "schema"
RECONCILED_CHECK = "reconciled"
MAX_SAMPLE = 10
# Metadata key of every failed ERROR check: one line a person can read (the CLI prints it) naming each rule that
# failed with a few of its failing values, e.g. "store_code str_matches('^[A-Za-z0-9_-]+$'): 'S0;DROP' (1 row)".
FAILED_RULES = "failed_rules"
_RULES_SHOWN = 5
_VALUES_SHOWN = 3
_PARTITIONS_SHOWN = 3
_VALUE_CHARS = 40


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
    # A row is one failure case; rules checked in SQL bring a sample of cases and carry the full count on the
    # first of them (``count``, 0 on the others).
    weight = failures["count"].fillna(1) if "count" in failures.columns else pd.Series(1, index=failures.index)
    counts = weight.groupby([failures["column"], failures["check"]]).sum().astype(int).reset_index(name="failures")
    failures = failures.drop(columns="count", errors="ignore")
    meta["failure_count"] = int(counts["failures"].sum())
    meta["failures_by_rule"] = dg.MetadataValue.md(counts.to_markdown(index=False))
    meta["sample_failure_cases"] = dg.MetadataValue.md(failures.head(MAX_SAMPLE).to_markdown(index=False))
    meta[FAILED_RULES] = failed_rules(failures, counts)
    return dg.AssetCheckResult(check_name=SCHEMA_CHECK, passed=False,
                               severity=dg.AssetCheckSeverity.ERROR, metadata=meta)


def _raw(value: object) -> object:
    """A metadata entry as given (str, int, ...), whether or not Dagster has wrapped it in a MetadataValue."""
    return value.value if isinstance(value, dg.MetadataValue) else value


def _value(text: object) -> str:
    text = str(text)
    return repr(text if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "...")


def failed_rules(failures: pd.DataFrame, counts: pd.DataFrame) -> str:
    """``FAILED_RULES`` of a schema check: per broken rule (in the order of the failure cases) its column, its
    name and a few failing values, with how many rows broke it; the rules past the first few are counted."""
    total = {(r.column, r.check): int(r.failures) for r in counts.itertuples()}
    parts = []
    for (column, check), cases in failures.groupby(["column", "check"], sort=False):
        values = list(dict.fromkeys(cases["failure_case"].astype(str)))
        n = total.get((column, check), len(cases))
        shown = ", ".join(_value(v) for v in values[:_VALUES_SHOWN]) + (", ..." if len(values) > _VALUES_SHOWN else "")
        if check == "not_nullable":  # its failure cases are the missing values themselves
            shown = "empty"
        parts.append(f"{column} {check}: {shown} ({n} row{'s' if n != 1 else ''})")
    more = len(parts) - _RULES_SHOWN
    return "; ".join(parts[:_RULES_SHOWN]) + (f"; and {more} more rule{'s' if more != 1 else ''}" if more > 0 else "")


def _described(result: dg.AssetCheckResult) -> str:
    """``FAILED_RULES`` for a failed check made without one (a reconciliation): the check's name and its figures."""
    meta = dict(result.metadata or {})
    if "problems" in meta:
        return f"{result.check_name}: {_raw(meta['problems'])}"
    figures = []
    for key, value in ((k, _raw(v)) for k, v in meta.items()):
        if key not in ("partition", "partitions_checked", "partitions_failed") and isinstance(value, str | int | float):
            figures.append(f"{key} {value}")
    return f"{result.check_name}: " + (", ".join(figures) or "failed")


def combine(results: Iterable[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """One result per check name for a run over several partitions: the worst one, with partitions counted.

    A failed ERROR check carries ``FAILED_RULES``: its own, or one made from its figures, prefixed with the
    partition when it names one (the rules of the first failed partitions, when several failed)."""
    by_name: dict[str, list[dg.AssetCheckResult]] = {}
    for r in results:
        by_name.setdefault(r.check_name or "", []).append(r)
    out = []
    for group in by_name.values():
        failed = [r for r in group if not r.passed]
        pick = failed[0] if failed else group[-1]
        meta = dict(pick.metadata or {})
        if len(group) > 1:
            meta["partitions_checked"] = len(group)
            meta["partitions_failed"] = len(failed)
        errors = [r for r in failed if r.severity == dg.AssetCheckSeverity.ERROR]
        if errors:
            texts = []
            for r in errors:
                text = str(_raw((r.metadata or {}).get(FAILED_RULES)) or _described(r))
                partition = _raw((r.metadata or {}).get("partition"))
                texts.append(f"{partition}: {text}" if partition and len(group) > 1 else text)
            more = len(texts) - _PARTITIONS_SHOWN
            meta[FAILED_RULES] = " | ".join(texts[:_PARTITIONS_SHOWN]) + (
                f" | and {more} more partition{'s' if more != 1 else ''}" if more > 0 else "")
        if meta != dict(pick.metadata or {}):
            pick = dg.AssetCheckResult(check_name=pick.check_name, asset_key=pick.asset_key, passed=pick.passed,
                                       severity=pick.severity, metadata=meta)
        out.append(pick)
    return out


# ------------------------------------------------------------------------------------- the model's rules in SQL


def _violates(check, column: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """The SQL condition under which a value breaks one of pandera's built-in column checks."""
    name, stats = check.name, check.statistics
    if name == "isin":
        return column.not_in(list(stats["allowed_values"]))
    if name == "notin":
        return column.in_(list(stats["forbidden_values"]))
    if name == "equal_to":
        return column != stats["value"]
    if name == "not_equal_to":
        return column == stats["value"]
    if name == "greater_than":
        return column <= stats["min_value"]
    if name == "greater_than_or_equal_to":
        return column < stats["min_value"]
    if name == "less_than":
        return column >= stats["max_value"]
    if name == "less_than_or_equal_to":
        return column > stats["max_value"]
    if name == "in_range":
        low = column < stats["min_value"] if stats.get("include_min", True) else column <= stats["min_value"]
        high = column > stats["max_value"] if stats.get("include_max", True) else column >= stats["max_value"]
        return sa.or_(low, high)
    if name == "str_length":
        length = sa.func.length(column)
        if stats.get("exact_value") is not None:
            return length != stats["exact_value"]
        parts = []
        if stats.get("min_value") is not None:
            parts.append(length < stats["min_value"])
        if stats.get("max_value") is not None:
            parts.append(length > stats["max_value"])
        return sa.or_(*parts)
    if name == "str_matches":  # pandera matches at the start of the string, as re.match does; each dialect
        # renders its own regular-expression search (``~`` on both warehouse engines)
        pattern = stats["pattern"] if stats["pattern"].startswith("^") else "^" + stats["pattern"]
        return sa.not_(column.regexp_match(pattern))
    raise NotImplementedError(f"pandera check {name} has no SQL form: add it to checks._violates")


def sql_rules(spec: TableSpec, table: sa.Table) -> list[tuple[str, str, sa.ColumnElement[bool]]]:
    """(column, rule, violation) for every value rule of the table's pandera model.

    Types and nullability need no query: the table was created from the same model, so the database enforces
    them; a rule pandera has and SQL here does not is an error at the first use, never silently skipped."""
    rules = []
    for name, column in spec.schema.columns.items():
        for check in column.checks:
            stats = ", ".join(f"{k}={v}" for k, v in check.statistics.items() if v is not None)
            rules.append((name, f"{check.name}({stats})", sa.and_(table.c[name].is_not(None),
                                                                   _violates(check, table.c[name]))))
    if spec.schema.checks:
        raise NotImplementedError(f"{spec.name} has table-wide pandera checks, which have no SQL form")
    return rules


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """The number of rows for which ``condition`` holds, as an aggregate (0 over no rows)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _sampled(column: str, check: str, cases: list[str], count: int) -> pd.DataFrame:
    """Failure cases of one rule checked in SQL: a sample, with the rule's full count on the first of them."""
    return pd.DataFrame({"column": column, "check": check, "failure_case": cases, "index": "-",
                         "count": [count] + [0] * (len(cases) - 1)})


def repeated_keys(conn: sa.Connection, table: sa.Table, keys: Sequence[str], where: sa.ColumnElement[bool],
                  check: str) -> pd.DataFrame | None:
    """Values of ``keys`` that more than one row inside ``where`` holds, counted by the database: up to
    ``MAX_SAMPLE`` of them as failure cases of ``check``, the number of repeated values as its count."""
    cols = [table.c[k] for k in keys]
    if len(cols) == 1:
        # Most days repeat nothing: one count of distinct values proves it. Planners cost the GROUP BY below by
        # guesses about a key loaded minutes ago and may hash a million values where this counts them in one pass;
        # when every row holds a value and no two the same, the two counts are equal (NULLs are never distinct).
        spare = conn.execute(sa.select(sa.func.count() - sa.func.count(sa.distinct(cols[0]))).where(where))
        if spare.scalar_one() == 0:
            return None
    repeated = sa.select(*cols).where(where).group_by(*cols).having(sa.func.count() > 1)
    rows = conn.execute(repeated.limit(MAX_SAMPLE)).all()
    if not rows:
        return None
    count = conn.execute(sa.select(sa.func.count()).select_from(repeated.subquery())).scalar_one()
    return _sampled(",".join(keys), check, ["|".join(map(str, r)) for r in rows], int(count))


def rule_counts(spec: TableSpec, table: sa.Table, where: sa.ColumnElement[bool]) -> list[sa.ColumnElement[int]]:
    """The aggregates ``sql_failures`` computes in its scan, for a caller that scans the same rows for other
    reasons and hands their values back as ``counts`` (rows outside ``where`` are not counted)."""
    return [count_if(sa.and_(where, violation)) for _, _, violation in sql_rules(spec, table)]


def sql_failures(conn: sa.Connection, spec: TableSpec, table: sa.Table, where: sa.ColumnElement[bool],
                 counts: Sequence[int] | None = None) -> pd.DataFrame | None:
    """The rows of ``table`` inside ``where`` that break the table's pandera model, checked where they live.

    One scan counts the violations of every rule (``counts``: those already counted by the caller's scan with
    ``rule_counts``), a ``GROUP BY`` the repeats of every unique column and of the natural key; a rule that fails
    gets up to ``MAX_SAMPLE`` of its values as failure cases. The frame has pandera's failure-case columns plus
    ``count``: the rows that break the rule on its first case, 0 on the others."""
    rules = sql_rules(spec, table)
    failures = []
    if rules:
        if counts is None:
            counts = conn.execute(sa.select(*rule_counts(spec, table, where)).where(where)).one()
        for (column, rule, violation), count in zip(rules, counts, strict=True):
            if count:
                sample = conn.execute(sa.select(table.c[column]).where(where, violation).limit(MAX_SAMPLE)).scalars()
                failures.append(_sampled(column, rule, list(map(str, sample)), int(count)))
    unique_sets = [(c,) for c, col in spec.schema.columns.items() if col.unique]
    if spec.natural_key and tuple(spec.natural_key) not in unique_sets:
        unique_sets.append(tuple(spec.natural_key))
    for keys in unique_sets:
        label = "unique natural key" if len(keys) > 1 or keys == tuple(spec.natural_key) else "unique"
        found = repeated_keys(conn, table, keys, where, label)
        if found is not None:
            failures.append(found)
    return pd.concat(failures, ignore_index=True) if failures else None
