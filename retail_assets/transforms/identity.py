"""Customer identity across channels (SPEC section 5, "Identity").

A CRM contact is the customer's golden record. Online customers join it by normalised email, POS sales by
loyalty card. Online customers without a CRM contact are customers of their own. Sales without a loyalty card
are anonymous (customer_key -1).

``resolve_customers`` turns the CRM and online snapshots into one row per customer (the input of the SCD2
merge) and the identity bridge that fact loads use to find a customer from whatever identifier a source has.
"""

from __future__ import annotations

import pandas as pd

from retail_assets.schemas.warehouse import BRIDGE_CUSTOMER_IDENTITY, DIM_CUSTOMER
from retail_assets.transforms.dimensions import conform_typed, scd2_merge, to_naive_ns
from retail_assets.transforms.normalise import normalise_email, normalise_loyalty_card, normalise_phone

CUSTOMER_TRACKED = [
    "email", "first_name", "last_name", "phone", "city", "region", "country", "loyalty_card", "loyalty_tier",
    "marketing_opt_in", "crm_contact_id", "online_customer_id",
]
"""Every customer attribute: a change of any of them is a new dim_customer version."""
SNAPSHOT_COLUMNS = ["customer_id", "crm_contact_id", "online_customer_id", "loyalty_card", "email", "first_name",
                    "last_name", "phone", "city", "region", "country", "loyalty_tier", "marketing_opt_in",
                    "changed_at"]
_CRM_ATTRIBUTES = ["email", "first_name", "last_name", "phone", "city", "region", "country", "loyalty_card",
                   "loyalty_tier", "marketing_opt_in"]


def _crm_customers(contacts: pd.DataFrame) -> pd.DataFrame:
    """Non-deleted contacts, normalised, each with the ``customer_id`` of the group it merges into."""
    deleted = contacts["is_deleted"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    c = contacts.loc[~deleted].copy()
    c["contact_id"] = c["contact_id"].astype("str")
    c["email"] = normalise_email(c["email"]).astype("str")
    c["phone"] = normalise_phone(c["phone"]).astype("str")
    c["loyalty_card"] = normalise_loyalty_card(c["loyalty_card"]).astype("str")
    c["created_at"] = to_naive_ns(c["created_at"])
    c["updated_at"] = to_naive_ns(c["updated_at"])
    # Duplicates share a normalised email; a contact without an email is a group of its own.
    c["_group"] = ("email:" + c["email"]).fillna("contact:" + c["contact_id"])
    earliest = c.sort_values(["created_at", "contact_id"], na_position="last")
    survivor = earliest.drop_duplicates("_group").set_index("_group")["contact_id"]
    c["crm_contact_id"] = c["_group"].map(survivor)
    c["customer_id"] = "crm:" + c["crm_contact_id"]
    # Most recently updated first; groupby().first() then takes, per column, the newest value that is not missing.
    return c.sort_values(["updated_at", "contact_id"], ascending=[False, True], na_position="last")


def resolve_customers(contacts: pd.DataFrame, online_customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per customer across CRM and online shop, and the identity bridge.

    Business rules:

    - Deleted contacts (``is_deleted``) are not customers and resolve nothing.
    - CRM contacts with the same normalised email are one person: ``customer_id`` is ``crm:<contact_id>`` of the
      earliest created contact (ties: the lower contact_id), which is also ``crm_contact_id``, the golden record.
      Attributes are those of the most recently updated contact of the group, gaps filled from the others
      (newest first). ``changed_at`` is the group's latest ``updated_at``.
    - An online customer whose normalised email is a CRM customer's joins that customer; when several do,
      ``online_customer_id`` is the lowest id. The join itself is a change of the customer: ``changed_at`` is at
      least that online customer's ``created_at`` (the moment the identity appeared), so the version carrying
      ``online_customer_id`` does not pretend to be older than the account. CRM attributes are not filled from
      the online shop: the CRM is the golden record.
    - Every other online customer is a customer of its own, ``online:<customer_id>``, with its own attributes
      and ``changed_at`` = its ``updated_at`` (``created_at`` when missing).

    The bridge maps every identifier a source carries to a customer_id, one row per (source_system, source_key):
    ``crm`` (every non-deleted contact, merged duplicates included), ``online`` (every online customer),
    ``loyalty_card`` (every normalised card of every non-deleted contact, so the card of a duplicate resolves to
    the surviving customer) and ``email`` (every normalised customer email, CRM and online). When the same card
    sits on two different customers, the most recently updated contact has it; when several online-only
    customers share an email, the email resolves to the lowest customer id.

    Returns ``(snapshot, bridge)``: the snapshot has the columns of dim_customer without the surrogate key and
    validity, plus ``changed_at``; both sorted by their key.
    """
    crm = _crm_customers(contacts)
    grouped = crm.groupby("customer_id", sort=True)
    crm_snap = grouped[["crm_contact_id", *_CRM_ATTRIBUTES]].first()
    crm_snap["changed_at"] = grouped["updated_at"].max()
    crm_snap = crm_snap.reset_index()

    online = online_customers.copy()
    online["customer_id"] = pd.to_numeric(online["customer_id"]).astype("int64")
    online["email"] = normalise_email(online["email"]).astype("str")
    online["phone"] = normalise_phone(online["phone"]).astype("str")
    online["changed_at"] = to_naive_ns(online["updated_at"]).fillna(to_naive_ns(online["created_at"]))
    online["created_at"] = to_naive_ns(online["created_at"])
    crm_by_email = crm_snap.dropna(subset=["email"]).set_index("email")["customer_id"]
    online["resolved"] = online["email"].map(crm_by_email)
    online = online.sort_values("customer_id", ignore_index=True)

    joined = online[online["resolved"].notna()].drop_duplicates("resolved").set_index("resolved")
    if len(joined) and len(crm_snap):
        crm_snap["online_customer_id"] = crm_snap["customer_id"].map(joined["customer_id"]).astype("Int64")
        joined_at = to_naive_ns(crm_snap["customer_id"].map(joined["created_at"]))
    else:  # pandas cannot map an empty datetime Series onto another empty one
        crm_snap["online_customer_id"] = pd.Series(pd.NA, index=crm_snap.index, dtype="Int64")
        joined_at = pd.Series(pd.NaT, index=crm_snap.index, dtype="datetime64[ns]")
    crm_snap["changed_at"] = crm_snap["changed_at"].where(
        joined_at.isna() | (crm_snap["changed_at"] >= joined_at), joined_at
    )

    own = online[online["resolved"].isna()].copy()
    own["online_customer_id"] = own["customer_id"].astype("Int64")
    own["customer_id"] = "online:" + own["customer_id"].astype("str")
    online["resolved"] = online["resolved"].fillna("online:" + online["customer_id"].astype("str"))

    snapshot = pd.concat([crm_snap.reindex(columns=SNAPSHOT_COLUMNS), own.reindex(columns=SNAPSHOT_COLUMNS)],
                         ignore_index=True)
    snapshot = snapshot.sort_values("customer_id", ignore_index=True)
    for col in ("crm_contact_id", "loyalty_card", "email", "first_name", "last_name", "phone", "city", "region",
                "country", "loyalty_tier"):
        snapshot[col] = snapshot[col].astype("str")
    snapshot["online_customer_id"] = snapshot["online_customer_id"].astype("Int64")
    snapshot["marketing_opt_in"] = snapshot["marketing_opt_in"].astype("boolean")
    snapshot["changed_at"] = to_naive_ns(snapshot["changed_at"])

    cards = crm.dropna(subset=["loyalty_card"])  # already newest first: the newest holder of a card wins
    bridge = pd.concat(
        [
            pd.DataFrame({"source_system": "crm", "source_key": crm["contact_id"],
                          "customer_id": crm["customer_id"]}),
            pd.DataFrame({"source_system": "online", "source_key": online["customer_id"].astype("str"),
                          "customer_id": online["resolved"]}),
            pd.DataFrame({"source_system": "loyalty_card", "source_key": cards["loyalty_card"],
                          "customer_id": cards["customer_id"]}),
            # CRM emails first, then online ones by ascending id: the first row of a key wins.
            pd.DataFrame({"source_system": "email", "source_key": crm_snap["email"],
                          "customer_id": crm_snap["customer_id"]}),
            pd.DataFrame({"source_system": "email", "source_key": online["email"],
                          "customer_id": online["resolved"]}),
        ],
        ignore_index=True,
    )
    bridge = bridge.dropna(subset=["source_key"]).drop_duplicates(["source_system", "source_key"], keep="first")
    bridge = bridge.sort_values(["source_system", "source_key"], ignore_index=True)
    return snapshot, conform_typed(BRIDGE_CUSTOMER_IDENTITY, bridge)


def build_dim_customer(snapshot: pd.DataFrame, existing: pd.DataFrame | None) -> pd.DataFrame:
    """dim_customer, SCD type 2 keyed by the stable ``customer_id`` of ``resolve_customers``.

    Every attribute is tracked (a loyalty tier upgrade, a move, a newly joined online account are new versions)
    and a version is valid from the source's change time, so a sale made before a tier change keeps pointing at
    the old tier. A customer missing from the snapshot (all its contacts deleted) keeps its current version; see
    ``scd2_merge``. The unknown/anonymous member is key -1, customer_id ``UNKNOWN``.
    """
    merged = scd2_merge(existing, snapshot, business_key="customer_id", tracked=CUSTOMER_TRACKED,
                        changed_at="changed_at", surrogate_key="customer_key")
    return conform_typed(DIM_CUSTOMER, merged)
