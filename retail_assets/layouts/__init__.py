"""POS file layouts as data.

A layout says how one POS system writes its files: the file name pattern (with the store and the business date
in named groups), encoding, delimiter, decimal mark, which header holds which field, how the sale time is
written, and the sign convention of returns. ``standard``, ``legacy`` and ``stock`` (inventory counts) are built
in; a company adds its own as YAML files in ``RETAIL_POS_LAYOUTS_DIR`` and assigns stores to them in
``stores.csv``. No code changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

BUILTIN_DIR = Path(__file__).parent
SALES_FIELDS = ("receipt_id", "line_no", "register_id", "cashier_id", "sku", "quantity", "unit_price", "discount",
                "loyalty_card", "payment_method", "store_code")
INVENTORY_FIELDS = ("sku", "on_hand", "store_code")


@lru_cache(maxsize=65536)
def _parse_date(text: str, fmt: str) -> date | None:
    """strptime is slow and a drop folder repeats the same few hundred dates across thousands of files."""
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


class LayoutError(ValueError):
    """A layout definition that cannot be used; the message says which file and what to fix."""


@dataclass(frozen=True)
class TimeSpec:
    columns: tuple[str, ...]
    format: str


@dataclass(frozen=True)
class SignSpec:
    """``column`` None: quantities carry their own sign. Otherwise the column's value says sale or return."""

    column: str | None = None
    sale: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    name: str
    kind: str
    file_pattern: re.Pattern[str]
    file_date_format: str
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    decimal: str = "."
    store_from: str = "filename"  # "filename", "column" or "constant"
    store_value: str | None = None  # the column name or the constant
    columns: dict[str, str] = field(default_factory=dict)
    sold_at: TimeSpec | None = None
    counted_at: TimeSpec | None = None
    sign: SignSpec = field(default_factory=SignSpec)
    required: tuple[str, ...] = ()
    ignore_columns: tuple[str, ...] = ()  # known extra headers that are not schema drift
    source: str = "built-in"

    def match(self, filename: str) -> tuple[str | None, date] | None:
        """(store code or None, business date) when ``filename`` is one of this layout's files."""
        m = self.file_pattern.match(filename)
        if not m:
            return None
        day = _parse_date(m.group("date"), self.file_date_format)
        if day is None:
            return None
        if self.store_from == "filename":
            return m.group("store"), day
        if self.store_from == "constant":
            return self.store_value, day
        return None, day

    def required_headers(self) -> dict[str, list[str]]:
        """Field -> the source headers it needs, for the fields this layout requires."""
        needs: dict[str, list[str]] = {}
        for name in self.required:
            if name == "sold_at" and self.sold_at:
                needs[name] = list(self.sold_at.columns)
            elif name == "counted_at" and self.counted_at:
                needs[name] = list(self.counted_at.columns)
            elif name == "sign" and self.sign.column:
                needs[name] = [self.sign.column]
            elif name in self.columns:
                needs[name] = [self.columns[name]]
        if self.store_from == "column" and self.store_value:
            needs["store_code"] = [self.store_value]
        return needs


def _time(spec: Any, where: str) -> TimeSpec | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or "columns" not in spec or "format" not in spec:
        raise LayoutError(f"{where}: a time needs 'columns' (list of headers) and 'format' (strptime format)")
    cols = spec["columns"]
    return TimeSpec(tuple([cols] if isinstance(cols, str) else cols), str(spec["format"]))


def parse_layout(data: dict[str, Any], source: str) -> Layout:
    """A layout from its YAML mapping; every mistake is reported with the file it came from."""
    missing = [k for k in ("name", "file_pattern", "file_date_format", "columns") if k not in data]
    if missing:
        raise LayoutError(f"{source}: layout definition lacks {', '.join(missing)}")
    kind = data.get("kind", "sales")
    if kind not in ("sales", "inventory"):
        raise LayoutError(f"{source}: kind must be 'sales' or 'inventory', not {kind!r}")
    try:
        pattern = re.compile(data["file_pattern"])
    except re.error as exc:
        raise LayoutError(f"{source}: file_pattern is not a valid regular expression: {exc}") from None
    if "date" not in pattern.groupindex:
        raise LayoutError(f"{source}: file_pattern needs a named group (?P<date>...) for the business date")
    store = data.get("store_from", "filename")
    store_from, store_value = "filename", None
    if isinstance(store, dict) and len(store) == 1:
        store_from, store_value = next(iter(store.items()))
        store_value = str(store_value)
    if store_from not in ("filename", "column", "constant"):
        raise LayoutError(f"{source}: store_from must be 'filename', {{column: NAME}} or {{constant: CODE}}")
    if store_from == "filename" and "store" not in pattern.groupindex:
        raise LayoutError(f"{source}: store_from filename needs a named group (?P<store>...) in file_pattern")
    fields = SALES_FIELDS if kind == "sales" else INVENTORY_FIELDS
    columns = {str(k): str(v) for k, v in (data["columns"] or {}).items()}
    unknown = sorted(set(columns) - set(fields))
    if unknown:
        raise LayoutError(f"{source}: unknown fields in columns: {', '.join(unknown)}; known: {', '.join(fields)}")
    sign = data.get("sign", "signed")
    if sign == "signed":
        sign_spec = SignSpec()
    elif isinstance(sign, dict) and "column" in sign:
        sign_spec = SignSpec(str(sign["column"]), tuple(map(str, sign.get("sale", []))),
                             tuple(map(str, sign.get("return", []))))
    else:
        raise LayoutError(f"{source}: sign must be 'signed' or {{column: NAME, sale: [...], return: [...]}}")
    layout = Layout(
        name=str(data["name"]), kind=kind, file_pattern=pattern, file_date_format=str(data["file_date_format"]),
        encoding=str(data.get("encoding", "utf-8-sig")), delimiter=str(data.get("delimiter", ",")),
        decimal=str(data.get("decimal", ".")), store_from=store_from, store_value=store_value, columns=columns,
        sold_at=_time(data.get("sold_at"), source), counted_at=_time(data.get("counted_at"), source),
        sign=sign_spec, required=tuple(data.get("required", ())),
        ignore_columns=tuple(map(str, data.get("ignore_columns", ()))), source=source,
    )
    if kind == "sales" and layout.sold_at is None:
        raise LayoutError(f"{source}: a sales layout needs sold_at: {{columns: [...], format: ...}}")
    for name in ("sku", "quantity", "unit_price", "receipt_id") if kind == "sales" else ("sku", "on_hand"):
        if name not in columns:
            raise LayoutError(f"{source}: columns must map the field {name!r} to a header")
    try:
        "".encode(layout.encoding)
    except LookupError:
        raise LayoutError(f"{source}: unknown encoding {layout.encoding!r}") from None
    return layout


def load_layouts(extra_dir: Path | None = None) -> dict[str, Layout]:
    """Built-in layouts plus every ``*.yaml`` in ``extra_dir``; a user layout may not reuse a built-in name."""
    layouts: dict[str, Layout] = {}
    dirs = [BUILTIN_DIR] + ([extra_dir] if extra_dir and Path(extra_dir).is_dir() else [])
    for folder in dirs:
        for path in sorted(Path(folder).glob("*.y*ml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise LayoutError(f"{path}: not valid YAML: {exc}") from None
            if not isinstance(data, dict):
                raise LayoutError(f"{path}: a layout file holds one mapping (name:, file_pattern:, ...)")
            layout = parse_layout(data, str(path) if folder != BUILTIN_DIR else "built-in")
            if layout.name in layouts:
                raise LayoutError(f"{path}: layout name {layout.name!r} is already defined")
            layouts[layout.name] = layout
    return layouts
