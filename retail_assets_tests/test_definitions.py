"""The definitions as the UI shows them: groups, descriptions, checks on every asset, schemas from the models."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from retail_assets.definitions import defs
from retail_assets.docs import tables_markdown
from retail_assets.schemas import ALL_TABLES

ROOT = Path(__file__).resolve().parent.parent


def _graph() -> dg.AssetGraph:
    return defs.resolve_asset_graph()


def test_every_asset_has_a_group_description_owner_and_a_check():
    graph = _graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    assert graph.materializable_asset_keys
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.group_name in {"sources", "warehouse", "marts"}, key
        assert node.description and len(node.description) > 40, key
        assert node.owners == ["team:data-platform"], key
        assert node.kinds, key
        assert key in checked, f"{key.to_user_string()} has no asset check"


def test_column_schema_metadata_comes_from_the_table_model():
    graph = _graph()
    for key in graph.materializable_asset_keys:
        name = key.to_user_string()
        spec = ALL_TABLES.get(name)
        if spec is None:
            continue
        schema = graph.get(key).metadata["dagster/column_schema"]
        schema = getattr(schema, "schema", schema)
        assert [c.name for c in schema.columns] == spec.columns, name


def test_schema_checks_are_blocking():
    for check in _graph().asset_check_keys:
        if check.name == "schema":
            assert _graph().get(check).blocking, check


def test_jobs_cover_the_graph_in_load_order():
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"refresh_reference", "daily_load", "refresh_marts"} <= names
    daily = defs.resolve_job_def("daily_load")
    assert daily.partitions_def is not None
    assert {"raw_pos_sales", "fact_sales"} <= {k.to_user_string() for k in daily.asset_layer.executable_asset_keys}


def test_connection_strings_are_bound_as_environment_variables():
    for key in ("online_store", "crm", "warehouse"):
        assert isinstance(defs.resources[key].url, dg.EnvVar), key


def test_table_docs_are_up_to_date():
    assert (ROOT / "docs" / "tables.md").read_text() == tables_markdown(), \
        "docs/tables.md is stale: run python -m retail_assets.docs"


def test_redaction_hides_passwords():
    from retail_assets.resources.urls import redact

    text = redact("connect to postgresql+psycopg://etl:s3cr%40t@db:5432/wh failed")
    assert "s3cr" not in text and "etl:***@db" in text
