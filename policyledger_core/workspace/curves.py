"""Training curves kept for chained policies, so the marketplace can show how a policy learned.

A ledger entry records figures, not curves; the curve of a run trained here is
kept per user in the config folder, ``curves/<policy hash>.json``, downsampled
to at most :data:`MAX_POINTS` buckets. Each bucket keeps the min, max and mean
of the returns it covers, so no spike is lost when the whole run is drawn at
once and the plot never shows a value that did not happen. A curve is a view,
not evidence: it is never used to rank or verify anything, and a missing or
damaged file only means there is no curve to show.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import JsonInputError, is_hash, load_json_strict
from policyledger_core.learn.envelope import Records
from policyledger_core.safeio import read_regular

log = logging.getLogger(__name__)
FOLDER = "curves"
MAX_POINTS = 1000
MAX_BYTES = 1 << 20
"""A curve of MAX_POINTS buckets is about 100 KB; anything larger was not written here."""
_SCHEMA = "policyledger/curve"
_COLUMNS = ("episode", "low", "mean", "high", "epsilon")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Curve:
    """A downsampled training curve: per bucket its last episode, min/mean/max return and epsilon."""

    episode: npt.NDArray[np.int64]
    low: Floats
    mean: Floats
    high: Floats
    epsilon: Floats
    episodes: int
    """Episodes of the whole run (the last bucket's end)."""
    label: str = "episode return"
    """What the returns are: one agent's, or a population's mean (``mean over 64 agents``)."""

    def __len__(self) -> int:
        return len(self.episode)


def downsample(returns: Sequence[float] | Floats, epsilon: Sequence[float] | Floats,
               max_points: int = MAX_POINTS, label: str = "episode return") -> Curve:
    """The run's per-episode returns and epsilons in at most ``max_points`` equal buckets."""
    values = np.asarray(returns, dtype=np.float64)
    eps = np.asarray(epsilon, dtype=np.float64)
    if values.shape != eps.shape or values.ndim != 1:
        raise ValueError("returns and epsilon: expected two sequences of the same length")
    n = len(values)
    if n == 0:
        empty = np.zeros(0)
        return Curve(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, 0, label)
    size = -(-n // max_points)  # ceil: every bucket but the last holds `size` episodes
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n)
    return Curve(episode=ends.astype(np.int64),  # episodes are numbered from 1: a bucket ends at `ends`
                 low=np.minimum.reduceat(values, starts), high=np.maximum.reduceat(values, starts),
                 mean=np.add.reduceat(values, starts) / (ends - starts), epsilon=eps[ends - 1], episodes=n,
                 label=label)


def curve_of(records: Records, returns: int, epsilon: int, max_points: int = MAX_POINTS,
             label: str = "episode return") -> Curve:
    """A run's history (episodes numbered from 0) merged into at most ``max_points`` buckets, exactly:
    ``returns`` and ``epsilon`` are the rows of those series. Epsilon only decays, so a bucket's
    lowest is its value at the bucket's end."""
    merged = records.at_most(max_points)
    return Curve(episode=merged.last + 1, low=merged.lo[returns].copy(), mean=merged.mean[returns],
                 high=merged.hi[returns].copy(), epsilon=merged.lo[epsilon].copy(),
                 episodes=int(merged.last[-1]) + 1 if len(merged) else 0, label=label)


class CurveStore:
    """The curves folder of one user's config folder."""

    def __init__(self, config_dir: Path) -> None:
        self.folder = config_dir / FOLDER

    def path(self, policy_hash: str) -> Path:
        if not is_hash(policy_hash):
            raise ValueError("policy_hash: expected 64 lowercase hex characters")
        return self.folder / f"{policy_hash}.json"

    def save(self, policy_hash: str, curve: Curve) -> bool:
        """Keep the curve of a chained policy; False (and a log line) when the folder cannot be written."""
        doc = {"schema": _SCHEMA, "episodes": curve.episodes, "label": curve.label,
               **{name: getattr(curve, name).tolist() for name in _COLUMNS}}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path(policy_hash), json.dumps(doc, separators=(",", ":")).encode())
        except OSError as exc:
            log.warning("%s: %s; the training curve is not kept", self.folder, exc)
            return False
        return True

    def load(self, policy_hash: str) -> Curve | None:
        """The kept curve of a policy, or None when there is none (or it is unreadable or malformed)."""
        path = self.path(policy_hash)
        try:
            doc = load_json_strict(read_regular(path, MAX_BYTES, path.name), max_bytes=MAX_BYTES)
            return _curve_of(doc)
        except FileNotFoundError:
            return None
        except (OSError, JsonInputError, ValueError, TypeError, KeyError) as exc:
            log.warning("%s: %s; no training curve shown", path, exc)
            return None


def _curve_of(doc: object) -> Curve:
    if not isinstance(doc, dict) or doc.get("schema") != _SCHEMA:
        raise ValueError("not a training curve")
    columns = [doc[name] for name in _COLUMNS]
    if not all(isinstance(c, list) and len(c) == len(columns[0]) <= MAX_POINTS for c in columns):
        raise ValueError("columns of different lengths")
    episode, low, mean, high, epsilon = (np.asarray(c, dtype=np.float64) for c in columns)
    if not (np.all(np.isfinite(episode)) and np.all(np.diff(episode) > 0) and np.all(low <= mean)
            and np.all(mean <= high)):
        raise ValueError("inconsistent buckets")
    episodes, label = doc["episodes"], doc["label"]
    if not isinstance(episodes, int) or (len(episode) and episodes != int(episode[-1])):
        raise ValueError("episodes: does not match the last bucket")
    if not isinstance(label, str) or len(label) > 80:
        raise ValueError("label: expected a short string")
    return Curve(episode.astype(np.int64), low, mean, high, epsilon, episodes, label)
