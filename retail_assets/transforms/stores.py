"""stores.csv (SPEC 2.1): the rows raw_stores can hold, and every other row rejected with the reason.

The file is edited by hand at head office, so one bad row must not stop the chain: a row the RAW_STORES model
would refuse (a store code with a space or a semicolon, an empty name, ...) written to raw_stores fails the table's
blocking schema check, and with it every day after. So each row is checked here, by the rules of this module and by
the model itself, and a row that breaks one is rejected on its own, naming its line, the column, the value and the
rule; the other stores go on and what is written passes the check.
"""

from __future__ import annotations

from collections import defaultdict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pandera.errors as pa_errors

from retail_assets.layouts import Layout
from retail_assets.schemas.sources import RAW_STORES
from retail_assets.transforms.pos_parse import REJECTION_COLUMNS

STORES_REQUIRED = ["store_code", "store_name", "city", "region", "country", "timezone", "pos_layout", "opened_on",
                   "closed_on"]
# What to do about a broken rule, by (column, rule name) or rule name; a rule without one is named alone.
_HINTS = {
    ("store_code", "str_matches"): "use letters, digits, _ or -",
    "not_nullable": "fill it in",
}
_SHOWN_CHARS = 60  # of a value quoted in a reason: a hostile row may hold a very long one


def _store_rejection(line: int, code: str, reason: str, record: str, run_id: str) -> dict[str, object]:
    return {"business_date": pd.NaT, "asset": "raw_stores", "source_system": "pos", "source_ref": "stores.csv",
            "source_key": f"line {line}", "reason_code": code, "reason": reason, "record": record, "run_id": run_id}


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(empty)"
    text = str(value)
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def _model_problem(line: int, failures: list[tuple[str, str]], row: dict[str, object]) -> tuple[str, str]:
    """(reason_code, reason) of a row the model refuses: the code of the first rule it breaks, every rule named."""
    parts = []
    for column, rule in failures:
        hint = _HINTS.get((column, rule.split("(")[0])) or _HINTS.get(rule.split("(")[0])
        parts.append(f"{column} {_shown(row.get(column))} breaks rule {rule}" + (f": {hint}" if hint else ""))
    column = failures[0][0]
    code = "missing_value" if failures[0][1] == "not_nullable" else f"{column}_invalid"
    return code, f"line {line}: " + "; ".join(parts)


def _model_failures(candidates: pd.DataFrame) -> dict[int, list[tuple[str, str]]]:
    """Row position -> (column, rule) of every RAW_STORES rule the candidate row breaks, but for repeated store
    codes: which row of a code is kept is decided by ``clean_stores`` (the first usable one)."""
    try:
        RAW_STORES.schema.validate(candidates, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return {}
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for case in cases.itertuples(index=False):
        if case.check == "field_uniqueness":
            continue
        if pd.isna(case.index):  # a rule of the whole frame: this module built a frame the model does not expect
            raise ValueError(f"stores.csv rows fail {RAW_STORES.name}'s rule {case.check} on {case.column} as a "
                             "whole, not row by row; retail_assets/transforms/stores.py must reject such rows")
        out[int(case.index)].append((str(case.column), str(case.check)))
    return out


def clean_stores(frame: pd.DataFrame, layouts: dict[str, Layout], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """stores.csv rows that can be used, and the ones that cannot with the reason (as rows of ``rejections``).

    A row is rejected for an empty store code, an unknown layout, a code already given to an earlier row, a
    timezone that is not an IANA name, a date that is not YYYY-MM-DD, or any rule of the RAW_STORES model; the
    first usable row of a code is kept. What is returned passes the model.
    """
    missing = [c for c in STORES_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"stores.csv lacks column(s) {', '.join(missing)}; the header must be "
                         f"{','.join(STORES_REQUIRED)}")
    rows = [{c: "" if pd.isna(v) else str(v) for c, v in row.items()}
            for row in frame[STORES_REQUIRED].to_dict("records")]
    for line, row in enumerate(rows, start=2):
        row["source_line"] = line
    candidates = pd.DataFrame([{**{c: (row[c].strip() or None) for c in STORES_REQUIRED},
                                "source_line": row["source_line"], "run_id": run_id} for row in rows],
                              columns=[*STORES_REQUIRED, "source_line", "run_id"])
    for col in ("opened_on", "closed_on"):  # a date that does not parse is rejected below, before the model's rules
        candidates[col] = pd.to_datetime(candidates[col], format="%Y-%m-%d", errors="coerce")
    broken = _model_failures(candidates)
    good, bad = [], []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        code = row["store_code"].strip()
        record = ",".join(row[c] for c in STORES_REQUIRED)
        problem = None
        try:
            ZoneInfo(row["timezone"].strip())
        except (ZoneInfoNotFoundError, ValueError):
            problem = ("timezone_invalid", f"timezone {row['timezone']!r} of store {code} is not an IANA name "
                                           "such as America/New_York")
        if not code:
            problem = ("missing_value", "store_code is empty")
        elif row["pos_layout"].strip() not in layouts:
            problem = ("layout_unknown", f"store {code} names layout {row['pos_layout']!r}; known layouts: "
                                         f"{', '.join(sorted(layouts))} (add a YAML file to RETAIL_POS_LAYOUTS_DIR)")
        elif i in broken:
            problem = _model_problem(row["source_line"], broken[i], row)
        elif code in seen:
            problem = ("duplicate_store", f"store {code} appears twice in stores.csv; the first row was kept")
        for col in ("opened_on", "closed_on"):
            value = row[col].strip()
            if value and pd.isna(candidates.at[i, col]):
                problem = problem or ("date_invalid", f"{col} {value!r} of store {code} is not YYYY-MM-DD")
        if problem:
            bad.append(_store_rejection(row["source_line"], problem[0], problem[1], record, run_id))
            continue
        seen.add(code)
        good.append(i)
    stores = candidates.iloc[good].reset_index(drop=True)
    return stores, pd.DataFrame(bad, columns=REJECTION_COLUMNS)
