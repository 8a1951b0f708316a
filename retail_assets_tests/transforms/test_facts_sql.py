"""The pieces the fact statements share: the local timelines they convert times with (against pandas' own DST
handling) and the SCD2 validity ranges they look versions up in (on both warehouse engines)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import sqlalchemy as sa
from pandera.typing import Series

from retail_assets.resources import Warehouse
from retail_assets.resources.warehouse import sql_file
from retail_assets.schemas.base import TableSpec
from retail_assets.schemas.warehouse import DIM_CUSTOMER, DIM_PRODUCT
from retail_assets.transforms import facts_sql
from retail_assets.transforms.dimensions import build_dim_product
from retail_assets.transforms.facts_sql import TIME_SEGMENTS, local_time_segments, time_segments
from retail_assets.transforms.normalise import normalise_sku
from retail_assets_tests.conftest import drop_pg_database, engine_warehouse

from . import T
from . import scenario_catalog as catalog

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Australia/Sydney",
         "America/St_Johns", "Asia/Kolkata", "UTC", "Pacific/Apia"]


def convert(segments, local: np.ndarray) -> np.ndarray:
    """What local_to_utc.sql does with the segments: the one segment each local time is in, then
    utc_from + (t - local_from), or utc_from in a fixed one."""
    out = np.full(len(local), np.datetime64("NaT", "ns"))
    hits = np.zeros(len(local), dtype=int)
    for s in segments:
        inside = (local >= np.datetime64(s.local_from)) & (local < np.datetime64(s.local_to))
        hits += inside
        shift = np.timedelta64(0, "ns") if s.fixed else local[inside] - np.datetime64(s.local_from, "ns")
        out[inside] = np.datetime64(s.utc_from, "ns") + shift
    assert (hits == 1).all(), "every local time is in exactly one segment"
    return out


def pandas_local_to_utc(local: np.ndarray, zone: str) -> np.ndarray:
    """pandas' reading of the same rule: the first of a repeated hour, a skipped hour shifted forward."""
    stamps = pd.DatetimeIndex(local)
    utc = stamps.tz_localize(zone, ambiguous=np.ones(len(stamps), dtype=bool), nonexistent="shift_forward")
    return utc.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()


@pytest.mark.parametrize("zone", ZONES)
def test_segments_convert_every_minute_of_a_year_like_pandas(zone):
    local = pd.date_range("2024-01-01", "2025-01-01", freq="min").to_numpy()
    segments = local_time_segments(zone, datetime(2024, 1, 1), datetime(2025, 1, 1))
    np.testing.assert_array_equal(convert(segments, local), pandas_local_to_utc(local, zone))


@pytest.mark.parametrize("zone", ZONES)
def test_segments_give_every_minute_of_a_year_its_local_time_like_pandas(zone):
    """utc_to_local.sql: a UTC instant is in exactly one segment's [utc_start, utc_end), the repeated hour's
    second pass too."""
    utc = pd.date_range("2024-01-01 12:00", "2024-12-31", freq="min").to_numpy()
    frame = time_segments({zone: (datetime(2024, 1, 1), datetime(2025, 1, 1))})
    out = np.full(len(utc), np.datetime64("NaT", "ns"))
    hits = np.zeros(len(utc), dtype=int)
    for s in frame.itertuples():
        inside = (utc >= np.datetime64(s.utc_start)) & (utc < np.datetime64(s.utc_end))
        hits += inside
        out[inside] = utc[inside] + (np.datetime64(s.local_from, "ns") - np.datetime64(s.utc_from, "ns"))
    assert (hits == 1).all()
    expected = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(zone).tz_localize(None).as_unit("ns").to_numpy()
    np.testing.assert_array_equal(out, expected)


def test_segments_keep_seconds_and_microseconds_and_the_dst_rules():
    t = pd.Timestamp
    local = np.array([t("2024-03-10 02:30:15.250"), t("2024-11-03 01:30:59.999999"), t("2024-11-03 02:00:00"),
                      t("2024-07-01 12:00:01")], dtype="datetime64[ns]")
    segments = local_time_segments("America/New_York", datetime(2024, 3, 10), datetime(2024, 11, 4))
    assert convert(segments, local).tolist() == [
        t("2024-03-10 07:00").value,                # skipped hour: the first instant after the gap
        t("2024-11-03 05:30:59.999999").value,      # repeated hour: the first occurrence (EDT)
        t("2024-11-03 07:00").value,                # after the repeated hour: EST
        t("2024-07-01 16:00:01").value,
    ]


def test_a_half_hour_spring_forward_moves_to_the_first_valid_instant():
    """Lord Howe Island moves its clocks by 30 minutes: 02:00-02:30 does not exist on 2024-10-06. pandas'
    ``shift_forward`` moves such a time a whole hour (03:00 local, 16:00 UTC); the first valid instant is 02:30
    local, 15:30 UTC, and that is what the statement uses."""
    t = pd.Timestamp
    local = np.array([t("2024-10-06 01:59"), t("2024-10-06 02:15"), t("2024-10-06 02:30"),
                      t("2024-04-07 01:45")], dtype="datetime64[ns]")
    segments = local_time_segments("Australia/Lord_Howe", datetime(2024, 4, 1), datetime(2024, 10, 7))
    assert convert(segments, local).tolist() == [
        t("2024-10-05 15:29").value, t("2024-10-05 15:30").value, t("2024-10-05 15:30").value,
        t("2024-04-06 14:45").value,  # 01:45 happens twice on 2024-04-07: the first time, still at +11:00
    ]


def test_the_transition_is_found_to_the_second_whatever_the_first_time_of_the_day():
    t = pd.Timestamp
    first = datetime(2024, 3, 10, 0, 0, 7, 123456)  # the day's earliest sale, with microseconds
    segments = local_time_segments("America/New_York", first, datetime(2024, 3, 10, 23, 0))
    local = np.array([t("2024-03-10 01:59:59.999999"), t("2024-03-10 02:00:00"), t("2024-03-10 02:59:59.999999"),
                      t("2024-03-10 03:00:00")], dtype="datetime64[ns]")
    assert convert(segments, local).tolist() == [
        t("2024-03-10 06:59:59.999999").value, t("2024-03-10 07:00").value, t("2024-03-10 07:00").value,
        t("2024-03-10 07:00").value,
    ]


# ------------------------------------------------------------------------------------- the statements' pieces


class _Probes(pa.DataFrameModel):
    probe: Series[int] = pa.Field()
    dimension: Series[str] = pa.Field()
    business_key: Series[str] = pa.Field(nullable=True)
    local_time: Series[pd.Timestamp] = pa.Field(nullable=True)
    timezone: Series[str] = pa.Field(nullable=True)


PROBES = TableSpec("probes", _Probes, "times and keys to look up")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    url, database = engine_warehouse(request, tmp_path_factory.mktemp("pieces"))
    warehouse = Warehouse(url=url)
    dim = build_dim_product(catalog(price=13.75, updated="2024-03-01 12:00"), build_dim_product(catalog(), None))
    with warehouse.transaction() as tx:
        tx.replace(DIM_PRODUCT, dim, {})
        tx.replace(DIM_CUSTOMER, DIM_CUSTOMER.empty(), {})
    yield warehouse
    warehouse.dispose()
    if database:
        drop_pg_database(request.getfixturevalue("pg_admin"), database)


def _versions(warehouse: Warehouse, keys: list[str | None], at: list[pd.Timestamp]) -> list[int]:
    """The product version of each key at each (UTC) time, by scd2_ranges.sql."""
    probes = pd.DataFrame({"probe": range(len(keys)), "dimension": "product", "business_key": keys,
                           "local_time": at, "timezone": None})
    statement = ("WITH " + sql_file(facts_sql.__file__, "scd2_ranges.sql") + " SELECT q.probe, "
                 "COALESCE(v.surrogate_key, :unknown_key) FROM probes q LEFT JOIN version_ranges v "
                 "ON v.dimension = q.dimension AND v.business_key = q.business_key "
                 "AND q.local_time >= v.valid_lo AND q.local_time < v.valid_hi ORDER BY q.probe")
    params = {"unknown_key": -1, "beginning": datetime(1, 1, 1), "end": datetime(9999, 12, 31)}
    with warehouse.transaction() as tx, tx.staged(PROBES, probes):
        return [int(k) for _, k in tx.conn.execute(sa.text(statement), params)]


def test_a_fact_points_at_the_version_valid_at_its_time(warehouse):
    keys = ["HB004211", "HB004211", "HB004211", "HB004211", "NOPE", None]
    at = [T("2024-02-01"),            # after v1 began, before the change
          T("2024-03-01 11:59:59"),   # just before
          T("2024-03-01 12:00"),      # the change instant belongs to the new version
          T("2023-01-01"),            # before the first version: the earliest
          T("2024-02-01"), T("2024-02-01")]
    assert _versions(warehouse, keys, at) == [1, 1, 3, 1, -1, -1]


@pytest.mark.parametrize("printed", ["hb-004211", "HB004211", " HB-004211 ", "HB-004211"])
def test_sku_variants_match_the_catalog_product(warehouse, printed: str):
    assert _versions(warehouse, list(normalise_sku(pd.Series([printed]))), [T("2024-02-01")]) == [1]


def test_the_statements_convert_times_as_the_segments_say(warehouse):
    """local_to_utc.sql in the warehouse, with time_segments staged as the statements stage it."""
    zone = "America/New_York"
    local = [T("2024-03-10 01:59:59.999999"), T("2024-03-10 02:30"), T("2024-11-03 01:30"), T("2024-11-03 02:00")]
    probes = pd.DataFrame({"probe": range(len(local)), "dimension": "-", "business_key": None, "local_time": local,
                           "timezone": zone})
    statement = ("SELECT q.probe,\n" + sql_file(facts_sql.__file__, "local_to_utc.sql")
                 + "\nFROM probes q JOIN time_segments g ON g.timezone = q.timezone AND q.local_time >= g.local_from "
                 "AND q.local_time < g.local_to ORDER BY q.probe")
    segments = time_segments({zone: (datetime(2024, 3, 9), datetime(2024, 11, 4))})
    with warehouse.transaction() as tx, tx.staged(PROBES, probes), tx.staged(TIME_SEGMENTS, segments):
        got = [pd.Timestamp(t) for _, t in tx.conn.execute(sa.text(statement))]
    assert got == [T("2024-03-10 06:59:59.999999"), T("2024-03-10 07:00"), T("2024-11-03 05:30"),
                   T("2024-11-03 07:00")]
