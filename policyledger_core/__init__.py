"""PolicyLedger's core: environment, training, verification, ledger. Never imports Qt."""

from policyledger_core.environment import ENV_ID, register

__version__ = "0.1.0"
__all__ = ["ENV_ID", "__version__"]

register()
