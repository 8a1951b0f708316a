"""Numbers the warehouse cannot store are rejected with a reason, never wrapped: a quantity of 10**20 used to be
booked as -2**63 units, and a price past NUMERIC(14,2) failed the whole day at the insert."""

from __future__ import annotations

import pytest

from retail_assets.transforms.pos_parse import parse_pos_file
from retail_assets_tests.reliability.test_chunked_parse import LAYOUTS, STANDARD, ctx, read_in_chunks, text_file

INT64_MAX = 2**63 - 1
LINE = "R{r},{line},2025-03-03T10:00:00,T1,C1,HB-1,{qty},{price},{disc},LC1,card"


def line(r: int, line_no: object = 1, qty: object = 2, price: object = "12.50", disc: object = "0.00") -> str:
    return LINE.format(r=r, line=line_no, qty=qty, price=price, disc=disc)


GOOD = [line(r) for r in range(1, 11)]
CASES = {  # receipt -> (line, the reason code it must be rejected with, or None when it must be booked as written)
    90: (line(90, line_no=10**20), "line_no_invalid"),
    91: (line(91, qty=10**20), "quantity_invalid"),
    92: (line(92, qty=-(10**20)), "quantity_invalid"),
    93: (line(93, qty=INT64_MAX + 1), "quantity_invalid"),
    94: (line(94, qty=-(2**63) - 1), "quantity_invalid"),
    95: (line(95, price="1000000000000.00"), "price_invalid"),
    96: (line(96, disc="1000000000000"), "discount_invalid"),
    97: (line(97, qty=INT64_MAX, price="0.00"), None),  # the largest that fits is a number like any other
    98: (line(98, line_no=INT64_MAX), None),
    99: (line(99, qty=1, price="999999999999.99"), None),
    80: (line(80, qty=1000, price="1000000000.00"), "quantity_invalid"),  # each fits, their product does not
    81: (line(81, qty=-1000, price="1000000000.00"), "quantity_invalid"),
    82: (line(82, qty=999, price="1000000000.00"), None),
}


def _check(parsed) -> None:
    rejected = dict(zip(parsed.rejections["record"], parsed.rejections["reason_code"], strict=True))
    booked = parsed.rows.set_index("receipt_id")
    for receipt, (_, code) in CASES.items():
        if code is None:
            assert f"R{receipt}" in booked.index, receipt
        else:
            assert f"R{receipt}" not in booked.index, receipt
            of_receipt = parsed.rejections["record"].str.startswith(f"R{receipt},")
            assert parsed.rejections.loc[of_receipt, "reason_code"].tolist() == [code], (receipt, rejected)
    assert booked.loc["R97", "quantity"] == INT64_MAX
    assert booked.loc["R98", "line_no"] == INT64_MAX
    assert float(booked.loc["R99", "unit_price"]) == pytest.approx(999999999999.99)
    assert (booked["quantity"] != -(2**63)).all(), "no wrapped quantity is ever booked"
    assert len(parsed.rows) + len(parsed.rejections) == len(GOOD) + len(CASES), "every line booked or rejected"


def test_numbers_past_what_the_warehouse_holds_are_rejected_never_wrapped():
    data = text_file(*GOOD, *(text for text, _ in CASES.values()))
    parsed = parse_pos_file(data, STANDARD, ctx(rate=0.9))
    _check(parsed)
    reasons = " ".join(parsed.rejections["reason"])
    assert "past the largest quantity the warehouse holds" in reasons
    assert "more than the warehouse's amounts hold (999,999,999,999.99)" in reasons
    assert "quantity 1000 x unit_price 1000000000.00 is more than the warehouse's amounts hold" in reasons


@pytest.mark.parametrize("chunk", [64, 300])
def test_the_same_in_chunks(chunk: int):
    """A chunk whose numbers all fit is typed Int64 while the file is not: the bound is read from the text."""
    data = text_file(*GOOD, *(text for text, _ in CASES.values()))
    _, parts, *_ = read_in_chunks(data, STANDARD, ctx(rate=0.9), chunk)
    rows = sum(len(p.rows) for p in parts)
    codes = [c for p in parts for c in p.rejections["reason_code"]]
    assert rows == len(GOOD) + sum(code is None for _, code in CASES.values())
    assert sorted(codes) == sorted(code for _, code in CASES.values() if code is not None)
    assert all((p.rows["quantity"] != -(2**63)).all() for p in parts if len(p.rows))


def test_a_stock_count_past_int64_is_rejected():
    data = text_file("HB-1,5,", "HB-2,99999999999999999999,", "HB-3,-99999999999999999999,", f"HB-4,{INT64_MAX},",
                     header="sku,on_hand,counted_at")
    parsed = parse_pos_file(data, LAYOUTS["stock"], ctx(rate=0.9, path="a/stock_S001_20250303.csv"))
    assert sorted(parsed.rows["sku_norm"]) == ["HB1", "HB4"]
    assert parsed.rows.set_index("sku_norm").loc["HB4", "on_hand"] == INT64_MAX
    assert parsed.rejections["reason_code"].tolist() == ["on_hand_invalid", "on_hand_invalid"]
    assert all("past the largest count" in r for r in parsed.rejections["reason"])
