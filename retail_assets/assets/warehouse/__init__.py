"""Conformed dimensions and facts (SPEC section 5)."""
