"""The pandera model's rules run as SQL where the rows live give the verdict pandera gives on the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
import sqlalchemy as sa
from pandera.typing import Series

from retail_assets.checks import repeated_keys, schema_result, sql_failures, sql_rules, validate_frame
from retail_assets.resources import Warehouse
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.sources import RAW_POS_SALES
from retail_assets_tests.transforms import raw_pos_sales

BAD = [  # (column, bad value): one row breaking each value rule of raw_pos_sales
    ("store_code", ""), ("receipt_id", ""), ("line_no", 0), ("sku_norm", "ab-1"), ("quantity", 0),
    ("unit_price", -1.0), ("discount", -0.01), ("payment_method", "bitcoin"), ("source_line", 1),
]


def test_every_rule_of_the_model_fails_on_its_bad_row_as_pandera_does(warehouse_url):
    good = [{"receipt_id": f"R{i}", "sku_norm": "AB1"} for i in range(5)]
    bad = [{"receipt_id": f"B{i}", column: value} for i, (column, value) in enumerate(BAD)]
    repeated = [{"receipt_id": "R0", "sku_norm": "AB1"}]  # the natural key of the first good row again
    frame = raw_pos_sales(*good, *bad, *repeated)
    _, expected = validate_frame(RAW_POS_SALES, frame)
    assert expected is not None

    warehouse = Warehouse(url=warehouse_url)
    try:
        with warehouse.transaction() as tx:
            tx.append(RAW_POS_SALES, frame)
            table = warehouse.table(RAW_POS_SALES, tx.conn)
            found = sql_failures(tx.conn, RAW_POS_SALES, table, table.c.business_date == pd.Timestamp("2024-07-01"))
            none = sql_failures(tx.conn, RAW_POS_SALES, table, table.c.receipt_id == "R1")
            rules = sql_rules(RAW_POS_SALES, table)
    finally:
        warehouse.dispose()

    assert none is None  # a good row breaks nothing
    assert found is not None
    by_column = found.groupby("column")["count"].sum().to_dict()
    assert by_column == {**{column: 1 for column, _ in BAD}, ",".join(RAW_POS_SALES.natural_key): 1}
    assert set(expected["column"]) == set(by_column)  # the columns pandera flags, no more, no fewer
    cases = dict(zip(found["column"], found["failure_case"], strict=True))
    assert cases["sku_norm"] == "ab-1" and cases["payment_method"] == "bitcoin" and cases["line_no"] == "0"
    assert {column for column, _, _ in rules} == {c for c, col in RAW_POS_SALES.schema.columns.items() if col.checks}

    result = schema_result(RAW_POS_SALES, found, rows=len(frame))
    assert not result.passed and result.metadata["failure_count"].value == len(BAD) + 1


class Odd(pa.DataFrameModel):
    code: Series[str] = pa.Field(str_startswith="X")


def test_a_rule_with_no_sql_form_is_an_error_not_a_silent_pass():
    spec = TableSpec("odd", Odd, "a table with a rule SQL here does not know")
    table = spec.sql_table(sa.MetaData())
    with pytest.raises(NotImplementedError, match="str_startswith"):
        sql_rules(spec, table)


def test_a_natural_key_repeated_across_chunks_is_counted_by_the_warehouse(warehouse_url):
    """raw_pos_sales validates a day in chunks, each on its own: when a store has lines in two chunks, the
    warehouse counts the keys repeated across them; when no store does, no key can repeat and nothing is asked."""
    from retail_assets.assets.sources.pos import _may_repeat, _send

    first = raw_pos_sales({"receipt_id": "R1"}, {"receipt_id": "R2"}, {"store_code": "S2", "receipt_id": "R1"})
    second = raw_pos_sales({"receipt_id": "R3"}, {"receipt_id": "R1"})  # S1 R1 line 1 again, in another chunk
    third = raw_pos_sales({"store_code": "S3", "receipt_id": "R1"})
    day = pd.Timestamp("2024-07-01").date()
    warehouse = Warehouse(url=warehouse_url)
    try:
        with warehouse.transaction() as tx:
            stores: list = []
            checks: list = []
            for chunk in (first, second, third):
                _send(RAW_POS_SALES, lambda rows: tx.append(RAW_POS_SALES, rows), [chunk], checks, day, stores)
            assert checks == [None, None, None]  # each chunk on its own is valid
            assert _may_repeat(stores) and not _may_repeat([stores[0], stores[2]]) and not _may_repeat([])
            table = warehouse.table(RAW_POS_SALES, tx.conn)
            repeats = repeated_keys(tx.conn, table, RAW_POS_SALES.natural_key, table.c.business_date == day,
                                    "unique natural key")
            assert repeats is not None and repeats["count"].sum() == 1
            assert repeats["failure_case"].tolist() == ["S1|2024-07-01|R1|1"]
    finally:
        warehouse.dispose()


@pytest.mark.parametrize("values, expected", [
    (["a", "b", "c"], None),  # the distinct count proves there is nothing to look for
    (["a", "b", "a", "c", "b", "b"], {"a", "b"}),
    (["a", None, "b", None], {"None"}),  # NULLs are one group to GROUP BY, as before the distinct count
    (["a", None, "b"], None),
])
def test_a_single_key_column_is_checked_for_repeats(values: list[str | None], expected: set[str] | None,
                                                     tmp_path: Path):
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'keys.duckdb'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("k", sa.Text), sa.Column("day", sa.Integer))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"k": v, "day": 1} for v in values] + [{"k": "a", "day": 2}])
        found = repeated_keys(conn, table, ["k"], table.c.day == 1, "unique")
    engine.dispose()
    if expected is None:
        assert found is None
    else:
        assert set(found["failure_case"]) == expected and found["count"].sum() == len(expected)
