"""Reading one POS file through its layout: decode, parse, validate row by row, and say why a line is refused.

Pure: bytes in, frames out. A file-level problem (undecodable, unparseable, a required column missing, too many
bad lines) rejects every line of the file with the same reason; otherwise each bad line is rejected on its own
with the first rule it breaks, and the good lines go on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

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
    file_hash: str
    run_id: str
    asset: str
    max_rejected_rate: float = 0.5


def _physical_lines(text: str) -> list[str]:
    return text.splitlines()


def _rejections(ctx: FileContext, line_numbers: list[int] | np.ndarray, codes: list[str] | pd.Series,
                reasons: list[str] | pd.Series, records: list[str | None] | pd.Series) -> pd.DataFrame:
    n = len(line_numbers)
    return pd.DataFrame({
        "business_date": pd.Series([pd.Timestamp(ctx.business_date)] * n, dtype="datetime64[us]"),
        "asset": ctx.asset,
        "source_system": "pos",
        "source_ref": ctx.path,
        "source_key": [f"line {int(i)}" for i in line_numbers],
        "reason_code": list(codes),
        "reason": list(reasons),
        "record": list(records),
        "run_id": ctx.run_id,
    }, columns=REJECTION_COLUMNS)


def reject_whole_file(ctx: FileContext, text: str, code: str, reason: str) -> ParsedFile:
    """Every data line of the file rejected with one reason (header is line 1)."""
    lines = _physical_lines(text)
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()][1:]
    rej = _rejections(ctx, [n for n, _ in numbered], [code] * len(numbered), [reason] * len(numbered),
                      [line for _, line in numbered])
    return ParsedFile(rows=pd.DataFrame(), rejections=rej, lines=len(numbered), file_error=reason,
                      file_error_code=code)


def decode(data: bytes, layout: Layout) -> tuple[str | None, str | None]:
    """(text, None), or (None, reason) when the bytes are not in the layout's encoding."""
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


def parse_pos_file(data: bytes, layout: Layout, ctx: FileContext) -> ParsedFile:
    """Parse and validate one sales or inventory file of ``layout`` (see module doc)."""
    text, error = decode(data, layout)
    if text is None:
        return reject_whole_file(ctx, data.decode(layout.encoding, errors="replace"), "decode_error",
                                 f"file {ctx.path} {error}")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        table = read_table(text, layout)
    except ValueError as exc:
        return reject_whole_file(ctx, text, "parse_error",
                                 f"file {ctx.path} cannot be parsed as {layout.name} "
                                 f"(delimiter {layout.delimiter!r}): {exc}")
    headers = {str(h).strip().lower(): h for h in table.columns}
    missing = [f"{name} ({'+'.join(cols)})" for name, cols in layout.required_headers().items()
               if any(c.strip().lower() not in headers for c in cols)]
    if missing:
        return reject_whole_file(ctx, text, "missing_column",
                                 f"file {ctx.path} lacks required column(s) {', '.join(missing)} of layout "
                                 f"{layout.name}; found {', '.join(map(str, table.columns))}. Re-send it complete.")
    used = {c.strip().lower() for c in (*layout.columns.values(), *layout.ignore_columns)}
    for spec in (layout.sold_at, layout.counted_at):
        used |= {c.strip().lower() for c in (spec.columns if spec else ())}
    if layout.sign.column:
        used.add(layout.sign.column.lower())
    if layout.store_from == "column" and layout.store_value:
        used.add(layout.store_value.lower())
    extra = [str(h) for key, h in headers.items() if key not in used]

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
    rows["file_hash"] = ctx.file_hash
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
