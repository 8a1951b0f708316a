"""Normalisation of the identifiers that join the sources: SKUs, emails, phones, loyalty cards."""

from __future__ import annotations

import pandas as pd

_NON_ALNUM = r"[^0-9A-Za-z]+"


def normalise_sku(sku: pd.Series) -> pd.Series:
    """SKU matching ignores case and every non-alphanumeric character: ' hb-004211 ' -> 'HB004211'."""
    return sku.astype("string").str.replace(_NON_ALNUM, "", regex=True).str.upper()


def normalise_email(email: pd.Series) -> pd.Series:
    """Trimmed, lower case; empty becomes missing."""
    out = email.astype("string").str.strip().str.lower()
    return out.mask(out == "")


def normalise_phone(phone: pd.Series) -> pd.Series:
    """Digits only, keeping a leading '+' when the number had one ('(555) 010-2233' -> '5550102233')."""
    raw = phone.astype("string").str.strip()
    digits = raw.str.replace(r"\D+", "", regex=True)
    out = digits.where(~raw.str.startswith("+").fillna(False), "+" + digits)
    return out.mask(digits.fillna("") == "")


def normalise_loyalty_card(card: pd.Series) -> pd.Series:
    """Cards are compared without spaces or case; a float-looking id ('17850.0', as in the UCI data) loses '.0'."""
    out = card.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    out = out.str.replace(r"\s+", "", regex=True).str.upper()
    return out.mask(out == "")
