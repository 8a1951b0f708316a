"""A warehouse (each engine) holding the hand-made star schema of ``data.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from retail_assets.resources import Warehouse
from retail_assets_tests.marts.data import StarSchema, load, star_schema


@pytest.fixture(scope="session")
def star() -> StarSchema:
    return star_schema()


@pytest.fixture
def warehouse(warehouse_url: str, star: StarSchema) -> Iterator[Warehouse]:
    """The star schema loaded into a fresh warehouse through the resource's own bulk load."""
    wh = Warehouse(url=warehouse_url)
    load(wh, star)
    yield wh
    wh.dispose()
