"""The marketplace: verified policies, ranked.

Only entries before the ledger's first problem are ranked (a break in the
chain ends what can be trusted), and of those only the ones whose figures
were reproduced by replay on this machine. One row per policy (a policy's hash covers
its configuration, so this is one row per (policy, configuration)), described
by its first entry, with the number of entries that reference it.

Ranking: by the lower bound of the 95% confidence interval of the verified
reward, highest first; ties by the higher mean, then the earlier first entry,
then the policy hash. So the order is total and the same everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.entry import Entry, TrainingRecord
from policyledger_core.ledger.signing import key_id
from policyledger_core.sim.config import EnvConfig
from policyledger_core.tasks.spec import TaskInfo
from policyledger_core.verify.suite import Interval
from policyledger_core.workspace.reproduced import Reproductions


@dataclass(frozen=True)
class RankedPolicy:
    """One ranked policy."""

    rank: int
    policy_hash: str
    config: EnvConfig | TaskInfo
    """The cyber-defense task's configuration, or the toy-text task the policy plays."""
    preset: str | None
    """The configuration's preset name (a toy-text task: its title)."""
    mean: float
    ci95: float
    fraction_of_optimum: float
    optimum: float
    entries: int
    first_index: int
    publisher: str
    """Public key of whoever published the policy (the original publisher for imports and recoveries)."""
    own: bool
    origin: str
    timestamp: str
    training: TrainingRecord | None = None
    """How it was learned, as its first entry records it (None when added without training)."""

    @property
    def interval(self) -> Interval:
        """The 95% confidence interval of the verified mean; the ranking key is its lower bound."""
        return Interval(self.mean, self.ci95)

    @property
    def publisher_id(self) -> str:
        return key_id(self.publisher)


def rank(entries: Iterable[Entry], own_key: str | None = None,
         config: EnvConfig | TaskInfo | None = None, preset: str | None = None) -> list[RankedPolicy]:
    """Rank the given (verified) entries; filter by configuration or preset name."""
    first: dict[str, Entry] = {}
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.policy_hash] = counts.get(entry.policy_hash, 0) + 1
        first.setdefault(entry.policy_hash, entry)
    return _ranked(first, counts, own_key, config, preset)


def rank_ledger(ledger: Ledger, reproductions: Reproductions, own_key: str | None = None,
                config: EnvConfig | TaskInfo | None = None, preset: str | None = None) -> list[RankedPolicy]:
    """Rank a ledger's usable entries whose figures were reproduced here, parsing only each policy's first.

    A policy is described by its first entry; until that entry was reproduced
    by replay on this machine (see :mod:`policyledger_core.workspace.reproduced`) it is
    not ranked, whatever it claims. The other entries only add to the count,
    which the fast scan already knows, so a large ledger ranks in time
    proportional to its distinct policies.
    """
    scanned = ledger.scanned()
    firsts: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, line in enumerate(scanned):
        counts[line.policy_hash] = counts.get(line.policy_hash, 0) + 1
        firsts.setdefault(line.policy_hash, i)
    first = {h: ledger.entry(i) for h, i in firsts.items() if scanned[i].hash in reproductions}
    return _ranked(first, counts, own_key, config, preset)


def _ranked(first: dict[str, Entry], counts: dict[str, int], own_key: str | None,
            config: EnvConfig | TaskInfo | None, preset: str | None) -> list[RankedPolicy]:
    rows = []
    for policy_hash, entry in first.items():
        cfg = entry.config
        name = cfg.title if isinstance(cfg, TaskInfo) else cfg.preset_name()
        if (config is not None and cfg != config) or (preset is not None and name != preset):
            continue
        v, origin = entry.verification, entry.origin
        publisher = origin.first_publisher or entry.publisher
        rows.append(RankedPolicy(0, policy_hash, cfg, name, v.mean, v.ci95, v.fraction_of_optimum, v.optimum,
                        counts[policy_hash], entry.index, publisher, publisher == own_key, origin.kind,
                        entry.timestamp, entry.training))
    rows.sort(key=lambda r: (-r.interval.low, -r.mean, r.first_index, r.policy_hash))
    return [dataclasses.replace(r, rank=i + 1) for i, r in enumerate(rows)]
