"""POS files of every awkward shape give exactly the rows, rejections and verdicts they gave when the parser had two
implementations of each rule (a pandas reference and the Arrow path, kept equal by comparing them).

The expectations were computed once from that code, before the reference was removed, and are written here as
literals: a summary one can read (lines, rows, the file's error, lines rejected by each reason) and a digest of the
frames in full (columns, dtypes and every value, see ``canonical``). A failing case writes the canonical text of what
it got to the test's temporary directory, to be read against the summary. The digests also change when pandas
changes how it spells a dtype or writes a value as CSV: then the summaries still say whether the parse did.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.layouts import Layout, load_layouts
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, parse_pos_file, parse_sales_files
from retail_assets_tests.reliability import test_chunked_parse as chunked
from retail_assets_tests.sources import test_pos_parse_arrow as arrow

FIXTURES = Path(__file__).parent.parent / "fixtures"
LAYOUTS = load_layouts(FIXTURES / "uci" / "layouts")
BY_COLUMN = replace(LAYOUTS["standard"], name="by_column", store_from="column", store_value="store",
                    required=(*LAYOUTS["standard"].required, "store_code"))
ENDS = {"\n": "lf", "\r\n": "crlf", "\r": "cr"}


def canonical(frame: pd.DataFrame) -> str:
    """A frame as text: its columns with their dtypes, then its values as CSV (missing values spelled <NA>)."""
    dtypes = ", ".join(f"{c}:{t}" for c, t in frame.dtypes.astype(str).items())
    return f"[{dtypes}] {len(frame)} rows\n" + frame.to_csv(index=False, na_rep="<NA>", lineterminator="\n")


def canonical_file(parsed: ParsedFile) -> str:
    return (f"lines={parsed.lines} file_error={parsed.file_error!r} code={parsed.file_error_code!r} "
            f"extra={parsed.extra_columns!r}\n--- rows\n{canonical(parsed.rows)}--- rejections\n"
            f"{canonical(parsed.rejections)}")


def summary(parsed: ParsedFile) -> tuple:
    """(lines, rows, the file's error code, how many lines each reason rejected, by first appearance)."""
    codes = parsed.rejections["reason_code"].tolist() if len(parsed.rejections) else []
    return parsed.lines, len(parsed.rows), parsed.file_error_code, {c: codes.count(c) for c in dict.fromkeys(codes)}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _uci(i: int) -> tuple[bytes, Layout, FileContext]:
    path = sorted((FIXTURES / "uci" / "pos_drop" / "uk").glob("*.csv.gz"))[i]
    store, day = LAYOUTS["uci_online_retail"].match(path.name)
    return gzip.decompress(path.read_bytes()), LAYOUTS["uci_online_retail"], FileContext(path.name, day, store, "r",
                                                                                         "raw_pos_sales")


def _int64_lines() -> list[str]:
    lines = [chunked.good(i) for i in range(30)]
    lines[20] = chunked.good(3, line=99999999999999999999)
    return lines + [chunked.good(3, line=99999999999999999999), chunked.good(4, line=18446744073709551615),
                    chunked.good(4, line=1), chunked.good(4, line=18446744073709551615), chunked.good(5, line=1)]


def _quoted_lines() -> list[str]:
    good = chunked.good
    lines = [good(i) for i in range(50)]
    lines[10] = good(10).replace("HB-10", '"HB\n10"')
    lines[20] = good(20).replace(",T1,", ',"T,1\r\nx",').replace(",C1,", ',"C""1",')
    lines[30] = good(30).replace("HB-30", 'a"b')
    lines[31] = good(31).replace("HB-31", '"x"y')
    lines[40] = good(40).replace("card", '"cash\n\n"')
    return [*lines, chunked.ODD_LINES[12], good(3)]


def _heavily_quoted() -> list[str]:
    lines = ['"' + '","'.join(chunked.good(i).split(",")) + '"' for i in range(80)]
    lines[33] = lines[33].replace('"HB-', '"H""B\n-')
    return [*lines, chunked.good(5)]


def _over_the_rate() -> list[str]:
    bad = ["R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,x,1,0,,cash", "R{i},1,2025-03-04T10:00:00,T1,C1,HB-1,1,1,0,,cash",
           "R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,1,-1,0,,cash", "R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,1,1,0,,bit"]
    lines = [chunked.good(i) for i in range(30)] + [bad[i % 4].format(i=100 + i) for i in range(40)]
    return [*lines, "", *[bad[3 - i % 4].format(i=200 + i) for i in range(12)], chunked.good(1)]


def _late_parse_error(wide: bool) -> list[str]:
    lines = [chunked.good(i) for i in range(40)]
    lines[5] = chunked.good(5).replace("HB-5", '"HB\n\n5"')
    lines.insert(12, "")
    if wide:
        lines[33] += ",wide"
    else:
        lines[-1] = 'R9,1,2025-03-03T10:00:00,T1,C1,"HB-9,1,1.00,0,,cash'
    return lines


def _malformed(step: int) -> bytes:
    text_file, good = chunked.text_file, chunked.good
    lines = [good(i) for i in range(30)]
    if step == 0:
        return text_file(good(99) + ",x", *lines)
    lines[4] = good(4).replace("HB-4", '"HB\n4"')
    lines[20] = "\x0c"
    if step >= 2:
        lines[25] = "\x0c"
    return text_file(chunked.HEADER, *lines, header="\x0c") if step == 3 else text_file(*lines)




def cases() -> dict[str, tuple[bytes, Layout, FileContext]]:
    """Every file the parse tests exercise, by name: (bytes, layout, context)."""
    std, text_file, good, ctx = LAYOUTS["standard"], chunked.text_file, chunked.good, chunked.ctx
    out: dict[str, tuple[bytes, Layout, FileContext]] = {}
    for end, spelt in ENDS.items():
        for bom in (False, True):
            out[f"odd_values_{spelt}{'_bom' if bom else ''}"] = (
                arrow.standard(arrow.GOOD, *arrow.ODD_LINES, end=end, bom=bom), std, arrow.ctx())
    for i, data in enumerate(arrow.AWKWARD):
        out[f"awkward_{i}"] = (data, std, arrow.ctx(rate=0.5))
    out["legacy"] = (arrow.LEGACY.encode("cp1252"), LAYOUTS["legacy"], arrow.ctx())
    out["store_column"] = (arrow.standard(arrow.GOOD + ",S1", arrow.GOOD + ",S2", arrow.GOOD + ",S1",
                                          arrow.GOOD + ", ", header=arrow.HEADER + ",store"), BY_COLUMN,
                           arrow.ctx(store=None))
    for i in range(4):
        out[f"uci_{i}"] = _uci(i)
    for end, spelt in ENDS.items():
        for bom in (False, True):
            out[f"chunked_every_kind_{spelt}{'_bom' if bom else ''}"] = (
                text_file(*chunked.mixed_lines(120), end=end, bom=bom), std, ctx())
    out["chunked_int64"] = (text_file(*_int64_lines()), std, ctx())
    out["chunked_store_column"] = (text_file(*[good(i) + f",S{i % 3}" for i in range(60)], good(5) + ",S2",
                                             good(5) + ",S0", good(7) + ", ", good(1) + ",S1",
                                             header=chunked.HEADER + ",store"), chunked.BY_COLUMN, ctx(store=None))
    out["chunked_no_line_no"] = (text_file(*[good(i % 7).replace(",1,2025", ",2025") for i in range(80)],
                                           header=chunked.HEADER.replace("line_no,", "")), chunked.NO_LINE_NO, ctx())
    out["chunked_legacy"] = (text_file(*chunked.legacy_lines(), header=chunked.LEGACY_HEADER,
                                       end="\r\n", encoding="cp1252"), LAYOUTS["legacy"],
                             ctx(path="a/S001_03032025.txt"))
    multi = [good(i).replace("T1", "Tö€𝄞").replace("HB-", "hé-").replace("LC1", "LC€ü") for i in range(40)]
    out["chunked_multi_byte"] = (text_file(*multi, chunked.ODD_LINES[14], chunked.ODD_LINES[13], good(4), bom=True),
                                 std, ctx())
    out["chunked_quoted"] = (text_file(*_quoted_lines()), std, ctx())
    out["chunked_heavily_quoted"] = (text_file(*_heavily_quoted()), std, ctx())
    for rate in (0.5, 0.9):
        out[f"chunked_over_rate_{rate}"] = (text_file(*_over_the_rate()), std, ctx(rate=rate))
    missing = [good(i).replace(",2,12.50", ",12.50") for i in range(40)]
    quoted = chunked.HEADER.replace(",quantity", "").replace("sku", '"sku"')
    out["chunked_missing_column"] = (text_file(*missing, header=chunked.HEADER.replace(",quantity", "")), std, ctx())
    out["chunked_missing_quoted_header"] = (text_file(*missing, header=quoted), std, ctx())
    missing[30] += ",1,2,3"
    out["chunked_missing_then_parse_error"] = (text_file(*missing, header=quoted), std, ctx())
    out["chunked_late_wide_line"] = (text_file(*_late_parse_error(True)), std, ctx())
    out["chunked_late_open_quote"] = (text_file(*_late_parse_error(False)), std, ctx())
    for step in range(4):
        out[f"chunked_malformed_{step}"] = (_malformed(step), std, ctx(rate=1 if step == 0 else 0.5))
    out["chunked_memory"] = (text_file(*[good(i) for i in range(3000)], "x,1,2,3"), std, ctx())
    stock = [f"HB-{i % 23},{i},2025-03-03T21:00:00" for i in range(90)]
    stock += ["hb 5,x,2025-03-03T21:00:00", ",1,", "HB-7,1,03/03/2025", "HB-0,5,2025-03-03T21:00:00"]
    out["chunked_stock"] = (text_file(*stock, header="sku,on_hand,counted_at"), LAYOUTS["stock"],
                            ctx(rate=0.9, path="a/stock_S001_20250303.csv"))
    out["chunked_stock_over_rate"] = (text_file(*[f"HB-{i % 3},{i}," for i in range(40)],
                                                header="sku,on_hand,counted_at"), LAYOUTS["stock"],
                                      ctx(path="a/stock_S001_20250303.csv"))
    return out


CASES = cases()

EXPECTED: dict[str, tuple[tuple, str]] = {}  # filled below: name -> (summary, digest of canonical_file)


@pytest.mark.parametrize("name", list(CASES))
def test_a_file_parses_as_it_always_did(name: str, tmp_path: Path):
    data, layout, context = CASES[name]
    parsed = parse_pos_file(data, layout, context)
    text = canonical_file(parsed)
    (tmp_path / f"{name}.txt").write_text(text)
    expected_summary, expected_digest = EXPECTED[name]
    assert summary(parsed) == expected_summary
    assert digest(text) == expected_digest, f"see {tmp_path / f'{name}.txt'}"


BATCH_EXPECTED: dict[str, str] = {}  # filled below: name -> digest of the files' canonical_file, one after the other


@pytest.mark.parametrize("name", list(arrow.BATCHES))
def test_a_batch_parses_as_it_always_did(name: str):
    make, layout = arrow.BATCHES[name]
    results = parse_sales_files(make(), LAYOUTS[layout])
    assert digest("".join(canonical_file(r) for r in results)) == BATCH_EXPECTED[name]


# --- The expectations, computed from the code that had a pandas reference beside the Arrow path ---------------

EXPECTED.update({
    "odd_values_lf": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "odd_values_lf_bom": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "odd_values_crlf": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "odd_values_crlf_bom": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "odd_values_cr": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "odd_values_cr_bom": (
        (24, 8, None, {"quantity_invalid": 1, "line_no_invalid": 3, "sold_at_invalid": 6, "missing_value": 2,
        "payment_method_invalid": 1, "price_invalid": 1, "duplicate_line": 1, "discount_invalid": 1}),
        "a7dd56188a2dc7662115d2ed"),
    "awkward_0": ((2, 2, None, {}), "a82433141941434565dac268"),
    "awkward_1": ((2, 2, None, {}), "4b7c3b4ab4030a94014f49b7"),
    "awkward_2": ((2, 2, None, {}), "4b7c3b4ab4030a94014f49b7"),
    "awkward_3": ((2, 0, "parse_error", {"parse_error": 2}), "4a83bc8c65a6e195c07a44e6"),
    "awkward_4": ((2, 1, None, {"missing_value": 1}), "eea82e933abb0aebf4257af0"),
    "awkward_5": ((2, 1, None, {"duplicate_line": 1}), "3bfd8ee37492e7d298ff123e"),
    "awkward_6": ((2, 1, None, {"duplicate_line": 1}), "29f9cd8134a6a44086fcda2d"),
    "awkward_7": ((1, 1, None, {}), "233fbaabb3323525975511c8"),
    "awkward_8": ((1, 1, None, {}), "20fe2c188ead416d383aedf4"),
    "awkward_9": ((1, 1, None, {}), "4bed66c049506636bf43be8b"),
    "awkward_10": ((1, 1, None, {}), "19541eee9c30a63868698e30"),
    "awkward_11": ((1, 1, None, {}), "19541eee9c30a63868698e30"),
    "awkward_12": ((0, 0, None, {}), "33026a08a1ae36d828c54c1f"),
    "awkward_13": ((1, 0, "missing_column", {"missing_column": 1}), "f83dac55e3c99b35085a5b3c"),
    "awkward_14": ((5, 5, None, {}), "f0d9ec68ef1bb0ca1d4705de"),
    "awkward_15": ((5, 5, None, {}), "22ebbd829df2285d0d1619f5"),
    "awkward_16": ((3, 0, "too_many_bad_lines", {"too_many_bad_lines": 3}), "077be1edab196cf5447871f8"),
    # changed on purpose: numbers past int64 are rejected, never wrapped (test_pos_parse_bounds.py)
    "awkward_17": ((2, 1, None, {"quantity_invalid": 1}), "1d93788226802c591cb77666"),
    "awkward_18": ((2, 1, None, {"quantity_invalid": 1}), "d8380c1e147294cb41965c2e"),
    "awkward_19": ((0, 0, "parse_error", {}), "046fd1a7e150dc8c91e0193e"),
    "legacy": (
        (6, 3, None, {"type_invalid": 1, "quantity_invalid": 1, "discount_invalid": 1}),
        "8df917f5ba29590ce5ea440c"),
    "store_column": ((4, 2, None, {"duplicate_line": 1, "missing_value": 1}), "cbd8eea72502cc65e15515fd"),
    "uci_0": ((3108, 3108, None, {}), "ca0403897e7a0485315f1753"),
    "uci_1": ((2725, 2725, None, {}), "4804be2479fc425969e6757a"),
    "uci_2": ((1122, 1120, None, {"price_invalid": 2}), "71880b9abff3196fd8cce6e1"),
    "uci_3": ((1632, 1632, None, {}), "cf1f043226cf2d7bae142d2b"),
    "chunked_every_kind_lf": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_every_kind_lf_bom": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_every_kind_crlf": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_every_kind_crlf_bom": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_every_kind_cr": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_every_kind_cr_bom": (
        (144, 132, None, {"line_no_invalid": 4, "price_invalid": 1, "quantity_invalid": 2, "payment_method_invalid": 1,
        "missing_value": 1, "sold_at_invalid": 1, "duplicate_line": 2}),
        "7a9b40e123ad0b3700028b96"),
    "chunked_int64": ((35, 29, None, {"line_no_invalid": 4, "duplicate_line": 2}), "727a630b198f13fe3781d82e"),
    "chunked_store_column": ((64, 61, None, {"duplicate_line": 2, "missing_value": 1}), "44e83ef53b73b7781dc62f03"),
    "chunked_no_line_no": ((80, 80, None, {}), "13b60cddf28467d950c46786"),
    "chunked_legacy": (
        (146, 126, None, {"type_invalid": 6, "quantity_invalid": 6, "discount_invalid": 6, "duplicate_line": 2}),
        "d482db9fe45579a1b3396d7d"),
    "chunked_multi_byte": ((43, 0, "too_many_bad_lines", {"too_many_bad_lines": 43}), "91c0ce5234d3dca1b217842c"),
    "chunked_quoted": ((52, 50, None, {"duplicate_line": 2}), "e7662e1b2b0df025fe0ad085"),
    "chunked_heavily_quoted": ((81, 80, None, {"duplicate_line": 1}), "bc2861db9f4e0c4c0fa58921"),
    "chunked_over_rate_0.5": ((83, 0, "too_many_bad_lines", {"too_many_bad_lines": 83}), "f51516bc302af49efd044cbf"),
    "chunked_over_rate_0.9": (
        (83, 30, None, {"quantity_invalid": 13, "sold_at_invalid": 13, "price_invalid": 13, "payment_method_invalid":
        13, "duplicate_line": 1}),
        "9f476b1ab2171b6613f49311"),
    "chunked_missing_column": ((40, 0, "missing_column", {"missing_column": 40}), "812c43b31c519ad494986a6b"),
    "chunked_missing_quoted_header": ((40, 0, "missing_column", {"missing_column": 40}), "812c43b31c519ad494986a6b"),
    "chunked_missing_then_parse_error": ((40, 0, "parse_error", {"parse_error": 40}), "b0e5657c9472294296077b78"),
    "chunked_late_wide_line": ((41, 0, "parse_error", {"parse_error": 41}), "1df679f4ce98f3d68ef68ea8"),
    "chunked_late_open_quote": ((41, 0, "parse_error", {"parse_error": 41}), "0c9c2966524e316a136e066c"),
    "chunked_malformed_0": ((31, 0, None, {"line_no_invalid": 31}), "3f9492bc73fbdb3a2dd6ae5e"),
    "chunked_malformed_1": ((30, 29, None, {"missing_value": 1}), "f0594be200bd81268d371f4b"),
    "chunked_malformed_2": ((30, 28, None, {"missing_value": 2}), "6e3fe9f992e73f42e79392d3"),
    "chunked_malformed_3": ((29, 0, "missing_column", {"missing_column": 29}), "53e07595fa8188416d4c3932"),
    "chunked_memory": ((3001, 3000, None, {"missing_value": 1}), "ce48bcd3c395187c60b55f50"),
    "chunked_stock": (
        (94, 21, None, {"duplicate_line": 70, "on_hand_invalid": 1, "missing_value": 1, "counted_at_invalid": 1}),
        "340865ae219bf5e5291c36f8"),
    "chunked_stock_over_rate": ((40, 0, "too_many_bad_lines", {"too_many_bad_lines": 40}), "eaf155d17258b0a65603ced6"),
})

BATCH_EXPECTED.update({
    "dirty": "eaf3a67bb52a46255baf8be5",
    "ascii": "a9a6fbad18aaf1b4010da6d4",
    "uci": "bea3ec8cc61b302005e41e17",
    "unreadable": "0bb92947f42a9ca6923979e1",
})
