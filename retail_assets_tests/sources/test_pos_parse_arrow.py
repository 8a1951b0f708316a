"""The Arrow path of ``parse_pos_file`` gives exactly the frames of the pandas reference path, file by file.

Every case is parsed twice: as shipped (the Arrow path, which hands over to the reference when it cannot be sure)
and with the Arrow path switched off. Rows, rejections (reasons, records, line numbers), dtypes and file errors
must be identical. The cases are the awkward ones a drop folder sees, plus real UCI lines.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.layouts import load_layouts
from retail_assets.transforms import pos_parse
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, parse_pos_file

LAYOUTS = load_layouts(Path(__file__).parent.parent / "fixtures" / "uci" / "layouts")
HEADER = ",".join(["receipt_id", "line_no", "sold_at", "register_id", "cashier_id", "sku", "quantity", "unit_price",
                   "discount", "loyalty_card", "payment_method"])
GOOD = "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,2,12.50,0.00,LC1,card"


def ctx(rate: float = 0.9, store: str | None = "S001") -> FileContext:
    return FileContext("a/sales_S001_20250303.csv", date(2025, 3, 3), store, "run-1", "raw_pos_sales", rate)


def both(data: bytes, layout: str = "standard", context: FileContext | None = None,
         monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[ParsedFile, ParsedFile, bool]:
    """(Arrow path result, reference result, whether the Arrow path took the file)."""
    context = context or ctx()
    took = []
    original = pos_parse._parse_sales_arrow

    def spy(*args):
        out = original(*args)
        took.append(out is not None)
        return out

    assert monkeypatch is not None
    monkeypatch.setattr(pos_parse, "_parse_sales_arrow", spy)
    fast = parse_pos_file(data, LAYOUTS[layout], context)
    monkeypatch.setattr(pos_parse, "_parse_sales_arrow", lambda *args: None)
    reference = parse_pos_file(data, LAYOUTS[layout], context)
    monkeypatch.setattr(pos_parse, "_parse_sales_arrow", original)
    return fast, reference, bool(took and took[0])


def assert_same(fast: ParsedFile, reference: ParsedFile) -> None:
    assert (fast.lines, fast.file_error, fast.file_error_code, fast.extra_columns) == (
        reference.lines, reference.file_error, reference.file_error_code, reference.extra_columns)
    pd.testing.assert_frame_equal(fast.rejections, reference.rejections)
    pd.testing.assert_frame_equal(fast.rows, reference.rows)


def standard(*lines: str, header: str = HEADER, end: str = "\n", bom: bool = False) -> bytes:
    text = end.join([header, *lines]) + end
    return ("\ufeff" + text if bom else text).encode("utf-8")


ODD_LINES = [
    "R2,1,2025-03-03T10:00:00,T1,C1,HB-2,+5,12,0,,CARD",
    "R3,1,2025-03-03T10:00:00,T1,C1, hb-3 ,-0,12.505,0,,cash",
    "R4,01,2025-03-03T10:00:00,T1,C1,HB004,007,1e3,1.5,17850.0,mobile",
    "R5,0,2025-03-03T10:00:00,T1,C1,HB-5,1,inf,,,gift_card",
    "R6,1.0,2025-03-03T10:00:00,T1,C1,HB-6,1,nan,-1,,cash",
    "R7,1,2025-02-29T10:00:00,T1,C1,HB-7,1,1.00,0,,cash",
    "R8,1,2025-03-03T24:00:00,T1,C1,HB-8,1,1.00,0,,cash",
    "R9,1,2025-03-03T10:00:60,T1,C1,HB-9,1,1.00,0,,cash",
    "R10,1,2025-03-03 10:00:00,T1,C1,HB-10,1,1.00,0,,cash",
    "R11,1,2025-3-3T1:2:3,T1,C1,HB-11,1,1.00,0,,cash",
    "R12,1,2025-03-03T10:00:00Z,T1,C1,HB-12,1,1.00,0,,cash",
    "R13,1,2025-03-04T00:00:00,T1,C1,HB-13,1,1.00,0,,cash",
    "R14,1,2025-03-03T10:00:00,T1,C1,---,1,1.00,0,,cash",
    "R16,1,2025-03-03T10:00:00,T1,C1,HB-16,1,.5,5.,,Bitcoin",
    "R17,1,2025-03-03T10:00:00,T1,C1,HB-17,1,\"1,000.00\",0,,cash",
    "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,1,1.00,0,,cash",
    "\"R18\",\"1\",\"2025-03-03T10:00:00\",\"T1\",\"C\"\"1\",\"HB-18\",1,1.00,0,\" lc 9 \",\" card \"",
    "R19,1,2025-03-03T10:00:00,T1,C1,ab\"c,1,1.00,0,,cash",
    "R20,1,2025-03-03T10:00:00,\u00a0T1\u00a0,C1,\u3000HB-20,1,1.00,0,,cash",
    "R22,1,2025-03-03T10:00:00,T1,C1,HB-22,1,1.00,0.001,,cash",
    "R23,1,0000-03-03T10:00:00,T1,C1,HB-23,1,1.00,0,,cash",
    ",1,2025-03-03T10:00:00,T1,C1,HB-24,1,1.00,0,,cash",
    "R25,,2025-03-03T10:00:00,,,HB-25,1,1.00,0,,",
]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_odd_values_give_the_same_rows_and_reasons(end: str, bom: bool, monkeypatch: pytest.MonkeyPatch):
    fast, reference, took = both(standard(GOOD, *ODD_LINES, end=end, bom=bom), monkeypatch=monkeypatch)
    assert took
    assert len(reference.rejections) > 10
    assert_same(fast, reference)


@pytest.mark.parametrize("data", [
    standard(GOOD, GOOD.replace("R1", "R2")).rstrip(b"\n"),  # no final line break
    standard(GOOD, "", GOOD.replace("R1", "R2")),  # a blank line
    standard(GOOD, "   ", GOOD.replace("R1", "R2")),  # a line of spaces
    standard(GOOD, GOOD.replace("R1", "R2") + ",extra"),  # a line too long
    standard(GOOD, "R2,1,2025-03-03T10:00:00"),  # a line too short
    standard(GOOD, GOOD.replace("HB-1", '"HB\n1"')),  # a line break inside a cell
    standard(GOOD, GOOD.replace("HB-1", "HB\u20281")),  # only str.splitlines() breaks here
    standard(GOOD, header=HEADER.replace("cashier_id", "sku")),  # duplicate header
    standard(GOOD + ",", header=HEADER + ","),  # empty header name
    standard(GOOD, header=HEADER.replace("sku", '"sku"')),  # quoted header
    standard(GOOD, header=HEADER.replace("sku", " SKU ") + ",firmware"),  # header case, spaces, drift
    standard(GOOD + ",5.2", header=HEADER + ",firmware"),  # drift
    standard(header=HEADER),  # no lines
    standard(GOOD, header=HEADER.replace(",quantity", "")),  # a required column missing
    standard(*[GOOD.replace("R1", f"R{i}").replace("12.50", str(i)) for i in range(5)]),  # whole prices: Int64
    standard(*[GOOD.replace("R1", f"R{i}").replace("0.00", "0") for i in range(5)]),  # discount all 0
    standard(GOOD, "R2,1,2025-03-03T10:00:00,T1,C1,HB-1,x,x,x,,x", "R3,1,x,T1,C1,HB-1,x,1,0,,cash"),  # too many bad
    standard(GOOD, "R15,1,2025-03-03T10:00:00,T1,C1,HB-15,99999999999999999999,1.00,0,,cash"),  # int64 overflow
    standard(GOOD, "R21,1,2025-03-03T10:00:00,T1,C1,HB-21,١,1.00,0,,cash"),  # a digit that is not 0-9
    b"",
])
def test_awkward_files_give_the_same_result(data: bytes, monkeypatch: pytest.MonkeyPatch):
    fast, reference, _ = both(data, context=ctx(rate=0.5), monkeypatch=monkeypatch)
    assert_same(fast, reference)


def test_legacy_layout(monkeypatch: pytest.MonkeyPatch):
    text = ("TICKET;LINE;DATE;TIME;ITEM;QTY;PRICE;DISC;CARD;TYPE\r\n"
            "1;1;03.03.2025;10:15;HB-004211;2;12,50;0,50;;S\r\n"
            "1;2;03.03.2025;10:15;hb004211;1;1.012,50;0;LC9;R\r\n"
            "1;3;03.03.2025;10:15;HB-004211;1;2,5;0;;X\r\n"
            "1;4;03.03.2025;10:15;HB-004211;-1;2,505;0;;s\r\n"
            "1;5;31.02.2025;10:15;HB-004211;1;2,50;0,001;;S\r\n"
            "1;6;03.03.2025;9:15;HB-004211;1;2;0;;r\r\n")
    fast, reference, took = both(text.encode("cp1252"), "legacy", monkeypatch=monkeypatch)
    assert took
    assert_same(fast, reference)


def test_store_from_a_column_and_no_store_code(monkeypatch: pytest.MonkeyPatch):
    layout = replace(LAYOUTS["standard"], name="by_column", store_from="column", store_value="store",
                     required=(*LAYOUTS["standard"].required, "store_code"))
    LAYOUTS["by_column"] = layout
    data = standard(GOOD + ",S1", GOOD + ",S2", GOOD + ",S1", GOOD + ", ", header=HEADER + ",store")
    fast, reference, took = both(data, "by_column", ctx(store=None), monkeypatch=monkeypatch)
    assert took
    assert_same(fast, reference)


def test_uci_lines(monkeypatch: pytest.MonkeyPatch):
    """Real lines through a user layout (no line numbers, float customer ids, quoted descriptions)."""
    for path in sorted((Path(__file__).parent.parent / "fixtures" / "uci" / "pos_drop" / "uk").glob("*.csv.gz")):
        store, day = LAYOUTS["uci_online_retail"].match(path.name)
        context = FileContext(path.name, day, store, "r", "raw_pos_sales")
        fast, reference, took = both(gzip.decompress(path.read_bytes()), "uci_online_retail", context,
                                     monkeypatch=monkeypatch)
        assert took
        assert_same(fast, reference)
