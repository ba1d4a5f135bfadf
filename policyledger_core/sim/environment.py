"""The cyber-defense task as a ``gymnasium.Env`` (registered as ``PolicyLedger/CyberDefense-v1``).

Observation: ``Discrete(108)``, index
``(((severity*3 + attack_type)*3 + health)*2 + confidence)*2 + duration``;
``info`` gives each factor by name. Actions: ``Discrete(5)`` (IGNORE, MONITOR,
RATE_LIMIT, BLOCK_IP, ISOLATE_SERVICE). An episode lasts ``horizon`` steps or
ends early when health turns CRITICAL; the horizon is part of the task, so it
is reported as ``terminated``, never ``truncated``. All randomness of an episode
is drawn at reset (see :mod:`policyledger_core.sim.dynamics`).
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
        severity = code // 6
        tenths = int(dyn.REWARD_TENTHS[code, act])
        u_defence, u_change = self._uniforms[self._t, 4], self._uniforms[self._t, 5]
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
            severity, attack, confidence = code // 6, (code // 2) % 3, code % 2
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
