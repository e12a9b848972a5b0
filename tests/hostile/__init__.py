"""Generators of hostile input for the reliability tests (tests/test_reliability_*.py)."""
