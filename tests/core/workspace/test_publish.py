"""Publishing a training run: which agents' policies are saved and chained (the best one, or all).

The command line (``train --chain-all``) and the app's Training tab both call
:func:`policyledger_core.workspace.publish.publish_run`; this is where the decision is tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import hyper_preset
from policyledger_core.learn.single import TrainingResult, run_to_end
from policyledger_core.sim.config import preset
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import CHAINS, publish_run

AGENTS = 4


def _trained(agents: int, seed: int = 5) -> TrainingResult:
    hyper = hyper_preset("recommended").replace(episodes=60, seed=seed)
    return run_to_end(train_agents(preset("short-burst"), hyper, "q", agents))


@pytest.fixture(scope="module")
def population() -> TrainingResult:
    result = _trained(AGENTS)
    # The cases below mean something only if the best agent is not simply the first one
    # and the agents learned different policies.
    assert result.best_agent != 0
    assert len({result.policy(k).hash for k in range(AGENTS)}) == AGENTS
    return result


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context.open(tmp_path / "workspace", tmp_path / "config")


def test_best_chains_only_the_best_agents_policy(ctx: Context, population: TrainingResult) -> None:
    published = publish_run(ctx, population)  # "best" is the default
    best = population.best_agent
    assert [s.policy.hash for s in published.saved] == [population.policy(best).hash]
    assert published.best is published.saved[0] and published.best.created
    assert published.entries_created == 1
    assert len(ctx.ledger) == 1
    entry = ctx.ledger.entry(0)
    assert entry.policy_hash == population.policy(best).hash
    assert entry.body["training"]["training_reward"] == float(population.training_reward[best])
    assert entry.body["training"]["agents"] == AGENTS


def test_all_chains_every_agent_in_agent_order_and_reports_the_best(ctx: Context,
                                                                    population: TrainingResult) -> None:
    published = publish_run(ctx, population, "all")
    assert [s.policy.hash for s in published.saved] == [population.policy(k).hash for k in range(AGENTS)]
    assert published.best is published.saved[population.best_agent]
    assert published.entries_created == AGENTS == len(ctx.ledger)
    chained = [ctx.ledger.entry(i).policy_hash for i in range(AGENTS)]
    assert chained == [s.policy.hash for s in published.saved]


def test_publishing_again_creates_no_entries(ctx: Context, population: TrainingResult) -> None:
    publish_run(ctx, population, "all")
    again = publish_run(ctx, population, "best")
    assert not again.best.created and again.entries_created == 0
    assert again.best.entry.policy_hash == population.policy(population.best_agent).hash
    assert len(ctx.ledger) == AGENTS


def test_a_single_agent_is_chained_once_whichever_choice(tmp_path: Path) -> None:
    single = _trained(1)
    for chain in CHAINS:
        ctx = Context.open(tmp_path / chain, tmp_path / f"{chain}-config")
        published = publish_run(ctx, single, chain)
        assert [s.policy.hash for s in published.saved] == [single.policy().hash]
        assert published.best is published.saved[0]
        assert len(ctx.ledger) == 1


def test_an_unknown_choice_is_refused_before_anything_is_saved(ctx: Context,
                                                               population: TrainingResult) -> None:
    with pytest.raises(ValueError, match="chain: must be one of best, all"):
        publish_run(ctx, population, "some")  # type: ignore[arg-type]
    assert len(ctx.ledger) == 0
    assert not any(ctx.store.path_of(population.policy(k).hash).exists() for k in range(AGENTS))
