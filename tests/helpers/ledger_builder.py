"""A real ledger built through the API, and the tools to damage it the way an attacker or a crash would.

Every ledger here is built through the real API (``Context.open`` and
``publish.save_policy``, or ``Ledger.append`` with fields built as publishing
builds them). Each problem must name the RIGHT entry (``Problem.index``) with a
reason that says what is wrong, both from a fresh ``Ledger.open`` (fast scan
plus the per-user checkpoint) and from a full ``audit``.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import GENESIS, Entry, EntryError, from_dict, seal
from policyledger_core.ledger.layout import FOOTER, HEADER, Problem
from policyledger_core.ledger.merkle import inclusion_proof, leaf_hash, root
from policyledger_core.ledger.note import Checkpoint
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import Publisher
from policyledger_core.paths import LEDGER_FILE, Workspace
from policyledger_core.policy import Policy
from policyledger_core.sim.config import preset
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.audit import AuditReport, audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy, verification_fields

EPISODES = 50
N_ENTRIES = 6
LEDGER_LOG = "policyledger_core.ledger.chain"


# -- building real ledgers ------------------------------------------------------------------------


def make_policy(seed: int, preset_name: str = "short-burst") -> Policy:
    """A policy with a pseudo-random action table (distinct seeds give distinct policies)."""
    rng = random.Random(seed)
    return Policy(config=preset(preset_name), actions=tuple(rng.randrange(5) for _ in range(108)))


def fields_for(policy: Policy) -> dict[str, Any]:
    """Entry fields exactly as publishing builds them."""
    report = verify(policy, EPISODES)
    return {"policy_hash": policy.hash, "config": policy.config.to_dict(),
            "verification": verification_fields(report), "training": None, "origin": {"kind": "added"}}


def save(ctx: Context, seed: int, preset_name: str = "short-burst") -> Entry:
    saved = save_policy(ctx, make_policy(seed, preset_name), None, {"kind": "added"}, episodes=EPISODES)
    assert saved.created
    return saved.entry


@dataclass
class Built:
    """A workspace with a real ledger of ``N_ENTRIES`` entries and its untouched state."""

    root: Path
    config: Path
    entries: list[Entry]
    data: bytes

    @property
    def path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def hashes(self) -> list[str]:
        return [e.hash for e in self.entries]

    def context(self) -> Context:
        return Context.open(self.root, self.config)

    def open(self) -> Ledger:
        return Ledger.open(Workspace.open(self.root), self.config)


def build(root: Path, config: Path, n: int = N_ENTRIES, first_seed: int = 0) -> Built:
    ctx = Context.open(root, config)
    entries = [save(ctx, first_seed + i) for i in range(n)]
    return Built(root, config, entries, (root / LEDGER_FILE).read_bytes())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One real ledger of ``N_ENTRIES`` entries, built once; tests get copies of it."""
    base = tmp_path_factory.mktemp("template")
    return build(base / "workspace", base / "config")


@pytest.fixture
def built(template: Built, workspace: Path, tmp_path: Path) -> Built:
    """A copy of the template in this test's workspace, with this user's checkpoint moved along.

    The checkpoint files are named after the workspace path, so the copy's are renamed to
    the name its new workspace gets; their content (index and hash per line, the latest signed
    checkpoint) is unchanged.
    """
    config = tmp_path / "config"
    shutil.copytree(template.root, workspace)
    shutil.copytree(template.config, config)
    old, new = Witness(template.config, template.root), Witness(config, workspace)
    os.replace(config / old.path.relative_to(template.config), new.path)
    os.replace(config / old.head_path.relative_to(template.config), new.head_path)
    return Built(workspace, config, template.entries, template.data)


# -- reading and writing the file's lines ---------------------------------------------------------


def entry_lines(data: bytes) -> list[bytes]:
    """The entry lines of a well-formed ledger file, without their leading comma."""
    assert data.startswith(HEADER) and data.endswith(FOOTER)
    middle = data[len(HEADER):-len(FOOTER)]
    return [line.removeprefix(b",") for line in middle.split(b"\n")[:-1]]


def ledger_bytes(lines: list[bytes]) -> bytes:
    """A well-formed ledger file holding ``lines`` (commas put where the layout wants them)."""
    return HEADER + b"".join((b"," if i else b"") + line + b"\n" for i, line in enumerate(lines)) + FOOTER


def write_lines(b: Built, lines: list[bytes]) -> None:
    b.path.write_bytes(ledger_bytes(lines))


def tampered(line: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The line with its JSON changed, hash and signature left as they were (canonical form kept)."""
    data = json.loads(line)
    change(data)
    return canonical_bytes(data)


def full_audit(b: Built, config: Path | None = None) -> tuple[AuditReport, Context]:
    ctx = Context.open(b.root, config or b.config)
    return run_to_end(audit(ctx.ledger, ctx.store)), ctx


def expect_problem(b: Built, index: int, *fragments: str, config: Path | None = None) -> Problem:
    """Fresh open and full audit both name entry ``index``; entries before it stay usable."""
    ledger = Ledger.open(Workspace.open(b.root), config or b.config)
    problem = ledger.problem
    assert problem is not None, "the damage went unnoticed"
    assert problem.index == index, problem
    for fragment in fragments:
        assert fragment in problem.reason, problem
    assert ledger.read_only
    assert len(ledger) == index
    assert [e.hash for e in ledger.entries()] == b.hashes[:index]
    assert ledger.head == (b.hashes[index - 1] if index else GENESIS)
    report, _ = full_audit(b, config)
    assert not report.ok
    assert report.problem == problem
    return problem


def assert_valid_json(b: Built, hashes: list[str]) -> None:
    doc = json.loads(b.path.read_bytes())
    assert doc["format"] == "policyledger/ledger"
    assert doc["version"] == 1
    assert [e["hash"] for e in doc["entries"]] == hashes
    prev = GENESIS
    for i, e in enumerate(doc["entries"]):
        assert e["body"]["index"] == i
        assert e["body"]["prev"] == prev
        prev = e["hash"]


def assert_clean(root: Path, config: Path, n: int) -> AuditReport:
    ctx = Context.open(root, config)
    assert ctx.ledger.problem is None
    assert not ctx.ledger.torn_tail
    assert len(ctx.ledger) == n
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.ok, report.problem
    assert report.entries == n
    return report


# -- damage the tests share --------------------------------------------------------------------------


OTHER_KEY = Publisher.generate()


def edit_mean(d: dict[str, Any]) -> None:
    d["body"]["verification"]["mean"] += 1.0


def rewrite_chain(b: Built, index: int, edit: Callable[[dict[str, Any]], None],
                   signer: Publisher) -> list[str]:
    """Edit entry ``index`` and recompute every later hash and prev, re-signed by ``signer``."""
    new: list[Entry] = list(b.entries[:index])
    prev = b.hashes[index - 1] if index else GENESIS
    for old in b.entries[index:]:
        body = copy.deepcopy(old.body)
        if old.index == index:
            edit({"body": body})
        body["prev"] = prev
        body["publisher"] = signer.public_hex
        entry = seal(body, signer)
        new.append(entry)
        prev = entry.hash
    write_lines(b, [e.line() for e in new])
    return [e.hash for e in new]


def cut_inside(b: Built, index: int, keep: int) -> bytes:
    """The file cut ``keep`` bytes into entry ``index``'s line (its comma included)."""
    lines = entry_lines(b.data)
    start = len(ledger_bytes(lines[:index]).removesuffix(FOOTER))
    cut = b.data[:start + keep]
    b.path.write_bytes(cut)
    return cut


def damage_edit(b: Built) -> int:
    lines = entry_lines(b.data)
    lines[3] = tampered(lines[3], edit_mean)
    write_lines(b, lines)
    return 3


def damage_delete(b: Built) -> int:
    lines = entry_lines(b.data)
    del lines[2]
    write_lines(b, lines)
    return 2


def damage_swap(b: Built) -> int:
    lines = entry_lines(b.data)
    lines[1], lines[4] = lines[4], lines[1]
    write_lines(b, lines)
    return 1


def damage_truncate(b: Built) -> int:
    write_lines(b, entry_lines(b.data)[:4])
    return 4


def damage_rewrite(b: Built) -> int:
    rewrite_chain(b, 2, edit_mean, OTHER_KEY)
    return 2


def damage_cut(b: Built) -> int:
    cut_inside(b, 3, 40)
    return 3


def damage_garbage(b: Built) -> int:
    b.path.write_bytes(b"this is not a ledger\n")
    return 0


DAMAGES = [damage_edit, damage_delete, damage_swap, damage_truncate, damage_rewrite, damage_cut,
           damage_garbage]


DAMAGE_IDS = ["edit", "delete", "swap", "truncate", "rewrite", "cut", "garbage"]


# -- bundles --------------------------------------------------------------------------------------


def prove_alone(entry: dict[str, Any], key: Publisher, origin: str | None = None) -> str:
    """A tlog-proof of the entry in a tree ``key`` signs: filler leaves, then the entry at its index
    (what anyone holding a key can make: a proof binds the entry to that key's checkpoint only)."""
    try:
        line = from_dict(entry).line()
    except EntryError:
        return "not a proof: the entry itself is refused first"
    index = entry["body"]["index"]
    leaves = [leaf_hash(b"filler %d" % i) for i in range(index)] + [leaf_hash(line)]
    origin = origin or f"policyledger/ledger/{sha256_hex(key.public_hex.encode())[:16]}/{key.key_id}"
    head = Checkpoint(origin, len(leaves), root(leaves))
    return TlogProof(index, tuple(inclusion_proof(leaves, index)), key.sign_note(head.text())).text()
