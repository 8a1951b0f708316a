"""A POS file read in chunks (``parse_stream``) says exactly what ``parse_pos_file`` says of the whole file.

Every case is read both ways. The chunks' rows and rejections, concatenated, must equal the whole file's: the same
columns, the same dtypes once conformed to RAW_POS_SALES / RAW_POS_INVENTORY, the same line numbers, reasons and
records; and the file's lines, rows, verdict and schema drift must agree. The chunk sizes are small enough to cut
the files into many chunks (a chunk of 1 byte is a record) and large enough to hold them whole. The cases are the
awkward ones: every layout, encodings whose characters straddle a cut, BOM, CRLF and CR, quoted cells with line
breaks, delimiters and doubled quotes, bad lines of every kind, duplicate keys far apart, receipts spread over the
file, a file over the bad-line rate, a missing column, parse errors in a late chunk, undecodable and NUL bytes.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.assets.common import concat
from retail_assets.checks import validate_frame
from retail_assets.layouts import load_layouts
from retail_assets.schemas.sources import RAW_POS_INVENTORY, RAW_POS_SALES
from retail_assets.transforms import pos_parse
from retail_assets.transforms.pos_parse import FileContext, ParsedFile, StreamedFile, parse_pos_file, parse_stream

FIXTURES = Path(__file__).parent.parent / "fixtures"
LAYOUTS = load_layouts(FIXTURES / "uci" / "layouts")
STANDARD = LAYOUTS["standard"]
BY_COLUMN = replace(STANDARD, name="by_column", store_from="column", store_value="store",
                    required=(*STANDARD.required, "store_code"))
NO_LINE_NO = replace(STANDARD, name="no_line_no", columns={k: v for k, v in STANDARD.columns.items() if k != "line_no"},
                     required=tuple(r for r in STANDARD.required if r != "line_no"))
HEADER = ",".join(["receipt_id", "line_no", "sold_at", "register_id", "cashier_id", "sku", "quantity", "unit_price",
                   "discount", "loyalty_card", "payment_method"])
GOOD = "R1,1,2025-03-03T10:00:00,T1,C1,HB-1,2,12.50,0.00,LC1,card"
ODD_LINES = [  # one rule broken, or an odd but valid value, each (as retail_assets_tests/sources test them)
    "R2,1,2025-03-03T10:00:00,T1,C1,HB-2,+5,12,0,,CARD",
    "R3,1,2025-03-03T10:00:00,T1,C1, hb-3 ,-0,12.505,0,,cash",
    "R4,01,2025-03-03T10:00:00,T1,C1,HB004,007,1e3,1.5,17850.0,mobile",
    "R5,0,2025-03-03T10:00:00,T1,C1,HB-5,1,inf,,,gift_card",
    "R6,1.0,2025-03-03T10:00:00,T1,C1,HB-6,1,nan,-1,,cash",
    "R7,1,2025-02-29T10:00:00,T1,C1,HB-7,1,1.00,0,,cash",
    "R8,1,2025-03-03T24:00:00,T1,C1,HB-8,1,1.00,0,,cash",
    "R10,1,2025-03-03 10:00:00,T1,C1,HB-10,1,1.00,0,,cash",
    "R13,1,2025-03-04T00:00:00,T1,C1,HB-13,1,1.00,0,,cash",
    "R14,1,2025-03-03T10:00:00,T1,C1,---,1,1.00,0,,cash",
    "R16,1,2025-03-03T10:00:00,T1,C1,HB-16,1,.5,5.,,Bitcoin",
    "R17,1,2025-03-03T10:00:00,T1,C1,HB-17,1,\"1,000.00\",0,,cash",
    "\"R18\",\"1\",\"2025-03-03T10:00:00\",\"T1\",\"C\"\"1\",\"HB-18\",1,1.00,0,\" lc 9 \",\" card \"",
    "R19,1,2025-03-03T10:00:00,T1,C1,ab\"c,1,1.00,0,,cash",
    "R20,1,2025-03-03T10:00:00,\u00a0T1\u00a0,C1,\u3000HB-20,1,1.00,0,,cash",
    "R22,1,2025-03-03T10:00:00,T1,C1,HB-22,1,1.00,0.001,,cash",
    ",1,2025-03-03T10:00:00,T1,C1,HB-24,1,1.00,0,,cash",
    "R25,,2025-03-03T10:00:00,,,HB-25,1,1.00,0,,",
    "R26,1,2025-03-03T10:00:00,T1,C1,HB-26",  # a line too short
]
SMALL = [1, 64, 200]  # a record a chunk, and a few records a chunk
CHUNKS = [64, 200, 1024, 1 << 20]


def ctx(rate: float = 0.5, store: str | None = "S001", path: str = "a/sales_S001_20250303.csv") -> FileContext:
    return FileContext(path, date(2025, 3, 3), store, "run-1", "raw_pos_sales", rate)


def text_file(*lines: str, header: str = HEADER, end: str = "\n", bom: bool = False, encoding: str = "utf-8"
              ) -> bytes:
    text = end.join([header, *lines]) + end
    return ("\ufeff" + text if bom else text).encode(encoding)


def good(i: int, line: int = 1) -> str:
    return GOOD.replace("R1,1,", f"R{i},{line},").replace("HB-1", f"HB-{i % 97}")


def read_in_chunks(data: bytes, layout, context: FileContext, chunk: int) -> tuple[StreamedFile, list[ParsedFile],
                                                                                      int]:
    """(what parse_stream says of the file, its parts, how often the file was opened)."""
    opened = []

    def open_stream() -> io.BytesIO:
        opened.append(True)
        return io.BytesIO(data)

    streamed = parse_stream(open_stream, layout, context, chunk)
    parts = list(streamed.parts())
    return streamed, parts, len(opened)


def assert_as_whole(data: bytes, layout, context: FileContext, chunk: int) -> tuple[ParsedFile, list[ParsedFile]]:
    """The file read in chunks of ``chunk`` bytes says what parse_pos_file says of it; (the whole, the parts)."""
    whole = parse_pos_file(data, layout, context)
    streamed, parts, _ = read_in_chunks(data, layout, context, chunk)
    assert (streamed.lines, streamed.rows, streamed.file_error, streamed.file_error_code, streamed.extra_columns) == (
        whole.lines, len(whole.rows), whole.file_error, whole.file_error_code, whole.extra_columns)
    rejections = concat([p.rejections for p in parts])
    assert len(rejections) == len(whole.rejections)
    if len(whole.rejections):
        pd.testing.assert_frame_equal(rejections, whole.rejections)
    rows = concat([p.rows for p in parts])
    assert len(rows) == len(whole.rows) == streamed.rows
    if len(whole.rows):
        assert list(rows.columns) == list(whole.rows.columns)
        spec = RAW_POS_SALES if layout.kind == "sales" else RAW_POS_INVENTORY
        pd.testing.assert_frame_equal(validate_frame(spec, rows)[0], validate_frame(spec, whole.rows)[0])
    assert sum(p.lines for p in parts) == (whole.lines if whole.file_error else len(whole.rows) + len(rejections))
    return whole, parts


def mixed_lines(n: int) -> list[str]:
    """Good lines with every odd line mixed in, and keys repeated far apart: R0 line 1 again at the end, a repeat
    of a bad line, a receipt whose lines are far apart."""
    lines = []
    for i in range(n):
        lines.append(good(i))
        if i % 9 == 4:
            lines.append(ODD_LINES[i % len(ODD_LINES)].replace("R", f"X{i}R", 1))
        if i % 17 == 8:
            lines.append(good(1000, line=i))  # receipt R1000, one line now and then
    return [*lines, good(0), ODD_LINES[4], good(n // 2).replace("HB-", "---"), "", "   ", good(n + 1)]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("chunk", [1, 64, 1024])
def test_standard_file_of_every_kind_of_line(end: str, bom: bool, chunk: int):
    whole, parts = assert_as_whole(text_file(*mixed_lines(120), end=end, bom=bom), STANDARD, ctx(), chunk)
    codes = set(whole.rejections["reason_code"])
    assert {"duplicate_line", "quantity_invalid", "price_invalid", "sold_at_invalid", "missing_value"} <= codes
    assert whole.file_error is None and len(parts) > (1 if chunk == 1024 else 20)


def test_a_key_repeated_in_another_chunk_is_a_duplicate_there():
    lines = [good(i) for i in range(200)]
    data = text_file(*lines, good(3), good(150), good(3).replace("HB-", "---"))
    whole, parts = assert_as_whole(data, STANDARD, ctx(), 256)
    assert whole.rejections["reason_code"].tolist() == ["duplicate_line"] * 3
    assert whole.rejections["source_key"].tolist() == ["line 202", "line 203", "line 204"]
    assert sum(len(p.rejections) for p in parts[-3:]) == 3 and len(parts) > 10


@pytest.mark.parametrize("chunk", [1, 200])
def test_line_numbers_past_int64_in_some_chunks(chunk: int):
    """pandas types a chunk's line numbers Int64, UInt64 or Float64 by what the chunk holds: a key is the same."""
    lines = [good(i) for i in range(30)]
    lines[20] = good(3, line=99999999999999999999)
    lines += [good(3, line=99999999999999999999), good(4, line=18446744073709551615), good(4, line=1),
              good(4, line=18446744073709551615), good(5, line=1)]
    assert_as_whole(text_file(*lines), STANDARD, ctx(), chunk)


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_store_column_layout_keys_include_the_store(chunk: int):
    lines = [good(i) + f",S{i % 3}" for i in range(60)]
    data = text_file(*lines, good(5) + ",S2", good(5) + ",S0", good(7) + ", ", good(1) + ",S1",
                     header=HEADER + ",store")
    whole, parts = assert_as_whole(data, BY_COLUMN, ctx(store=None), chunk)
    assert whole.rejections["reason_code"].tolist() == ["duplicate_line", "missing_value", "duplicate_line"]


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_a_layout_without_line_numbers_numbers_a_receipt_over_the_whole_file(chunk: int):
    header = HEADER.replace("line_no,", "")
    lines = [good(i % 7).replace(",1,2025", ",2025") for i in range(80)]
    whole, parts = assert_as_whole(text_file(*lines, header=header), NO_LINE_NO, ctx(), chunk)
    assert sorted(whole.rows.loc[whole.rows["receipt_id"] == "R3", "line_no"]) == list(range(1, 12))


@pytest.mark.parametrize("chunk", [1024, 4096, 1 << 20])
def test_uci_files_through_a_user_layout(chunk: int):
    """Real invoice lines: no line numbers (an invoice's lines cut by a chunk go on numbering), quoted
    descriptions, float customer ids."""
    for path in sorted((FIXTURES / "uci" / "pos_drop" / "uk").glob("*.csv.gz")):
        store, day = LAYOUTS["uci_online_retail"].match(path.name)
        context = FileContext(path.name, day, store, "r", "raw_pos_sales")
        whole, parts = assert_as_whole(gzip.decompress(path.read_bytes()), LAYOUTS["uci_online_retail"], context,
                                       chunk)
        assert len(whole.rows) > 1000 and len(parts) > (10 if chunk < 1 << 20 else 0)


LEGACY_HEADER = "TICKET;LINE;DATE;TIME;ITEM;QTY;PRICE;DISC;CARD;TYPE"


def legacy_lines() -> list[str]:
    """Legacy-layout lines (decimal comma, day-first dates): a bad line of each kind every eleventh receipt, and two
    repeated receipt lines."""
    lines = []
    for i in range(60):
        lines += [f"{i};1;03.03.2025;10:15;Café-{i % 9};2;12,50;0,50;;S",
                  f"{i};2;03.03.2025;10:15;hb00€4211;1;1.012,50;0;LC9;R"]
        if i % 11 == 3:
            lines += [f"{i};3;03.03.2025;10:15;HB-004211;1;2,5;0;;X", f"{i};4;03.03.2025;10:15;HB-1;-1;2,505;0;;s",
                      f"{i};5;31.02.2025;10:15;HB-1;1;2,50;0,001;;S", f"{i};6;03.03.2025;9:15;HB-1;1;2;0;;r"]
    return [*lines, "3;1;03.03.2025;10:15;HB-1;1;1,00;0;;S", "59;2;03.03.2025;11:00;HB-1;1;1,00;0;;S"]


@pytest.mark.parametrize("chunk", [1, 7, 64, 333])
def test_legacy_windows_1252_decimal_comma(chunk: int):
    whole, parts = assert_as_whole(text_file(*legacy_lines(), header=LEGACY_HEADER, end="\r\n", encoding="cp1252"),
                                   LAYOUTS["legacy"], ctx(path="a/S001_03032025.txt"), chunk)
    assert "duplicate_line" in set(whole.rejections["reason_code"]) and len(parts) > 5


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_multi_byte_characters_cut_by_a_block(chunk: int):
    lines = [good(i).replace("T1", "Tö€𝄞").replace("HB-", "hé-").replace("LC1", "LC€ü") for i in range(40)]
    lines += [ODD_LINES[14], ODD_LINES[13], good(4)]
    assert_as_whole(text_file(*lines, bom=True), STANDARD, ctx(), chunk)


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_quoted_cells_with_line_breaks_delimiters_and_quotes(chunk: int):
    """Cells holding line breaks make the whole file number its rows in order and rebuild records from the cells:
    so must every chunk; a line break inside quotes is never a place to cut."""
    lines = [good(i) for i in range(50)]
    lines[10] = good(10).replace("HB-10", '"HB\n10"')
    lines[20] = good(20).replace(",T1,", ',"T,1\r\nx",').replace(",C1,", ',"C""1",')
    lines[30] = good(30).replace("HB-30", 'a"b')  # a quote inside an unquoted cell is a character
    lines[31] = good(31).replace("HB-31", '"x"y')  # a cell quoted then continued
    lines[40] = good(40).replace("card", '"cash\n\n"')
    whole, parts = assert_as_whole(text_file(*lines, ODD_LINES[12], good(3)), STANDARD, ctx(), chunk)
    assert whole.rejections["source_key"].iloc[-1] == f"line {len(lines) + 3}"  # rows in order, header is line 1
    assert len(parts) > 3


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_heavily_quoted_file(chunk: int):
    lines = ['"' + '","'.join(good(i).split(",")) + '"' for i in range(80)]
    lines[33] = lines[33].replace('"HB-', '"H""B\n-')
    assert_as_whole(text_file(*lines, good(5)), STANDARD, ctx(), chunk)


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
@pytest.mark.parametrize("rate", [0.5, 0.9])
def test_a_file_over_the_bad_line_rate_is_refused_as_a_whole(chunk: int, rate: float):
    """The rate is over the whole file, not a chunk; the reason names the most common reasons in the whole file's
    order (ties: the one seen first), and every line is rejected with it, chunk by chunk."""
    bad = ["R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,x,1,0,,cash", "R{i},1,2025-03-04T10:00:00,T1,C1,HB-1,1,1,0,,cash",
           "R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,1,-1,0,,cash", "R{i},1,2025-03-03T10:00:00,T1,C1,HB-1,1,1,0,,bit"]
    lines = [good(i) for i in range(30)] + [bad[i % 4].format(i=100 + i) for i in range(40)]
    lines += ["", *[bad[3 - i % 4].format(i=200 + i) for i in range(12)], good(1)]
    whole, parts = assert_as_whole(text_file(*lines), STANDARD, ctx(rate=rate), chunk)
    assert whole.file_error_code == ("too_many_bad_lines" if rate == 0.5 else None)
    if rate == 0.5:
        assert "53 of 83 lines" in whole.file_error and len(parts) > 1
        assert all(p.rows.empty for p in parts)


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_a_missing_column_refuses_the_file(chunk: int):
    lines = [good(i).replace(",2,12.50", ",12.50") for i in range(40)]
    assert_as_whole(text_file(*lines, header=HEADER.replace(",quantity", "")), STANDARD, ctx(), chunk)
    quoted = HEADER.replace(",quantity", "").replace("sku", '"sku"')  # a header only pandas reads
    whole, _ = assert_as_whole(text_file(*lines, header=quoted), STANDARD, ctx(), chunk)
    assert whole.file_error_code == "missing_column"
    # a header only pandas reads (quoted) and a later line it cannot parse: the parse error wins, as for the file
    lines[30] += ",1,2,3"
    whole, _ = assert_as_whole(text_file(*lines, header=quoted), STANDARD, ctx(), chunk)
    assert whole.file_error_code == "parse_error"


@pytest.mark.parametrize("chunk", [1, 32, 64, 100, 150, 200, 1024])
def test_a_parse_error_late_in_the_file_names_the_whole_files_line(chunk: int):
    """pandas counts lines outside quotes; a line too wide at the start of a chunk makes pandas take its first
    cells as the index there, where the whole file's reader fails on it."""
    lines = [good(i) for i in range(40)]
    lines[5] = good(5).replace("HB-5", '"HB\n\n5"')
    lines.insert(12, "")
    lines[33] += ",wide"
    whole, _ = assert_as_whole(text_file(*lines), STANDARD, ctx(), chunk)
    assert whole.file_error_code == "parse_error" and "line 35" in whole.file_error
    lines[33] = good(33)
    lines[-1] = 'R9,1,2025-03-03T10:00:00,T1,C1,"HB-9,1,1.00,0,,cash'
    whole, _ = assert_as_whole(text_file(*lines), STANDARD, ctx(), chunk)
    assert "EOF inside string starting at row 41" in whole.file_error


@pytest.mark.parametrize("chunk", [1, 7, 64, 200, 1024])
@pytest.mark.parametrize(("layout", "encoding", "bom", "bad"), [
    ("standard", "utf-8", False, b"\xff"),
    ("standard", "utf-8", True, b"\xff"),  # utf-8-sig reports offsets after the BOM: so must the chunks
    ("standard", "utf-8", False, b"\xe2\x82"),  # a character cut short
    ("legacy", "cp1252", False, b"\x81"),
    ("standard", "utf-8", False, b"\x00"),
    ("legacy", "cp1252", False, b"\x00\x81"),
])
def test_undecodable_bytes_anywhere_refuse_the_file(chunk: int, layout: str, encoding: str, bom: bool, bad: bytes):
    lines = [good(i).replace("HB-", "HB-é") for i in range(30)]
    if layout == "legacy":
        lines = [f"{i};1;03.03.2025;10:15;Café;2;12,50;0,50;;S" for i in range(30)]
    header = HEADER if layout == "standard" else "TICKET;LINE;DATE;TIME;ITEM;QTY;PRICE;DISC;CARD;TYPE"
    data = text_file(*lines, header=header, bom=bom, encoding=encoding)
    for at in (len(data) // 3, len(data) // 2 + 1, len(data) - 1, len(data)):
        broken = data[:at] + bad + data[at:]
        whole, parts = assert_as_whole(broken, LAYOUTS[layout], ctx(), chunk)
        assert whole.file_error_code == "decode_error"
        assert all(p.rows.empty for p in parts)


@pytest.mark.parametrize("chunk", [*SMALL, 1024])
def test_stock_counts_keep_the_last_count_of_a_sku_over_the_whole_file(chunk: int):
    lines = [f"HB-{i % 23},{i},2025-03-03T21:00:00" for i in range(90)]
    lines += ["hb 5,x,2025-03-03T21:00:00", ",1,", "HB-7,1,03/03/2025", "HB-0,5,2025-03-03T21:00:00"]
    whole, parts = assert_as_whole(text_file(*lines, header="sku,on_hand,counted_at"), LAYOUTS["stock"],
                                   ctx(rate=0.9, path="a/stock_S001_20250303.csv"), chunk)
    assert whole.rejections["reason_code"].value_counts()["duplicate_line"] == 70 and len(parts) > 1
    lines = [f"HB-{i % 3},{i}," for i in range(40)]  # nearly all counted again: over the rate
    whole, parts = assert_as_whole(text_file(*lines, header="sku,on_hand,counted_at"), LAYOUTS["stock"],
                                   ctx(path="a/stock_S001_20250303.csv"), chunk)
    assert whole.file_error_code == "too_many_bad_lines"


@pytest.mark.parametrize("chunk", [1, 64, 1024])
def test_malformed_shapes_read_whole(chunk: int):
    """A first record wider than the header, and lines pandas reads but str.strip calls blank balancing a cell's
    line break: both read whole, with parse_pos_file's result."""
    lines = [good(i) for i in range(30)]
    assert_as_whole(text_file(good(99) + ",x", *lines), STANDARD, ctx(rate=1), chunk)
    lines[4] = good(4).replace("HB-4", '"HB\n4"')
    lines[20] = "\x0c"
    assert_as_whole(text_file(*lines), STANDARD, ctx(), chunk)
    lines[25] = "\x0c"
    assert_as_whole(text_file(*lines), STANDARD, ctx(), chunk)
    assert_as_whole(text_file(HEADER, *lines, header="\x0c"), STANDARD, ctx(), chunk)  # pandas' header is blank


def test_every_file_of_a_generated_company(tmp_path: Path):
    """Every sales and stock file the demo generator writes (every layout, header spellings, dirt), read in chunks
    of 512 bytes."""
    from retail_assets.generator import generate_company

    generate_company(tmp_path, stores=6, days=2, start=date(2025, 3, 3), lines_per_store_day=80, seed=11)
    files = [p for p in sorted((tmp_path / "pos_drop").rglob("*")) if p.is_file() and p.name != "stores.csv"]
    checked = 0
    for path in files:
        for layout in LAYOUTS.values():
            matched = layout.match(path.name)
            if matched is None:
                continue
            data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
            store, day = matched
            assert_as_whole(data, layout, FileContext(path.name, day, store, "r", "raw_pos_sales"), 512)
            checked += 1
    assert checked >= 20


def test_memory_is_bounded_by_the_chunk():
    """No text handed to the parser is much longer than a chunk and the header, whatever the file's length; the
    file is opened once to find its verdict and once for its parts."""
    lines = [good(i) for i in range(3000)]
    data = text_file(*lines, "x,1,2,3")
    sizes = []
    opened = []

    class Watched(pos_parse._Streamed):
        def _parse(self, text, *args):
            sizes.append(len(text))
            return super()._parse(text, *args)

    def open_stream() -> io.BytesIO:
        opened.append(True)
        return io.BytesIO(data)

    streamed = Watched(open_stream, STANDARD, ctx(), 4096).first_read()
    parts = list(streamed.parts())
    assert len(opened) == 2 and len(parts) > 30 and streamed.rows == 3000
    assert max(sizes) <= 4096 + len(HEADER) + 2 * len(GOOD) < len(data) // 20


def test_a_file_of_one_chunk_is_read_once():
    data = text_file(*mixed_lines(10))
    whole = parse_pos_file(data, STANDARD, ctx())
    streamed, parts, opened = read_in_chunks(data, STANDARD, ctx(), len(data))
    assert opened == 1 and len(parts) == 1
    pd.testing.assert_frame_equal(parts[0].rows, whole.rows)
    pd.testing.assert_frame_equal(parts[0].rejections, whole.rejections)


class _Trickle(io.BytesIO):
    """A stream that hands over a few bytes a read, as a pipe or a socket may."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(5, size) if size is not None and size >= 0 else 5)


@pytest.mark.parametrize("chunk", [64, 1024])
def test_a_stream_that_reads_short_gives_the_same_chunks(chunk: int):
    data = text_file(*mixed_lines(60))
    whole = parse_pos_file(data, STANDARD, ctx())
    streamed = parse_stream(lambda: _Trickle(data), STANDARD, ctx(), chunk)
    parts = list(streamed.parts())
    assert len(parts) > 3 and streamed.rows == len(whole.rows)
    pd.testing.assert_frame_equal(concat([p.rejections for p in parts]), whole.rejections)


def test_keys_sharing_their_64_bit_hash_are_told_apart():
    """The key store compares both hashes: keys whose first hash collides are counted apart, across merged runs."""
    import numpy as np

    keys = pos_parse._KeyCounts(counted=True)
    h1 = np.array([7, 7, 7, 3, 9], dtype=np.uint64)
    h2 = np.array([5, 1, 5, 2, 1], dtype=np.uint32)
    keys.add(h1, h2, np.array([1, 2, 3, 4, 5]))
    keys.add(np.array([7, 9], dtype=np.uint64), np.array([3, 1], dtype=np.uint32), np.array([10, 20]))
    found = keys.get(np.array([7, 7, 7, 7, 9, 3, 3], dtype=np.uint64), np.array([5, 1, 3, 4, 1, 2, 5], dtype=np.uint32))
    assert found.tolist() == [4, 2, 10, 0, 25, 4, 0]
    seen = pos_parse._KeyCounts(counted=False)
    seen.add(h1, h2)
    assert seen.get(np.array([7, 7, 8], dtype=np.uint64), np.array([1, 9, 5], dtype=np.uint32)).tolist() == [1, 0, 0]


def test_chunk_bytes_must_be_positive():
    with pytest.raises(ValueError, match="chunk_bytes"):
        parse_stream(lambda: io.BytesIO(b""), STANDARD, ctx(), 0)


def test_a_file_changed_between_its_reads_fails():
    data = text_file(*[good(i) for i in range(50)])
    versions = iter([data, data.replace(b"R7,", b"R8,")])
    streamed = parse_stream(lambda: io.BytesIO(next(versions)), STANDARD, ctx(), 256)
    with pytest.raises(RuntimeError, match="changed while it was read"):
        list(streamed.parts())
