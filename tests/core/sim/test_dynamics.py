"""The codecs and bulk rules of :mod:`policyledger_core.sim.dynamics` that the environment,
the trainers, replay and value iteration share: alert codes, observation indices and the
vectorised duration rule.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS

ALERTS = list(itertools.product(range(3), range(3), range(2)))
"""Every (severity, attack type, confidence)."""


def test_alert_codes_number_the_alerts_and_decode_back() -> None:
    codes = [dyn.alert_code(*alert) for alert in ALERTS]
    assert sorted(codes) == list(range(dyn.N_ALERTS))
    for alert, code in zip(ALERTS, codes, strict=True):
        assert dyn.decode_alert(code) == alert


def test_alert_code_works_element_by_element_on_arrays() -> None:
    severity, attack, confidence = (np.array(column, dtype=np.int64) for column in zip(*ALERTS, strict=True))
    codes = dyn.alert_code(severity, attack, confidence)
    assert codes.tolist() == [dyn.alert_code(*alert) for alert in ALERTS]


def test_alert_tables_agree_with_the_codecs() -> None:
    for code in range(dyn.N_ALERTS):
        severity, attack, confidence = dyn.decode_alert(code)
        assert dyn.ALERT_SEVERITY[code] == severity
        assert dyn.ALERT_OBS_BASE[code] == dyn.observation_index(severity, attack, dyn.HEALTHY,
                                                                 confidence, dyn.SHORT)


@pytest.mark.parametrize("alert", ALERTS)
def test_health_stride_moves_only_the_health_factor(alert: tuple[int, int, int]) -> None:
    severity, attack, confidence = alert
    for duration in (dyn.SHORT, dyn.LONG):
        healthy = dyn.observation_index(severity, attack, dyn.HEALTHY, confidence, duration)
        for health in range(len(dyn.HEALTH_NAMES)):
            obs = healthy + health * dyn.HEALTH_STRIDE
            assert obs == dyn.observation_index(severity, attack, health, confidence, duration)
            assert dyn.decode_observation(obs) == (severity, attack, health, confidence, duration)


def test_uniform_columns_are_the_documented_ones() -> None:
    columns = (dyn.U_SEVERITY, dyn.U_ESCALATION, dyn.U_ATTACK, dyn.U_CONFIDENCE, dyn.U_DEFENCE, dyn.U_CHANGE)
    assert columns == tuple(range(dyn.UNIFORMS_PER_STEP))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_observation_bases_follow_the_attack_counter_step_by_step(name: str) -> None:
    config = PRESETS[name]
    rng = np.random.default_rng(11)
    codes = dyn.schedule_codes(config, dyn.draw_episode_uniforms(rng, config, 300))
    bases = dyn.observation_bases(codes)
    assert bases.shape == codes.shape
    long_seen = 0
    for episode_codes, episode_bases in zip(codes.tolist(), bases.tolist(), strict=True):
        counter = 0
        for code, base in zip(episode_codes, episode_bases, strict=True):
            severity, attack, confidence = dyn.decode_alert(code)
            duration = dyn.LONG if counter >= dyn.LONG_AFTER else dyn.SHORT
            long_seen += duration
            assert base == dyn.observation_index(severity, attack, dyn.HEALTHY, confidence, duration)
            counter = dyn.next_counter(counter, severity)
    assert long_seen > 0  # the rule was exercised


def test_a_horizon_no_longer_than_the_counter_never_gets_long() -> None:
    codes = np.full((2, dyn.LONG_AFTER), dyn.alert_code(dyn.HIGH, dyn.DOS, dyn.CONF_HIGH), dtype=np.int64)
    assert not dyn.long_duration(codes).any()
