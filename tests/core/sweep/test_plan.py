"""A sweep's plan: every combination, in a fixed order, refused in one line when it cannot run."""

from __future__ import annotations

import re

import pytest

from policyledger_core.learn.hyper import hyper_preset
from policyledger_core.sim.config import ConfigError
from policyledger_core.sweep.plan import MAX_RUNS, parse_setting, plan
from policyledger_core.sweep.summary import t95


def test_every_combination_once_in_a_fixed_order() -> None:
    specs = plan(["standard", "short-burst"], ["q", "double-q"],
                 [("learning_rate", [0.5, 1.0]), ("discount", [0.9])], seeds=3, episodes=700)
    assert len(specs) == 2 * 2 * 2 * 1 * 3
    assert [s.seed for s in specs[:3]] == [0, 1, 2]
    assert specs[0].preset == "standard" and specs[-1].preset == "short-burst"
    assert all(s.hyper.episodes == 700 and s.hyper.discount == 0.9 for s in specs)
    base = hyper_preset("recommended")
    assert specs[0].hyper.epsilon_decay == base.epsilon_decay  # what is not swept comes from --hyper
    assert len({s.group for s in specs}) == 8  # seeds share a group, nothing else does
    assert plan(["standard"], ["q"], [], 2, None) == plan(["standard"], ["q"], [], 2, None)


@pytest.mark.parametrize(("text", "expected"), [
    ("learning_rate=0.1,0.5", ("learning_rate", [0.1, 0.5])),
    ("lr-schedule=constant,count", ("lr_schedule", ["constant", "count"])),
    (" epsilon_decay = 0.999 ", ("epsilon_decay", [0.999])),
])
def test_settings_parse(text: str, expected: tuple[str, list[object]]) -> None:
    assert parse_setting(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("learning_rate", "expected NAME=V1,V2"),
    ("seed=1,2", "unknown hyperparameter 'seed'"),
    ("gamma=0.9", "unknown hyperparameter 'gamma'"),
    ("discount=0.9,,0.8", "expected values separated by commas"),
    ("discount=high", "expected numbers, got 'high'"),
])
def test_bad_settings_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_setting(text)


def test_an_invalid_combination_is_named_before_anything_trains() -> None:
    invalid = re.escape("the setting epsilon_end=0.9, epsilon_start=0.5 is invalid")
    with pytest.raises(ConfigError, match=invalid):
        plan(["standard"], ["q"], [("epsilon_end", [0.05, 0.9]), ("epsilon_start", [0.5])], 1, None)
    with pytest.raises(ConfigError, match="--seeds: must be at least 1"):
        plan(["standard"], ["q"], [], 0, None)
    with pytest.raises(ConfigError, match="unknown preset 'moon'"):
        plan(["moon"], ["q"], [], 1, None)
    with pytest.raises(ConfigError, match="each hyperparameter at most once"):
        plan(["standard"], ["q"], [("discount", [0.9]), ("discount", [0.8])], 1, None)
    with pytest.raises(ConfigError, match=f"more than {MAX_RUNS:,}"):
        plan(["standard"], ["q"], [("discount", [0.5 + i / 1e4 for i in range(200)])], 1000, None)


def test_t_quantiles() -> None:
    assert t95(1) == 12.706 and t95(9) == 2.262 and t95(30) == 2.042
    assert 1.96 < t95(1000) < t95(100) < t95(31) < 2.042  # the expansion joins the table smoothly
    assert t95(31) == pytest.approx(2.0395, abs=1e-3)
    with pytest.raises(ValueError):
        t95(0)
