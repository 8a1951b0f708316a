"""Sales files of the awkward kinds a drop folder sees, read alone and several at once.

Each rule is implemented once (on Arrow arrays); what every one of these files gives, rows, rejections (reasons,
records, line numbers), dtypes and file errors, is pinned in test_pos_parse_golden.py. Here: what the odd values
say in words, and that a day's files read as one batch give every file what it gets read alone.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.layouts import load_layouts
from retail_assets.schemas.sources import PAYMENT_METHODS
from retail_assets.transforms import pos_parse
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, decode, parse_pos_file, parse_sales_files

LAYOUTS = load_layouts(Path(__file__).parent.parent / "fixtures" / "uci" / "layouts")
BY_COLUMN = replace(LAYOUTS["standard"], name="by_column", store_from="column", store_value="store",
                    required=(*LAYOUTS["standard"].required, "store_code"))
HEADER = ",".join(["receipt_id", "line_no", "sold_at", "register_id", "cashier_id", "sku", "quantity", "unit_price",
                   "discount", "loyalty_card", "payment_method"])
GOOD = "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,2,12.50,0.00,LC1,card"


def ctx(rate: float = 0.9, store: str | None = "S001") -> FileContext:
    return FileContext("a/sales_S001_20250303.csv", date(2025, 3, 3), store, "run-1", "raw_pos_sales", rate)


def assert_same(one: ParsedFile, other: ParsedFile) -> None:
    assert (one.lines, one.file_error, one.file_error_code, one.extra_columns) == (
        other.lines, other.file_error, other.file_error_code, other.extra_columns)
    pd.testing.assert_frame_equal(one.rejections, other.rejections)
    pd.testing.assert_frame_equal(one.rows, other.rows)


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


AWKWARD = [
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
]


LEGACY = ("TICKET;LINE;DATE;TIME;ITEM;QTY;PRICE;DISC;CARD;TYPE\r\n"
          "1;1;03.03.2025;10:15;HB-004211;2;12,50;0,50;;S\r\n"
          "1;2;03.03.2025;10:15;hb004211;1;1.012,50;0;LC9;R\r\n"
          "1;3;03.03.2025;10:15;HB-004211;1;2,5;0;;X\r\n"
          "1;4;03.03.2025;10:15;HB-004211;-1;2,505;0;;s\r\n"
          "1;5;31.02.2025;10:15;HB-004211;1;2,50;0,001;;S\r\n"
          "1;6;03.03.2025;9:15;HB-004211;1;2;0;;r\r\n")


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_odd_values_are_refused_with_their_reasons(end: str, bom: bool):
    parsed = parse_pos_file(standard(GOOD, *ODD_LINES, end=end, bom=bom), LAYOUTS["standard"], ctx())
    rejected = dict(zip(parsed.rejections["record"], parsed.rejections["reason"], strict=True))
    assert rejected[ODD_LINES[1]] == "quantity '-0' is not a non-zero whole number"
    assert rejected[ODD_LINES[3]] == "line_no '0' is not a whole number >= 1"
    assert rejected[ODD_LINES[5]] == "sale time '2025-02-29T10:00:00' does not match the format %Y-%m-%dT%H:%M:%S"
    assert rejected[ODD_LINES[11]] == "sale time '2025-03-04T00:00:00' is not on the file's business day 2025-03-03"
    assert rejected[ODD_LINES[12]] == "sku has no letters or digits"
    assert rejected[ODD_LINES[13]] == "payment_method 'bitcoin' is not one of " + ", ".join(PAYMENT_METHODS)
    assert rejected[ODD_LINES[15]] == ("receipt R1 line 1 appears more than once in the file; the first occurrence "
                                       "was kept")
    assert rejected[ODD_LINES[19]] == "discount '0.001' is not an amount >= 0 in whole cents"
    assert parsed.rejections["source_key"].iloc[0] == "line 4"
    rows = parsed.rows.set_index("receipt_id")
    assert rows.loc["R2", "quantity"] == 5 and rows.loc["R2", "payment_method"] == "card"
    assert rows.loc["R4", "unit_price"] == 1000 and rows.loc["R4", "loyalty_card"] == "17850"
    assert rows.loc["R18", "cashier_id"] == 'C"1' and rows.loc["R18", "loyalty_card"] == "LC9"
    assert rows.loc["R20", "sku_norm"] == "HB20"
    assert rejected[ODD_LINES[22]] == "line_no '' is not a whole number >= 1"


def test_legacy_layout():
    parsed = parse_pos_file(LEGACY.encode("cp1252"), LAYOUTS["legacy"], ctx())
    assert parsed.rows["quantity"].tolist() == [2, -1, -1]
    assert parsed.rows["unit_price"].tolist() == [12.5, 1012.5, 2.0]
    assert parsed.rejections["reason"].tolist() == [
        "TYPE 'X' is neither S (sale) nor R (return)", "quantity '-1' must be positive in layout legacy (returns are "
        "marked by TYPE)", "discount '0,001' is not an amount >= 0 in whole cents"]


def test_store_from_a_column_and_no_store_code():
    data = standard(GOOD + ",S1", GOOD + ",S2", GOOD + ",S1", GOOD + ", ", header=HEADER + ",store")
    parsed = parse_pos_file(data, BY_COLUMN, ctx(store=None))
    assert parsed.rows["store_code"].tolist() == ["S1", "S2"]
    assert parsed.rejections["reason_code"].tolist() == ["duplicate_line", "missing_value"]


# --- Several files at once (parse_sales_files, what a day's load uses) -------------------------------------------

def file_ctx(store: str, rate: float = 0.5) -> FileContext:
    return FileContext(f"sales/sales_{store}_20250303.csv", date(2025, 3, 3), store, "run-1", "raw_pos_sales", rate)


BAD = "R2,1,2025-03-03T10:00:00,T1,C1,HB-1,x,x,x,,x"


def dirty_batch() -> list[tuple[bytes, FileContext]]:
    return [
        (standard(GOOD, *ODD_LINES), file_ctx("S001", rate=0.9)),  # dirt of every kind, non-ASCII cells
        (standard(GOOD, GOOD.replace("R1", "R2"), end="\r\n", bom=True), file_ctx("S002")),  # R1 line 1 again
        (standard(GOOD, GOOD.replace("HB-1", "HB-9")).rstrip(b"\n"), file_ctx("S003")),  # no final break; a dup
        (standard(GOOD, BAD, BAD.replace("R2", "R3")), file_ctx("S004")),  # too many bad lines: this file only
        (standard(*[GOOD.replace("R1", f"R{i}").replace("12.50", str(i)) for i in range(1, 4)]), file_ctx("S005")),
        (standard(GOOD, BAD, end="\r"), file_ctx("S006")),
    ]


def ascii_batch() -> list[tuple[bytes, FileContext]]:
    lines = [GOOD.replace("R1", f"R{i}").replace("HB-1", f" hb-{i} ") for i in range(1, 40)]
    return [(standard(*lines[:k], "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,0,1.00,0,,cash", *lines[k:]),
             file_ctx(f"S{k:03d}")) for k in range(1, 6)]


def uci_batch() -> list[tuple[bytes, FileContext]]:
    """A UCI day cut into three files of the layout without line numbers."""
    path = sorted((Path(__file__).parent.parent / "fixtures" / "uci" / "pos_drop" / "uk").glob("*.csv.gz"))[0]
    store, day = LAYOUTS["uci_online_retail"].match(path.name)
    header, *lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines(keepends=True)
    third = len(lines) // 3
    parts = [lines[:third], lines[third: 2 * third], lines[2 * third:]]
    return [((header + "".join(part)).encode("utf-8"), FileContext(f"{path.name}.{i}", day, store, "r",
                                                                   "raw_pos_sales"))
            for i, part in enumerate(parts)]


def unreadable_batch() -> list[tuple[bytes, FileContext]]:
    return [(standard(GOOD), file_ctx("S001")), (standard(GOOD, GOOD.replace("R1", "R2") + ",extra"),
                                                 file_ctx("S002")), (b"\xff\xfe", file_ctx("S003"))]


BATCHES = {"dirty": (dirty_batch, "standard"), "ascii": (ascii_batch, "standard"),
           "uci": (uci_batch, "uci_online_retail"), "unreadable": (unreadable_batch, "standard")}


def read_as_one(files: list[tuple[bytes, FileContext]], layout: str) -> bool:
    """Whether ``parse_sales_files`` reads these files as one batch (rather than each alone)."""
    texts = [decode(data, LAYOUTS[layout])[0] for data, _ in files]
    if any(text is None for text in texts):
        return False
    return pos_parse._parse_sales_batch([(text.removeprefix("\ufeff"), c) for text, (_, c) in
                                         zip(texts, files, strict=True)], LAYOUTS[layout]) is not None


def batched(files: list[tuple[bytes, FileContext]], layout: str) -> list[ParsedFile]:
    """parse_sales_files' results, each file's compared with parse_pos_file of that file alone."""
    results = parse_sales_files(files, LAYOUTS[layout])
    assert len(results) == len(files)
    for result, (data, context) in zip(results, files, strict=True):
        alone = parse_pos_file(data, LAYOUTS[layout], context)
        # Alone, a file of whole prices types them Int64; in a batch with fractions they are Float64 (same values).
        for parsed in (result, alone):
            for column in ("unit_price", "discount"):
                if column in parsed.rows:
                    parsed.rows[column] = parsed.rows[column].astype("Float64")
        assert_same(result, alone)
    return results


def test_a_batch_gives_every_file_its_own_rows_rejections_and_verdict():
    files = dirty_batch()
    assert read_as_one(files, "standard")
    results = batched(files, "standard")
    assert [r.file_error_code for r in results] == [None, None, None, "too_many_bad_lines", None, None]
    assert [len(r.rows) for r in results] == [len(results[0].rows), 2, 1, 0, 3, 1]
    assert results[2].rejections["reason_code"].tolist() == ["duplicate_line"]
    assert set(results[0].rejections["source_ref"]) == {"sales/sales_S001_20250303.csv"}
    assert results[5].rejections["source_key"].tolist() == ["line 3"]


def test_a_batch_of_plain_ascii_files():
    files = ascii_batch()
    assert read_as_one(files, "standard")
    results = batched(files, "standard")
    assert all(r.rejections["reason_code"].tolist() == ["quantity_invalid"] for r in results)
    assert [r.rejections["source_key"].tolist() for r in results] == [[f"line {k + 2}"] for k in range(1, 6)]


def test_a_batch_of_real_lines_numbers_each_files_receipts_on_their_own():
    """A receipt cut in two by the files is numbered from 1 again in the second file, as it is when the files are
    read one by one."""
    files = uci_batch()
    assert read_as_one(files, "uci_online_retail")
    results = batched(files, "uci_online_retail")
    lines = sum(data.count(b"\n") - 1 for data, _ in files)
    assert sum(len(r.rows) + len(r.rejections) for r in results) == lines
    assert all((r.rows["line_no"] >= 1).all() for r in results)


def test_a_file_the_batch_cannot_read_sends_every_file_alone():
    files = unreadable_batch()
    assert not read_as_one(files, "standard")
    results = batched(files, "standard")
    assert results[2].file_error_code == "decode_error"


def test_a_day_parsed_in_batches_is_the_day_parsed_file_by_file(tmp_path: Path):
    """Every sales file of a generated company of 12 stores (every layout, header spellings, stores sending a file
    twice, superseded and refused files), a day's files of a layout read as one batch: every file gets what it gets
    read alone. What load_day makes of those days is pinned in test_pos_parse_golden.py."""
    from retail_assets.generator import generate_company

    generate_company(tmp_path, stores=12, days=3, start=date(2025, 3, 3), lines_per_store_day=40, seed=7)
    groups: dict[tuple, list[tuple[bytes, FileContext]]] = {}
    for path in sorted((tmp_path / "pos_drop").rglob("*")):
        for layout in LAYOUTS.values():
            matched = layout.match(path.name) if path.is_file() and layout.kind == "sales" else None
            if matched is not None:
                data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
                context = FileContext(path.name, matched[1], matched[0], "r", "raw_pos_sales")
                groups.setdefault((layout.name, matched[1]), []).append((data, context))
    took = []
    for (layout, _), files in groups.items():
        if len(files) > 1:
            took.append(read_as_one(files, layout))
            batched(files, layout)
    assert any(took), "the company's days were parsed in batches"


# --- The join keys: retail_assets.transforms.normalise's rules on the cells ---------------------------------------

# (cell, sku_norm of the cell followed by "X", loyalty_card of the cell); normalise's own cases: test_normalise.py
JOIN_KEYS = [
    (" hb-004211 ", "HB004211X", "HB-004211"), ("hb 00 42 11", "HB004211X", "HB004211"),
    ("17850.0", "178500X", "17850"), ("17850.00", "1785000X", "17850.00"), ("LC9.0 ", "LC90X", "LC9"),
    ("x\ty", "XYX", "XY"), ("a\x0bb", "ABX", "AB"), ("a\x1cb", "ABX", "AB"), ("-.0", "0X", "-"),
    ("a.0.0", "A00X", "A.0"), ("1_000", "1000X", "1_000"), (" .0", "0X", None), ("", "X", None),
]
OTHER_JOIN_KEYS = [
    ("hé-1", "H1X", "HÉ-1"), ("\u3000HB-20", "HB20X", "HB-20"), ("\u00a0T1\u00a0", "T1X", "T1"), ("ß1", "1X", "ẞ1"),
    ("Ⅻ-1", "1X", "Ⅻ-1"), ("१२३", "X", "१२३"), ("a\u2003b", "ABX", "AB"), ("ab.0\u00a0", "AB0X", "AB"),
]


@pytest.mark.parametrize("keys", [JOIN_KEYS, JOIN_KEYS + OTHER_JOIN_KEYS], ids=["ascii", "unicode"])
def test_sku_and_loyalty_card_are_the_join_keys(keys: list[tuple[str, str, str | None]]):
    """A POS line's sku_norm and loyalty_card are the keys the catalog and the CRM join on, whichever reader reads
    the file; a card with nothing left is missing."""
    lines = [f"R{i},1,2025-03-03T10:00:00,T1,C1,{v}X,1,1.00,0,{v},cash" for i, (v, _, _) in enumerate(keys)]
    for data in (standard(*lines), standard(*lines[:2], "", *lines[2:])):  # Arrow's reader, then pandas'
        parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
        assert parsed.rejections.empty
        assert parsed.rows["sku_norm"].tolist() == [sku for _, sku, _ in keys]
        assert [None if pd.isna(c) else c for c in parsed.rows["loyalty_card"]] == [card for _, _, card in keys]
