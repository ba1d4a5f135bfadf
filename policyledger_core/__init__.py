"""PolicyLedger's core: the task, learning, verification, the ledger, workspaces. Never imports Qt.

Importing the package loads no Gymnasium and registers nothing; the task registers
itself with Gymnasium when :mod:`policyledger_core.sim.environment` is imported.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
