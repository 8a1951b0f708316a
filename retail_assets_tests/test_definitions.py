"""The definitions as the UI shows them: groups, descriptions, checks on every asset, schemas from the models."""

from __future__ import annotations

import os
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


def test_run_time_settings_are_resource_fields_bound_to_their_variables(monkeypatch):
    """A variable that is set is bound as dg.EnvVar (the UI shows its name, never a URL or a password); an unset one
    is the documented default; nothing is written into the environment."""
    from retail_assets.definitions import build_resources
    from retail_assets.settings import DEFAULTS

    for name in ("RETAIL_POS_CHUNK_BYTES", "RETAIL_UI_BASE_URL", "RETAIL_ALERT_SMTP_HOST", "RETAIL_RESEND_HOLD_SHARE"):
        monkeypatch.delenv(name, raising=False)
    resources = build_resources()
    assert resources["pos_drop"].chunk_bytes == int(DEFAULTS["RETAIL_POS_CHUNK_BYTES"])
    assert resources["pos_drop"].resend_hold_share == 0.5
    assert resources["alerts"].smtp_host is None and resources["alerts"].ui_base_url == "http://localhost:3000"
    assert "RETAIL_POS_CHUNK_BYTES" not in os.environ and "RETAIL_UI_BASE_URL" not in os.environ

    monkeypatch.setenv("RETAIL_POS_CHUNK_BYTES", "1500")
    monkeypatch.setenv("RETAIL_RESEND_HOLD_SHARE", "0.9")
    monkeypatch.setenv("RETAIL_ALERT_WEBHOOK_URL", "https://hooks.example/services/T0/B0/secret-token")
    resources = build_resources()
    chunk = resources["pos_drop"].chunk_bytes
    assert type(chunk) is type(dg.EnvVar.int("X")) and chunk.name == "RETAIL_POS_CHUNK_BYTES"
    assert resources["pos_drop"].resend_hold_share == 0.9  # a number: Dagster has no float EnvVar, and no secret
    assert resources["alerts"].webhook_url == dg.EnvVar("RETAIL_ALERT_WEBHOOK_URL")
    assert "secret-token" not in repr(resources["alerts"])


def test_no_asset_or_sensor_reads_the_environment():
    """Settings reach asset and sensor bodies through resources and the partitions definition, never by reading
    the environment there (load_settings is for the command line's entry points)."""
    code = [*(ROOT / "retail_assets" / "assets").rglob("*.py"), *(ROOT / "retail_assets" / "automation").glob("*.py")]
    for path in code:
        text = path.read_text()
        assert "load_settings" not in text, path
        # alerts.py masks the secrets of the whole process (the instance's password, ...) in what it sends
        assert "os.environ" not in text or path.name == "alerts.py", path


def test_table_docs_are_up_to_date():
    assert (ROOT / "docs" / "tables.md").read_text() == tables_markdown(), \
        "docs/tables.md is stale: run python -m retail_assets.docs"


def test_redaction_hides_passwords():
    from retail_assets.resources.urls import redact

    text = redact("connect to postgresql+psycopg://etl:s3cr%40t@db:5432/wh failed")
    assert "s3cr" not in text and "etl:***@db" in text
