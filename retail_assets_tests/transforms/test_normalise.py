"""The identifier rules of retail_assets.transforms.normalise, pinned on awkward values: each rule is written once
(on Arrow arrays) and reached from pandas (the catalog, the CRM, online orders) and from the POS parser alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retail_assets.transforms.normalise import (
    loyalty_card_arrow,
    normalise_loyalty_card,
    normalise_sku,
    sku_norm_arrow,
    utf8_buffers,
)

SKUS = [  # (as written, as matched): case and everything outside [0-9A-Za-z] ignored; empty stays empty
    (" hb-004211 ", "HB004211"), ("HB004211", "HB004211"), ("kt_832-954", "KT832954"), ("hb 00 42 11", "HB004211"),
    ("x\ty", "XY"), ("17850.0", "178500"), ("---", ""), ("", ""), (" ", ""),
    ("hé-1", "H1"), ("ß1", "1"), ("Ⅻ-1", "1"), ("१२३", ""), ("ＡＢ１", ""), ("a\u00a0b", "AB"), ("ǆ-ı-ſ", ""),
    (None, None),
]

CARDS = [  # (as written, as matched): ends trimmed, a trailing '.0' dropped, then every space, upper case
    (" lc 17850.0 ", "LC17850"), ("17850.0", "17850"), ("17850.00", "17850.00"), ("LC9.0 ", "LC9"),
    ("12 .0", "12"), ("1.0 .0", "1.0"), ("a.0.0", "A.0"), ("-.0", "-"), ("1_000", "1_000"),
    ("x\ty", "XY"), ("a\x0bb", "AB"), ("a\x1cb", "AB"), ("a\x1fb", "AB"), ("x.0\n", "X"), ("1\r\n2", "12"),
    ("12.0\x1f", "12"), ("12.0\x85", "12"), ("12.0\u2028", "12"), ("ab.0\u00a0", "AB"),
    ("\u3000lc\u00a01\u2003", "LC1"), ("\u200b1\u200b", "\u200b1\u200b"),  # a zero-width space is not a space
    ("hé-1", "HÉ-1"), ("ß1", "ẞ1"), ("ǆ1", "Ǆ1"), ("ﬃ1", "ﬃ1"), ("ı1", "I1"), ("ſ1", "S1"), ("१२३", "१२३"),
    (".0", None), ("", None), (" \t ", None), ("\u3000.0", None), (None, None),
]


def _cases(cases, ascii_only: bool):
    chosen = [c for c in cases if not ascii_only or (c[0] or "").isascii()]
    return [v for v, _ in chosen], [e for _, e in chosen]


@pytest.mark.parametrize("ascii_only", [True, False], ids=["ascii", "unicode"])
@pytest.mark.parametrize(("rule", "series_rule", "cases"), [(sku_norm_arrow, normalise_sku, SKUS),
                                                            (loyalty_card_arrow, normalise_loyalty_card, CARDS)],
                         ids=["sku", "loyalty_card"])
def test_identifiers_normalise_as_the_joins_expect(rule, series_rule, cases, ascii_only: bool):
    """Plain ASCII text and anything else (worked differently) give the same keys, on Arrow and on pandas."""
    values, expected = _cases(cases, ascii_only)
    out = rule(pa.array(values, pa.large_string()))
    assert out.type == pa.large_string()
    assert out.to_pylist() == expected
    index = pd.Index(range(10, 10 + len(values)))
    series = series_rule(pd.Series(values, index=index, name="key", dtype=object))
    assert series.dtype == pd.StringDtype("pyarrow")
    assert series.index.equals(index) and series.name == "key"
    assert [None if pd.isna(v) else v for v in series] == expected


def test_every_character_python_calls_a_space_is_one_and_no_other():
    """Loyalty cards lose Python's whitespace (``str.isspace``: tabs, \\x1c-\\x1f, NEL, no-break and ideographic
    spaces, ...) inside and at either end, before and after a '.0', and keep every other character."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    space = np.array([c.isspace() for c in chars])
    assert space.sum() == 29
    for template, kept, dropped in (("a{}b", 3, 2), ("{}1", 2, 1), ("1.0{}", 4, 1), ("{}1.0", 2, 1),
                                    ("1{}.0", 2, 1)):
        out = loyalty_card_arrow(pa.array([template.format(c) for c in chars], pa.large_string()))
        lengths = pc.utf8_length(out).to_numpy(zero_copy_only=False)
        assert (lengths == np.where(space, dropped, kept)).all(), template


def test_skus_keep_only_ascii_letters_and_digits():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    out = sku_norm_arrow(pa.array([f"a{c}b" for c in chars], pa.large_string())).to_pylist()
    assert [c for c, v in zip(chars, out, strict=True) if v != "AB"] == list(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    assert [v for c, v in zip(chars, out, strict=True) if v != "AB"] == [f"A{c.upper()}B" for c in
                                                                          "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                          "abcdefghijklmnopqrstuvwxyz"]


@pytest.mark.parametrize("rule", [sku_norm_arrow, loyalty_card_arrow])
def test_any_string_array_is_taken(rule):
    """Slices, string (not large_string) arrays, chunked arrays, nulls and empty arrays."""
    values = [" hb-1.0 ", None, "é 2", "", " 3 ", None]
    whole = rule(pa.array(values, pa.large_string())).to_pylist()
    assert rule(pa.array(values, pa.string())).to_pylist() == whole
    assert rule(pa.array(values, pa.large_string()).slice(1, 4)).to_pylist() == whole[1:5]
    assert rule(pa.chunked_array([pa.array(values[:3]), pa.array(values[3:])])).to_pylist() == whole
    assert rule(pa.array([], pa.large_string())).to_pylist() == []
    assert rule(pa.array([None, None], pa.large_string())).to_pylist() == [None, None]


def test_series_of_other_types_are_read_as_text():
    """As ``.astype("string")`` writes them: a float card id as the UCI data has it loses its '.0'."""
    assert normalise_loyalty_card(pd.Series([17850.0, np.nan, 12346])).tolist() == ["17850", pd.NA, "12346"]
    assert normalise_sku(pd.Series([1234.0, None], dtype=object)).tolist() == ["12340", pd.NA]
    assert normalise_sku(pd.Series(["a-b", None], dtype="str")).tolist() == ["AB", pd.NA]
    assert normalise_sku(pd.Series([], dtype=object)).tolist() == []


def test_utf8_buffers_are_the_bytes_of_the_cells():
    offsets, data = utf8_buffers(pa.array(["ab", "é", "", "x"]).slice(1, 3))
    assert offsets.tolist() == [0, 2, 2, 3] and bytes(data) == "éx".encode()
    offsets, data = utf8_buffers(pa.array(["", ""], pa.large_string()))
    assert offsets.tolist() == [0, 0, 0] and len(data) == 0
