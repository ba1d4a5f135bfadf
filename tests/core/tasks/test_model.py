"""The exact models: read outcome by outcome from Gymnasium, and their dynamic programming
checked against an independent plain-dict computation."""

from __future__ import annotations

import numpy as np
import pytest

from policyledger_core.tasks import model as tm
from policyledger_core.tasks.toytext import TASKS, toy_text_task
from tests.core.tasks import reference

TASK_IDS = list(TASKS)


def _tables(task_id: str) -> dict[str, np.ndarray]:
    task = toy_text_task(task_id)
    rng = np.random.default_rng([2024, TASK_IDS.index(task_id)])
    return {
        "best-stationary": np.array(task.best_stationary().actions),
        "random-table": rng.integers(0, task.n_actions, task.n_observations),
        "constant-1": np.full(task.n_observations, 1),
    }


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_model_equals_gymnasium_outcome_by_outcome(task_id: str) -> None:
    transitions, initial, _ = reference.environment(task_id)
    model = toy_text_task(task_id).model()
    assert (model.n_states, model.n_actions) == (len(transitions), len(transitions[0]))
    for s, acts in transitions.items():
        for a, outcomes in acts.items():
            where = model.outcomes(s, a)
            got = list(zip(model.probs[where].tolist(), model.next_states[where].tolist(),
                           model.rewards[where].tolist(), model.terminated[where].tolist(), strict=True))
            assert got == outcomes, (s, a)
    expected = np.zeros(model.n_states)
    expected[list(initial)] = list(initial.values())
    assert model.initial.tolist() == expected.tolist()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_optimum_matches_independent_value_iteration(task_id: str) -> None:
    task = toy_text_task(task_id)
    expected = reference.optimum(task_id)
    assert tm.optimum(task.model(), task.horizon) == pytest.approx(expected, abs=1e-6)
    assert task.optimum() == pytest.approx(expected, abs=1e-6)
    assert tm.solve(task.model(), task.horizon).value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_evaluate_matches_independent_evaluation(task_id: str) -> None:
    task = toy_text_task(task_id)
    for name, table in _tables(task_id).items():
        expected = reference.policy_value(task_id, lambda s, t=table: {int(t[s]): 1.0})
        assert task.expected_return(table) == pytest.approx(expected, abs=1e-9), name
    n = task.n_actions
    uniform = reference.policy_value(task_id, lambda s: dict.fromkeys(range(n), 1.0 / n))
    assert task.baselines()["random"].value == pytest.approx(uniform, abs=1e-9)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_evaluate_many_equals_evaluate(task_id: str) -> None:
    task = toy_text_task(task_id)
    tables = np.array(list(_tables(task_id).values()))
    many = tm.evaluate_many(task.model(), task.horizon, tables)
    single = [tm.evaluate(task.model(), task.horizon, t) for t in tables]
    np.testing.assert_allclose(many, single, rtol=0, atol=1e-9)


MEASURED_BEST_STATIONARY = {"FrozenLake-v1": 0.74016, "FrozenLake8x8-v1": 0.89357}


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_best_stationary_reproduces_the_measured_figures(task_id: str) -> None:
    task = toy_text_task(task_id)
    found = task.best_stationary()
    assert found.value == pytest.approx(task.expected_return(found.actions), abs=1e-12)
    if task_id in MEASURED_BEST_STATIONARY:
        assert found.value == pytest.approx(MEASURED_BEST_STATIONARY[task_id], abs=1e-4)
        assert found.value < task.optimum()  # the time limit makes the optimum time-dependent
    else:  # nothing beats the optimum: no local check needed
        assert found.value == pytest.approx(task.optimum(), abs=1e-9)
        return
    # A local optimum: no single state's change helps (checked one table at a time).
    model, horizon = task.model(), task.horizon
    table = np.array(found.actions)
    for s in np.flatnonzero(tm.reachable(model, horizon, table)):
        for a in range(task.n_actions):
            changed = table.copy()
            changed[s] = a
            assert tm.evaluate(model, horizon, changed) <= found.value + 1e-12


def test_reachable_states_are_those_a_table_visits() -> None:
    task = toy_text_task("FrozenLake-v1")
    always_left = np.zeros(16, dtype=np.int64)
    # Slippery left moves left, up or down: down the left column, until the hole at 12 ends the
    # episode (never acted in there, so not counted).
    assert np.flatnonzero(tm.reachable(task.model(), task.horizon, always_left)).tolist() == [0, 4, 8]


def test_model_rejects_bad_tables_and_shapes() -> None:
    task = toy_text_task("FrozenLake-v1")
    with pytest.raises(ValueError, match="shape"):
        task.expected_return(np.zeros(15, dtype=np.int64))
    with pytest.raises(ValueError, match=r"0\.\.3"):
        task.expected_return(np.full(16, 4))
    with pytest.raises(ValueError, match="integers"):
        task.expected_return(np.zeros(16))
    with pytest.raises(ValueError, match="horizon"):
        tm.optimum(task.model(), 0)
    with pytest.raises(ValueError, match="sum to 1"):
        tm.TabularModel.from_transitions({0: {0: [(0.5, 0, 0.0, False)]}}, [1.0])
    with pytest.raises(ValueError, match="at least one outcome"):
        tm.TabularModel.from_transitions({0: {0: []}}, [1.0])
    assert task.model().probs.flags.writeable is False


def test_a_two_step_model_by_hand() -> None:
    # State 0: action 0 pays 1 and stays; action 1 pays 3 and ends. Horizon 2: 1 + 3 = 4 beats 3.
    model = tm.TabularModel.from_transitions(
        {0: {0: [(1.0, 0, 1.0, False)], 1: [(1.0, 0, 3.0, True)]}}, [1.0])
    assert tm.optimum(model, 1) == 3.0
    assert tm.optimum(model, 2) == 4.0
    assert tm.evaluate(model, 2, [0]) == 2.0
    assert tm.evaluate(model, 2, [1]) == 3.0
    # The best stationary table (always 1) falls short of the time-dependent optimum (0, then 1).
    found = tm.best_stationary(model, 2, start=[0])
    assert (found.actions.tolist(), found.value, found.changes) == ([1], 3.0, 1)
