"""One customer across channels: CRM duplicates merged, online customers joined by email, the bridge."""

from __future__ import annotations

import pandas as pd

from retail_assets.schemas.warehouse import BRIDGE_CUSTOMER_IDENTITY, DIM_CUSTOMER
from retail_assets.transforms.identity import SNAPSHOT_COLUMNS, build_dim_customer, resolve_customers

from . import T, raw_online_customers
from . import scenario_contacts as contacts
from . import scenario_online_customers as online


def test_duplicate_contacts_merge_into_the_earliest_created_with_the_latest_attributes():
    snapshot, _ = resolve_customers(contacts(), online())
    assert list(snapshot.columns) == SNAPSHOT_COLUMNS
    assert snapshot["customer_id"].tolist() == ["crm:C1", "crm:C3", "online:600"]
    ann = snapshot.set_index("customer_id").loc["crm:C1"]
    assert ann["crm_contact_id"] == "C1"
    assert ann["email"] == "ann@example.com"
    assert (ann["first_name"], ann["last_name"]) == ("Ann", "Lee")      # from C2, the latest update
    assert ann["city"] == "Boston"                                      # C2 has none: filled from C1
    assert ann["phone"] == "+16175550100"
    assert ann["loyalty_card"] == "LC-200"
    assert ann["loyalty_tier"] == "silver"
    assert ann["changed_at"] == T("2023-06-01")


def test_online_customer_joins_crm_by_normalised_email_and_the_lowest_id_wins():
    snapshot, bridge = resolve_customers(contacts(), online())
    assert snapshot.set_index("customer_id").loc["crm:C1", "online_customer_id"] == 501
    resolved = bridge[bridge["source_system"] == "online"].set_index("source_key")["customer_id"]
    assert resolved.to_dict() == {"501": "crm:C1", "502": "crm:C1", "600": "online:600"}


def test_online_only_customer_is_a_customer_of_its_own():
    snapshot, bridge = resolve_customers(contacts(), online())
    bob = snapshot.set_index("customer_id").loc["online:600"]
    assert bob["online_customer_id"] == 600
    assert pd.isna(bob["crm_contact_id"])
    assert (bob["email"], bob["first_name"], bob["phone"], bob["country"]) == ("bob@example.com", "Bob",
                                                                              "5550102233", "US")
    assert bob["changed_at"] == T("2023-09-09")
    emails = bridge[bridge["source_system"] == "email"].set_index("source_key")["customer_id"]
    assert emails.to_dict() == {"ann@example.com": "crm:C1", "bob@example.com": "online:600",
                                "carl@example.com": "crm:C3"}


def test_bridge_resolves_every_contact_and_card_of_merged_duplicates_but_not_deleted_ones():
    _, bridge = resolve_customers(contacts(), online())
    BRIDGE_CUSTOMER_IDENTITY.schema.validate(bridge)
    assert not bridge.duplicated(["source_system", "source_key"]).any()
    crm = bridge[bridge["source_system"] == "crm"].set_index("source_key")["customer_id"].to_dict()
    cards = bridge[bridge["source_system"] == "loyalty_card"].set_index("source_key")["customer_id"].to_dict()
    assert crm == {"C1": "crm:C1", "C2": "crm:C1", "C3": "crm:C3"}
    assert cards == {"LC-100": "crm:C1", "LC-200": "crm:C1", "LC-300": "crm:C3"}
    assert "gone@example.com" not in set(bridge["source_key"])


def test_customer_joined_by_an_account_created_after_the_contact_changes_at_the_account_creation():
    late = raw_online_customers({"customer_id": 700, "email": "carl@example.com", "created_at": T("2024-02-02"),
                                 "updated_at": T("2024-02-03")})
    snapshot, _ = resolve_customers(contacts(), late)
    assert snapshot.set_index("customer_id").loc["crm:C3", "changed_at"] == T("2024-02-02")


def test_loyalty_tier_change_is_a_new_customer_version_from_the_source_update_time():
    first = build_dim_customer(resolve_customers(contacts(), online())[0], None)
    DIM_CUSTOMER.schema.validate(first)
    assert first[["customer_key", "customer_id"]].values.tolist() == [
        [-1, "UNKNOWN"], [1, "crm:C1"], [2, "crm:C3"], [3, "online:600"]]

    upgraded = resolve_customers(contacts(tier_of_c2="gold", c2_updated="2024-03-10 09:00"), online())[0]
    second = DIM_CUSTOMER.schema.validate(build_dim_customer(upgraded, first))
    ann = second[second["customer_id"] == "crm:C1"].set_index("customer_key")
    assert ann.loc[1, "loyalty_tier"] == "silver"
    assert ann.loc[1, "valid_to"] == T("2024-03-10 09:00")
    assert not ann.loc[1, "is_current"]
    assert ann.loc[4, "loyalty_tier"] == "gold"
    assert ann.loc[4, "valid_from"] == T("2024-03-10 09:00")
    assert ann.loc[4, "is_current"]
    # Carl and Bob did not change; re-running with the same sources changes nothing at all.
    assert second[second["customer_id"] != "crm:C1"].equals(first[first["customer_id"] != "crm:C1"])
    pd.testing.assert_frame_equal(build_dim_customer(upgraded, second), second)
