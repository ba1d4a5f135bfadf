"""One family for every error PolicyLedger reports to a person.

Each kind says how the command line ends (``exit_code``), so no caller lists
error classes by hand: a check failed or an input was rejected is 1, bad usage
or unusable input is 2. The message is always one line that names what is wrong.
"""

from __future__ import annotations

from typing import ClassVar


class PolicyLedgerError(Exception):
    """Base of PolicyLedger's errors."""

    exit_code: ClassVar[int] = 1


class Rejected(PolicyLedgerError):
    """A check failed or an input was rejected: a damaged ledger, a refused file or bundle."""

    exit_code = 1


class BadInput(PolicyLedgerError):
    """Bad usage or unusable input: a bad option or value, an unreadable file or key."""

    exit_code = 2
