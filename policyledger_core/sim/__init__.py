"""The simulated cyber-defense task: configuration, dynamics, the Gymnasium environment, replay, exact optima.

Importing this package loads nothing heavy; :mod:`policyledger_core.sim.environment`
alone imports Gymnasium (and registers the task with it).
"""
