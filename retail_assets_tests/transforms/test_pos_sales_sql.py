"""The local timelines the POS fact statement converts store times with, against pandas' own DST handling."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from retail_assets.transforms.facts import _local_to_utc
from retail_assets.transforms.pos_sales_sql import local_time_segments

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Australia/Sydney",
         "America/St_Johns", "Asia/Kolkata", "UTC", "Pacific/Apia"]


def convert(segments, local: np.ndarray) -> np.ndarray:
    """What the SQL does with the segments: the one segment each local time is in, then utc_from + (t - from)."""
    out = np.full(len(local), np.datetime64("NaT", "ns"))
    hits = np.zeros(len(local), dtype=int)
    for s in segments:
        inside = (local >= np.datetime64(s.local_from)) & (local < np.datetime64(s.local_to))
        hits += inside
        shift = np.timedelta64(0, "ns") if s.fixed else local[inside] - np.datetime64(s.local_from, "ns")
        out[inside] = np.datetime64(s.utc_from, "ns") + shift
    assert (hits == 1).all(), "every local time is in exactly one segment"
    return out


@pytest.mark.parametrize("zone", ZONES)
def test_segments_convert_every_minute_of_a_year_like_pandas(zone):
    local = pd.date_range("2024-01-01", "2025-01-01", freq="min").to_numpy()
    segments = local_time_segments(zone, datetime(2024, 1, 1), datetime(2025, 1, 1))
    expected = _local_to_utc(pd.Series(local), pd.Series(zone, index=range(len(local)))).to_numpy()
    np.testing.assert_array_equal(convert(segments, local), expected)


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
