"""dim_date, dim_store, the SCD2 merge and dim_product (the point-in-time lookup: test_facts_sql.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from retail_assets.schemas.warehouse import DIM_DATE, DIM_PRODUCT, DIM_STORE
from retail_assets.transforms.dimensions import (
    build_dim_date,
    build_dim_product,
    build_dim_store,
    scd2_merge,
)

from . import T, raw_stores
from . import scenario_catalog as catalog


def test_dim_date_covers_every_day_with_iso_weekday():
    dim = DIM_DATE.schema.validate(build_dim_date(date(2024, 2, 28), date(2024, 3, 3)))
    assert dim["date_key"].tolist() == [20240228, 20240229, 20240301, 20240302, 20240303]
    row = dim.set_index("date_key").loc[20240302]  # a Saturday
    assert (row["year"], row["quarter"], row["month"], row["day"], row["day_of_week"]) == (2024, 1, 3, 2, 6)
    assert dim["is_weekend"].tolist() == [False, False, False, True, True]
    assert build_dim_date(date(2024, 3, 3), date(2024, 3, 2)).empty


def test_dim_store_has_online_and_unknown_and_keeps_keys_stable():
    first = build_dim_store(raw_stores({"store_code": "S2", "timezone": "America/Chicago"}, {"store_code": "S1"}),
                            None, reporting_timezone="America/New_York")
    DIM_STORE.schema.validate(first)
    keys = dict(zip(first["store_code"], first["store_key"], strict=True))
    assert keys == {"UNKNOWN": -1, "ONLINE": 1, "S1": 2, "S2": 3}
    online = first.set_index("store_code").loc["ONLINE"]
    assert (online["channel"], online["timezone"], online["store_name"]) == ("online", "America/New_York",
                                                                             "Online shop")
    assert first.set_index("store_code").loc["UNKNOWN", "channel"] == "unknown"

    # S2 renamed (type 1), S1 gone from stores.csv, A0 new: keys never move, A0 gets max + 1.
    second = build_dim_store(raw_stores({"store_code": "S2", "store_name": "Renamed"}, {"store_code": "A0"}),
                             first, reporting_timezone="America/New_York")
    DIM_STORE.schema.validate(second)
    by_code = second.set_index("store_code")
    assert by_code["store_key"].to_dict() == {"UNKNOWN": -1, "ONLINE": 1, "S1": 2, "S2": 3, "A0": 4}
    assert by_code.loc["S2", "store_name"] == "Renamed"
    assert by_code.loc["S2", "timezone"] == "America/New_York"


def test_dim_store_refuses_reserved_codes():
    with pytest.raises(ValueError, match="reserved"):
        build_dim_store(raw_stores({"store_code": "online"}), None, reporting_timezone="UTC")


# --------------------------------------------------------------------------------------------- scd2_merge

TRACKED = ["tier", "city"]


def snap(*rows: tuple[str, str | None, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"bk": k, "tier": tier, "city": city, "changed": pd.Timestamp(t) if t else pd.NaT}
         for k, tier, city, t in rows]
    )


def merge(existing: pd.DataFrame | None, snapshot: pd.DataFrame) -> pd.DataFrame:
    return scd2_merge(existing, snapshot, business_key="bk", tracked=TRACKED, changed_at="changed",
                      surrogate_key="sk")


def test_scd2_new_keys_get_versions_from_source_time_in_business_key_order():
    dim = merge(None, snap(("b", "gold", None, "2024-01-02"), ("a", "silver", "Oslo", "2024-01-01")))
    assert dim["sk"].tolist() == [-1, 1, 2]
    assert dim["bk"].tolist() == ["UNKNOWN", "a", "b"]
    assert dim["valid_from"].tolist() == [T("1900-01-01"), T("2024-01-01"), T("2024-01-02")]
    assert dim["valid_to"].isna().all()
    assert dim["is_current"].all()


def test_scd2_change_closes_current_and_opens_new_version_at_source_time():
    first = merge(None, snap(("a", "silver", "Oslo", "2024-01-01"), ("b", "gold", None, "2024-01-02")))
    second = merge(first, snap(("a", "gold", "Oslo", "2024-03-10 09:30"), ("b", "gold", None, "2024-05-01")))
    a = second[second["bk"] == "a"].set_index("sk")
    assert a.loc[1, "valid_to"] == T("2024-03-10 09:30")
    assert not a.loc[1, "is_current"]
    assert a.loc[1, "tier"] == "silver"
    assert a.loc[3, "valid_from"] == T("2024-03-10 09:30")
    assert a.loc[3, "tier"] == "gold"
    assert a.loc[3, "is_current"]
    assert pd.isna(a.loc[3, "valid_to"])
    # b is unchanged (a missing city equals a missing city): its row is kept as it was, despite the new time.
    pd.testing.assert_frame_equal(second[second["bk"] == "b"].reset_index(drop=True),
                                  first[first["bk"] == "b"].reset_index(drop=True))


def test_scd2_rerun_with_the_same_snapshot_changes_nothing():
    snapshot = snap(("a", "silver", "Oslo", "2024-01-01"), ("b", "gold", None, None))
    first = merge(None, snapshot)
    second = merge(first, snap(("a", "gold", "Oslo", "2024-03-10"), ("b", "gold", None, None)))
    again = merge(second, snap(("a", "gold", "Oslo", "2024-03-10"), ("b", "gold", None, None)))
    pd.testing.assert_frame_equal(again, second)
    assert (again["sk"] == -1).sum() == 1


def test_scd2_change_without_a_later_time_starts_one_microsecond_after_the_current_version():
    first = merge(None, snap(("a", "silver", None, "2024-01-01")))
    stale = merge(first, snap(("a", "gold", None, "2023-12-01")))
    untimed = merge(first, snap(("a", "gold", None, None)))
    for dim in (stale, untimed):
        new = dim[(dim["bk"] == "a") & dim["is_current"]].iloc[0]
        old = dim[(dim["bk"] == "a") & ~dim["is_current"]].iloc[0]
        assert new["valid_from"] == T("2024-01-01") + pd.Timedelta(microseconds=1)
        assert old["valid_to"] == new["valid_from"]


def test_scd2_key_missing_from_snapshot_stays_current_and_new_key_without_time_is_valid_since_ever():
    first = merge(None, snap(("a", "silver", None, "2024-01-01")))
    second = merge(first, snap(("b", "gold", None, None)))
    assert second.set_index("bk").loc["a", "is_current"]
    assert second.set_index("bk").loc["b", "valid_from"] == T("1900-01-01")


def test_scd2_refuses_a_snapshot_with_a_key_twice():
    with pytest.raises(ValueError, match="more than once"):
        merge(None, snap(("a", "silver", None, "2024-01-01"), ("a", "gold", None, "2024-01-02")))


# ------------------------------------------------------------------------------------ dim_product and lookup


def test_dim_product_price_change_is_a_new_version_and_rerun_is_stable():
    first = DIM_PRODUCT.schema.validate(build_dim_product(catalog(), None))
    assert first[["product_key", "sku", "sku_norm"]].values.tolist() == [
        [-1, "UNKNOWN", "UNKNOWN"], [1, "HB-004211", "HB004211"], [2, "SH-000100", "SH000100"]]
    changed = catalog(price=13.75, updated="2024-03-01 12:00")
    second = DIM_PRODUCT.schema.validate(build_dim_product(changed, first))
    brush = second[second["sku_norm"] == "HB004211"].set_index("product_key")
    assert brush.loc[1, "list_price"] == 12.50
    assert brush.loc[1, "valid_to"] == T("2024-03-01 12:00")
    assert brush.loc[3, "list_price"] == 13.75
    assert brush.loc[3, "valid_from"] == T("2024-03-01 12:00")
    # What the warehouse gives back (validated, i.e. coerced) merged with the same catalog: nothing changes.
    pd.testing.assert_frame_equal(build_dim_product(changed, second), second)


