"""Reliability: concurrent runs, hostile inputs and misconfiguration, on real engines."""
