"""POS files through their layouts: every rule of SPEC 2.2-2.5, line by line and file by file."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from retail_assets.layouts import LayoutError, load_layouts, parse_layout
from retail_assets.transforms.pos_parse import FileContext, parse_pos_file

LAYOUTS = load_layouts()
HEADER = ("receipt_id,line_no,sold_at,register_id,cashier_id,sku,quantity,unit_price,discount,loyalty_card,"
          "payment_method")


def ctx(path: str = "a/sales_S001_20250303.csv", rate: float = 0.9) -> FileContext:
    return FileContext(path, date(2025, 3, 3), "S001", "run-1", "raw_pos_sales", rate)


def standard(*lines: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode("utf-8-sig")


def test_standard_file_valid_lines_are_normalised():
    data = standard("R1,1,2025-03-03T10:00:00,T1,C1, hb-004211 ,2,12.50,1.00,LC00000001,Card",
                    "R1,2,2025-03-03T10:00:05,T1,C1,HB004211,-1,12.50,0.25,,cash")
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert parsed.rejections.empty and parsed.lines == 2
    rows = parsed.rows
    assert rows["sku_norm"].tolist() == ["HB004211", "HB004211"]
    assert rows["quantity"].tolist() == [2, -1]
    assert rows["unit_price"].tolist() == [12.5, 12.5]
    assert rows["discount"].tolist() == [1.0, 0.25]
    assert rows["payment_method"].tolist() == ["card", "cash"]
    assert rows["loyalty_card"].tolist()[0] == "LC00000001" and rows["loyalty_card"].isna().tolist()[1]
    assert rows["source_line"].tolist() == [2, 3]


def test_columns_in_any_order_and_any_case_extra_columns_are_drift():
    header = "PAYMENT_METHOD,Sku,quantity,unit_price,discount,loyalty_card,receipt_id,line_no,sold_at,firmware_version"
    data = standard("mobile,HB-000001,1,3.00,0,,R9,1,2025-03-03T09:00:00,2.1", header=header)
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert len(parsed.rows) == 1 and parsed.extra_columns == ["firmware_version"]
    assert parsed.rows.iloc[0]["receipt_id"] == "R9"


@pytest.mark.parametrize(("line", "code"), [
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,0,1.00,0,,cash", "quantity_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,2.5,1.00,0,,cash", "quantity_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,abc,0,,cash", "price_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,-1.00,0,,cash", "price_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,0.001,0,,cash", "price_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,1.00,-0.5,,cash", "discount_invalid"),
    ("R1,1,03/03/2025 10:00,T,C,HB-1,1,1.00,0,,cash", "sold_at_invalid"),
    ("R1,1,2025-03-04T10:00:00,T,C,HB-1,1,1.00,0,,cash", "sold_at_invalid"),
    ("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,1.00,0,,bitcoin", "payment_method_invalid"),
    (",1,2025-03-03T10:00:00,T,C,HB-1,1,1.00,0,,cash", "missing_value"),
    ("R1,1,2025-03-03T10:00:00,T,C,,1,1.00,0,,cash", "missing_value"),
])
def test_each_bad_line_is_rejected_with_its_reason_and_the_rest_loads(line: str, code: str):
    data = standard("R0,1,2025-03-03T09:00:00,T,C,HB-1,1,1.00,0,,cash", line)
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert len(parsed.rows) == 1 and parsed.rows.iloc[0]["receipt_id"] == "R0"
    assert parsed.rejections["reason_code"].tolist() == [code]
    rejected = parsed.rejections.iloc[0]
    assert rejected["source_key"] == "line 3" and rejected["record"] == line
    assert rejected["source_ref"] == "a/sales_S001_20250303.csv" and rejected["run_id"] == "run-1"


def test_duplicate_receipt_line_keeps_the_first():
    data = standard("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,1.00,0,,cash",
                    "R1,1,2025-03-03T10:00:00,T,C,HB-2,1,1.00,0,,cash")
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert parsed.rows["sku_norm"].tolist() == ["HB1"]
    assert parsed.rejections["reason_code"].tolist() == ["duplicate_line"]


def test_legacy_cp1252_decimal_comma_and_return_type():
    text = ("TICKET;LINE;DATE;TIME;ITEM;QTY;PRICE;DISC;CARD;TYPE\n"
            "1;1;03.03.2025;10:15;HB-004211;2;12,50;0,50;;S\n"
            "1;2;03.03.2025;10:15;hb004211;1;1.012,50;0;LC9;R\n"
            "1;3;03.03.2025;10:15;HB-004211;1;2,5;0;;X\n")
    parsed = parse_pos_file(text.encode("cp1252"), LAYOUTS["legacy"], ctx("S001_03032025.txt"))
    assert parsed.rows["quantity"].tolist() == [2, -1]
    assert parsed.rows["unit_price"].tolist() == [12.5, 1012.5]
    assert parsed.rows["sold_at"].astype(str).tolist() == ["2025-03-03 10:15:00"] * 2
    assert parsed.rows["payment_method"].isna().all()
    assert parsed.rejections["reason_code"].tolist() == ["type_invalid"]


def test_missing_required_column_rejects_every_line_with_the_column_named():
    header = HEADER.replace("quantity,", "")
    data = standard("R1,1,2025-03-03T10:00:00,T,C,HB-1,1.00,0,,cash", "R1,2,2025-03-03T10:00:00,T,C,HB-1,1.00,0,,cash",
                    header=header)
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert parsed.rows.empty and parsed.file_error_code == "missing_column"
    assert len(parsed.rejections) == 2 and "quantity" in parsed.file_error
    assert set(parsed.rejections["reason_code"]) == {"missing_column"}


def test_undecodable_file_is_rejected_whole():
    data = standard("R1,1,2025-03-03T10:00:00,T,C,HB-1,1,1.00,0,,cash").replace(b"HB-1", b"HB-\xff\xfe")
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx())
    assert parsed.file_error_code == "decode_error" and len(parsed.rejections) == 1
    assert "utf-8" in parsed.file_error and "offset" in parsed.file_error


def test_too_many_bad_lines_rejects_the_file():
    data = standard("R1,1,2025-03-03T10:00:00,T,C,HB-1,x,1.00,0,,cash",
                    "R1,2,2025-03-03T10:00:00,T,C,HB-1,1,1.00,0,,cash")
    parsed = parse_pos_file(data, LAYOUTS["standard"], ctx(rate=0.4))
    assert parsed.file_error_code == "too_many_bad_lines" and parsed.rows.empty and len(parsed.rejections) == 2


def test_user_layout_errors_are_actionable():
    with pytest.raises(LayoutError, match="named group"):
        parse_layout({"name": "x", "file_pattern": "^x$", "file_date_format": "%Y", "columns": {}}, "x.yaml")
    with pytest.raises(LayoutError, match="unknown fields"):
        parse_layout({"name": "x", "file_pattern": "(?P<date>.*)", "file_date_format": "%Y",
                      "store_from": {"constant": "A"}, "columns": {"colour": "c"}}, "x.yaml")


def test_uci_files_through_a_layout_definition_alone():
    """The real UCI Online Retail lines: every line parsed or rejected, the counts those of the files."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "uci"
    layouts = load_layouts(fixtures / "layouts")
    layout = layouts["uci_online_retail"]
    total_rows = total_rejected = 0
    for path in sorted((fixtures / "pos_drop" / "uk").glob("*.csv.gz")):
        store, day = layout.match(path.name)
        raw = gzip.decompress(path.read_bytes())
        lines = raw.decode("utf-8").count("\n") - 1
        parsed = parse_pos_file(raw, layout, FileContext(path.name, day, store, "r", "raw_pos_sales"))
        assert parsed.extra_columns == [] and parsed.file_error is None
        assert len(parsed.rows) + len(parsed.rejections) == parsed.lines == lines
        assert (parsed.rows["store_code"] == "UCI").all()
        assert not parsed.rows.duplicated(["receipt_id", "line_no"]).any()
        total_rows += len(parsed.rows)
        total_rejected += len(parsed.rejections)
        if day == date(2011, 8, 12):
            bad = parsed.rejections[parsed.rejections["reason_code"] == "price_invalid"]
            assert bad["record"].str.startswith("A56318").sum() == 2  # the negative bad-debt adjustments
    assert total_rows + total_rejected == 3108 + 2725 + 1122 + 1632  # wc -l of the four files, less headers
