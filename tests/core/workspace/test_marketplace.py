"""The marketplace ranking: order, one row per policy, own and other publishers, filters, problems.

Entries are appended through the real ledger with verification numbers chosen
by the test, so every tie-break can be reached on purpose.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.canonical import sha256_hex
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.signing import Publisher, key_id
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.verify.suite import Z95, suite_id, suite_optimum
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import RankedPolicy, rank

STANDARD = PRESETS["standard"]
CUSTOM = EnvConfig(horizon=30, escalation_prob=0.5)
NON_TERMINAL = min(set(range(108)) - TERMINAL_OBSERVATIONS)


def h(tag: str) -> str:
    """A policy hash: ``tag`` repeated when it is hex (to control the order), else its SHA-256."""
    if tag and all(c in "0123456789abcdef" for c in tag) and 64 % len(tag) == 0:
        return tag * (64 // len(tag))
    return sha256_hex(tag.encode())


def fields(policy_hash: str, mean: float, ci95: float, config: EnvConfig = STANDARD,
           origin: dict[str, Any] | None = None, optimum: float | None = None) -> dict[str, Any]:
    """Made-up figures, consistent among themselves unless ``optimum`` is given."""
    optimum = suite_optimum(config, 1000) if optimum is None else optimum
    return {"policy_hash": policy_hash, "config": config.to_dict(),
            "verification": {"mean": mean, "std": ci95 * math.sqrt(1000) / Z95, "ci95": ci95,
                             "fraction_of_optimum": mean / optimum,
                             "optimum": optimum, "episodes": 1000, "suite": suite_id(1000),
                             "replay_digest": sha256_hex(f"{policy_hash}{mean}".encode())},
            "training": None, "origin": origin or {"kind": "trained"}}


def imported_from(publisher: str) -> dict[str, Any]:
    return {"kind": "imported", "publisher": publisher, "entry_hash": sha256_hex(publisher.encode()),
            "signature": "ab" * 64}


class User:
    """One user (config folder) on one workspace."""

    def __init__(self, root: Path, config: Path) -> None:
        self.root, self.config = root, config
        self.ctx = Context.open(root, config)

    @property
    def key(self) -> str:
        return self.ctx.publisher.public_hex

    def append(self, policy_hash: str, mean: float, ci95: float, **kw: Any) -> Entry:
        return self.ctx.ledger.append(fields(policy_hash, mean, ci95, **kw), self.ctx.publisher)

    def entries(self) -> list[Entry]:
        self.ctx.ledger.reload()
        return self.ctx.ledger.entries()


@pytest.fixture
def alice(tmp_path: Path) -> User:
    return User(tmp_path / "workspace", tmp_path / "alice")


@pytest.fixture
def bob(tmp_path: Path, alice: User) -> User:
    return User(tmp_path / "workspace", tmp_path / "bob")  # same workspace, another user


def hashes(rows: list[RankedPolicy]) -> list[str]:
    return [r.policy_hash for r in rows]


# -- order ------------------------------------------------------------------------------------------


def test_rank_orders_by_the_lower_bound_of_the_interval(alice: User) -> None:
    # appended in neither the ranked order nor the hash order
    alice.append(h("c"), 12.0, 4.0)  # 8.0
    alice.append(h("a"), 10.0, 1.0)  # 9.0
    alice.append(h("d"), 5.0, 0.0)  # 5.0
    alice.append(h("b"), 9.5, 0.25)  # 9.25
    rows = rank(alice.entries())
    assert hashes(rows) == [h("b"), h("a"), h("c"), h("d")]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    assert [r.interval.low for r in rows] == [9.25, 9.0, 8.0, 5.0]
    # a higher mean with a wide interval does not win
    assert max(rows, key=lambda r: r.mean).policy_hash == h("c")


def test_equal_lower_bounds_go_to_the_higher_mean(alice: User) -> None:
    alice.append(h("1"), 10.0, 1.0)  # 9.0, earlier
    alice.append(h("2"), 11.0, 2.0)  # 9.0, higher mean
    alice.append(h("0"), 9.5, 0.5)  # 9.0, lowest hash
    rows = rank(alice.entries())
    assert [r.interval.low for r in rows] == [9.0, 9.0, 9.0]
    assert hashes(rows) == [h("2"), h("1"), h("0")]


def test_equal_lower_bound_and_mean_go_to_the_earlier_first_entry(alice: User) -> None:
    alice.append(h("f"), 10.0, 1.0)
    alice.append(h("0"), 10.0, 1.0)  # a smaller hash, but later
    alice.append(h("7"), 10.0, 1.0)
    rows = rank(alice.entries())
    assert hashes(rows) == [h("f"), h("0"), h("7")]
    assert [r.first_index for r in rows] == [0, 1, 2]


def test_full_ties_are_broken_by_the_policy_hash(tmp_path: Path) -> None:
    """Entries of two ledgers can share an index; then the smaller hash ranks first, in any input order."""
    one = User(tmp_path / "one", tmp_path / "config")
    two = User(tmp_path / "two", tmp_path / "config")
    one.append(h("e"), 10.0, 1.0)
    two.append(h("3"), 10.0, 1.0)
    entries = one.entries() + two.entries()
    assert [e.index for e in entries] == [0, 0]
    assert hashes(rank(entries)) == [h("3"), h("e")]
    assert hashes(rank(entries[::-1])) == [h("3"), h("e")]


@settings(max_examples=15, deadline=None)
@given(numbers=st.lists(st.tuples(st.integers(-20, 20), st.integers(0, 6)), min_size=1, max_size=7),
       shuffle_seed=st.integers(0, 2**32))
def test_the_order_is_total_and_does_not_depend_on_the_input_order(numbers: list[tuple[int, int]],
                                                                   shuffle_seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="market-") as tmp:
        user = User(Path(tmp) / "workspace", Path(tmp) / "config")
        for i, (mean, ci) in enumerate(numbers):
            user.append(h(f"policy-{i}"), mean / 2, ci / 4)
        entries = user.entries()
    rows = rank(entries)
    keys = [(-r.interval.low, -r.mean, r.first_index, r.policy_hash) for r in rows]
    assert keys == sorted(keys)
    assert [r.rank for r in rows] == list(range(1, len(numbers) + 1))
    shuffled = list(entries)
    random.Random(shuffle_seed).shuffle(shuffled)
    assert rank(shuffled) == rows


# -- one row per policy -----------------------------------------------------------------------------


def test_one_row_per_policy_described_by_its_first_entry_with_the_entry_count(alice: User) -> None:
    first = alice.append(h("a"), 10.0, 1.0, optimum=120.0)
    alice.append(h("b"), 20.0, 1.0)
    alice.append(h("a"), 50.0, 0.5)  # later entries do not change the row
    alice.append(h("a"), -5.0, 9.0)
    rows = rank(alice.entries())
    assert len(rows) == 2
    top, row = rows
    assert top.policy_hash == h("b") and top.entries == 1 and top.first_index == 1
    assert row.policy_hash == h("a")
    assert row.entries == 3
    assert row.first_index == 0
    assert (row.mean, row.ci95, row.optimum) == (10.0, 1.0, 120.0)
    assert row.fraction_of_optimum == 10.0 / 120.0
    assert row.timestamp == first.timestamp
    assert row.config == STANDARD and row.preset == "standard"
    assert row.origin == "trained"


def test_an_empty_ledger_ranks_nothing(alice: User) -> None:
    assert rank(alice.entries()) == []
    assert rank([]) == []


# -- own and other publishers -----------------------------------------------------------------------


def test_own_and_other_publishers_and_imports_count_for_their_origin(alice: User, bob: User) -> None:
    carol = Publisher.generate().public_hex
    alice.append(h("a"), 40.0, 1.0)
    bob.append(h("b"), 30.0, 1.0)
    bob.append(h("c"), 20.0, 1.0, origin=imported_from(alice.key))  # Bob imported Alice's policy
    bob.append(h("d"), 10.0, 1.0, origin=imported_from(carol))
    assert alice.key != bob.key
    entries = alice.entries()
    assert [e.publisher for e in entries] == [alice.key, bob.key, bob.key, bob.key]

    rows = {r.policy_hash: r for r in rank(entries, own_key=alice.key)}
    assert {p: (r.publisher, r.own, r.origin) for p, r in rows.items()} == {
        h("a"): (alice.key, True, "trained"),
        h("b"): (bob.key, False, "trained"),
        h("c"): (alice.key, True, "imported"),
        h("d"): (carol, False, "imported"),
    }
    assert rows[h("c")].publisher_id == key_id(alice.key)
    assert rows[h("d")].publisher_id == key_id(carol)

    as_bob = {r.policy_hash: r.own for r in rank(bob.entries(), own_key=bob.key)}
    assert as_bob == {h("a"): False, h("b"): True, h("c"): False, h("d"): False}
    assert not any(r.own for r in rank(entries))


def test_both_users_see_the_same_ranking(alice: User, bob: User) -> None:
    alice.append(h("a"), 10.0, 1.0)
    bob.append(h("b"), 12.0, 1.0)
    alice.append(h("c"), 11.0, 1.0)
    assert rank(alice.entries()) == rank(bob.entries())
    assert hashes(rank(bob.entries())) == [h("b"), h("c"), h("a")]


# -- filters ----------------------------------------------------------------------------------------


def test_filter_by_preset_and_by_configuration(alice: User) -> None:
    alice.append(h("a"), 10.0, 1.0)
    alice.append(h("b"), 30.0, 1.0, config=PRESETS["short-burst"])
    alice.append(h("c"), 20.0, 1.0, config=CUSTOM)
    alice.append(h("d"), 15.0, 1.0)
    entries = alice.entries()
    assert hashes(rank(entries)) == [h("b"), h("c"), h("d"), h("a")]

    standard = rank(entries, preset="standard")
    assert hashes(standard) == [h("d"), h("a")]
    assert [r.rank for r in standard] == [1, 2]
    assert all(r.preset == "standard" and r.config == STANDARD for r in standard)
    assert hashes(rank(entries, preset="short-burst")) == [h("b")]
    assert rank(entries, preset="extended") == []
    assert rank(entries, preset="no-such-preset") == []

    custom = rank(entries, config=CUSTOM)
    assert hashes(custom) == [h("c")]
    assert custom[0].preset is None and custom[0].rank == 1
    assert hashes(rank(entries, config=EnvConfig(horizon=12))) == [h("b")]  # equal to the preset
    assert hashes(rank(entries, config=STANDARD, preset="standard")) == [h("d"), h("a")]
    assert rank(entries, config=CUSTOM, preset="standard") == []
    assert rank(entries, config=EnvConfig(horizon=31)) == []


# -- ledger problems --------------------------------------------------------------------------------


def _lines(root: Path) -> list[bytes]:
    return (root / "ledger.json").read_bytes().split(b"\n")


def _rewrite_entry(root: Path, index: int, change: Any) -> None:
    lines = _lines(root)
    lines[index + 1] = change(lines[index + 1])  # lines[0] is the header
    (root / "ledger.json").write_bytes(b"\n".join(lines))


def _edit_timestamp(line: bytes) -> bytes:
    at = line.index(b'"timestamp":"') + len(b'"timestamp":"')
    return line[:at] + (b"1" if line[at:at + 1] != b"1" else b"2") + line[at + 1:]


def _flip_signature(line: bytes) -> bytes:
    at = len(line) - 3  # inside the signature's hex digits
    return line[:at] + (b"0" if line[at:at + 1] != b"0" else b"1") + line[at + 1:]


def _fill(user: User) -> list[str]:
    """Entries 0-2 are good; entry 3 is the one damaged; 4 and 5 come after it (4 repeats policy 0).

    The policies are real and stored, so a full audit gets as far as the signatures.
    """
    policies = []
    for i in range(6):
        actions = list(MYOPIC_ACTIONS)
        actions[NON_TERMINAL] = (actions[NON_TERMINAL] + 1 + i % 4) % 5
        actions[NON_TERMINAL + 1 + i // 4] = (actions[NON_TERMINAL + 1 + i // 4] + 1) % 5
        policies.append(Policy(STANDARD, tuple(actions)))
    assert len({p.hash for p in policies}) == 6
    for p in policies:
        user.ctx.store.put(p)
    numbers = [(10.0, 1.0), (11.0, 1.0), (12.0, 1.0), (90.0, 0.0), (10.0, 1.0), (80.0, 0.0)]
    order = [0, 1, 2, 3, 0, 5]
    for i, (mean, ci) in zip(order, numbers, strict=True):
        user.append(policies[i].hash, mean, ci)
    return [p.hash for p in policies]


@pytest.mark.parametrize("reader", ["same-user", "other-user"])
def test_entries_after_a_damaged_one_are_never_ranked(alice: User, tmp_path: Path, reader: str) -> None:
    p = _fill(alice)
    assert len(rank(alice.entries())) == 5
    _rewrite_entry(alice.root, 3, _edit_timestamp)
    config = alice.config if reader == "same-user" else tmp_path / "carol"
    ctx = Context.open(alice.root, config)
    assert ctx.ledger.read_only and ctx.ledger.problem is not None and ctx.ledger.problem.index == 3
    rows = rank(ctx.ledger.entries())
    assert hashes(rows) == [p[2], p[1], p[0]]
    assert all(r.entries == 1 for r in rows)  # policy 0's later entry is after the break


def test_entries_after_a_bad_signature_are_not_ranked_once_audited(alice: User) -> None:
    p = _fill(alice)
    _rewrite_entry(alice.root, 3, _flip_signature)
    ctx = Context.open(alice.root, alice.config)
    assert not ctx.ledger.read_only  # the fast scan does not check signatures
    assert len(rank(ctx.ledger.entries())) == 5
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem is not None and report.problem.index == 3
    assert "signature" in report.problem.reason
    rows = rank(ctx.ledger.entries())
    assert hashes(rows) == [p[2], p[1], p[0]]
    assert all(r.entries == 1 for r in rows)


def test_rank_ledger_equals_rank_of_all_entries(tmp_path) -> None:
    """The fast ranking (first entries parsed only) gives the same rows as ranking every entry."""
    from policyledger_core.policy import MYOPIC_ACTIONS, Policy
    from policyledger_core.sim.config import preset as env_preset
    from policyledger_core.workspace.context import Context
    from policyledger_core.workspace.marketplace import rank, rank_ledger
    from policyledger_core.workspace.publish import save_policy

    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    base = list(MYOPIC_ACTIONS)
    for i in range(4):
        actions = base.copy()
        actions[i] = (actions[i] + 1) % 5
        save_policy(ctx, Policy(env_preset("short-burst"), tuple(actions)), None, {"kind": "added"},
                    episodes=50)
    first = ctx.ledger.entry(1)
    ctx.ledger.append({k: first.body[k] for k in ("policy_hash", "config", "verification", "training",
                                                  "origin")}, ctx.publisher)  # a repeat of entry 1
    key = ctx.own_public_key()
    assert rank_ledger(ctx.ledger, ctx.reproductions, key) == rank(ctx.ledger.entries(), key)
    assert [r.entries for r in rank_ledger(ctx.ledger, ctx.reproductions, key) if r.first_index == 1] == [2]
