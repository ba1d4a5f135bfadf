"""``python -m policyledger_core.cli``."""

from policyledger_core.cli.main import entry_point

entry_point()
