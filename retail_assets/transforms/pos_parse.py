"""Reading one POS file through its layout: decode, parse, validate row by row, and say why a line is refused.

Pure: bytes in, frames out. A file-level problem (undecodable, unparseable, a required column missing, too many
bad lines) rejects every line of the file with the same reason; otherwise each bad line is rejected on its own
with the first rule it breaks, and the good lines go on.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from retail_assets.layouts import Layout
from retail_assets.schemas.sources import PAYMENT_METHODS
from retail_assets.transforms.normalise import normalise_loyalty_card, normalise_sku

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
    return pd.DataFrame({  # lists, not scalars to broadcast: half the cost
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
    lines = _physical_lines(text)
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()][1:]
    rej = _rejections(ctx, [n for n, _ in numbered], [code] * len(numbered), [reason] * len(numbered),
                      [line for _, line in numbered])
    return ParsedFile(rows=pd.DataFrame(), rejections=rej, lines=len(numbered), file_error=reason,
                      file_error_code=code)


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
        snippet = data[max(0, exc.start - 20): exc.end + 20]
        return None, (f"cannot be decoded as {layout.encoding} (layout {layout.name}): byte 0x{data[exc.start]:02x} "
                      f"at offset {exc.start} near {snippet!r}; re-export the file in {layout.encoding} or assign "
                      "the store a layout with the right encoding")


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
    if text.startswith("\ufeff"):
        text = text[1:]
    if layout.kind == "sales":
        parsed = _parse_sales_arrow(text, layout, ctx)
        if parsed is not None:
            return parsed
    try:
        table = read_table(text, layout)
    except ValueError as exc:
        return reject_whole_file(ctx, text, "parse_error",
                                 f"file {ctx.path} cannot be parsed as {layout.name} "
                                 f"(delimiter {layout.delimiter!r}): {exc}")
    headers, extra, rejected = _check_headers(list(table.columns), layout, ctx, text)
    if rejected is not None:
        return rejected

    def col(name: str) -> pd.Series:
        header = layout.columns.get(name)
        if header is None or header.strip().lower() not in headers:
            return pd.Series([""] * len(table), index=table.index, dtype="string")
        return table[headers[header.strip().lower()]].astype("string").str.strip()

    lines = _physical_lines(text)
    numbered = [i + 1 for i, line in enumerate(lines) if line.strip()][1:]
    if len(numbered) == len(table):
        line_numbers = np.asarray(numbered, dtype="int64")
        records = pd.Series([lines[n - 1] for n in numbered], index=table.index, dtype="string")
    else:  # quoted line breaks inside a cell: fall back to row order, records rebuilt from the cells
        line_numbers = np.arange(2, len(table) + 2, dtype="int64")
        records = table.astype("string").agg(layout.delimiter.join, axis=1)

    if layout.kind == "sales":
        rows, reason_code, reason = _sales(table, layout, ctx, col, headers)
    else:
        rows, reason_code, reason = _inventory(table, layout, ctx, col, headers)
    rows["source_file"] = ctx.path
    rows["source_line"] = line_numbers
    rows["run_id"] = ctx.run_id

    bad = reason_code.notna()
    n_bad = int(bad.sum())
    if len(table) and n_bad / len(table) > ctx.max_rejected_rate:
        sample = reason_code[bad].value_counts().head(3).to_dict()
        return reject_whole_file(
            ctx, text, "too_many_bad_lines",
            f"file {ctx.path}: {n_bad} of {len(table)} lines break the rules of layout {layout.name} "
            f"(over the {ctx.max_rejected_rate:.0%} limit; most common: {sample}); is the store on the right layout?")
    rejections = _rejections(ctx, line_numbers[bad.to_numpy()], reason_code[bad], reason[bad], records[bad])
    return ParsedFile(rows=rows[~bad.to_numpy()].reset_index(drop=True), rejections=rejections, lines=len(table),
                      extra_columns=extra)


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


def _sales(table: pd.DataFrame, layout: Layout, ctx: FileContext, col, headers) -> tuple[pd.DataFrame, pd.Series,
                                                                                        pd.Series]:
    rules = _Rules(table.index)
    receipt = col("receipt_id")
    sku = col("sku")
    rules.add((receipt == "") | (sku == ""), "missing_value",
              "receipt_id or sku is empty; every line needs both")

    if "line_no" in layout.columns:
        line_raw = col("line_no")
        line_ok = line_raw.str.fullmatch(r"\d+").fillna(False)
        line_no = pd.to_numeric(line_raw.where(line_ok), errors="coerce")
        rules.add(~line_ok | (line_no < 1), "line_no_invalid", "line_no '" + line_raw + "' is not a whole number >= 1")
    else:  # the layout has no line numbers: number the lines of each receipt in file order
        line_no = table.groupby(receipt, sort=False).cumcount() + 1

    qty_raw = col("quantity")
    qty_ok = qty_raw.str.fullmatch(r"[+-]?\d+").fillna(False)
    quantity = pd.to_numeric(qty_raw.where(qty_ok), errors="coerce")
    rules.add(~qty_ok | (quantity == 0), "quantity_invalid",
              "quantity '" + qty_raw + "' is not a non-zero whole number")
    if layout.sign.column:
        rules.add(qty_ok & (quantity < 0), "quantity_invalid",
                  "quantity '" + qty_raw + f"' must be positive in layout {layout.name} (returns are marked by "
                  f"{layout.sign.column})")

    price_raw = col("unit_price")
    price = _money(price_raw, layout.decimal)
    rules.add(price.isna() | ~np.isfinite(price.fillna(0)) | (price < 0) | _more_than_cents(price_raw, layout.decimal),
              "price_invalid", "unit_price '" + price_raw + "' is not a price >= 0 in whole cents")
    disc_raw = col("discount")
    discount = _money(disc_raw, layout.decimal).where(disc_raw != "", 0.0)
    rules.add(discount.isna() | ~np.isfinite(discount.fillna(0)) | (discount < 0)
              | _more_than_cents(disc_raw, layout.decimal),
              "discount_invalid", "discount '" + disc_raw + "' is not an amount >= 0 in whole cents")

    assert layout.sold_at is not None
    parts = [table[headers[c.strip().lower()]].astype("string").str.strip() for c in layout.sold_at.columns]
    stamp_raw = parts[0]
    for extra in parts[1:]:
        stamp_raw = stamp_raw + " " + extra
    sold_at = pd.to_datetime(stamp_raw, format=layout.sold_at.format, errors="coerce")
    business_day = pd.Timestamp(ctx.business_date)
    rules.add(sold_at.isna(), "sold_at_invalid",
              "sale time '" + stamp_raw.fillna("") + f"' does not match the format {layout.sold_at.format}")
    rules.add(sold_at.dt.normalize() != business_day, "sold_at_invalid",
              "sale time '" + stamp_raw.fillna("") + f"' is not on the file's business day {ctx.business_date}")

    if layout.sign.column:
        kind = table[headers[layout.sign.column.lower()]].astype("string").str.strip().str.upper()
        sale = kind.isin([v.upper() for v in layout.sign.sale])
        ret = kind.isin([v.upper() for v in layout.sign.returns])
        rules.add(~(sale | ret), "type_invalid",
                  f"{layout.sign.column} '" + kind.fillna("") + "' is neither "
                  f"{'/'.join(layout.sign.sale)} (sale) nor {'/'.join(layout.sign.returns)} (return)")
        quantity = quantity.where(~ret, -quantity)

    payment = pd.Series(pd.NA, index=table.index, dtype="string")
    if "payment_method" in layout.columns:
        payment = col("payment_method").str.lower()
        rules.add(~payment.isin(PAYMENT_METHODS), "payment_method_invalid",
                  "payment_method '" + payment.fillna("") + f"' is not one of {', '.join(PAYMENT_METHODS)}")

    store = pd.Series(ctx.store_code, index=table.index, dtype="string")
    if layout.store_from == "column":
        store = table[headers[layout.store_value.lower()]].astype("string").str.strip()
        rules.add(store == "", "missing_value", "the store column is empty")

    dup = pd.DataFrame({"s": store, "r": receipt, "l": line_no}).duplicated(keep="first")
    rules.add(dup & rules.code.isna(), "duplicate_line",
              "receipt " + receipt + " line " + line_no.astype("string").fillna("?")
              + " appears more than once in the file; the first occurrence was kept")

    ok = rules.code.isna()
    rows = pd.DataFrame({
        "business_date": business_day,
        "store_code": store,
        "receipt_id": receipt,
        "line_no": line_no.where(ok, 1).astype("int64"),
        "sold_at": sold_at,
        "register_id": col("register_id").replace("", pd.NA),
        "cashier_id": col("cashier_id").replace("", pd.NA),
        "sku_raw": sku,
        "sku_norm": normalise_sku(sku),
        "quantity": quantity.where(ok, 1).astype("int64"),
        "unit_price": price.round(2),
        "discount": discount.round(2),
        "loyalty_card": normalise_loyalty_card(col("loyalty_card")),
        "payment_method": payment,
        "layout": layout.name,
    })
    rows["sku_norm"] = rows["sku_norm"].mask(rows["sku_norm"] == "")
    rules.add(rows["sku_norm"].isna(), "missing_value", "sku has no letters or digits")
    return rows, rules.code, rules.reason


def _inventory(table: pd.DataFrame, layout: Layout, ctx: FileContext, col, headers) -> tuple[pd.DataFrame, pd.Series,
                                                                                            pd.Series]:
    rules = _Rules(table.index)
    sku = col("sku")
    norm = normalise_sku(sku)
    rules.add(norm.fillna("") == "", "missing_value", "sku is empty")
    on_raw = col("on_hand")
    on_ok = on_raw.str.fullmatch(r"[+-]?\d+").fillna(False)
    on_hand = pd.to_numeric(on_raw.where(on_ok), errors="coerce")
    rules.add(~on_ok, "on_hand_invalid", "on_hand '" + on_raw + "' is not a whole number")
    counted = pd.Series(pd.NaT, index=table.index, dtype="datetime64[us]")
    if layout.counted_at and all(c.strip().lower() in headers for c in layout.counted_at.columns):
        raw = table[headers[layout.counted_at.columns[0].strip().lower()]].astype("string").str.strip()
        counted = pd.to_datetime(raw, format=layout.counted_at.format, errors="coerce")
        rules.add(counted.isna() & (raw != ""), "counted_at_invalid",
                  "counted_at '" + raw + f"' does not match the format {layout.counted_at.format}")
    dup = norm.duplicated(keep="last") & norm.notna()
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


# --- The Arrow path for sales files -----------------------------------------------------------------------------
# The pandas code above is the reference. A sales file is first tried here: read by pyarrow's CSV reader and checked
# with Arrow compute kernels and numpy, rule by rule in the reference's order, with the reference's semantics (the
# same kernels pandas uses for these string methods; Python's regex semantics where pandas would use Python's
# ``re``). Plain values take the fast lane (digits, amounts with at most 2 decimals, fixed-width timestamps);
# anything else goes through the reference's own pandas code, cell by cell. Reasons and physical records are only
# made for the lines that break a rule. When a file has anything this path cannot be sure to read the same way
# (quotes in the header, duplicate or empty header names, rows of the wrong width, blank lines, line breaks
# inside cells, very long numbers), it returns None and the reference path reads the whole file. Results are the
# same frames either way (retail_assets_tests/sources/test_pos_parse_arrow.py compares them).

_PLAIN_AMOUNT = {".": r"^[0-9]{1,15}(\.[0-9]{1,2})?$", ",": r"^[0-9]{1,15}(,[0-9]{1,2})?$"}
_PY_ASCII_SPACE = "[\t\n\x0b\x0c\r\x1c-\x1f ]+"  # what Python's \s matches among ASCII characters
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


class _NotSame(Exception):
    """This file must go through the reference path."""


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


def _bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a large_string array without nulls, offsets starting at 0."""
    values = pc.cast(values, _TEXT)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values) + 1]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    return offsets - offsets[0], data


_ASCII_ALNUM = np.zeros(256, dtype=bool)
_ASCII_ALNUM[[*range(48, 58), *range(65, 91), *range(97, 123)]] = True
_ASCII_UPPER = np.arange(256, dtype=np.uint8)
_ASCII_UPPER[97:123] -= 32
_PY_SPACE_BYTES = np.zeros(256, dtype=bool)
_PY_SPACE_BYTES[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # str.isspace() among ASCII characters


def _alnum_upper_ascii(values: pa.Array) -> pa.Array:
    """``normalise_sku`` (drop every character outside [0-9A-Za-z], upper case) for ASCII text, on the bytes."""
    offsets, data = _bytes(values)
    keep = _ASCII_ALNUM[data]
    kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(kept[offsets]),
                                            pa.py_buffer(_ASCII_UPPER[data[keep]]))


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


def _whole_numbers(raw: pa.Array, signed: bool, ascii_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ok, values): cells that fullmatch ``[+-]?\\d+`` (``\\d+``) as pandas matches them, and their int64 value
    (1 elsewhere), as the reference's ``pd.to_numeric(raw.where(ok))`` gives them."""
    digits = raw
    if ascii_only:  # pandas runs \d through RE2 on ASCII data, where it means [0-9]
        if signed:
            sign = pc.or_(pc.starts_with(raw, "+"), pc.starts_with(raw, "-"))
            digits = pc.if_else(sign, pc.utf8_slice_codeunits(raw, 1), raw)
        ok = _np(pc.ascii_is_decimal(digits))  # one or more of 0-9
    else:
        ok = _series(raw).str.fullmatch(r"[+-]?\d+" if signed else r"\d+").to_numpy(dtype=bool, na_value=False)
    values = np.ones(len(raw), dtype=np.int64)
    if ok.all() and ascii_only:
        if pc.max(pc.binary_length(digits)).as_py() > _MAX_INT_DIGITS:
            raise _NotSame("very long whole number")
        values = _np(pc.cast(digits, pa.int64()))
        if signed:
            values = np.where(_np(pc.starts_with(raw, "-")), -values, values)
    elif ok.any():
        cells = pc.filter(raw, pa.array(ok))
        if pc.max(pc.utf8_length(cells)).as_py() > _MAX_INT_DIGITS:
            raise _NotSame("very long whole number")
        values[ok] = _np(pc.cast(pc.replace_substring_regex(cells, r"^\+", ""), pa.int64()))
    return ok, values


def _amounts(raw: pa.Array, decimal: str, empty: float | None) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray]:
    """(values, missing, whole, broken): ``_money(raw)`` (``empty`` for empty cells when given), whether pandas
    would type it Int64 rather than Float64, and the amount rule of the reference. Plain amounts are parsed by
    Arrow, anything else by ``_money`` and ``_more_than_cents`` themselves."""
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
        if str(amount.dtype) not in ("Int64", "Float64"):
            raise _NotSame(f"amounts parse to {amount.dtype}")
        fraction = fraction or str(amount.dtype) == "Float64"
        broken[other] = (amount.isna() | ~np.isfinite(amount.fillna(0)) | (amount < 0)
                         | _more_than_cents(cells, decimal)).to_numpy(dtype=bool, na_value=True)
        values[other] = amount.to_numpy(dtype="float64", na_value=np.nan)
        missing[other] = amount.isna().to_numpy()
        numbers = numbers or bool((~amount.isna()).any())
    return values, missing, numbers and not fraction, broken  # no number at all: pandas says Float64


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
    offsets, data = _bytes(raw)
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
        if span * size >= 2 ** 62:
            raise _NotSame("duplicate key too wide")
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


def _parse_sales_arrow(text: str, layout: Layout, ctx: FileContext) -> ParsedFile | None:
    """``parse_pos_file`` for a sales file, or None when the reference path must read it."""
    parsed = _parse_sales_batch([(text, ctx)], layout)
    return None if parsed is None else parsed[0]


def _parse_sales_batch(files: list[tuple[str, FileContext]], layout: Layout) -> list[ParsedFile] | None:
    """``_parse_sales_arrow`` for several decoded files of one layout and business day whose headers are written
    alike, read as one CSV and checked in one pass, or None when one of them must go through another path."""
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
        if table.num_rows != counts.sum():  # blank lines or line breaks inside cells
            return None
        return _sales_arrow([text for text, _ in files], [ctx for _, ctx in files], counts, table, layout, headers,
                            extra)
    except (_NotSame, pa.ArrowException):
        return None


def parse_sales_files(files: list[tuple[bytes, FileContext]], layout: Layout) -> list[ParsedFile]:
    """``parse_pos_file`` of each of several sales files of ``layout`` for one business day, in order.

    The files the Arrow path can read whose headers are written alike are read as one CSV and checked in one pass:
    a day of a few hundred small files spends a third of its parse on each file's fixed cost otherwise. Each file
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


def _sales_arrow(texts: list[str], ctxs: list[FileContext], counts: np.ndarray, table: pa.Table, layout: Layout,
                 headers: dict, extra: list[str]) -> list[ParsedFile]:
    """The rules over the lines of one or more files (``counts`` lines each, in ``table`` one after the other)."""
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

    if "line_no" in layout.columns:
        line_raw = col("line_no")
        line_ok, line_no = _whole_numbers(line_raw, False, ascii_only)
        rules.add(~line_ok | (line_no < 1), "line_no_invalid",
                  _quoted("line_no '", line_raw, "' is not a whole number >= 1"))
        line_key = np.where(line_ok, line_no + 1, 0)  # unreadable numbers are one key, as for duplicated()
    else:  # the layout has no line numbers: number the lines of each receipt in file order
        line_no = _cumcount(_codes(receipt) * files + file_of) + 1
        line_key = line_no

    qty_raw = col("quantity")
    qty_ok, quantity = _whole_numbers(qty_raw, True, ascii_only)
    rules.add(~qty_ok | (quantity == 0), "quantity_invalid",
              _quoted("quantity '", qty_raw, "' is not a non-zero whole number"))
    if layout.sign.column:
        rules.add(qty_ok & (quantity < 0), "quantity_invalid",
                  _quoted("quantity '", qty_raw, f"' must be positive in layout {layout.name} (returns are marked "
                                                 f"by {layout.sign.column})"))

    price_raw = col("unit_price")
    price = _amounts(price_raw, layout.decimal, None)
    rules.add(price[3], "price_invalid", _quoted("unit_price '", price_raw, "' is not a price >= 0 in whole cents"))
    disc_raw = col("discount")
    discount = _amounts(disc_raw, layout.decimal, 0.0)
    rules.add(discount[3], "discount_invalid",
              _quoted("discount '", disc_raw, "' is not an amount >= 0 in whole cents"))

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
    rules.add(_seen_before(keys), "duplicate_line", lambda rows: [
        f"receipt {r} line {line} appears more than once in the file; the first occurrence was kept"
        for r, line in zip(receipt.take(pa.array(rows)).to_pylist(), line_no[rows].tolist(), strict=True)])

    if ascii_only:
        sku_norm = _empty_to_null(_alnum_upper_ascii(sku))
    else:
        sku_norm = _empty_to_null(pc.utf8_upper(pc.replace_substring_regex(sku, "[^0-9A-Za-z]+", "")))
    rules.add(_np(pc.is_null(sku_norm)), "missing_value", "sku has no letters or digits")

    good = rules.free
    verdicts: list[ParsedFile | None] = [None] * files
    bad_in_file = np.bincount(file_of[~good], minlength=files)
    for f in np.flatnonzero(bad_in_file / counts > np.array([ctx.max_rejected_rate for ctx in ctxs])):
        ctx, lines = ctxs[f], int(counts[f])
        codes = rules.code[starts[f]: starts[f] + lines][~good[starts[f]: starts[f] + lines]]
        sample = pd.Series(codes, dtype="string").value_counts().head(3).to_dict()
        verdicts[f] = reject_whole_file(
            ctx, texts[f], "too_many_bad_lines",
            f"file {ctx.path}: {bad_in_file[f]} of {lines} lines break the rules of layout {layout.name} "
            f"(over the {ctx.max_rejected_rate:.0%} limit; most common: {sample}); is the store on the right layout?")
    if files == 1 and verdicts[0] is not None:
        return [verdicts[0]]
    whole = np.array([v is not None for v in verdicts])[file_of]  # rows of files rejected as a whole
    bad_rows = np.flatnonzero(~good & ~whole)
    good = good & ~whole

    line_numbers = np.arange(n, dtype=np.int64) - starts[file_of] + 2
    bad_files = file_of[bad_rows]
    records: list[str] = []
    for f in np.unique(bad_files):
        records += _records(texts[f].encode("utf-8"), bad_rows[bad_files == f] - starts[f])
    rejections = _rejection_frame(
        day, [ctxs[f] for f in bad_files.tolist()], line_numbers[bad_rows], rules.code[bad_rows].tolist(),
        rules.reason[bad_rows].tolist(), records)

    keep = pa.array(good) if not good.all() else None
    kept_n = int(good.sum())
    def text_column(values: pa.Array) -> pd.arrays.ArrowStringArray:
        return _strings(values if keep is None else pc.filter(values, keep))

    def loyalty_cards() -> pd.api.extensions.ExtensionArray:
        card = col("loyalty_card")
        if not ascii_only:
            return normalise_loyalty_card(_series(card))[good].array
        card = pc.utf8_trim_whitespace(card)
        float_like = pc.ends_with(card, ".0")  # r"\.0$": no cell holds a line break here
        card = pc.if_else(float_like, pc.utf8_slice_codeunits(card, 0, -2), card)
        if _PY_SPACE_BYTES[_bytes(card)[1]].any():
            card = pc.replace_substring_regex(card, _PY_ASCII_SPACE, "")
        return text_column(_empty_to_null(pc.ascii_upper(card)))

    # Columns as arrays, not Series: a frame of Series aligns their indexes, about half of this step's cost for a
    # file of a few thousand lines (and a day has hundreds of files).
    rows = pd.DataFrame({
        "business_date": pd.Timestamp(day),
        "store_code": text_column(store),
        "receipt_id": text_column(receipt),
        "line_no": line_no[good],
        "sold_at": stamps[good] if isinstance(sold_at, np.ndarray) else sold_at[good].array,
        "register_id": text_column(_empty_to_null(col("register_id"))),
        "cashier_id": text_column(_empty_to_null(col("cashier_id"))),
        "sku_raw": text_column(sku),
        "sku_norm": text_column(sku_norm),
        "quantity": quantity[good],
        "unit_price": _amount_array(price[0][good], price[1][good], price[2]),
        "discount": _amount_array(discount[0][good], discount[1][good], discount[2]),
        "loyalty_card": loyalty_cards(),
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
