"""Normalisation of the identifiers that join the sources: SKUs, emails, phones, loyalty cards.

The SKU and loyalty-card rules are written once, on Arrow string arrays (``sku_norm_arrow``, ``loyalty_card_arrow``):
the POS parser applies them to the columns it reads, ``normalise_sku`` and ``normalise_loyalty_card`` to a pandas
Series (the catalog, the CRM, online orders) through them. Plain ASCII text is worked on its bytes; anything else
takes Arrow's string kernels, with Python's idea of whitespace where the rule says "spaces".
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TEXT = pa.large_string()
_STRING = pd.StringDtype("pyarrow")  # what .astype("string") makes

_ASCII_ALNUM = np.zeros(256, dtype=bool)  # UTF-8 encodes every other character in bytes >= 0x80
_ASCII_ALNUM[[*range(48, 58), *range(65, 91), *range(97, 123)]] = True
_ASCII_UPPER = np.arange(256, dtype=np.uint8)
_ASCII_UPPER[97:123] -= 32
_PLAIN, _SPACE, _NOT_ASCII = 0, 1, 2
_CARD_BYTES = np.full(256, _NOT_ASCII, dtype=np.uint8)  # what a byte of a card is to the rule
_CARD_BYTES[:128] = _PLAIN
_CARD_BYTES[[c for c in range(128) if chr(c).isspace()]] = _SPACE


def utf8_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array, offsets starting at 0 (a null's bytes, if it has any, included)."""
    values = pc.cast(values, _TEXT)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values) + 1]
    data = values.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data


def sku_norm_arrow(values: pa.Array) -> pa.Array:
    """SKU matching ignores case and every character outside [0-9A-Za-z]: ' hb-004211 ' -> 'HB004211' (empty when
    nothing is left, null for null). Worked on the bytes, whatever the text: the bytes of a non-ASCII character are
    never an ASCII letter or digit."""
    values = _text(values)
    if not len(values):
        return values
    offsets, data = utf8_buffers(values)
    keep = _ASCII_ALNUM[data]
    kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    out = pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(kept[offsets]),
                                           pa.py_buffer(_ASCII_UPPER[data[keep]]))
    return pc.if_else(pc.is_valid(values), out, pa.scalar(None, _TEXT)) if values.null_count else out


def loyalty_card_arrow(values: pa.Array) -> pa.Array:
    """Cards are compared without spaces or case, and a float-looking id ('17850.0', as in the UCI data) loses '.0':
    the ends trimmed, a trailing '.0' dropped, then every space, then upper case; empty or null -> null. A space is
    what ``str.isspace`` calls one (``utf8_trim_whitespace`` trims the same); upper case is ``utf8_upper``, one
    character for one ('ß' -> 'ẞ', not Python's 'SS'). So ' lc 17850.0 ' -> 'LC17850', '12 .0' -> '12'."""
    card = pc.utf8_trim_whitespace(_text(values))
    card = pc.if_else(pc.ends_with(card, ".0"), pc.utf8_slice_codeunits(card, 0, -2), card)
    kind = _CARD_BYTES[utf8_buffers(card)[1]].max(initial=_PLAIN)
    if kind == _NOT_ASCII:
        card = pc.utf8_upper(pc.replace_substring_regex(card, _python_spaces(), ""))
    else:
        if kind == _SPACE:
            card = pc.replace_substring_regex(card, _python_spaces(ascii_only=True), "")
        card = pc.ascii_upper(card)
    return pc.if_else(pc.equal(card, ""), pa.scalar(None, _TEXT), card)


@functools.cache
def _python_spaces(ascii_only: bool = False) -> str:
    """An RE2 class of the characters Python's ``str.isspace`` (and ``re``'s ``\\s``) calls whitespace."""
    spaces = [c for c in range(128 if ascii_only else 0x110000) if chr(c).isspace()]
    return "[" + "".join(f"\\x{{{c:x}}}" for c in spaces) + "]+"


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == _TEXT else pc.cast(values, _TEXT)


def _on_series(rule, values: pd.Series) -> pd.Series:
    """``rule`` applied to a Series as text (``.astype("string")``), index and name kept."""
    text = pa.array(values.astype("string").array)
    return pd.Series(pd.arrays.ArrowStringArray(rule(text), dtype=_STRING), index=values.index, name=values.name)


def normalise_sku(sku: pd.Series) -> pd.Series:
    """``sku_norm_arrow`` of a Series: ' hb-004211 ' -> 'HB004211'."""
    return _on_series(sku_norm_arrow, sku)


def normalise_email(email: pd.Series) -> pd.Series:
    """Trimmed, lower case; empty becomes missing."""
    out = email.astype("string").str.strip().str.lower()
    return out.mask(out == "")


def normalise_phone(phone: pd.Series) -> pd.Series:
    """Digits only, keeping a leading '+' when the number had one ('(555) 010-2233' -> '5550102233')."""
    raw = phone.astype("string").str.strip()
    digits = raw.str.replace(r"\D+", "", regex=True)
    out = digits.where(~raw.str.startswith("+").fillna(False), "+" + digits)
    return out.mask(digits.fillna("") == "")


def normalise_loyalty_card(card: pd.Series) -> pd.Series:
    """``loyalty_card_arrow`` of a Series: ' lc 17850.0 ' -> 'LC17850'."""
    return _on_series(loyalty_card_arrow, card)
