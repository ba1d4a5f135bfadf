"""Tasks PolicyLedger trains and verifies policies on, beyond its own simulator.

- :mod:`~policyledger_core.tasks.base`: the :class:`~policyledger_core.tasks.base.Task` protocol
  every task implements, and the values it returns;
- :mod:`~policyledger_core.tasks.model`: exact tabular models and finite-horizon dynamic
  programming over them (optimum, exact value of a table, best stationary table);
- :mod:`~policyledger_core.tasks.spec`: the toy-text tasks' identities, without Gymnasium;
- :mod:`~policyledger_core.tasks.toytext`: Gymnasium's toy-text tasks (FrozenLake 4x4 and 8x8,
  Taxi, CliffWalking), their models read from Gymnasium's own environments;
- :mod:`~policyledger_core.tasks.cyber`: PolicyLedger's cyber-defense task behind the same protocol.

Importing this package loads nothing heavy; :mod:`~policyledger_core.tasks.toytext` alone
imports Gymnasium.
"""
