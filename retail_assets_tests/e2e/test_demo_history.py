"""The demo shows history: the sample company loaded as it stood when its period began, then the whole period.

Both steps go through the real command line (``retail-etl generate [--as-of-start]``, ``retail-etl run``) on
SQLite sources and a DuckDB warehouse, as ``python3 -m retail_assets demo`` does, on a smaller company of the same
generator. The versions are counted in the warehouse and compared with what the sources say changed (the two
states of the source databases, read with sqlite3), and every fact is checked against the version valid when it
was sold.
"""

from __future__ import annotations

import io
import re
import shutil
import sqlite3
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from retail_assets.cli import main
from retail_assets.resources import Warehouse
from retail_assets_tests.conftest import platform_environment

COMPANY = ["--stores", "4", "--days", "5", "--lines-per-store-day", "60", "--seed", "11"]
HISTORY = re.compile(r"history: (\d+) of (\d+) products \((\d+) versions in dim_product\) and (\d+) of (\d+) "
                     r"customers \((\d+) versions in dim_customer\) have more than one version")


def _versions(wh: Warehouse) -> dict[str, tuple[int, int, int]]:
    """(entities, entities with more than one version, versions) of each SCD2 dimension."""
    out = {}
    for table, key, surrogate in (("dim_product", "sku_norm", "product_key"),
                                  ("dim_customer", "customer_id", "customer_key")):
        row = wh.query(f"SELECT COUNT(*) AS entities, SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) AS changed, "
                       f"SUM(n) AS versions FROM (SELECT {key}, COUNT(*) AS n FROM {table} "
                       f"WHERE {surrogate} <> -1 GROUP BY {key}) v").iloc[0]
        out[table] = (int(row["entities"]), int(row["changed"] or 0), int(row["versions"]))
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("demo")
    data = base / "data"
    url = f"duckdb:///{data / 'warehouse.duckdb'}"
    env = platform_environment(data, url, data / "dagster_home")
    outputs: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("RETAIL_POS_LAYOUTS_DIR")  # the layouts that ship with the platform
        counts = {}
        for step, extra in (("opening", ["--as-of-start"]), ("period", [])):
            printed = io.StringIO()
            with redirect_stdout(printed):
                assert main(["generate", "--out", str(data), *COMPANY, *extra]) == 0
                code = main(["run"])
            outputs[step] = printed.getvalue()
            assert code == 0, outputs[step]
            shutil.copytree(data, base / step, ignore=shutil.ignore_patterns("warehouse.duckdb*", "dagster_home",
                                                                            "logs", "pos_drop"))
            wh = Warehouse(url=url)  # DuckDB: one configuration per file and process, so not kept open over a run
            try:
                counts[step] = _versions(wh)
            finally:
                wh.dispose()
        wh = Warehouse(url=url)
        yield {"base": base, "warehouse": wh, "outputs": outputs, "counts": counts}
        wh.dispose()


def _sqlite(path: Path, sql: str) -> pd.DataFrame:
    with sqlite3.connect(path) as conn:
        return pd.read_sql_query(sql, conn)


def test_the_opening_load_has_one_version_of_everything(demo: dict):
    products, customers = demo["counts"]["opening"]["dim_product"], demo["counts"]["opening"]["dim_customer"]
    assert products[1] == 0 and products[0] == products[2] == 300
    assert customers[1] == 0 and customers[0] == customers[2] > 0
    assert "0 business day(s)" in demo["outputs"]["opening"]
    assert "history: 0 of 300 products (300 versions in dim_product)" in demo["outputs"]["opening"]


def test_every_product_that_changed_has_two_versions(demo: dict):
    base, wh = demo["base"], demo["warehouse"]
    columns = "sku, name, category, subcategory, list_price, updated_at"
    before = _sqlite(base / "opening" / "online_store.db", f"SELECT {columns} FROM products").set_index("sku")
    after = _sqlite(base / "period" / "online_store.db", f"SELECT {columns} FROM products").set_index("sku")
    changed = after[(after[["name", "category", "subcategory", "list_price"]]
                     != before.loc[after.index, ["name", "category", "subcategory", "list_price"]]).any(axis=1)]
    assert len(changed) >= 10
    assert (after.loc[changed.index, "updated_at"] > before.loc[changed.index, "updated_at"]).all()
    assert (before.loc[changed.index, "category"] != changed["category"]).any(), "a category move"
    assert (before.loc[changed.index, "list_price"] != changed["list_price"]).any(), "a price change"

    entities, with_history, versions = demo["counts"]["period"]["dim_product"]
    assert (entities, with_history, versions) == (300, len(changed), 300 + len(changed))
    dim = wh.query("SELECT sku, category, list_price, valid_from, valid_to, is_current FROM dim_product "
                   "WHERE product_key <> -1 ORDER BY sku, valid_from")
    for sku, row in changed.iterrows():
        old, new = dim[dim["sku"] == sku].itertuples()
        assert (old.category, float(old.list_price)) == (before.loc[sku, "category"], before.loc[sku, "list_price"])
        assert (new.category, float(new.list_price)) == (row["category"], row["list_price"])
        assert pd.Timestamp(new.valid_from) == pd.Timestamp(old.valid_to) == pd.Timestamp(row["updated_at"])
        assert (old.is_current, new.is_current) == (False, True)


def test_customers_who_moved_or_changed_tier_have_two_versions(demo: dict):
    base, wh = demo["base"], demo["warehouse"]
    columns = "contact_id, email, city, loyalty_tier, loyalty_card, updated_at, is_deleted"
    before = _sqlite(base / "opening" / "crm.db", f"SELECT {columns} FROM contacts").set_index("contact_id")
    after = _sqlite(base / "period" / "crm.db", f"SELECT {columns} FROM contacts").set_index("contact_id")
    after["email_norm"] = after["email"].str.strip().str.lower()
    single = after.groupby("email_norm")["email"].transform("size") == 1
    kept = after.loc[after.index.isin(before.index) & single & (after["is_deleted"] == 0)]
    moved = kept[kept["city"] != before.loc[kept.index, "city"]]
    tiers = kept[kept["loyalty_tier"].fillna("") != before.loc[kept.index, "loyalty_tier"].fillna("")]
    assert len(moved) >= 5 and len(tiers) >= 5

    entities, with_history, versions = demo["counts"]["period"]["dim_customer"]
    assert with_history >= len(moved) + len(tiers) and versions == entities + with_history  # two loads: <= 2 each
    dim = wh.query("SELECT crm_contact_id, city, loyalty_tier, valid_from, valid_to, is_current FROM dim_customer "
                   "WHERE customer_key <> -1 AND crm_contact_id IS NOT NULL ORDER BY crm_contact_id, valid_from")
    for contacts, column in ((moved, "city"), (tiers, "loyalty_tier")):
        for contact_id, row in contacts.iterrows():
            old, new = dim[dim["crm_contact_id"] == contact_id].itertuples()
            assert (getattr(old, column), getattr(new, column)) == (before.loc[contact_id, column], row[column])
            assert pd.Timestamp(new.valid_from) >= pd.Timestamp(row["updated_at"])  # or when an account joined
            assert pd.Timestamp(old.valid_to) == pd.Timestamp(new.valid_from) and new.is_current


def test_a_contact_entered_again_is_merged_into_the_first(demo: dict):
    base, wh = demo["base"], demo["warehouse"]
    before = _sqlite(base / "opening" / "crm.db", "SELECT contact_id FROM contacts")
    after = _sqlite(base / "period" / "crm.db", "SELECT contact_id, email, loyalty_card, created_at FROM contacts")
    after["email_norm"] = after["email"].str.strip().str.lower()
    new = after[~after["contact_id"].isin(before["contact_id"])]
    assert len(new) >= 1
    for contact in new.itertuples():
        first = after[(after["email_norm"] == contact.email_norm)].sort_values("created_at").iloc[0]
        assert first["contact_id"] != contact.contact_id
        customer_id = wh.scalar("SELECT customer_id FROM bridge_customer_identity WHERE source_system = 'crm' "
                                "AND source_key = :k", k=contact.contact_id)
        assert customer_id == f"crm:{first['contact_id']}"
        assert wh.scalar("SELECT customer_id FROM bridge_customer_identity WHERE source_system = 'loyalty_card' "
                         "AND source_key = :k", k=contact.loyalty_card) == customer_id
        cards = wh.query("SELECT loyalty_card, valid_from FROM dim_customer WHERE customer_id = :c "
                         "ORDER BY valid_from", c=customer_id)
        assert cards["loyalty_card"].tolist() == [first["loyalty_card"], contact.loyalty_card]
        assert pd.Timestamp(cards["valid_from"].iloc[-1]) >= pd.Timestamp(contact.created_at)
    # The new cards are used at the tills, after their contact was created: those sales are the new versions'.
    sales = wh.query("SELECT c.loyalty_card, c.is_current FROM fact_sales f JOIN dim_customer c "
                     "ON c.customer_key = f.customer_key WHERE f.channel = 'store' AND c.customer_id IN "
                     "(SELECT customer_id FROM dim_customer GROUP BY customer_id HAVING COUNT(*) > 1)")
    assert set(new["loyalty_card"]) & set(sales["loyalty_card"])


def test_facts_point_at_the_version_valid_when_sold(demo: dict):
    wh = demo["warehouse"]
    for dim, key, business_key in (("dim_product", "product_key", "sku_norm"),
                                   ("dim_customer", "customer_key", "customer_id")):
        # Valid when sold; or, sold before the first version the warehouse ever saw (an online account opened in
        # the period and updated later is first seen with its updated_at), that first version (SPEC's rule).
        wrong = wh.scalar(f"SELECT COUNT(*) FROM fact_sales f JOIN {dim} d ON d.{key} = f.{key} "
                          f"WHERE f.{key} <> -1 AND NOT (d.valid_from <= f.sold_at_utc "
                          f"AND (d.valid_to IS NULL OR f.sold_at_utc < d.valid_to)) AND NOT (d.valid_from = "
                          f"(SELECT MIN(e.valid_from) FROM {dim} e WHERE e.{business_key} = d.{business_key}) "
                          f"AND f.sold_at_utc < d.valid_from)")
        assert wrong == 0, dim
        on_old = wh.scalar(f"SELECT COUNT(*) FROM fact_sales f JOIN {dim} d ON d.{key} = f.{key} "
                           f"WHERE NOT d.is_current")
        assert on_old > 0, f"sales before a change keep the old version of {dim}"

    # A product whose price changed: sales before the change carry the old version's key and price, after it the
    # new one's. POS prices change overnight, online ones at the instant: both agree with the catalog's versions.
    # (A return is dated when it is made and refunds what was paid: its price can be the earlier version's.)
    sales = wh.query("SELECT p.sku_norm, p.product_key, p.list_price, p.valid_from, p.valid_to, f.sold_at_utc, "
                     "f.unit_price, f.channel FROM fact_sales f JOIN dim_product p ON p.product_key = f.product_key "
                     "WHERE p.sku_norm IN (SELECT sku_norm FROM dim_product GROUP BY sku_norm "
                     "HAVING COUNT(DISTINCT list_price) > 1) AND NOT f.is_return")
    assert len(sales) > 0 and (sales["unit_price"].astype(float) == sales["list_price"].astype(float)).all()
    both = sales.groupby("sku_norm")["product_key"].nunique()
    assert (both == 2).any(), "some repriced product sold at both prices"
    sku = both[both == 2].index[0]
    one = sales[sales["sku_norm"] == sku].sort_values("sold_at_utc")
    change = one["valid_from"].max()
    old_key, new_key = (one.loc[one["valid_from"] == one["valid_from"].min(), "product_key"].iloc[0],
                        one.loc[one["valid_from"] == change, "product_key"].iloc[0])
    assert (one.loc[one["sold_at_utc"] < change, "product_key"] == old_key).all()
    assert (one.loc[one["sold_at_utc"] >= change, "product_key"] == new_key).all()


def test_the_summary_counts_history_and_says_the_dirt_is_on_purpose(demo: dict):
    text = demo["outputs"]["period"]
    counts = demo["counts"]["period"]
    found = HISTORY.search(text)
    assert found, text
    products, customers = counts["dim_product"], counts["dim_customer"]
    assert tuple(map(int, found.groups())) == (products[1], products[0], products[2],
                                               customers[1], customers[0], customers[2])
    rejected = re.search(r"rejected rows: ([\d,]+) .*\n((?:  \S+ +[\d,]+\n)+)", text)
    assert rejected and int(rejected[1].replace(",", "")) > 0
    reasons = dict(line.split() for line in rejected[2].strip().splitlines())
    assert {"duplicate_line", "missing_column", "unknown_store"} <= set(reasons), reasons
    assert "the sample company of `retail-etl generate` is dirty on purpose" in text
    assert "days loaded: 5 of 5" in text
