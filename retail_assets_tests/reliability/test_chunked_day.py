"""A POS file larger than ``RETAIL_POS_CHUNK_BYTES`` is read, checked and written chunk by chunk
(``parse_stream``), and the warehouse is the same as when every file is read whole: the same raw rows, rejections
and ledger, day by day, through the real asset graph on DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import retail_assets.assets.sources.pos as pos_assets
from retail_assets.resources import Warehouse
from retail_assets.runner import run_graph
from retail_assets_tests.conftest import platform_environment

CHUNK = 1500  # bytes: every sales file of the small company is several chunks

TABLES = {
    "raw_pos_sales": "business_date, store_code, receipt_id, line_no",
    "raw_pos_inventory": "business_date, store_code, sku_norm",
    "rejections": "asset, source_ref, source_key, reason_code",
    "pos_file_ledger": "path, content_hash",
}


def _load(root: Path, folder: Path, chunk: int | None, monkeypatch: pytest.MonkeyPatch) -> dict:
    url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    folder.mkdir()
    with monkeypatch.context() as mp:
        for key, value in platform_environment(root, url, folder / "dagster_home").items():
            mp.setenv(key, value)
        if chunk:
            mp.setenv("RETAIL_POS_CHUNK_BYTES", str(chunk))
        lines: list[str] = []
        assert run_graph(echo=lines.append) == 0, "\n".join(lines)
    wh = Warehouse(url=url)
    try:
        return {name: wh.query(f"SELECT * FROM {name} ORDER BY {order}").drop(columns=["run_id"])
                for name, order in TABLES.items()}
    finally:
        wh.dispose()


def test_files_read_in_chunks_give_the_same_warehouse(company, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root, _ = company
    streamed: list[str] = []
    real = pos_assets.parse_stream

    def counting(open_stream, layout, ctx, chunk_bytes):
        streamed.append(ctx.path)
        return real(open_stream, layout, ctx, chunk_bytes)

    whole = _load(root, tmp_path / "whole", None, monkeypatch)
    assert not streamed  # the default chunk is larger than any file of the small company
    monkeypatch.setattr(pos_assets, "parse_stream", counting)
    chunked = _load(root, tmp_path / "chunked", CHUNK, monkeypatch)
    big = [p for p in root.joinpath("pos_drop").rglob("*") if p.is_file() and p.stat().st_size > 2 * CHUNK]
    assert len(streamed) >= len({p.name for p in big}) > 5  # each file of several chunks went through parse_stream
    assert len(whole["raw_pos_sales"]) > 400 and len(whole["rejections"]) > 10
    for name in TABLES:
        assert whole[name].equals(chunked[name]), name
