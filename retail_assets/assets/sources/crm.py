"""The CRM: contacts, the golden record of a customer."""

from retail_assets.assets.sources.online import snapshot_asset
from retail_assets.schemas.sources import RAW_CRM_CONTACTS

raw_crm_contacts = snapshot_asset(RAW_CRM_CONTACTS, "contacts", "crm", {"sql"},
                                  "CRM contacts, updated in place at the source (updated_at says when); "
                                  "emails in mixed case, duplicates, phones in many formats.")
