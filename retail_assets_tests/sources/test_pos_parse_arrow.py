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


# --- Several files at once (parse_sales_files, what a day's load uses) -------------------------------------------

def file_ctx(store: str, rate: float = 0.5, layout: str = "standard") -> FileContext:
    return FileContext(f"sales/sales_{store}_20250303.csv", date(2025, 3, 3), store, "run-1", "raw_pos_sales", rate)


def batched(files: list[tuple[bytes, FileContext]], layout: str, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[list[ParsedFile], bool]:
    """(parse_sales_files' results, whether they came from one batch); every file's result is compared with
    parse_pos_file of that file alone."""
    took = []
    original = pos_parse._parse_sales_batch

    def spy(items, lay):
        out = original(items, lay)
        if len(items) > 1:
            took.append(out is not None)
        return out

    monkeypatch.setattr(pos_parse, "_parse_sales_batch", spy)
    results = pos_parse.parse_sales_files(files, LAYOUTS[layout])
    monkeypatch.setattr(pos_parse, "_parse_sales_batch", original)
    assert len(results) == len(files)
    for result, (data, context) in zip(results, files, strict=True):
        alone = parse_pos_file(data, LAYOUTS[layout], context)
        # Alone, a file of whole prices types them Int64; in a batch with fractions they are Float64 (same values).
        for parsed in (result, alone):
            for column in ("unit_price", "discount"):
                if column in parsed.rows:
                    parsed.rows[column] = parsed.rows[column].astype("Float64")
        assert_same(result, alone)
    return results, bool(took and all(took))


def test_a_batch_gives_every_file_its_own_rows_rejections_and_verdict(monkeypatch: pytest.MonkeyPatch):
    bad = "R2,1,2025-03-03T10:00:00,T1,C1,HB-1,x,x,x,,x"
    files = [
        (standard(GOOD, *ODD_LINES), file_ctx("S001", rate=0.9)),  # dirt of every kind, non-ASCII cells
        (standard(GOOD, GOOD.replace("R1", "R2"), end="\r\n", bom=True), file_ctx("S002")),  # R1 line 1 again
        (standard(GOOD, GOOD.replace("HB-1", "HB-9")).rstrip(b"\n"), file_ctx("S003")),  # no final break; a dup
        (standard(GOOD, bad, bad.replace("R2", "R3")), file_ctx("S004")),  # too many bad lines: this file only
        (standard(*[GOOD.replace("R1", f"R{i}").replace("12.50", str(i)) for i in range(1, 4)]), file_ctx("S005")),
        (standard(GOOD, bad, end="\r"), file_ctx("S006")),
    ]
    results, took = batched(files, "standard", monkeypatch)
    assert took
    assert [r.file_error_code for r in results] == [None, None, None, "too_many_bad_lines", None, None]
    assert [len(r.rows) for r in results] == [len(results[0].rows), 2, 1, 0, 3, 1]
    assert results[2].rejections["reason_code"].tolist() == ["duplicate_line"]
    assert set(results[0].rejections["source_ref"]) == {"sales/sales_S001_20250303.csv"}
    assert results[5].rejections["source_key"].tolist() == ["line 3"]


def test_a_batch_of_plain_ascii_files(monkeypatch: pytest.MonkeyPatch):
    lines = [GOOD.replace("R1", f"R{i}").replace("HB-1", f" hb-{i} ") for i in range(1, 40)]
    files = [(standard(*lines[:k], "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,0,1.00,0,,cash", *lines[k:]),
              file_ctx(f"S{k:03d}")) for k in range(1, 6)]
    results, took = batched(files, "standard", monkeypatch)
    assert took
    assert all(r.rejections["reason_code"].tolist() == ["quantity_invalid"] for r in results)
    assert [r.rejections["source_key"].tolist() for r in results] == [[f"line {k + 2}"] for k in range(1, 6)]


def test_a_batch_of_real_lines_numbers_each_files_receipts_on_their_own(monkeypatch: pytest.MonkeyPatch):
    """A UCI day cut into three files of the layout without line numbers: a receipt cut in two is numbered from
    1 again in the second file, as it is when the files are read one by one."""
    path = sorted((Path(__file__).parent.parent / "fixtures" / "uci" / "pos_drop" / "uk").glob("*.csv.gz"))[0]
    store, day = LAYOUTS["uci_online_retail"].match(path.name)
    header, *lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines(keepends=True)
    third = len(lines) // 3
    parts = [lines[:third], lines[third: 2 * third], lines[2 * third:]]
    files = [((header + "".join(part)).encode("utf-8"), FileContext(f"{path.name}.{i}", day, store, "r",
                                                                    "raw_pos_sales"))
             for i, part in enumerate(parts)]
    results, took = batched(files, "uci_online_retail", monkeypatch)
    assert took
    assert sum(len(r.rows) + len(r.rejections) for r in results) == len(lines)
    assert all((r.rows["line_no"] >= 1).all() for r in results)


def test_a_file_the_batch_cannot_read_sends_every_file_alone(monkeypatch: pytest.MonkeyPatch):
    files = [(standard(GOOD), file_ctx("S001")), (standard(GOOD, GOOD.replace("R1", "R2") + ",extra"),
                                                  file_ctx("S002")), (b"\xff\xfe", file_ctx("S003"))]
    results, took = batched(files, "standard", monkeypatch)
    assert not took
    assert results[2].file_error_code == "decode_error"


def test_a_day_parsed_in_batches_is_the_day_parsed_file_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """load_day (what raw_pos_sales lands) over every day of a generated company of 12 stores, whose drop folder
    has every layout, header spellings, stores sending a file twice, superseded and refused files: the validated
    rows, the rejections and the ledger are the same with the batches as with every file parsed alone."""
    from retail_assets.assets.common import validated
    from retail_assets.assets.sources import pos as pos_assets
    from retail_assets.generator import generate_company
    from retail_assets.resources import PosDropFolder
    from retail_assets.schemas.sources import RAW_POS_SALES

    generate_company(tmp_path, stores=12, days=3, start=date(2025, 3, 3), lines_per_store_day=40, seed=7)
    drop = PosDropFolder(path=str(tmp_path / "pos_drop"))
    stores, _ = pos_assets.clean_stores(drop.read_stores(), drop.layouts(), "r")
    batched_files = []
    original = pos_parse._parse_sales_batch

    def spy(items, lay):
        out = original(items, lay)
        if out is not None and len(items) > 1:
            batched_files.append(len(items))
        return out

    for day in (date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)):
        monkeypatch.setattr(pos_parse, "_parse_sales_batch", spy)
        rows, rejections, ledger = pos_assets.load_day("sales", day, drop, stores, "r", "raw_pos_sales", 0.5)
        monkeypatch.setattr(pos_assets, "parse_sales_files",
                            lambda files, layout: [parse_pos_file(data, layout, c) for data, c in files])
        alone = pos_assets.load_day("sales", day, drop, stores, "r", "raw_pos_sales", 0.5)
        monkeypatch.undo()
        assert len(ledger) > 1 and len(rejections) > 0
        pd.testing.assert_frame_equal(validated(RAW_POS_SALES, rows)[0], validated(RAW_POS_SALES, alone[0])[0])
        pd.testing.assert_frame_equal(rejections, alone[1])
        pd.testing.assert_frame_equal(ledger, alone[2])
    assert batched_files, "the company's days were parsed in batches"
