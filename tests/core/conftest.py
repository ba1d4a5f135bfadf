"""Fixtures of the core tests: the real ledger of ``tests.helpers.ledger_builder``."""

from tests.helpers.ledger_builder import built, template

__all__ = ["built", "template"]
