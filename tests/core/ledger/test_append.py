"""Appending: valid JSON after every append, never a rewrite, chain fields, dedupe, where the
checkpoint and key live, problems that survive a restart."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.canonical import sha256_hex
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.entry import GENESIS
from policyledger_core.ledger.layout import FOOTER
from policyledger_core.ledger.signing import KEY_FILE
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.policy import Policy
from policyledger_core.sim.config import preset
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import (
    EPISODES,
    N_ENTRIES,
    Built,
    assert_clean,
    assert_valid_json,
    build,
    fields_for,
    make_policy,
    save,
)


def test_workspaces_sharing_a_config_dir_do_not_interfere(tmp_path: Path) -> None:
    config = tmp_path / "config"
    a = build(tmp_path / "a", config, 4)
    b = build(tmp_path / "b", config, 2, first_seed=50)
    assert a.open().witness.path != b.open().witness.path
    assert_clean(a.root, config, 4)
    assert_clean(b.root, config, 2)


# -- the file format on append --------------------------------------------------------------------


def test_append_keeps_valid_json_and_never_rewrites(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx = Context.open(workspace, config)
    path = workspace / LEDGER_FILE
    b = Built(workspace, config, [], b"")
    hashes: list[str] = []
    for seed in range(8):
        before = path.read_bytes() if path.exists() else None
        inode = os.stat(path).st_ino if path.exists() else None
        if seed % 2:
            entry = save(ctx, seed)
        else:
            ctx.store.put(make_policy(seed))
            entry = ctx.ledger.append(fields_for(make_policy(seed)), ctx.publisher)
        hashes.append(entry.hash)
        after = path.read_bytes()
        assert_valid_json(b, hashes)
        assert after.endswith(entry.line() + b"\n" + FOOTER)
        if before is not None:
            assert before.endswith(FOOTER)
            assert after.startswith(before[:-len(FOOTER)])
            assert len(after) == len(before) + len(entry.line()) + 2  # ",", "\n"
            assert os.stat(path).st_ino == inode  # written in place, not replaced
    assert_clean(workspace, config, 8)


def test_append_fills_in_the_chain_fields(built: Built) -> None:
    ctx = built.context()
    ctx.store.put(make_policy(100))
    entry = ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    assert entry.index == N_ENTRIES
    assert entry.prev == built.hashes[-1]
    assert entry.publisher == ctx.publisher.public_hex
    assert entry.signature_valid()
    assert built.entries[0].prev == GENESIS
    assert all(built.entries[i].prev == built.hashes[i - 1] for i in range(1, N_ENTRIES))


def test_dedupe_same_policy_gives_one_entry(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx = Context.open(workspace, config)
    stale = Context.open(workspace, config)  # opened before anything was saved
    policy = make_policy(7)
    first = save_policy(ctx, policy, None, {"kind": "added"}, episodes=EPISODES)
    data = (workspace / LEDGER_FILE).read_bytes()
    second = save_policy(ctx, policy, None, {"kind": "added"}, episodes=EPISODES)
    third = save_policy(stale, policy, None, {"kind": "trained"}, episodes=EPISODES)
    assert first.created
    assert not second.created and not third.created
    assert second.report is None
    assert second.entry.hash == third.entry.hash == first.entry.hash
    assert (workspace / LEDGER_FILE).read_bytes() == data
    assert len(Context.open(workspace, config).ledger) == 1
    # The same actions under another configuration are another policy.
    other = Policy(config=preset("standard"), actions=policy.actions)
    assert save_policy(ctx, other, None, {"kind": "added"}, episodes=EPISODES).created
    assert_clean(workspace, config, 2)


def test_witness_and_key_live_in_the_config_dir(built: Built) -> None:
    ctx = built.context()
    witness = ctx.ledger.witness.path
    assert witness.is_file()
    assert witness.is_relative_to(built.config)
    assert not witness.resolve().is_relative_to(built.root.resolve())
    assert witness.read_text().splitlines() == [f"{i} {h}" for i, h in enumerate(built.hashes)]
    assert stat.S_IMODE(witness.stat().st_mode) & 0o077 == 0
    key = built.config / KEY_FILE
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Nothing per-user in the workspace: only the ledger (and its lock) and the policy files.
    for path in built.root.rglob("*"):
        rel = path.relative_to(built.root)
        assert rel.parts[0] in ("policies", LEDGER_FILE, f"{LEDGER_FILE}.lock"), rel
        assert path.suffix not in (".pem", ".log")
        if path.is_file() and rel.parts[0] == "policies":
            assert path.name == f"{sha256_hex(path.read_bytes())}.json"


def _ledger_of_distinct_policies(tmp_path: Path, count: int) -> tuple[Any, Path]:
    """A workspace with ``count`` added policies (one changed action each) and its config folder."""
    from policyledger_core.policy import MYOPIC_ACTIONS, Policy
    from policyledger_core.sim.config import preset as env_preset
    from policyledger_core.workspace.context import Context
    from policyledger_core.workspace.publish import save_policy

    config = tmp_path / "cfg"
    ctx = Context.open(tmp_path / "ws", config)
    for i in range(count):
        actions = list(MYOPIC_ACTIONS)
        actions[i] = (actions[i] + 1) % 5
        save_policy(ctx, Policy(env_preset("short-burst"), tuple(actions)), None, {"kind": "added"},
                    episodes=50)
    return ctx, config


def test_a_problem_found_by_an_audit_survives_a_restart(tmp_path: Path) -> None:
    """A bad signature is invisible to the fast scan; the audit's finding is remembered per user."""
    from policyledger_core.ledger.chain import Ledger

    ctx, config = _ledger_of_distinct_policies(tmp_path, 3)
    path = ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    signature = lines[2][-130:-2]  # entry 1's signature hex
    lines[2] = lines[2].replace(signature, bytes(reversed(signature)))
    path.write_bytes(b"\n".join(lines))
    assert Ledger.open(ctx.workspace, config).problem is None  # the scan cannot see it
    report = run_to_end(audit(Ledger.open(ctx.workspace, config), ctx.store))
    assert report.problem is not None and report.problem.index == 1
    reopened = Ledger.open(ctx.workspace, config)  # a new process, same user
    assert reopened.problem is not None and reopened.problem.index == 1
    with pytest.raises(LedgerError):
        reopened.append({}, ctx.publisher)
    lines[2] = lines[2].replace(bytes(reversed(signature)), signature)  # the signature put back
    path.write_bytes(b"\n".join(lines))
    fixed = Ledger.open(ctx.workspace, config)
    assert fixed.problem is not None  # still remembered until an audit looks again
    assert run_to_end(audit(fixed, ctx.store)).ok
    assert Ledger.open(ctx.workspace, config).problem is None


def test_set_aside_reads_what_it_can_after_the_problem(tmp_path: Path) -> None:
    """For display only: entries from the first problem on, read without trusting them."""

    ctx, config = _ledger_of_distinct_policies(tmp_path, 4)
    assert Ledger.open(ctx.workspace, config).set_aside() == []
    path = ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"mean":', b'"mean":7', 1)  # entry 1 edited
    lines[4] = b",{not json"  # entry 3 garbage
    path.write_bytes(b"\n".join(lines))
    ledger = Ledger.open(ctx.workspace, config)
    aside = ledger.set_aside()
    assert [a.index for a in aside] == [1, 2, 3]
    assert aside[1].policy_hash == ctx.ledger.entry(2).policy_hash
    assert aside[2].policy_hash is None and aside[2].mean is None
