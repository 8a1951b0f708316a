"""Reading one POS file through its layout: decode, parse, validate row by row, and say why a line is refused.

Pure: bytes in, frames out. A file-level problem (undecodable, unparseable, a required column missing, too many
bad lines) rejects every line of the file with the same reason; otherwise each bad line is rejected on its own
with the first rule it breaks, and the good lines go on. A file too large to hold is read in pieces by
``parse_stream``, with the same result as ``parse_pos_file`` of the whole file (see the last section).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from retail_assets.layouts import Layout
from retail_assets.schemas.sources import PAYMENT_METHODS
from retail_assets.transforms.normalise import loyalty_card_arrow, normalise_sku, sku_norm_arrow, utf8_buffers

REJECTION_COLUMNS = ["business_date", "asset", "source_system", "source_ref", "source_key", "reason_code", "reason",
                     "record", "run_id"]


@dataclass
class ParsedFile:
    """What became of one file: the valid rows, the rejected lines and what was noticed on the way."""

    rows: pd.DataFrame
    rejections: pd.DataFrame
    lines: int
    file_error: str | None = None
    file_error_code: str | None = None
    extra_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileContext:
    path: str
    business_date: date
    store_code: str | None
    run_id: str
    asset: str
    max_rejected_rate: float = 0.5
    line_offset: int = 0  # added to every line number: the lines of the file before a piece of it (parse_stream)


def _physical_lines(text: str) -> list[str]:
    """Lines as the CSV parser sees them (\\r\\n, \\r or \\n), not every separator str.splitlines knows."""
    return _LINE_BREAK.split(text)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _rejections(ctx: FileContext, line_numbers: list[int] | np.ndarray, codes: list[str] | pd.Series,
                reasons: list[str] | pd.Series, records: list[str | None] | pd.Series) -> pd.DataFrame:
    return _rejection_frame(ctx.business_date, [ctx] * len(line_numbers), line_numbers, codes, reasons, records)


def _rejection_frame(day: date, ctxs: list[FileContext], line_numbers: list[int] | np.ndarray,
                     codes: list[str] | pd.Series, reasons: list[str] | pd.Series,
                     records: list[str | None] | pd.Series) -> pd.DataFrame:
    """Rejected lines of ``day``, each of the file ``ctxs`` names at the same position."""
    n = len(line_numbers)
    if not n:
        return _no_rejections().copy()
    return pd.DataFrame({  # lists, not scalars to broadcast: broadcasting is the slower way
        "business_date": np.full(n, np.datetime64(day, "us")),
        "asset": [ctx.asset for ctx in ctxs],
        "source_system": ["pos"] * n,
        "source_ref": [ctx.path for ctx in ctxs],
        "source_key": [f"line {int(i)}" for i in line_numbers],
        "reason_code": list(codes),
        "reason": list(reasons),
        "record": list(records),
        "run_id": [ctx.run_id for ctx in ctxs],
    }, columns=REJECTION_COLUMNS)


def reject_whole_file(ctx: FileContext, text: str, code: str, reason: str) -> ParsedFile:
    """Every data line of the file rejected with one reason (header is line 1)."""
    rej, lines, _ = _rejected_lines(ctx, text, code, reason, header=True)
    return ParsedFile(rows=pd.DataFrame(), rejections=rej, lines=lines, file_error=reason, file_error_code=code)


def _rejected_lines(ctx: FileContext, text: str, code: str, reason: str, header: bool
                    ) -> tuple[pd.DataFrame, int, bool]:
    """(rejections, their number, whether a header was passed over): every non-blank physical line of ``text``
    rejected with one reason, numbered after ``ctx.line_offset``; with ``header`` the first one is the header."""
    numbered = [(i + 1 + ctx.line_offset, line) for i, line in enumerate(_physical_lines(text)) if line.strip()]
    passed = header and bool(numbered)
    numbered = numbered[1:] if passed else numbered
    rej = _rejections(ctx, [n for n, _ in numbered], [code] * len(numbered), [reason] * len(numbered),
                      [line for _, line in numbered])
    return rej, len(numbered), passed


def lossy_text(data: bytes, layout: Layout) -> str:
    """The file as text whatever its bytes, only to count and quote its lines in rejections."""
    text, _ = decode(data, layout)
    return text if text is not None else data.replace(b"\x00", b"").decode(layout.encoding, errors="replace")


def decode(data: bytes, layout: Layout) -> tuple[str | None, str | None]:
    """(text, None), or (None, reason) when the bytes are not in the layout's encoding."""
    if b"\x00" in data:  # no text encoding a POS layout uses has NUL bytes; UTF-16 and binaries do
        return None, (f"contains NUL bytes, so it is not {layout.encoding} text (layout {layout.name}); is it UTF-16 "
                      f"or a binary file? Re-export it as {layout.encoding}")
    try:
        return data.decode(layout.encoding), None
    except UnicodeDecodeError as exc:
        return None, _undecodable(layout, data[exc.start], exc.start, data[max(0, exc.start - 20): exc.end + 20])


def _undecodable(layout: Layout, byte: int, offset: int, snippet: bytes) -> str:
    return (f"cannot be decoded as {layout.encoding} (layout {layout.name}): byte 0x{byte:02x} at offset {offset} "
            f"near {snippet!r}; re-export the file in {layout.encoding} or assign the store a layout with the right "
            "encoding")


def read_table(text: str, layout: Layout) -> pd.DataFrame:
    """All cells as strings, headers as written. Raises ValueError with the parser's own words."""
    try:
        return pd.read_csv(io.StringIO(text), sep=layout.delimiter, dtype=str, keep_default_na=False,
                           na_filter=False, quoting=csv.QUOTE_MINIMAL, skip_blank_lines=True, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise ValueError(str(exc).strip()) from None


def _money(raw: pd.Series, decimal: str) -> pd.Series:
    text = raw.str.strip()
    if decimal != ".":
        text = text.str.replace(".", "", regex=False).str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text.mask(text == ""), errors="coerce")


def _more_than_cents(raw: pd.Series, decimal: str) -> pd.Series:
    return raw.str.strip().str.contains(r"\d[" + ("\\" + decimal) + r"]\d{3,}$", regex=True)


def _check_headers(columns: list, layout: Layout, ctx: FileContext, text: str
                   ) -> tuple[dict[str, object], list[str], ParsedFile | None]:
    """(lower-cased header -> header as written, extra headers, the whole file rejected when one is missing)."""
    headers = {str(h).strip().lower(): h for h in columns}
    missing = [f"{name} ({'+'.join(cols)})" for name, cols in layout.required_headers().items()
               if any(c.strip().lower() not in headers for c in cols)]
    if missing:
        return headers, [], reject_whole_file(
            ctx, text, "missing_column",
            f"file {ctx.path} lacks required column(s) {', '.join(missing)} of layout "
            f"{layout.name}; found {', '.join(map(str, columns))}. Re-send it complete.")
    used = {c.strip().lower() for c in (*layout.columns.values(), *layout.ignore_columns)}
    for spec in (layout.sold_at, layout.counted_at):
        used |= {c.strip().lower() for c in (spec.columns if spec else ())}
    if layout.sign.column:
        used.add(layout.sign.column.lower())
    if layout.store_from == "column" and layout.store_value:
        used.add(layout.store_value.lower())
    return headers, [str(h) for key, h in headers.items() if key not in used], None


def parse_pos_file(data: bytes, layout: Layout, ctx: FileContext) -> ParsedFile:
    """Parse and validate one sales or inventory file of ``layout`` (see module doc)."""
    text, error = decode(data, layout)
    if text is None:
        return reject_whole_file(ctx, lossy_text(data, layout), "decode_error", f"file {ctx.path} {error}")
    return _parse_text(text[1:] if text.startswith("\ufeff") else text, layout, ctx)


def _parse_error(ctx: FileContext, layout: Layout, message: str) -> str:
    return f"file {ctx.path} cannot be parsed as {layout.name} (delimiter {layout.delimiter!r}): {message}"


def _parse_text(text: str, layout: Layout, ctx: FileContext, piece: _Piece | None = None) -> ParsedFile:
    """``parse_pos_file`` of the decoded text of a file, or of one ``piece`` of it (``parse_stream``).

    A sales file is read by Arrow's CSV reader when it can be sure to read it as pandas' reader does (see
    ``_parse_sales_arrow``); anything else, and every stock file, by pandas' reader, whose messages are the ones a
    refused file quotes. Either way the rules are those of ``_sales_rules`` / ``_inventory``, once."""
    if layout.kind == "sales" and (piece is None or piece.arrow):
        parsed = _parse_sales_arrow(text, layout, ctx, piece)
        if parsed is not None:
            return parsed
    try:
        table = read_table(text, layout)
    except ValueError as exc:
        return reject_whole_file(ctx, text, "parse_error",
                                 _parse_error(ctx, layout, str(exc) if piece is None else piece.parser_says(exc)))
    if piece is not None:  # pandas took the first columns as the index: the first record is wider than the header
        piece.implicit_index = not isinstance(table.index, pd.RangeIndex)
    headers, extra, rejected = _check_headers(list(table.columns), layout, ctx, text)
    if rejected is not None:
        return rejected

    lines = _physical_lines(text)
    numbered = [i + 1 for i, line in enumerate(lines) if line.strip()][1:]
    if piece is not None:
        piece.numbered, piece.table_rows = len(numbered), len(table)
    if len(numbered) == len(table) and not (piece is not None and piece.rows_in_order):
        line_numbers = np.asarray(numbered, dtype="int64") + ctx.line_offset

        def records(rows: np.ndarray) -> list[str]:
            return [lines[numbered[i] - 1] for i in rows.tolist()]
    else:  # quoted line breaks inside a cell: fall back to row order, records rebuilt from the cells
        line_numbers = np.arange(2, len(table) + 2, dtype="int64") + ctx.line_offset

        def records(rows: np.ndarray) -> list[str]:
            cells = table.iloc[rows].astype("string")
            return cells.agg(layout.delimiter.join, axis=1).tolist() if len(rows) else []

    if layout.kind == "sales":
        columns = pa.table({str(h): pa.array(table[h].to_numpy(dtype=object), _TEXT) for h in headers.values()})
        return _sales_rules([text], [ctx], np.array([len(table)], dtype=np.int64), columns, layout, headers, extra,
                            piece, (line_numbers, records))[0]

    def col(name: str) -> pd.Series:
        header = layout.columns.get(name)
        if header is None or header.strip().lower() not in headers:
            return pd.Series([""] * len(table), index=table.index, dtype="string")
        return table[headers[header.strip().lower()]].astype("string").str.strip()

    rows, reason_code, reason = _inventory(table, layout, ctx, col, headers, piece)
    rows["source_file"] = ctx.path
    rows["source_line"] = line_numbers
    rows["run_id"] = ctx.run_id

    bad = reason_code.notna()
    if piece is not None:
        piece.bad = bad.to_numpy(dtype=bool)
    n_bad = int(bad.sum())
    if len(table) and n_bad / len(table) > ctx.max_rejected_rate:
        return _too_many_bad_lines(ctx, layout, text, n_bad, len(table), reason_code[bad])
    bad_rows = np.flatnonzero(bad.to_numpy())
    rejections = _rejections(ctx, line_numbers[bad_rows], reason_code[bad], reason[bad], records(bad_rows))
    return ParsedFile(rows=rows[~bad.to_numpy()].reset_index(drop=True), rejections=rejections, lines=len(table),
                      extra_columns=extra)


def _too_many_bad_lines(ctx: FileContext, layout: Layout, text: str, bad: int, lines: int, codes: Iterable[str]
                        ) -> ParsedFile:
    """The whole file refused: more of its lines than ``ctx.max_rejected_rate`` break a rule (``codes``: theirs)."""
    sample = pd.Series(list(codes), dtype="string").value_counts().head(3).to_dict()
    return reject_whole_file(
        ctx, text, "too_many_bad_lines",
        f"file {ctx.path}: {bad} of {lines} lines break the rules of layout {layout.name} "
        f"(over the {ctx.max_rejected_rate:.0%} limit; most common: {sample}); is the store on the right layout?")


class _Rules:
    """First rule broken wins: codes and human reasons, filled in rule order."""

    def __init__(self, index: pd.Index):
        self.code = pd.Series(pd.NA, index=index, dtype="string")
        self.reason = pd.Series(pd.NA, index=index, dtype="string")

    def add(self, broken: pd.Series, code: str, reason: pd.Series | str) -> None:
        new = broken.fillna(True).astype(bool) & self.code.isna()
        if new.any():
            self.code[new] = code
            self.reason[new] = reason[new] if isinstance(reason, pd.Series) else reason


def _inventory(table: pd.DataFrame, layout: Layout, ctx: FileContext, col, headers, piece: _Piece | None = None
               ) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rules = _Rules(table.index)
    sku = col("sku")
    norm = normalise_sku(sku)
    rules.add(norm.fillna("") == "", "missing_value", "sku is empty")
    on_raw = col("on_hand")
    on_ok = on_raw.str.fullmatch(r"[+-]?\d+").fillna(False)
    on_hand = pd.to_numeric(on_raw.where(on_ok), errors="coerce")
    rules.add(~on_ok, "on_hand_invalid", "on_hand '" + on_raw + "' is not a whole number")
    if on_hand.dtype != "int64":  # past int64 pandas types the column UInt64 or Float64: read the counts exactly
        exact = on_raw.where(on_ok).map(lambda t: int(t) if isinstance(t, str) else None, na_action="ignore")
        beyond = exact.map(lambda v: v is not None and not -(2**63) <= v < 2**63, na_action="ignore")
        beyond = beyond.astype("boolean").fillna(False).astype(bool)
        rules.add(beyond, "on_hand_invalid",
                  "on_hand '" + on_raw + f"' is past the largest count the warehouse holds ({2**63 - 1})")
        on_hand = exact.where(on_ok & ~beyond, 0).astype("int64")
    counted = pd.Series(pd.NaT, index=table.index, dtype="datetime64[us]")
    if layout.counted_at and all(c.strip().lower() in headers for c in layout.counted_at.columns):
        raw = table[headers[layout.counted_at.columns[0].strip().lower()]].astype("string").str.strip()
        counted = pd.to_datetime(raw, format=layout.counted_at.format, errors="coerce")
        rules.add(counted.isna() & (raw != ""), "counted_at_invalid",
                  "counted_at '" + raw + f"' does not match the format {layout.counted_at.format}")
    dup = norm.duplicated(keep="last") & norm.notna()
    if piece is not None:  # or counted again in a later piece of the file
        dup = dup | piece.counted_later(norm)
    rules.add(dup, "duplicate_line", "sku " + sku + " is counted again further down; the last count was kept")
    ok = rules.code.isna()
    rows = pd.DataFrame({
        "business_date": pd.Timestamp(ctx.business_date),
        "store_code": ctx.store_code,
        "sku_raw": sku,
        "sku_norm": norm,
        "on_hand": on_hand.where(ok, 0).astype("int64"),
        "counted_at": counted,
    })
    return rows, rules.code, rules.reason


# --- The rules of a sales file ----------------------------------------------------------------------------------
# Checked on Arrow arrays with Arrow compute kernels and numpy, in one pass over a file (or several files of one
# layout and day, see parse_sales_files), first rule broken wins. Their semantics are pandas': the same string
# kernels pandas uses for its string methods, Python's regex semantics where pandas would use Python's ``re``, and
# pandas' own conversions (``pd.to_numeric``, ``pd.to_datetime``) for whatever is not plain. Plain values take the
# fast lane (digits, amounts with at most 2 decimals, fixed-width timestamps), anything else goes through those
# conversions cell by cell. The join keys (sku_norm, loyalty_card) are normalise's own rules on the Arrow columns.
# Reasons and physical records are only made for the lines that break a rule.
# A file is read by Arrow's CSV reader when nothing in it could make Arrow read it otherwise than pandas does (no
# quotes in the header, no duplicate or empty header names, no rows of the wrong width, no blank lines, no line
# breaks inside cells); anything else is read by pandas' reader (``_parse_text``) and checked here all the same.

_PLAIN_AMOUNT = {".": r"^[0-9]{1,15}(\.[0-9]{1,2})?$", ",": r"^[0-9]{1,15}(,[0-9]{1,2})?$"}
_MAX_INT_DIGITS = 18  # whole numbers this long always fit int64
_TIME_FIELDS = {"%Y": (4, 1, 9999), "%m": (2, 1, 12), "%d": (2, 1, 31), "%H": (2, 0, 23), "%M": (2, 0, 59),
                "%S": (2, 0, 59)}
_STRING = pd.StringDtype("pyarrow")  # .astype("string")
_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default for text
_TEXT = pa.large_string()


@functools.cache
def _no_rejections() -> pd.DataFrame:
    """An empty rejections frame: its columns and dtypes do not depend on the file."""
    dtypes = {"business_date": "datetime64[us]", "asset": "str", "source_system": "str", "source_ref": "str",
              "run_id": "str"}  # the rest float64, as pandas makes an empty list
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, "float64")) for c in REJECTION_COLUMNS})


def _strings(values: pa.Array, dtype: pd.StringDtype = _STRING) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(values, dtype=dtype)


def _series(values: pa.Array, dtype: pd.StringDtype = _STRING) -> pd.Series:
    return pd.Series(_strings(values, dtype))


def _constant(value: str | None, n: int) -> pa.Array:
    return pa.nulls(n, _TEXT) if value is None else pa.repeat(pa.scalar(value, _TEXT), n)


def _np(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _empty_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, _TEXT), values)


def _header_names(text: str, layout: Layout) -> list[str] | None:
    """The header's names, or None when pandas might read the header differently than Arrow."""
    if len(layout.delimiter) != 1 or layout.delimiter in '"\r\n':
        return None
    header = text[: _header_end(text)[0]]
    if not header or '"' in header:
        return None
    names = header.split(layout.delimiter)
    if "" in names or len(set(names)) != len(names):  # pandas renames these ("Unnamed: 3", "sku.1")
        return None
    return names


def _header_end(text: str) -> tuple[int, int]:
    """(where the header line ends, where the line after it starts); a text without a line break is all header."""
    ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
    if not ends:
        return len(text), len(text)
    end = min(ends)
    return end, end + (2 if text.startswith("\r\n", end) else 1)


def _physical_count(text: str) -> int:
    """Physical lines, header included, as ``_physical_lines`` counts them (a last line without a break counts)."""
    count = text.count("\n") + (not text.endswith(("\n", "\r")))
    if "\r" in text:
        count += text.count("\r") - text.count("\r\n")
    return count


def _read_arrow(data: bytes, names: list[str], layout: Layout, columns: list[str]) -> pa.Table:
    """The named columns of the CSV ``data`` (header line included), every cell as text."""
    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, quote_char='"', double_quote=True,
                                         escape_char=False, newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(column_types={c: _TEXT for c in columns}, include_columns=columns,
                                             null_values=[], strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )


@dataclass
class _Numbers:
    """Whole numbers of a column as the rules see them: ``ok`` where the cell is written as one, ``missing`` where
    there is no number (not ok, or a digit pandas cannot convert), ``values`` the numbers (1 where missing) as pandas
    types the column: int64, or uint64 or float64 once one is past int64 (``kind`` says which, as pandas names it)."""

    ok: np.ndarray
    missing: np.ndarray
    values: np.ndarray
    kind: str | None  # "Int64", "UInt64" or "Float64"; None when no cell holds a number

    def keys(self) -> np.ndarray:
        """One int64 key a number, the same whatever the column's type: the number, -1 when missing; one past 2**62
        by the bits of its float."""
        raw = self.values
        fits = (raw < 2**62) if raw.dtype.kind == "u" else (np.abs(raw) < 2**62)
        keys = np.where(fits, raw, 0).astype(np.int64)
        keys[~fits] = raw[~fits].astype(np.float64).view(np.int64)
        keys[self.missing] = -1
        return keys

    def codes(self) -> np.ndarray:
        """Non-negative int64 codes, equal where the numbers are (all missing ones alike: 0)."""
        if self.values.dtype == np.int64:
            return np.where(self.missing, 0, self.values + 1)
        return np.where(self.missing, 0, np.unique(self.values, return_inverse=True)[1] + 1)


def _whole_numbers(raw: pa.Array, signed: bool, ascii_only: bool, kind_of_file: str | None = None) -> _Numbers:
    """Cells that fullmatch ``[+-]?\\d+`` (``\\d+``) as pandas matches them, and their values as the rules have
    them: ``pd.to_numeric(raw.where(ok), errors="coerce")``, typed ``kind_of_file`` when given (what the whole file
    of a piece types them as)."""
    digits = raw
    if ascii_only:  # pandas runs \d through RE2 on ASCII data, where it means [0-9]
        if signed:
            sign = pc.or_(pc.starts_with(raw, "+"), pc.starts_with(raw, "-"))
            digits = pc.if_else(sign, pc.utf8_slice_codeunits(raw, 1), raw)
        ok = _np(pc.ascii_is_decimal(digits))  # one or more of 0-9
    else:
        ok = _series(raw).str.fullmatch(r"[+-]?\d+" if signed else r"\d+").to_numpy(dtype=bool, na_value=False)
    values = np.ones(len(raw), dtype=np.int64)
    if kind_of_file in (None, "Int64"):
        if ascii_only and ok.all():
            if (pc.max(pc.binary_length(digits)).as_py() or 0) <= _MAX_INT_DIGITS:
                values = _np(pc.cast(digits, pa.int64()))
                if signed:
                    values = np.where(_np(pc.starts_with(raw, "-")), -values, values)
                return _Numbers(ok, ~ok, values, "Int64" if len(raw) else None)
        elif ok.any():
            cells = pc.filter(raw, pa.array(ok))
            if pc.max(pc.utf8_length(cells)).as_py() <= _MAX_INT_DIGITS and (
                    ascii_only or pc.all(pc.match_substring_regex(cells, r"^[+-]?[0-9]+$")).as_py()):
                values[ok] = _np(pc.cast(pc.replace_substring_regex(cells, r"^\+", ""), pa.int64()))
                return _Numbers(ok, ~ok, values, "Int64")
        else:
            return _Numbers(ok, ~ok, values, None)
    # past int64, digits other than 0-9, or typed as the whole file types them: as pandas converts them
    numbers = pd.to_numeric(_series(raw).where(ok), errors="coerce")
    if kind_of_file is not None or numbers.dtype == object:
        numbers = numbers.astype(kind_of_file or "Float64")
    missing = numbers.isna().to_numpy()
    kind = str(numbers.dtype) if not missing.all() else None
    values = numbers.to_numpy(dtype=numbers.dtype.numpy_dtype, na_value=1)
    return _Numbers(ok, missing, values, kind)


def _exact_int64(raw: pa.Array, numbers: _Numbers) -> tuple[np.ndarray, np.ndarray]:
    """(where a whole number is one the warehouse's BIGINT cannot hold, every number as int64 read exactly from its
    text). Once one cell is past int64 pandas types the column UInt64 or Float64, and casting back would wrap it (a
    quantity of 10**20 booked as -2**63) and round its neighbours (2**63 - 1 through a float)."""
    if numbers.values.dtype == np.int64:
        return np.zeros(len(numbers.values), dtype=bool), numbers.values
    beyond = np.zeros(len(numbers.values), dtype=bool)
    exact = np.ones(len(numbers.values), dtype=np.int64)
    rows = np.flatnonzero(~numbers.missing)
    for row, text in zip(rows.tolist(), raw.take(pa.array(rows)).to_pylist(), strict=True):
        value = int(text)
        if -(2**63) <= value < 2**63:
            exact[row] = value
        else:
            beyond[row] = True
    return beyond, exact


# The largest amount a NUMERIC(14,2) column holds (the warehouse's money type): a price or discount past it could
# not be stored, and would fail the whole day at the insert.
_MAX_AMOUNT = 999_999_999_999.99


def _amounts(raw: pa.Array, decimal: str, empty: float | None) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray]:
    """(values, missing, whole, broken): ``_money(raw)`` (``empty`` for empty cells when given), whether pandas
    would type it Int64 rather than Float64, and the amount rule: a number >= 0 in whole cents. Plain amounts are
    parsed by Arrow, anything else by ``_money`` and ``_more_than_cents``."""
    n = len(raw)
    plain = _np(pc.match_substring_regex(raw, _PLAIN_AMOUNT[decimal]))
    blank = _np(pc.equal(pc.utf8_length(raw), 0))
    other = ~plain & ~blank
    values = np.full(n, np.nan)
    missing = np.ones(n, dtype=bool)
    broken = np.zeros(n, dtype=bool)
    fraction = False
    if plain.any():
        cells = pc.filter(raw, pa.array(plain))
        fraction = pc.any(pc.match_substring(cells, decimal)).as_py()
        if decimal != ".":
            cells = pc.replace_substring(cells, decimal, ".")
        values[plain] = _np(pc.cast(cells, pa.float64()))
        missing[plain] = False
    if empty is None:
        broken |= blank
    else:
        values[blank] = empty
        missing[blank] = False
    numbers = bool(plain.any())
    if other.any():
        cells = _series(pc.filter(raw, pa.array(other)))
        amount = _money(cells, decimal)
        fraction = fraction or str(amount.dtype) != "Int64"  # Float64, or UInt64 past int64: floats here
        broken[other] = (amount.isna() | ~np.isfinite(amount.fillna(0)) | (amount < 0)
                         | _more_than_cents(cells, decimal)).to_numpy(dtype=bool, na_value=True)
        values[other] = amount.to_numpy(dtype="float64", na_value=np.nan)
        missing[other] = amount.isna().to_numpy()
        numbers = numbers or bool((~amount.isna()).any())
    # no number at all: pandas says Float64, but Int64 for no cell at all
    return values, missing, (numbers and not fraction) or n == 0, broken


def _amount_array(values: np.ndarray, missing: np.ndarray, whole: bool
                  ) -> pd.arrays.IntegerArray | pd.arrays.FloatingArray:
    """Amounts as a nullable array; fractions rounded to the cent (what ``Series.round(2)`` computes)."""
    if whole:
        return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)
    return pd.arrays.FloatingArray(np.round(np.where(missing, 0.0, values), 2), missing)


def _timestamps(raw: pa.Array, fmt: str) -> np.ndarray | pd.Series:
    """``pd.to_datetime(raw, format=fmt, errors="coerce")``. For a fixed-width numeric ``fmt`` (%Y, %m, %d and
    optionally %H, %M, %S), cells written exactly so with every field in range are computed from their digits;
    the rest go to pandas."""
    fields, literal, width = [], {}, 0
    i = 0
    while i < len(fmt):
        part = fmt[i: i + 2]
        if part in _TIME_FIELDS:
            size = _TIME_FIELDS[part][0]
            fields.append((part, width, size))
            width += size
            i += 2
        elif fmt[i] == "%" or not fmt[i].isascii():
            return pd.to_datetime(_series(raw), format=fmt, errors="coerce")
        else:
            literal[width] = ord(fmt[i])
            width += 1
            i += 1
    names = [f for f, _, _ in fields]
    if len(set(names)) != len(names) or not {"%Y", "%m", "%d"} <= set(names):
        return pd.to_datetime(_series(raw), format=fmt, errors="coerce")
    n = len(raw)
    offsets, data = utf8_buffers(raw)
    fixed = (offsets[1:] - offsets[:-1]) == width
    stamps = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    done = np.zeros(n, dtype=bool)
    if fixed.any():
        if fixed.all():  # the usual case: the bytes are already an (n, width) matrix
            chars, rows = data.reshape(n, width), np.arange(n)
        else:
            chars, rows = data[offsets[:-1][fixed][:, None] + np.arange(width)], np.flatnonzero(fixed)
        low = np.array([literal.get(k, 48) for k in range(width)], dtype=np.uint8)
        high = np.array([literal.get(k, 57) for k in range(width)], dtype=np.uint8)
        shape = ((chars >= low) & (chars <= high)).all(axis=1)
        if not shape.all():
            chars, rows = chars[shape], rows[shape]
        value = {"%H": 0, "%M": 0, "%S": 0}
        in_range = np.ones(len(chars), dtype=bool)
        for name, start, size in fields:
            places = 10 ** np.arange(size - 1, -1, -1, dtype=np.int64)
            number = (chars[:, start: start + size].astype(np.int64) - 48) @ places
            value[name] = number
            low_value, high_value = _TIME_FIELDS[name][1:]
            in_range &= (number >= low_value) & (number <= high_value)
        month = (value["%Y"] - 1970) * 12 + np.clip(value["%m"], 1, 12) - 1
        first = month.astype("datetime64[M]").astype("datetime64[D]")
        days = ((month + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
        in_range &= value["%d"] <= days
        seconds = ((first.astype(np.int64) + value["%d"] - 1) * 86400 + value["%H"] * 3600 + value["%M"] * 60
                   + value["%S"])
        where = rows[in_range]
        stamps[where] = (seconds[in_range] * 1_000_000).astype("datetime64[us]")
        done[where] = True
    if not done.all():
        rest = ~done
        parsed = pd.to_datetime(_series(pc.filter(raw, pa.array(rest))), format=fmt, errors="coerce")
        stamps[rest] = parsed.to_numpy(dtype="datetime64[us]")
    return stamps


def _codes(values: pa.Array) -> np.ndarray:
    return _np(pc.dictionary_encode(values).indices).astype(np.int64)


def _seen_before(keys: list[np.ndarray]) -> np.ndarray:
    """``duplicated(keep="first")`` of the rows' combined keys (non-negative int64 codes)."""
    key = np.zeros(len(keys[0]), dtype=np.int64)
    span = 1
    for part in keys:
        size = int(part.max()) + 1 if len(part) else 1
        if span * size >= 2 ** 62:  # renumber the keys so far 0, 1, ...: fewer than the rows
            distinct, key = np.unique(key, return_inverse=True)
            span = len(distinct)
        key = key * size + part
        span *= size
    dup = np.ones(len(key), dtype=bool)
    dup[np.unique(key, return_index=True)[1]] = False
    return dup


def _cumcount(codes: np.ndarray) -> np.ndarray:
    """``groupby(codes).cumcount()``: the position of each row among the earlier rows with its code."""
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(codes)), 0))
    out = np.empty(len(codes), dtype=np.int64)
    out[order] = np.arange(len(codes)) - first
    return out


def _records(body: bytes, rows: np.ndarray) -> list[str]:
    """The physical lines of data rows ``rows`` (0-based; the header is line 0), as ``_physical_lines`` has them."""
    crlf = b"\r" in body
    if crlf and body.count(b"\r") != body.count(b"\r\n"):  # bare CR line ends
        lines = _physical_lines(body.decode("utf-8"))
        return [lines[i] for i in (rows + 1).tolist()]
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
    out = []
    for i in (rows + 1).tolist():
        start = ends[i - 1] + 1 if i else 0
        end = ends[i] - crlf if i < len(ends) else len(body)
        out.append(body[start:end].decode("utf-8"))
    return out


class _FastRules:
    """``_Rules`` on numpy: first rule broken wins; reasons are only written for the lines that broke one."""

    def __init__(self, n: int):
        self.code = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.free = np.ones(n, dtype=bool)

    def add(self, broken: np.ndarray, code: str, reason: str | Callable[[np.ndarray], list[str]]) -> None:
        new = np.flatnonzero(broken & self.free)
        if len(new):
            self.code[new] = code
            self.reason[new] = reason if isinstance(reason, str) else reason(new)
            self.free[new] = False


def _quoted(prefix: str, raw: pa.Array, suffix: str) -> Callable[[np.ndarray], list[str]]:
    return lambda rows: [f"{prefix}{v}{suffix}" for v in raw.take(pa.array(rows)).to_pylist()]


def _parse_sales_arrow(text: str, layout: Layout, ctx: FileContext, piece: _Piece | None = None
                       ) -> ParsedFile | None:
    """``parse_pos_file`` for a sales file (or a piece of one) read by Arrow's CSV reader, or None when pandas'
    reader must read it."""
    parsed = _parse_sales_batch([(text, ctx)], layout, piece)
    return None if parsed is None else parsed[0]


def _parse_sales_batch(files: list[tuple[str, FileContext]], layout: Layout, piece: _Piece | None = None
                       ) -> list[ParsedFile] | None:
    """``_parse_sales_arrow`` for several decoded files of one layout and business day whose headers are written
    alike, read as one CSV and checked in one pass, or None when one of them must be read by pandas' reader."""
    names = _header_names(files[0][0], layout)
    if names is None or any(_header_names(text, layout) != names for text, _ in files[1:]):
        return None
    assert len({ctx.business_date for _, ctx in files}) == 1, "one business day a batch"
    headers, extra, rejected = _check_headers(names, layout, files[0][1], files[0][0])
    if rejected is not None:
        return [_check_headers(names, layout, ctx, text)[2] for text, ctx in files]  # type: ignore[misc]
    counts = np.array([_physical_count(text) - 1 for text, _ in files], dtype=np.int64)
    if (counts < 1).any():
        return None
    assert layout.sold_at is not None
    wanted = {w.strip().lower() for w in (*layout.columns.values(), *layout.sold_at.columns, layout.sign.column or "",
                                          layout.store_value if layout.store_from == "column" else "") if w}
    # The files' data lines one after the other, under the first file's header: every file ends its last line.
    parts = [files[0][0], *(text[_header_end(text)[1]:] for text, _ in files[1:])]
    csv_text = "".join(part if part.endswith(("\n", "\r")) else part + "\n" for part in parts)
    try:
        table = _read_arrow(csv_text.encode("utf-8"), names, layout, [str(headers[k]) for k in headers if k in wanted])
    except pa.ArrowException:  # rows of the wrong width
        return None
    if table.num_rows != counts.sum():  # blank lines or line breaks inside cells
        return None
    if piece is not None:
        piece.numbered = piece.table_rows = table.num_rows
    return _sales_rules([text for text, _ in files], [ctx for _, ctx in files], counts, table, layout, headers, extra,
                        piece)


def parse_sales_files(files: list[tuple[bytes, FileContext]], layout: Layout) -> list[ParsedFile]:
    """``parse_pos_file`` of each of several sales files of ``layout`` for one business day, in order.

    The files Arrow's reader can read whose headers are written alike are read as one CSV and checked in one pass:
    a day of a few hundred small files would otherwise spend much of its parse on each file's fixed cost. Each file
    gets its own rows, rejections, line numbers and file-level verdict (too many bad lines rejects that file
    alone), the same as file by file, but for one thing: an amount column is typed Float64 for every file of the
    batch once one of them has a fraction (alone, a file of whole prices is typed Int64); the raw schema makes both
    floats. Anything one file has that the batch cannot be sure of sends every file of it through
    ``parse_pos_file`` alone."""
    if len(files) < 2 or layout.kind != "sales":
        return [parse_pos_file(data, layout, ctx) for data, ctx in files]
    texts = [decode(data, layout)[0] for data, _ in files]
    batch = [(text.removeprefix("\ufeff"), ctx) for text, (_, ctx) in zip(texts, files, strict=True)
             if text is not None]
    parsed = _parse_sales_batch(batch, layout) if len(batch) == len(files) else None
    return parsed if parsed is not None else [parse_pos_file(data, layout, ctx) for data, ctx in files]


def _per_file(values: list[str | None], file_of: np.ndarray) -> pa.Array:
    """A text column holding each row's file's value (``file_of`` non-decreasing: the files one after the other)."""
    if len(set(values)) == 1:
        return _constant(values[0], len(file_of))
    if None in values:
        return pc.take(pa.array(values, _TEXT), pa.array(file_of))
    encoded = [str(v).encode("utf-8") for v in values]
    rows = np.bincount(file_of, minlength=len(values)).tolist()
    ends = np.cumsum(np.repeat(np.array([len(e) for e in encoded], dtype=np.int64), rows))
    return pa.LargeStringArray.from_buffers(len(file_of), pa.py_buffer(np.concatenate([[0], ends])),
                                            pa.py_buffer(b"".join(e * k for e, k in zip(encoded, rows, strict=True))))


def _sales_rules(texts: list[str], ctxs: list[FileContext], counts: np.ndarray, table: pa.Table, layout: Layout,
                 headers: dict, extra: list[str], piece: _Piece | None = None,
                 numbering: tuple[np.ndarray, Callable[[np.ndarray], list[str]]] | None = None) -> list[ParsedFile]:
    """The rules over the lines of one or more files (``counts`` lines each, in ``table`` one after the other, every
    cell text). A line's number and record are those of its physical line, the header being line 1 and every line
    a row; or, for one file read by pandas' reader, ``numbering``: (the rows' line numbers, the records of rows)."""
    n = table.num_rows
    files = len(ctxs)
    file_of = np.repeat(np.arange(files), counts)
    starts = np.cumsum(counts) - counts
    day = ctxs[0].business_date
    ascii_only = all(text.isascii() for text in texts)

    def raw_column(header: str) -> pa.Array:
        return pc.utf8_trim_whitespace(table.column(str(headers[header.strip().lower()])).combine_chunks())

    def col(name: str) -> pa.Array:
        header = layout.columns.get(name)
        if header is None or header.strip().lower() not in headers:
            return _constant("", n)
        return raw_column(header)

    rules = _FastRules(n)
    receipt = col("receipt_id")
    sku = col("sku")
    rules.add(_np(pc.or_(pc.equal(receipt, ""), pc.equal(sku, ""))), "missing_value",
              "receipt_id or sku is empty; every line needs both")

    numbers = None
    if "line_no" in layout.columns:
        line_raw = col("line_no")
        numbers = _whole_numbers(line_raw, False, ascii_only, piece.line_type_of_file if piece is not None else None)
        if piece is not None:
            piece.line_type = numbers.kind
        line_beyond, line_no = _exact_int64(line_raw, numbers)
        rules.add(numbers.missing | (line_no < 1), "line_no_invalid",
                  _quoted("line_no '", line_raw, "' is not a whole number >= 1"))
        rules.add(line_beyond, "line_no_invalid",
                  _quoted("line_no '", line_raw, f"' is past the largest line number the warehouse holds "
                                                 f"({2**63 - 1})"))
        line_key = numbers.codes()  # unreadable numbers are one key, as for duplicated()
    else:  # the layout has no line numbers: number the lines of each receipt in file order
        line_no = _cumcount(_codes(receipt) * files + file_of) + 1
        if piece is not None:  # and after its lines in the file's earlier pieces
            line_no = line_no + piece.receipt_lines(receipt)
        line_key = line_no

    qty_raw = col("quantity")
    qty = _whole_numbers(qty_raw, True, ascii_only)
    quantity = qty.values
    rules.add(qty.missing | (quantity == 0), "quantity_invalid",
              _quoted("quantity '", qty_raw, "' is not a non-zero whole number"))
    qty_beyond, qty_exact = _exact_int64(qty_raw, qty)
    rules.add(qty_beyond, "quantity_invalid",
              _quoted("quantity '", qty_raw, f"' is past the largest quantity the warehouse holds ({2**63 - 1})"))
    if layout.sign.column:
        rules.add(qty.ok & (qty.missing | (quantity < 0)), "quantity_invalid",
                  _quoted("quantity '", qty_raw, f"' must be positive in layout {layout.name} (returns are marked "
                                                 f"by {layout.sign.column})"))

    price_raw = col("unit_price")
    price = _amounts(price_raw, layout.decimal, None)
    rules.add(price[3], "price_invalid", _quoted("unit_price '", price_raw, "' is not a price >= 0 in whole cents"))
    rules.add(~price[1] & (price[0] > _MAX_AMOUNT), "price_invalid",
              _quoted("unit_price '", price_raw, f"' is more than the warehouse's amounts hold ({_MAX_AMOUNT:,.2f})"))
    disc_raw = col("discount")
    discount = _amounts(disc_raw, layout.decimal, 0.0)
    rules.add(discount[3], "discount_invalid",
              _quoted("discount '", disc_raw, "' is not an amount >= 0 in whole cents"))
    rules.add(~discount[1] & (discount[0] > _MAX_AMOUNT), "discount_invalid",
              _quoted("discount '", disc_raw, f"' is more than the warehouse's amounts hold ({_MAX_AMOUNT:,.2f})"))
    with np.errstate(invalid="ignore", over="ignore"):  # a line's amount is quantity x price: it must fit too
        gross_too_big = ~qty.missing & ~price[1] & (np.abs(qty_exact.astype(np.float64)) * price[0] > _MAX_AMOUNT)
    rules.add(gross_too_big, "quantity_invalid", lambda rows: [
        f"quantity {q} x unit_price {p} is more than the warehouse's amounts hold ({_MAX_AMOUNT:,.2f})"
        for q, p in zip(qty_raw.take(pa.array(rows)).to_pylist(), price_raw.take(pa.array(rows)).to_pylist(),
                        strict=True)])

    assert layout.sold_at is not None
    parts = [raw_column(c) for c in layout.sold_at.columns]
    stamp_raw = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, pa.scalar(" ", _TEXT))
    sold_at = _timestamps(stamp_raw, layout.sold_at.format)
    stamps = sold_at.to_numpy() if isinstance(sold_at, pd.Series) else sold_at
    rules.add(np.isnat(stamps), "sold_at_invalid",
              _quoted("sale time '", stamp_raw, f"' does not match the format {layout.sold_at.format}"))
    on_day = stamps.astype("datetime64[D]") == np.datetime64(day, "D")
    rules.add(~on_day, "sold_at_invalid",
              _quoted("sale time '", stamp_raw, f"' is not on the file's business day {day}"))

    if layout.sign.column:
        kind = pc.utf8_upper(raw_column(layout.sign.column))
        sale = _np(pc.is_in(kind, value_set=pa.array([v.upper() for v in layout.sign.sale], _TEXT)))
        ret = _np(pc.is_in(kind, value_set=pa.array([v.upper() for v in layout.sign.returns], _TEXT)))
        rules.add(~(sale | ret), "type_invalid",
                  _quoted(f"{layout.sign.column} '", kind, f"' is neither {'/'.join(layout.sign.sale)} (sale) nor "
                                                           f"{'/'.join(layout.sign.returns)} (return)"))
        quantity = np.where(ret, -quantity, quantity)
        qty_exact = np.where(ret, -qty_exact, qty_exact)

    payment = _constant(None, n)
    if "payment_method" in layout.columns:
        payment = pc.utf8_lower(col("payment_method"))
        rules.add(~_np(pc.is_in(payment, value_set=pa.array(PAYMENT_METHODS, _TEXT))), "payment_method_invalid",
                  _quoted("payment_method '", payment, f"' is not one of {', '.join(PAYMENT_METHODS)}"))

    store = _per_file([ctx.store_code for ctx in ctxs], file_of)
    keys = [file_of, _codes(receipt), line_key]
    if layout.store_from == "column":
        assert layout.store_value is not None
        store = raw_column(layout.store_value)
        rules.add(_np(pc.equal(store, "")), "missing_value", "the store column is empty")
        keys.insert(1, _codes(store))
    seen = _seen_before(keys)
    if piece is not None and numbers is not None:  # or a line of the file's earlier pieces
        seen |= piece.seen_before(store if layout.store_from == "column" else None, receipt, numbers.keys())
    rules.add(seen, "duplicate_line", lambda rows: [
        f"receipt {r} line {line} appears more than once in the file; the first occurrence was kept"
        for r, line in zip(receipt.take(pa.array(rows)).to_pylist(), line_no[rows].tolist(), strict=True)])

    sku_norm = _empty_to_null(sku_norm_arrow(sku))
    rules.add(_np(pc.is_null(sku_norm)), "missing_value", "sku has no letters or digits")

    good = rules.free
    if piece is not None:
        piece.bad = ~good
        if piece.count_only:
            return [ParsedFile(rows=pd.DataFrame(index=pd.RangeIndex(int(good.sum()))),
                               rejections=pd.DataFrame({"reason_code": rules.code[~good]}), lines=n,
                               extra_columns=extra)]
    verdicts: list[ParsedFile | None] = [None] * files
    bad_in_file = np.bincount(file_of[~good], minlength=files)
    for f in np.flatnonzero(bad_in_file / np.maximum(counts, 1) > np.array([ctx.max_rejected_rate for ctx in ctxs])):
        lines = int(counts[f])
        codes = rules.code[starts[f]: starts[f] + lines][~good[starts[f]: starts[f] + lines]]
        verdicts[f] = _too_many_bad_lines(ctxs[f], layout, texts[f], int(bad_in_file[f]), lines, codes)
    if files == 1 and verdicts[0] is not None:
        return [verdicts[0]]
    whole = np.array([v is not None for v in verdicts])[file_of]  # rows of files rejected as a whole
    bad_rows = np.flatnonzero(~good & ~whole)
    good = good & ~whole

    bad_files = file_of[bad_rows]
    if numbering is None:
        offsets = np.array([ctx.line_offset for ctx in ctxs], dtype=np.int64)
        line_numbers = np.arange(n, dtype=np.int64) - starts[file_of] + 2 + offsets[file_of]
        records: list[str] = []
        for f in np.unique(bad_files):
            records += _records(texts[f].encode("utf-8"), bad_rows[bad_files == f] - starts[f])
    else:
        line_numbers, records = numbering[0], numbering[1](bad_rows)
    rejections = _rejection_frame(
        day, [ctxs[f] for f in bad_files.tolist()], line_numbers[bad_rows], rules.code[bad_rows].tolist(),
        rules.reason[bad_rows].tolist(), records)

    keep = pa.array(good) if not good.all() else None
    kept_n = int(good.sum())
    def text_column(values: pa.Array) -> pd.arrays.ArrowStringArray:
        return _strings(values if keep is None else pc.filter(values, keep))

    if not isinstance(sold_at, np.ndarray):
        sold_at_column = sold_at[good].array
    elif np.isnat(stamps).all():  # no time read at all: pd.to_datetime types that column in seconds
        sold_at_column = stamps[good].astype("datetime64[s]")
    else:
        sold_at_column = stamps[good]
    # Columns as arrays, not Series: a frame of Series aligns their indexes, a large share of this step for a file
    # of a few thousand lines (and a day has hundreds of files).
    rows = pd.DataFrame({
        "business_date": pd.Timestamp(day),
        "store_code": text_column(store),
        "receipt_id": text_column(receipt),
        "line_no": line_no[good],
        "sold_at": sold_at_column,
        "register_id": text_column(_empty_to_null(col("register_id"))),
        "cashier_id": text_column(_empty_to_null(col("cashier_id"))),
        "sku_raw": text_column(sku),
        "sku_norm": text_column(sku_norm),
        "quantity": qty_exact[good],
        "unit_price": _amount_array(price[0][good], price[1][good], price[2]),
        "discount": _amount_array(discount[0][good], discount[1][good], discount[2]),
        "loyalty_card": text_column(loyalty_card_arrow(col("loyalty_card"))),
        "payment_method": text_column(payment),
        "layout": _strings(_constant(layout.name, kept_n), _STR),
        "source_file": _strings(_per_file([ctx.path for ctx in ctxs], file_of[good]), _STR),
        "source_line": line_numbers[good],
        "run_id": _strings(_per_file([ctx.run_id for ctx in ctxs], file_of[good]), _STR),
    }, copy=False)
    if files == 1:
        return [ParsedFile(rows=rows, rejections=rejections, lines=n, extra_columns=extra)]
    row_ends = np.cumsum(np.bincount(file_of[good], minlength=files))
    rejection_ends = np.searchsorted(bad_files, np.arange(files), side="right")
    out = []
    for f, verdict in enumerate(verdicts):
        if verdict is not None:
            out.append(verdict)
            continue
        rows_from = row_ends[f - 1] if f else 0
        rejections_from = rejection_ends[f - 1] if f else 0
        file_rejections = (rejections.iloc[rejections_from: rejection_ends[f]].reset_index(drop=True)
                           if rejection_ends[f] > rejections_from else _no_rejections().copy())
        out.append(ParsedFile(rows=rows.iloc[rows_from: row_ends[f]].reset_index(drop=True),
                              rejections=file_rejections, lines=int(counts[f]), extra_columns=extra))
    return out


# --- Files too large to hold: parse_stream --------------------------------------------------------------------------
# A file is read twice, a chunk at a time. The first read finds what only the whole file can say (is it decodable,
# its verdict, its lines and rows, which lines repeat a key of an earlier chunk); the second parses each chunk again
# and hands over its rows and rejections. A chunk ends where a CSV record ends (a line break outside quotes, as
# pandas' tokenizer reads it) and is parsed by the functions above with the header in front of it, its line numbers
# moved by the lines before it. What crosses chunks is decided by the first read over the whole file: the bad-line
# rate, the most common reasons, the numbering (physical lines, or rows in order when cells hold line breaks),
# duplicate keys, the lines of a receipt in earlier chunks, a sku counted again further down, the parser's line
# numbers in its messages. Keys are compared by two independent hashes, 64 and 32 bits (12 bytes a line, kept only
# during the first read): two different keys are taken for one only when both hashes collide.
# Three malformed shapes are parsed whole instead (the result is then parse_pos_file's by construction): a first
# record wider than the header (pandas then takes its first cells as the index), a header that is not one line
# str.strip calls non-blank, and a file whose line counts only balance over the whole file (cells with line breaks
# and lines pandas reads but str.strip calls blank).

_HASH_KEYS = ("pos-key-hash-one", "pos-key-hash-two")  # siphash keys of pandas' hash_array (16 bytes each)
_SALTS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))
_NOT_A_VALUE = "\x00"  # stands for a missing value in a hashed key: decoded text never holds NUL (see decode)


@dataclass
class StreamedFile:
    """What became of a file read in chunks: what ``parse_pos_file`` of the whole file would say of it, and its rows
    and rejections chunk by chunk (``parts``)."""

    lines: int  # data lines of the whole file, as ParsedFile.lines says
    rows: int  # valid rows the file books (0 when it is refused as a whole)
    file_error: str | None
    file_error_code: str | None
    extra_columns: list[str]
    _parts: Callable[[], Iterator[ParsedFile]] = field(repr=False, default=lambda: iter(()))

    def parts(self) -> Iterator[ParsedFile]:
        """Each chunk's rows and rejections, in file order (the file is read again); of a file refused as a whole,
        its rejected lines and no rows. Their concatenation is the rows and rejections of ``parse_pos_file``."""
        return self._parts()


def parse_stream(open_stream: Callable[[], BinaryIO], layout: Layout, ctx: FileContext, chunk_bytes: int
                 ) -> StreamedFile:
    """``parse_pos_file`` of a file read ``chunk_bytes`` at a time: memory bounded by the chunk, not the file.

    ``open_stream()`` gives a fresh binary stream of the file's bytes (gunzipped) and is called once for this read
    and once each time ``parts()`` is iterated; a file of at most one chunk is read once, and parsed whole. A file
    whose bytes differ between the reads fails its second read with RuntimeError."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, not {chunk_bytes}")
    return _Streamed(open_stream, layout, ctx, chunk_bytes).first_read()


def _nonblank(text: str) -> int:
    return sum(1 for line in _physical_lines(text) if line.strip())


def _breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _last_break(text: str, final: bool) -> int:
    """Where the text after the last line break starts (0 without one); a \\r at the very end may be half of a \\r\\n
    whose \\n is still to come, unless ``final``."""
    at = max(text.rfind("\n"), text.rfind("\r"))
    if at == len(text) - 1 and text.endswith("\r") and not final:
        at = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at))
    return at + 1


def _line_pieces(texts: Iterable[str], size: int) -> Iterator[str]:
    """The concatenated ``texts`` in pieces of about ``size`` characters that end with a line break (the last one
    may not)."""
    buf = ""
    for text in texts:
        buf += text
        if len(buf) >= size:
            cut = _last_break(buf, False)
            if cut:
                yield buf[:cut]
                buf = buf[cut:]
    if buf:
        yield buf


def _quote_flips(data: bytes, arr: np.ndarray, quotes: np.ndarray, delimiter: int) -> np.ndarray | None:
    """Which of the ``quotes`` (positions in ``data``, read from the start of a record) open or close a quoted cell
    as pandas' tokenizer reads them (a quote opens a cell only at its start; inside one, a doubled quote is a quote);
    None when every quote opens a cell, closes one or is half of a doubled one: then the parity of the quotes before
    a point says whether it is inside a cell."""
    n, m = len(arr), len(quotes)
    prev = arr[np.maximum(quotes - 1, 0)]
    after = arr[np.minimum(quotes + 1, n - 1)]
    starts = (quotes == 0) | (prev == delimiter) | (prev == 10) | (prev == 13)
    ends = (quotes == n - 1) | (after == delimiter) | (after == 10) | (after == 13)
    doubled = quotes[1:] == quotes[:-1] + 1
    even = np.arange(m) % 2 == 0
    if np.where(even, starts | np.r_[False, doubled], ends | np.r_[doubled, False]).all():
        return None
    flips = np.zeros(m, dtype=bool)  # a quote inside a cell that pandas reads as a character: follow it quote by quote
    inside, i, at = False, 0, quotes.tolist()
    while i < m:
        p = at[i]
        if not inside:
            if p == 0 or data[p - 1] in (delimiter, 10, 13):
                inside = flips[i] = True
            i += 1
        elif p + 1 < n and data[p + 1] == 34:  # a doubled quote: the next quote is at p + 1
            i += 2
        else:
            inside, flips[i] = False, True
            i += 1
    return flips


def _record_ends(data: bytes, delimiter: int | None, final: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(where each line break of ``data`` ends, whether it is outside quotes), reading ``data`` from the start of a
    record; None when quotes are present and the delimiter is not one byte (no safe place to cut)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    n = len(arr)
    marks = np.flatnonzero((arr == 10) | (arr == 13))
    if len(marks):  # the \r of a \r\n is not a break of its own; a last \r may be one only at the end of the file
        nxt = arr[np.minimum(marks + 1, n - 1)]
        marks = marks[(arr[marks] == 10) | ((marks + 1 < n) & (nxt != 10)) | ((marks + 1 == n) & final)]
    quotes = np.flatnonzero(arr == 34)
    if not len(quotes):
        return marks + 1, np.ones(len(marks), dtype=bool)
    if delimiter is None:
        return None
    flips = _quote_flips(data, arr, quotes, delimiter)
    before = np.searchsorted(quotes, marks)
    if flips is not None:
        before = np.r_[0, np.cumsum(flips)][before]
    return marks + 1, before % 2 == 0


def _first_record_end(text: str, delimiter: int | None, final: bool) -> tuple[int, int, int, int] | None:
    """(where the line of the first record of ``text`` starts, where the record ends, the line breaks and the line
    breaks outside quotes up to there), ``text`` read from the start of a record and pandas' blank lines skipped;
    None when the record does not end in ``text``. Looks at a prefix of ``text`` that grows until it finds it."""
    size = 1 << 16
    while True:
        part = text[:size]
        data = part.encode("utf-8")
        found = _record_ends(data, delimiter, final and len(part) == len(text))
        if found is None:
            return None
        ends, outside = found
        arr = np.frombuffer(data, dtype=np.uint8)
        text_at = np.flatnonzero(~np.isin(arr, [*(b for b in (32, 9) if b != delimiter), 10, 13]))[:1]
        cuts = ends[outside & (ends > text_at[0])] if len(text_at) else ends[:0]
        if len(cuts):
            end = int(cuts[0])
            start = int(np.r_[0, ends][np.searchsorted(ends, text_at[0], side="right")])
            return (len(data[:start].decode("utf-8")), len(data[:end].decode("utf-8")),
                    int(np.count_nonzero(ends <= end)), int(np.count_nonzero(outside & (ends <= end))))
        if len(part) == len(text):
            return None
        size *= 4


@dataclass
class _Chunk:
    text: str
    physical: int  # line breaks in it
    parser: int  # line breaks outside quotes: the lines pandas counts


class _Records:
    """Text fed block by block, handed back in chunks of about ``size`` characters, each ending where a record ends;
    the first one holds the header record and at least one line after it."""

    def __init__(self, delimiter: str, size: int):
        encoded = delimiter.encode("utf-8")
        self.delimiter = encoded[0] if len(encoded) == 1 else None
        self.size, self.buf, self.next_try = size, "", size
        self.header: str | None = None  # the text up to the end of the header record
        self.header_physical = self.header_parser = 0

    def feed(self, text: str) -> list[_Chunk]:
        self.buf += text
        if len(self.buf) < self.next_try:
            return []
        chunk = self._split()
        self.next_try = self.size if chunk else 2 * len(self.buf)  # a long quoted cell: look again when it doubled
        return [chunk] if chunk else []

    def finish(self) -> list[_Chunk]:
        text, self.buf = self.buf, ""
        return [_Chunk(text, _breaks(text), _breaks(text))] if text else []

    def rest(self) -> str:
        text, self.buf = self.buf, ""
        return text

    def _split(self) -> _Chunk | None:
        buf = self.buf
        header = None
        if self.header is None:  # the first chunk: after the header record and one more line at least
            header = _first_record_end(buf, self.delimiter, False)
            if header is None:
                return None
        after = header[1] if header else 0
        if '"' not in buf:
            cut = _last_break(buf, False)
            if cut <= after:
                return None
            count = _breaks(buf[:cut])
            chunk = _Chunk(buf[:cut], count, count)
        else:
            data = buf.encode("utf-8")
            found = _record_ends(data, self.delimiter, False)
            if found is None:
                return None
            ends, outside = found
            cuts = ends[outside]
            if not len(cuts) or cuts[-1] <= len(buf[:after].encode("utf-8")):
                return None
            cut = int(cuts[-1])
            chunk = _Chunk(data[:cut].decode("utf-8"), int(np.count_nonzero(ends <= cut)),
                           int(np.count_nonzero(outside & (ends <= cut))))
        if header:
            self.header, self.header_physical, self.header_parser = buf[: header[1]], header[2], header[3]
        self.buf = buf[len(chunk.text):]
        return chunk


def _words(values: pa.Array | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(each row's index into the distinct values, the distinct values as Python strings)."""
    if isinstance(values, pd.Series):
        values = pa.array(values.to_numpy(dtype=object, na_value=None), _TEXT)
    encoded = pc.dictionary_encode(pc.fill_null(values, _NOT_A_VALUE))
    return _np(encoded.indices), encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _key_hashes(parts: list[pa.Array | pd.Series | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent hashes (64 and 32 bits) of each row's key: text columns and int64 columns."""
    texts = [None if isinstance(part, np.ndarray) else _words(part) for part in parts]
    halves = []
    for key, salt in zip(_HASH_KEYS, _SALTS, strict=True):
        h = np.full(len(parts[0]), salt, dtype=np.uint64)
        for part, text in zip(parts, texts, strict=True):
            if text is None:
                value = _mix(part.astype(np.int64).view(np.uint64) + salt)
            else:
                value = pd.util.hash_array(text[1], hash_key=key, categorize=False)[text[0]]
            h = _mix(h ^ value)
        halves.append(h)
    return halves[0], (halves[1] >> np.uint64(32)).astype(np.uint32)


def _run(h1: np.ndarray, h2: np.ndarray, counts: np.ndarray | None) -> tuple:
    """Keys sorted by (h1, h2), each once, with its count summed."""
    order = np.argsort(h1, kind="stable")  # runs merged are sorted already: linear
    a1, a2 = h1[order], h2[order]
    tie = a1[1:] == a1[:-1]
    if tie.any() and (a2[1:][tie] < a2[:-1][tie]).any():  # one 64-bit hash for two keys: sort the pairs
        order = np.lexsort((h2, h1))
        a1, a2 = h1[order], h2[order]
    first = np.flatnonzero(np.r_[True, (a1[1:] != a1[:-1]) | (a2[1:] != a2[:-1])])
    summed = None if counts is None else np.add.reduceat(counts[order], first) if len(first) else counts[:0]
    return a1[first], a2[first], summed


class _KeyCounts:
    """Keys (by their two hashes) seen so far, with how often, in sorted runs merged as they grow."""

    MAX_RUN = 1 << 22  # keys a run holds at most: merging larger runs would cost more memory than lookups save

    def __init__(self, counted: bool):
        self.counted = counted
        self.runs: list[tuple] = []

    def add(self, h1: np.ndarray, h2: np.ndarray, counts: np.ndarray | None = None) -> None:
        if not len(h1):
            return
        self.runs.append(_run(h1, h2, counts if counts is not None or not self.counted
                                 else np.ones(len(h1), dtype=np.int64)))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]) \
                and len(self.runs[-2][0]) + len(self.runs[-1][0]) <= self.MAX_RUN:
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(_run(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]),
                                  None if a[2] is None else np.concatenate([a[2], b[2]])))

    def get(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """How often each key was added (int64)."""
        total = np.zeros(len(h1), dtype=np.int64)
        if not len(h1) or not self.runs:
            return total
        order = np.argsort(h1)
        q1, q2 = h1[order], h2[order]
        found = np.zeros(len(h1), dtype=np.int64)
        for r1, r2, rc in self.runs:
            at = np.searchsorted(r1, q1)
            at_c = np.minimum(at, len(r1) - 1)
            same = (at < len(r1)) & (r1[at_c] == q1)
            exact = same & (r2[at_c] == q2)
            found[exact] += 1 if rc is None else rc[at_c[exact]]
            for i in np.flatnonzero(same & ~exact).tolist():  # another key with the same 64-bit hash: look on
                j = int(at[i]) + 1
                while j < len(r1) and r1[j] == q1[i]:
                    if r2[j] == q2[i]:
                        found[i] += 1 if rc is None else rc[j]
                        break
                    j += 1
        total[order] = found
        return total


class _Across:
    """What the chunks of one file must know of each other. The first read finds it chunk by chunk, in file order;
    the second read replays what the first found (``replay``): a few row numbers a chunk."""

    def __init__(self):
        self.replay = False
        self.keys = _KeyCounts(counted=False)  # (store,) receipt and line of every line so far
        self.receipts = _KeyCounts(counted=True)  # lines of each receipt so far (layouts without line numbers)
        self.repeats: dict[int, np.ndarray] = {}  # rows repeating a key of an earlier chunk
        self.receipt_before: dict[int, _KeyCounts] = {}  # per chunk: lines its receipts had in earlier chunks
        self.stock: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per chunk: sku hashes, not empty
        self.counted_again: dict[int, np.ndarray] = {}  # rows whose sku is counted again in a later chunk

    def start_replay(self) -> None:
        self.replay = True

    def seen_before(self, chunk: int, store: pa.Array | None, receipt: pa.Array, line: np.ndarray) -> np.ndarray:
        if self.replay:
            out = np.zeros(len(line), dtype=bool)
            out[self.repeats.get(chunk, [])] = True
            return out
        h1, h2 = _key_hashes([p for p in (store, receipt, line) if p is not None])
        out = self.keys.get(h1, h2) > 0
        self.keys.add(h1, h2)
        if out.any():
            self.repeats[chunk] = np.flatnonzero(out)
        return out

    def receipt_lines(self, chunk: int, receipt: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(receipt)
        h1, h2 = _key_hashes([encoded.dictionary])
        codes = _np(encoded.indices).astype(np.int64)
        if self.replay:
            before = self.receipt_before.get(chunk)
            earlier = before.get(h1, h2) if before is not None else np.zeros(len(h1), dtype=np.int64)
        else:
            earlier = self.receipts.get(h1, h2)
            self.receipts.add(h1, h2, np.bincount(codes, minlength=len(h1)).astype(np.int64))
            if earlier.any():
                before = self.receipt_before[chunk] = _KeyCounts(counted=True)
                before.add(h1[earlier > 0], h2[earlier > 0], earlier[earlier > 0])
        return earlier[codes]

    def counted_later(self, chunk: int, norm: pd.Series) -> np.ndarray:
        out = np.zeros(len(norm), dtype=bool)
        if self.replay:
            out[self.counted_again.get(chunk, [])] = True
        else:  # known once the file has been read: see counted_again_rows
            self.stock[chunk] = (*_key_hashes([norm]), norm.notna().to_numpy())
        return out

    def counted_again_rows(self, bad: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """After the first read: per chunk, the rows a later chunk counts again, and of them those no other rule
        refused (they become duplicate lines)."""
        later = _KeyCounts(counted=False)
        newly = {}
        for chunk in sorted(self.stock, reverse=True):
            h1, h2, present = self.stock.pop(chunk)
            again = (later.get(h1, h2) > 0) & present
            later.add(h1[present], h2[present])
            if again.any():
                self.counted_again[chunk] = np.flatnonzero(again)
                newly[chunk] = np.flatnonzero(again & ~bad[chunk])
        return newly


@dataclass
class _Piece:
    """How one chunk of a file is read so that it says what the whole file says of its lines, and what was seen."""

    index: int
    across: _Across
    parser_offset: int = 0  # lines pandas counts before the chunk's data in the file, minus those of the header
    arrow: bool = True  # Arrow's reader may read it (not when the file numbers its rows in order)
    rows_in_order: bool = False  # number the rows in order and rebuild records from the cells, as the whole file does
    line_type_of_file: str | None = None  # the type of the whole file's line numbers, when wider than Int64
    count_only: bool = True  # the first read: sales rows are left unbuilt (an index as long) and rejections (their
    # reason codes only)
    # what the parse saw
    numbered: int = 0  # non-blank physical lines after the header
    table_rows: int = 0
    implicit_index: bool = False
    bad: np.ndarray | None = None
    line_type: str | None = None  # the type pandas gives its line numbers (None: none was a number)

    def parser_says(self, exc: Exception) -> str:
        """The parser's message with its line (and row) numbers those of the whole file."""
        return re.sub(r"(in line |starting at row )(\d+)",
                      lambda m: f"{m.group(1)}{int(m.group(2)) + self.parser_offset}", str(exc))

    def seen_before(self, store: pa.Array | None, receipt: pa.Array, line: np.ndarray) -> np.ndarray:
        return self.across.seen_before(self.index, store, receipt, line)

    def receipt_lines(self, receipt: pa.Array) -> np.ndarray:
        return self.across.receipt_lines(self.index, receipt)

    def counted_later(self, norm: pd.Series) -> np.ndarray:
        return self.across.counted_later(self.index, norm)


class _Streamed:
    """The two reads of ``parse_stream``."""

    def __init__(self, open_stream: Callable[[], BinaryIO], layout: Layout, ctx: FileContext, size: int):
        self.open_stream, self.layout, self.ctx, self.size = open_stream, layout, ctx, size
        self.blocks: list[tuple[int, int]] = []  # (length, crc32) of each block the first read saw
        self.across = _Across()
        self.header = ""
        self.header_lines = (0, 0)  # its physical and parser lines
        self.rows_in_order = False
        self.line_type: str | None = None

    def _blocks(self, stream: BinaryIO) -> Iterator[bytes]:
        while block := stream.read(self.size):
            while len(block) < self.size and (more := stream.read(self.size - len(block))):
                block += more
            yield block

    def _parse(self, text: str, ctx: FileContext, piece: _Piece) -> ParsedFile:
        """One chunk, the header in front of it: the only text either read hands to the parser."""
        return _parse_text(text, self.layout, ctx, piece)

    def _decoder(self, errors: str):
        return codecs.getincrementaldecoder(self.layout.encoding)(errors)

    # --- the first read ---------------------------------------------------------------------------------------

    def first_read(self) -> StreamedFile:
        stream = self.open_stream()
        try:
            blocks = self._blocks(stream)
            head = [next(blocks, b""), next(blocks, b"")]
            if not head[1]:  # one chunk: the file itself
                parsed = parse_pos_file(head[0], self.layout, self.ctx)
                return StreamedFile(parsed.lines, len(parsed.rows), parsed.file_error, parsed.file_error_code,
                                    parsed.extra_columns, lambda: iter([parsed]))
            return self._first_read(itertools.chain(head, blocks))
        finally:
            stream.close()

    def _first_read(self, blocks: Iterable[bytes]) -> StreamedFile:
        layout = self.layout
        strict, lossy = self._decoder("strict"), None
        records = _Records(layout.delimiter, self.size)
        self.chunks = self.lines = self.rows = self.nonblank = self.physical = self.parser = 0
        self.settled = self.whole = self.header_first = False
        self.missing = self.parse_failure = None
        self.extra: list[str] = []
        self.reasons: dict[str, list[int]] = {}  # reason code -> [lines, first row]
        self.table_rows: list[int] = []
        self.numbered: list[int] = []
        self.line_types: set[str] = set()
        self.bad: dict[int, np.ndarray] = {}
        self.bom = self.first_line_blank = None
        self.nul, at, tail, start = False, 0, b"", b""
        counter = None  # non-blank lines of the lossy text, once the file is known undecodable
        capture: list = []  # what decode() quotes: [offset, its byte, the snippet so far, where the snippet ends]

        def diverge(state, block: bytes, final: bool) -> None:
            nonlocal lossy, counter
            lossy = self._decoder("replace")
            lossy.setstate(state)
            counter = _LineCounter(self.nonblank + (1 if self.bom and self.chunks and self.first_line_blank else 0))
            counter.feed(("\ufeff" if self.bom and not self.chunks else "") + records.rest())
            counter.feed(lossy.decode(block.replace(b"\x00", b""), final))

        def strictly(block: bytes, final: bool) -> str | None:
            """The block's text, or None (and the lossy decoder takes over) at a NUL or undecodable byte."""
            state = strict.getstate()
            try:
                if b"\x00" not in block:
                    return strict.decode(block, final)
            except UnicodeDecodeError as exc:
                # where decode() of the whole file sees it: its input started after the bytes the decoder kept, and
                # data.decode("utf-8-sig") counts from after the BOM
                base = at + len(block) - len(exc.object)
                shift = 3 if codecs.lookup(layout.encoding).name == "utf-8-sig" and start == codecs.BOM_UTF8 else 0
                first, end = base + exc.start - shift, base + exc.end - shift + 20
                window, window_at = tail + block, at - len(tail)
                capture[:] = [first, window[first - window_at],
                              bytearray(window[max(0, first - 20) - window_at: end - window_at]), end]
            diverge(state, block, final)
            return None

        for block in blocks:
            self.blocks.append((len(block), zlib.crc32(block)))
            start = (start + block)[:3]
            if capture and capture[3] > at:  # the snippet reaches into this block
                capture[2] += block[: capture[3] - at]
            self.nul = self.nul or b"\x00" in block
            if lossy is not None:
                counter.feed(lossy.decode(block.replace(b"\x00", b"")))
            elif (text := strictly(block, False)) is not None:
                for chunk in records.feed(self._strip_bom(text)):
                    self._take(chunk, records)
            tail = (tail + block)[-64:]
            at += len(block)
        if lossy is not None:
            counter.feed(lossy.decode(b"", True))
        elif (text := strictly(b"", True)) is not None:
            for chunk in records.feed(self._strip_bom(text)) + records.finish():
                self._take(chunk, records)
        return self._verdict(counter, capture)

    def _strip_bom(self, text: str) -> str:
        if self.bom is None and text:
            self.bom = text.startswith("\ufeff")
            return text[1:] if self.bom else text
        return text

    def _take(self, chunk: _Chunk, records: _Records) -> None:
        """A chunk of the first read: parsed for its verdict, counts and keys, then dropped."""
        layout, ctx, k = self.layout, self.ctx, self.chunks
        self.chunks += 1
        if k == 0:
            self.header, self.header_lines = records.header or "", (records.header_physical, records.header_parser)
            self.first_line_blank = not _LINE_BREAK.split(chunk.text, maxsplit=1)[0].strip()
            if records.header is not None and _nonblank(self.header) != 1:
                self.whole = True  # the header is not one line str.strip calls non-blank: pieces would count amiss
        text = chunk.text if k == 0 else self.header + chunk.text
        line_offset = 0 if k == 0 else self.physical - self.header_lines[0]
        piece = _Piece(k, self.across, 0 if k == 0 else self.parser - self.header_lines[1])
        self.physical += chunk.physical
        self.parser += chunk.parser
        if self.settled or self.whole:  # nothing further can change the verdict: only the lines are counted
            self.nonblank += _nonblank(chunk.text)
            return
        parsed = self._parse(text, replace(ctx, line_offset=line_offset, max_rejected_rate=math.inf), piece)
        self.nonblank += (piece.numbered if parsed.file_error is None else parsed.lines) + (k == 0)
        if k == 0:
            self.extra = parsed.extra_columns
            self.header_first = layout.kind == "sales" and _header_names(text, layout) is not None
            data = chunk.text[len(self.header):]
            found = _first_record_end(data, records.delimiter, True)
            self.pilot = data[found[0]: found[1]] if found else ""  # the file's first record
            if piece.implicit_index:
                self.whole = True
                return
        if piece.implicit_index:  # wider than the header: the whole file's parser fails on this chunk's first record
            self.parse_failure, self.settled = self._wider_record(chunk, piece), True
        elif parsed.file_error_code == "missing_column":
            self.missing = self.missing or parsed.file_error
            self.settled = self.header_first  # read by Arrow, the whole file is refused before its rows are read
        elif parsed.file_error_code == "parse_error":
            self.parse_failure, self.settled = parsed.file_error, True
        elif self.missing is None:
            bad_rows = np.flatnonzero(piece.bad)
            if len(bad_rows):
                self._reasons(parsed.rejections["reason_code"].to_numpy(dtype=str), bad_rows + self.lines)
            self.lines += parsed.lines
            self.rows += len(parsed.rows)
            self.table_rows.append(piece.table_rows)
            self.numbered.append(piece.numbered)
            self.line_types.add(piece.line_type or "Int64")
            if layout.kind == "inventory":
                self.bad[k] = piece.bad

    def _reasons(self, codes: np.ndarray, rows: np.ndarray) -> None:
        """Count the reasons of bad rows ``rows`` (of the whole file) and note the first row of each."""
        kinds, first, counts = np.unique(codes, return_index=True, return_counts=True)
        for code, row, n in zip(kinds.tolist(), rows[first].tolist(), counts.tolist(), strict=True):
            seen = self.reasons.setdefault(code, [0, row])
            seen[0] += n
            seen[1] = min(seen[1], row)

    def _wider_record(self, chunk: _Chunk, piece: _Piece) -> str | None:
        """The message of the whole file's parser at the first record of ``chunk``, read after the file's own first
        record (which decides how pandas reads the rest)."""
        try:
            read_table(self.header + self.pilot + chunk.text, self.layout)
        except ValueError as exc:
            return _parse_error(self.ctx, self.layout, replace(piece, parser_offset=piece.parser_offset - 1)
                                .parser_says(exc))
        self.whole = True  # pandas read it after all: read the file whole
        return None

    def _verdict(self, counter: _LineCounter | None, capture: list) -> StreamedFile:
        layout, ctx = self.layout, self.ctx
        if counter is not None:
            counter.finish()
            problem = (decode(b"\x00", layout)[1] if self.nul
                       else _undecodable(layout, capture[1], capture[0], bytes(capture[2])))
            reason = f"file {ctx.path} {problem}"
            return self._refused("decode_error", reason, max(0, counter.count - 1), lossy=True)
        if self.whole:
            return self._whole()
        lines = max(0, self.nonblank - 1)
        if self.missing and self.header_first:
            return self._refused("missing_column", self.missing, lines)
        if self.parse_failure:
            return self._refused("parse_error", self.parse_failure, lines)
        if self.missing:
            return self._refused("missing_column", self.missing, lines)
        for chunk, rows in self.across.counted_again_rows(self.bad).items():
            before = sum(self.table_rows[:chunk])
            self.rows -= len(rows)
            self._reasons(np.full(len(rows), "duplicate_line"), rows + before)
        self.reasons = dict(sorted(self.reasons.items(), key=lambda item: item[1][1]))  # first seen first
        bad = sum(n for n, _ in self.reasons.values())
        if self.lines and bad / self.lines > ctx.max_rejected_rate:
            sample = pd.Series({code: n for code, (n, _) in self.reasons.items()}, dtype="int64")
            sample = sample.sort_values(ascending=False).head(3).to_dict()  # as value_counts orders them
            return self._refused(
                "too_many_bad_lines",
                f"file {ctx.path}: {bad} of {self.lines} lines break the rules of layout {layout.name} (over the "
                f"{ctx.max_rejected_rate:.0%} limit; most common: {sample}); is the store on the right layout?", lines)
        wider = [t for t in ("Float64", "UInt64") if t in self.line_types]
        self.line_type = wider[0] if wider else None  # past int64 somewhere: every chunk typed so, by pandas
        if sum(self.numbered) != sum(self.table_rows):
            self.rows_in_order = True  # cells hold line breaks: the whole file numbers its rows in order
        elif self.numbered != self.table_rows:
            return self._whole()
        self.across.start_replay()
        return StreamedFile(self.lines, self.rows, None, None, self.extra, self._parts)

    def _refused(self, code: str, reason: str, lines: int, lossy: bool = False) -> StreamedFile:
        return StreamedFile(lines, 0, reason, code, [], lambda: self._refused_parts(code, reason, lossy))

    def _whole(self) -> StreamedFile:
        stream = self.open_stream()
        try:
            parsed = parse_pos_file(b"".join(self._blocks(stream)), self.layout, self.ctx)
        finally:
            stream.close()
        return StreamedFile(parsed.lines, len(parsed.rows), parsed.file_error, parsed.file_error_code,
                            parsed.extra_columns, lambda: iter([parsed]))

    # --- the second read --------------------------------------------------------------------------------------

    def _texts(self, errors: str) -> Iterator[str]:
        """The file's text again, block by block (strict: with its BOM dropped as parse_pos_file drops it; lossy: as
        lossy_text has it)."""
        decoder, first, seen = self._decoder(errors), errors == "strict", 0
        stream = self.open_stream()
        try:
            for block in self._blocks(stream):
                if seen >= len(self.blocks) or self.blocks[seen] != (len(block), zlib.crc32(block)):
                    raise RuntimeError(f"file {self.ctx.path} changed while it was read")
                seen += 1
                text = decoder.decode(block if errors == "strict" else block.replace(b"\x00", b""))
                if first and text:
                    text, first = text.removeprefix("\ufeff"), False
                yield text
            if seen != len(self.blocks):
                raise RuntimeError(f"file {self.ctx.path} changed while it was read")
            yield decoder.decode(b"", True)
        finally:
            stream.close()

    def _parts(self) -> Iterator[ParsedFile]:
        layout, ctx = self.layout, self.ctx
        records = _Records(layout.delimiter, self.size)
        physical = parser = rows = 0
        chunks = (chunk for text in itertools.chain(self._texts("strict"), [None])
                  for chunk in (records.feed(text) if text is not None else records.finish()))
        for k, chunk in enumerate(chunks):
            text = chunk.text if k == 0 else self.header + chunk.text
            offset = rows if self.rows_in_order else 0 if k == 0 else physical - self.header_lines[0]
            piece = _Piece(k, self.across, 0 if k == 0 else parser - self.header_lines[1],
                           arrow=not self.rows_in_order, rows_in_order=self.rows_in_order,
                           line_type_of_file=self.line_type, count_only=False)
            parsed = self._parse(text, replace(ctx, line_offset=offset, max_rejected_rate=math.inf), piece)
            if parsed.file_error is not None:
                raise RuntimeError(f"file {ctx.path} read differently the second time: {parsed.file_error}")
            physical, parser, rows = physical + chunk.physical, parser + chunk.parser, rows + parsed.lines
            yield ParsedFile(rows=parsed.rows, rejections=parsed.rejections, lines=parsed.lines,
                             extra_columns=parsed.extra_columns)

    def _refused_parts(self, code: str, reason: str, lossy: bool) -> Iterator[ParsedFile]:
        header, physical = True, 0
        for text in _line_pieces(self._texts("replace" if lossy else "strict"), self.size):
            rej, lines, passed = _rejected_lines(replace(self.ctx, line_offset=physical), text, code, reason, header)
            header, physical = header and not passed, physical + _breaks(text)
            yield ParsedFile(rows=pd.DataFrame(), rejections=rej, lines=lines, file_error=reason,
                             file_error_code=code)


class _LineCounter:
    """Non-blank physical lines of a text fed in pieces of any length."""

    def __init__(self, count: int = 0):
        self.count, self.pending = count, ""

    def feed(self, text: str) -> None:
        text = self.pending + text
        cut = _last_break(text, False)
        self.count += _nonblank(text[:cut]) if cut else 0
        self.pending = text[cut:]

    def finish(self) -> None:
        self.count += _nonblank(self.pending)
        self.pending = ""
