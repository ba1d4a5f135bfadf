"""The cyber-defense task as a ``gymnasium.Env`` (registered as ``PolicyLedger/CyberDefense-v1``).

This docstring is the specification of the environment. Code comments and tests
elsewhere in PolicyLedger cite it as "the spec", by the section numbers below
("spec 4.2" is the health transition, "spec section 8" the reference values).
The rules are implemented once, in :mod:`policyledger_core.sim.dynamics`, and
shared by this environment, the trainers, the replay verifier and the value
iteration of :mod:`policyledger_core.sim.optimum`; the configuration and the
presets live in :mod:`policyledger_core.sim.config`.

## Description

The task the agents learn: respond to a stream of security alerts with a
defensive action, trading damage prevented against operational cost. It is a
decision-level simulation (no packets, no hosts). Its reward table and dynamics
follow PolicyLedger's original design; section 7 lists where this version
deliberately differs from that design, and why.

Each step presents one alert (severity, attack type, confidence) together with
the state of the defended service (health) and how long the attack has been
going on (duration). The agent answers with one of five actions, receives the
action's reward for that alert, and the service's health moves according to
the alert's severity and the strength of the action. An episode lasts ``H``
steps (the horizon, 24 by default) unless health turns CRITICAL first.

## 1. Observation Space

Five discrete factors, all integers:

============  ================================================================
factor        values
============  ================================================================
severity      0 LOW, 1 MEDIUM, 2 HIGH
attack_type   0 SCAN, 1 BRUTE_FORCE, 2 DOS
health        0 HEALTHY, 1 DEGRADED, 2 CRITICAL
confidence    0 LOW, 1 HIGH (how sure the alert is)
duration      0 SHORT, 1 LONG (attack under way for 3+ steps, see 4.3)
============  ================================================================

The observation is one index in ``Discrete(108)`` (3 * 3 * 3 * 2 * 2 = 108),
returned as a plain ``int``:

    index = (((severity*3 + attack_type)*3 + health)*2 + confidence)*2 + duration

The factors are also given in ``info`` by name (see "Information" below).
Health CRITICAL is only ever observed in a terminal observation, so at most 72
indices occur before the end.

## 2. Action Space

``Discrete(5)``:

- 0: IGNORE
- 1: MONITOR
- 2: RATE_LIMIT
- 3: BLOCK_IP
- 4: ISOLATE_SERVICE

Python and numpy integers 0..4 are accepted. Anything else (out of range, a
float, a bool) is rejected with a ``ValueError`` that says what is wrong.
Stepping after the episode has ended raises ``RuntimeError``; call ``reset()``.

## 3. Starting State: episode generation (per episode, from the reset seed)

An episode has a horizon of ``H`` steps (default 24). At ``reset(seed=...)`` the
alert schedule for steps 0..H-1 is drawn:

- severity: step 0 is drawn from ``severity_probs`` (default LOW .5,
  MEDIUM .3, HIGH .2). For step t > 0 a fresh severity is drawn from
  ``severity_probs``; then, if step t-1 ended up HIGH, with probability
  ``escalation_prob`` (default .6) step t is set to HIGH (escalation cascades:
  the test uses the already-updated previous value).
  So P(HIGH | previous HIGH) = .6 + .4*.2 = .68 with the defaults.
- attack_type: independent per step from ``type_probs`` (default SCAN .4,
  BRUTE_FORCE .4, DOS .2).
- confidence: HIGH with probability ``high_confidence_probs[severity]``
  (default LOW .3, MEDIUM .5, HIGH .8), else LOW.

The episode starts at step 0 with health HEALTHY, the attack counter at 0
(duration SHORT), and the first observation shows the alert of step 0.

How the draws are made (see section 5): ``reset(seed=s)`` seeds the
environment's ``np_random`` (a PCG64 ``numpy.random.Generator``, the same as
``numpy.random.default_rng(s)``) and draws, with one ``Generator.random`` call,
an (H, 6) array of uniform doubles in [0, 1) that fixes the whole episode.
Column by column, at step t:

=====  ====================================================================
col    use at step t
=====  ====================================================================
0      fresh severity draw (compared with ``severity_probs``)
1      escalation draw (step t forced HIGH if t-1 was HIGH)
2      attack type draw (compared with ``type_probs``)
3      confidence draw
4      defence-holds draw (HIGH severity, BLOCK_IP / ISOLATE_SERVICE, 4.2)
5      health-change draw (degrade, recover or go critical, 4.2)
=====  ====================================================================

Every column is drawn for every step whether it is used or not. A category is
drawn from one uniform ``u`` as the number of cumulative probabilities
(all but the last) that are ``<= u``; an event "with probability p" happens
when ``u < p``. A ``reset()`` without a seed continues the generator, so
consecutive resets give consecutive episodes of the same stream.

## 4. Step

At step t with scheduled (severity, attack_type, confidence) and action a:

### 4.1 Rewards

A base cost, then an adjustment; the sum is the step reward.

===============  =====  ================================================  ===================
action           base   adjustment                                        total
===============  =====  ================================================  ===================
IGNORE           0      HIGH: -10; MEDIUM: -4;                            -10 / -4 / +2 / -1
                        LOW and confidence LOW: +2;
                        LOW and confidence HIGH: -1
MONITOR          -0.2   LOW: +3; MEDIUM: +1; HIGH: -3                     2.8 / 0.8 / -3.2
RATE_LIMIT       -1     BRUTE_FORCE or DOS: +8 if severity >= MEDIUM,     7 / 2 / -1.5
                        +3 if LOW; SCAN: -0.5
BLOCK_IP         -1.5   HIGH and confidence HIGH: +10;                    8.5 / 3.5 / -3.5
                        else severity >= MEDIUM: +5; else (LOW): -2
ISOLATE_SERVICE  -3     HIGH and DOS: +12; HIGH otherwise: +8;            9 / 5 / -7
                        MEDIUM or LOW: -4
===============  =====  ================================================  ===================

Rewards are computed in integer tenths (so returns add up exactly on every
machine); ``step`` returns the reward as a ``float`` (tenths / 10) and the
exact integer in ``info["reward_tenths"]``, end-of-episode terms (4.4) included.

### 4.2 Health transition

Random draws only where stated:

- HIGH severity: if a is BLOCK_IP or ISOLATE_SERVICE, the defence holds with
  probability .7 (health unchanged). Otherwise (weak action, or the defence
  failed): HEALTHY -> DEGRADED; DEGRADED -> CRITICAL with probability .4.
- MEDIUM severity, a != IGNORE: DEGRADED -> HEALTHY with probability .3.
- MEDIUM severity, a == IGNORE: HEALTHY -> DEGRADED with probability .2.
- LOW severity (any action): DEGRADED -> HEALTHY with probability .4.

Every other case keeps its health.

### 4.3 Duration

A counter of consecutive steps with severity >= MEDIUM; duration is LONG once
the counter reaches 3; a LOW step resets it to 0 and duration to SHORT. The
counter is updated with the severity of the step just taken, so the
observation of step t shows LONG exactly when steps t-3, t-2 and t-1 were all
MEDIUM or HIGH. (``info["attack_counter"]`` gives the counter, capped at 3.)

### 4.4 Episode End

- Health CRITICAL: reward -10 more, the episode terminates (possibly before H).
- Otherwise, after step H-1: reward +5 if HEALTHY, +2 if DEGRADED; the episode
  terminates (the horizon is part of the task, not a time limit: do not
  bootstrap past it). Hence ``terminated`` is True at the end and
  ``truncated`` is always False.
- The observation after the last step carries severity, attack_type and
  confidence 0 (health and duration as they are).

Largest possible return with H = 24: 24*9 + 5 = 221.

## 5. Randomness (determinism)

- The same (config, seed) gives the same episode, bit for bit, on every
  machine, for the same action sequence.
- All randomness comes from a ``numpy.random.Generator`` built from the seed
  (PCG64). Draw only uniform doubles (``Generator.random``) and compare them
  with cumulative probabilities: that stream is stable across numpy versions,
  unlike ``choice``/``integers``.
- Nothing uses Python's ``random``, numpy's global state or the clock.

## 6. Presets

A preset is a named configuration; the configuration (not the name) is part of
what a policy was trained and verified on.

==============  ==  ==============  ===============  ====================
preset          H   severity_probs  escalation_prob  meaning
==============  ==  ==============  ===============  ====================
standard        24  .5 .3 .2        .6               the defaults above
short-burst     12  .5 .3 .2        .6               short incidents
extended        48  .5 .3 .2        .6               a long shift
high-pressure   24  .3 .3 .4        .75              a campaign under way
sparse-attacks  24  .7 .2 .1        .4               mostly noise
==============  ==  ==============  ===============  ====================

All presets keep the default ``type_probs`` (.4 .4 .2) and
``high_confidence_probs`` (.3 .5 .8).

## 7. Where this version differs from the original design, and why

- The original drew ONE alert schedule per environment instance from a fixed
  seed and trained and verified on that one scenario; policies overfit it
  (measured: a trained policy scored about 120 on its own scenario and about
  28 on unseen ones, below always-BLOCK_IP). Here every episode draws its own
  schedule from its seed, and verification uses seeds never used in training.
- The original's "verified reward" was the mean of the last 100 training
  episodes (exploration included). Here that figure is kept as the training
  reward; the verified reward comes from replaying the greedy policy.
- The original's presets high_pressure and sparse_attacks differed from
  standard only by their seed; here they change the dynamics.

## 8. Reference values to compute (not to hard-code)

- The optimal expected return: the environment is a finite-horizon MDP over
  (t, severity, attack_type, confidence, health, counter 0..3); value
  iteration over it gives the best return any policy can reach in
  expectation. Policies see only the observation (no t, no counter below 3),
  so this is an upper bound.
- Baselines on the same evaluation seeds: uniform random, each constant
  action, and the myopic policy (the action with the best immediate reward
  for the observed severity, type and confidence).

## Information

``reset()`` and ``step()`` return an ``info`` dict with the factors by name,
``severity``, ``attack_type``, ``health``, ``confidence`` and ``duration``
(the integers of section 1), ``step`` (the number of steps taken) and
``attack_counter`` (4.3); ``step()`` adds ``reward_tenths`` (4.1).

## Arguments

    import gymnasium as gym
    import policyledger_core.sim.environment  # registers PolicyLedger/CyberDefense-v1

    env = gym.make("PolicyLedger/CyberDefense-v1", preset_name="high-pressure")

- ``config``: an :class:`~policyledger_core.sim.config.EnvConfig` (horizon,
  severity_probs, escalation_prob, type_probs, high_confidence_probs).
- ``preset_name``: the name of a preset of section 6; give ``config`` or
  ``preset_name``, not both. With neither, the environment is ``standard``.
- ``render_mode``: ``None`` or ``"ansi"`` (a one-line text view of the state).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import ENV_ID, EnvConfig, preset


def check_action(action: object) -> int:
    """The action as an ``int`` 0..4, or a ``ValueError`` that says what is wrong."""
    if isinstance(action, bool | np.bool_) or not isinstance(action, int | np.integer):
        raise ValueError(f"action: expected an integer 0..4, got {type(action).__name__} {action!r}")
    value = int(action)
    if not 0 <= value < dyn.N_ACTIONS:
        raise ValueError(f"action: must be 0..4, got {value}")
    return value


class CyberDefenseEnv(gym.Env[int, int]):
    """Respond to a stream of security alerts; see the module docstring and the spec."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium's API)

    def __init__(self, config: EnvConfig | None = None, preset_name: str | None = None,
                 render_mode: str | None = None) -> None:
        if config is not None and preset_name is not None:
            raise ValueError("config and preset_name: give one, not both")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: unsupported {render_mode!r}")
        self.config = config if config is not None else preset(preset_name or "standard")
        self.render_mode = render_mode
        # Discrete is typed over np.int64; this environment hands out plain ints, which it contains.
        self.observation_space = gym.spaces.Discrete(dyn.N_OBS)  # type: ignore[assignment]
        self.action_space = gym.spaces.Discrete(dyn.N_ACTIONS)  # type: ignore[assignment]
        self._codes: list[int] = []
        self._uniforms: npt.NDArray[np.float64] = np.zeros((0, dyn.UNIFORMS_PER_STEP))
        self._t = 0
        self._health = dyn.HEALTHY
        self._counter = 0
        self._done = True

    def load_episode(self, uniforms: npt.NDArray[np.float64]) -> tuple[int, dict[str, Any]]:
        """Start an episode from its pre-drawn uniforms (H, 6); used by replay and tests."""
        expected = (self.config.horizon, dyn.UNIFORMS_PER_STEP)
        if uniforms.shape != expected:
            raise ValueError(f"uniforms: expected shape {expected}, got {uniforms.shape}")
        self._uniforms = uniforms
        self._codes = [int(c) for c in dyn.schedule_codes(self.config, uniforms)]
        self._t = 0
        self._health = dyn.HEALTHY
        self._counter = 0
        self._done = False
        return self._observe()

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Draw a new episode's alert schedule and outcome draws from the reset seed."""
        super().reset(seed=seed)
        return self.load_episode(dyn.draw_episode_uniforms(self.np_random, self.config))

    def step(self, action: int) -> tuple[int, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one defensive action to the current alert."""
        act = check_action(action)
        if self._done:
            raise RuntimeError("step: the episode has ended; call reset() first")
        code = self._codes[self._t]
        severity, _, _ = dyn.decode_alert(code)
        tenths = int(dyn.REWARD_TENTHS[code, act])
        draws = self._uniforms[self._t]
        u_defence, u_change = draws[dyn.U_DEFENCE], draws[dyn.U_CHANGE]
        self._health = dyn.next_health(severity, act, self._health, u_defence, u_change)
        self._counter = dyn.next_counter(self._counter, severity)
        self._t += 1
        if self._health == dyn.CRITICAL:
            tenths += dyn.CRITICAL_PENALTY_TENTHS
            self._done = True
        elif self._t == self.config.horizon:
            tenths += dyn.END_BONUS_TENTHS[self._health]
            self._done = True
        obs, info = self._observe()
        info["reward_tenths"] = tenths
        return obs, tenths / 10.0, self._done, False, info

    def _observe(self) -> tuple[int, dict[str, Any]]:
        if self._done:
            severity = attack = confidence = 0
        else:
            code = self._codes[self._t]
            severity, attack, confidence = dyn.decode_alert(code)
        duration = dyn.LONG if self._counter >= dyn.LONG_AFTER else dyn.SHORT
        obs = dyn.observation_index(severity, attack, self._health, confidence, duration)
        info = {"severity": severity, "attack_type": attack, "health": self._health,
                "confidence": confidence, "duration": duration, "step": self._t,
                "attack_counter": self._counter}
        return obs, info

    def render(self) -> str | None:
        """A one-line text view of the current state (render_mode ``ansi``)."""
        if self.render_mode != "ansi":
            return None
        _, info = self._observe()
        return (f"t={info['step']} severity={dyn.SEVERITY_NAMES[info['severity']]} "
                f"attack={dyn.ATTACK_NAMES[info['attack_type']]} "
                f"health={dyn.HEALTH_NAMES[info['health']]} "
                f"confidence={dyn.CONFIDENCE_NAMES[info['confidence']]} "
                f"duration={dyn.DURATION_NAMES[info['duration']]}")


def register() -> None:
    """Register the environment with Gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="policyledger_core.sim.environment:CyberDefenseEnv")


register()
