"""The ledger's transparency-log artifacts, checked by an independent implementation: Go's
golang.org/x/mod/sumdb/note (signed notes) and sumdb/tlog (RFC 6962 inclusion and consistency proofs).

``go_verifier/main.go`` is built once per session with Debian's ``golang-go`` and
``golang-golang-x-mod-dev`` (``.ci/setup`` installs them when run as root); without them these
tests are skipped. Every artifact comes from a real ledger built through the project's own code in
temporary workspaces: most in-process (``tlog.signed_checkpoint``, ``tlog.prove``,
``tlog.consistency_request``), some through the CLI, once through the installed ``policyledger-cli``.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyledger_core.cli.main import main
from policyledger_core.ledger import tlog
from policyledger_core.ledger.merkle import leaf_hash, root
from policyledger_core.ledger.note import Checkpoint, open_note, sign
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import Publisher
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import build, entry_lines, save

GO_SOURCE = Path(__file__).with_name("go_verifier")
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-* -dev packages put their sources
SUMDB = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"
SIZES = (*range(1, 10), 33)
"""The ledger sizes whose every inclusion and consistency proof Go checks."""
PROOF_FAILED = "invalid transparency proof"  # tlog's error for a proof that does not hold


@dataclass
class GoVerifier:
    """The built ``go_verifier``; each call writes its inputs to files of its own."""

    exe: Path
    work: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def file(self, content: str | bytes) -> str:
        path = self.work / f"input-{next(self._names)}"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.exe), *args], capture_output=True, text=True, timeout=60, check=False)

    def accepts(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"Go refused {args[0]}: {done.stderr.strip()}"
        assert done.stdout.startswith("ok " + args[0]), done.stdout
        return done.stdout

    def refuses(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 1, f"Go accepted {args[0]} ({done.stdout.strip()}) or failed: {done.stderr}"
        return done.stderr

    def checkpoint(self, vkey: str, note: str | bytes) -> tuple[str, int, bytes]:
        """Go's reading of a signed checkpoint: its origin, size and root."""
        said = self.accepts("checkpoint", vkey, self.file(note)).splitlines()
        lines = dict(line.split(" ", 1) for line in said[1:])
        return lines["origin"], int(lines["size"]), base64.b64decode(lines["root"])

    def inclusion(self, vkey: str, proof: str, record: bytes) -> list[str]:
        return ["inclusion", vkey, self.file(proof), self.file(record)]

    def consistency(self, vkey: str, old: str | None, request: str) -> list[str]:
        return ["consistency", vkey, "-" if old is None else self.file(old), self.file(request)]


@pytest.fixture(scope="session")
def go(tmp_path_factory: pytest.TempPathFactory) -> GoVerifier:
    """``go_verifier`` built once, in GOPATH mode against Debian's golang.org/x/mod (nothing downloaded)."""
    compiler = shutil.which("go")
    if compiler is None:
        pytest.skip("no Go compiler: install Debian's golang-go and golang-golang-x-mod-dev "
                    "(.ci/setup does, as root)")
    if not (SUMDB / "note").is_dir() or not (SUMDB / "tlog").is_dir():
        pytest.skip(f"golang.org/x/mod/sumdb is not in {GOPATH}: install Debian's golang-golang-x-mod-dev")
    out = tmp_path_factory.mktemp("go_verifier")
    env = {**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off", "GOFLAGS": "", "GOPROXY": "off",
           "GOCACHE": str(out / "cache")}
    done = subprocess.run([compiler, "build", "-o", str(out / "go_verifier"), "."], cwd=GO_SOURCE, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"go build failed:\n{done.stdout}{done.stderr}"
    shutil.rmtree(out / "cache", ignore_errors=True)
    work = out / "inputs"
    work.mkdir()
    return GoVerifier(out / "go_verifier", work)


@dataclass
class Grown:
    """A real ledger grown to ``max(SIZES)`` entries, with what the log gave at each size."""

    root: Path
    config: Path
    publisher: Publisher
    origin: str
    records: list[bytes]
    """Entry i's bytes as on its line in ledger.json: leaf i."""
    checkpoints: dict[int, str]
    """Size -> the signed checkpoint when the ledger had that many entries (every size)."""
    proofs: dict[int, list[str]]
    """Size in SIZES -> the tlog-proof of each entry then."""
    requests: dict[int, list[str]]
    """Size in SIZES -> the add-checkpoint request from each old size 0..size then."""

    @property
    def vkey(self) -> str:
        return self.publisher.verifier().text()


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Grown:
    base = tmp_path_factory.mktemp("grown")
    ctx = Context.open(base / "workspace", base / "config")
    checkpoints: dict[int, str] = {}
    proofs: dict[int, list[str]] = {}
    requests: dict[int, list[str]] = {}
    for n in range(1, max(SIZES) + 1):
        save(ctx, n)
        assert len(ctx.ledger) == n
        checkpoints[n] = tlog.signed_checkpoint(ctx.ledger, ctx.publisher)
        if n in SIZES:
            proofs[n] = [tlog.prove(ctx.ledger, ctx.publisher, i).text() for i in range(n)]
            requests[n] = [tlog.consistency_request(ctx.ledger, ctx.publisher, old) for old in range(n + 1)]
    records = [entry.record for entry in ctx.ledger.scanned()]
    assert records == entry_lines((base / "workspace" / LEDGER_FILE).read_bytes())  # the file's own bytes
    origin = tlog.origin(ctx.ledger, ctx.publisher.key_id)
    return Grown(base / "workspace", base / "config", ctx.publisher, origin, records, checkpoints, proofs,
                 requests)


def run_cli(*argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


# -- accepted -----------------------------------------------------------------------------------------


def test_go_opens_our_checkpoints_and_reads_what_we_wrote(go: GoVerifier, grown: Grown) -> None:
    assert grown.origin.startswith(tlog.ORIGIN_PREFIX)
    for n, note in grown.checkpoints.items():
        ours = Checkpoint.parse(open_note(note, [grown.publisher.verifier()])[0])
        assert go.checkpoint(grown.vkey, note) == (ours.origin, ours.size, ours.root) == (
            grown.origin, n, root([leaf_hash(r) for r in grown.records[:n]]))


@pytest.mark.parametrize("size", SIZES)
def test_go_accepts_the_inclusion_proof_of_every_entry(go: GoVerifier, grown: Grown, size: int) -> None:
    for index, proof in enumerate(grown.proofs[size]):
        said = go.accepts(*go.inclusion(grown.vkey, proof, grown.records[index]))
        assert said.split() == ["ok", "inclusion", str(index), str(size), grown.origin]


@pytest.mark.parametrize("size", SIZES)
def test_go_accepts_the_consistency_proof_from_every_older_size(go: GoVerifier, grown: Grown,
                                                                 size: int) -> None:
    for old, request in enumerate(grown.requests[size]):
        assert request.startswith(f"old {old}\n")
        said = go.accepts(*go.consistency(grown.vkey, grown.checkpoints.get(old), request))
        assert said.split() == ["ok", "consistency", str(old), str(size), grown.origin]


def test_go_accepts_what_the_cli_prints_and_writes(go: GoVerifier, grown: Grown, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(grown.config))  # the commands sign with this key
    ws = ("--workspace", str(grown.root))
    vkey = run_cli("checkpoint", "--verifier-key", *ws).strip()
    assert vkey == grown.vkey
    note = run_cli("checkpoint", *ws)
    data = json.loads(run_cli("checkpoint", "--json", *ws))
    assert go.checkpoint(data["verifier_key"], data["checkpoint"]) == go.checkpoint(vkey, note) == (
        data["origin"], data["size"], base64.b64decode(data["root"]))
    entries = Context.open(grown.root, grown.config).ledger.scanned()
    for index in (0, 17, len(entries) - 1):
        out = tmp_path / f"entry-{index}.tlog-proof"
        run_cli("prove", entries[index].policy_hash[:12], "-o", str(out), *ws)
        said = go.accepts("inclusion", vkey, str(out), go.file(entries[index].record))
        assert said.split() == ["ok", "inclusion", str(index), str(len(entries)), grown.origin]
    for old in (1, 8, 32):
        request = run_cli("consistency", str(old), *ws)
        said = go.accepts(*go.consistency(vkey, grown.checkpoints[old], request))
        assert said.split() == ["ok", "consistency", str(old), str(len(entries)), grown.origin]
    # Once through the installed command, its bytes on stdout as they are.
    cli = Path(sys.executable).with_name("policyledger-cli")
    done = subprocess.run([str(cli), "checkpoint", *ws], capture_output=True, timeout=120, check=False,
                          env={**os.environ, "POLICYLEDGER_CONFIG_DIR": str(grown.config)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == note.encode()
    assert go.checkpoint(vkey, done.stdout) == go.checkpoint(vkey, note)


def test_a_witness_following_the_log_through_the_cli_sees_it_grow_and_catches_a_fork(
        go: GoVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    vkey = run_cli("checkpoint", "--verifier-key", "--workspace", str(built.root)).strip()
    at_3 = run_cli("checkpoint", "--workspace", str(built.root))
    fork = tmp_path / "fork"
    shutil.copytree(built.root, fork)
    save(Context.open(built.root, built.config), 40)
    save(Context.open(fork, built.config), 41)  # another 4th entry: a fork with the same origin
    fork_at_4 = run_cli("checkpoint", "--workspace", str(fork))
    assert go.checkpoint(vkey, fork_at_4)[:2] == (go.checkpoint(vkey, at_3)[0], 4)
    save(Context.open(built.root, built.config), 42)
    from_3 = run_cli("consistency", "3", "--workspace", str(built.root))
    assert go.accepts(*go.consistency(vkey, at_3, from_3)).split()[:4] == ["ok", "consistency", "3", "5"]
    from_4 = run_cli("consistency", "4", "--workspace", str(built.root))
    assert PROOF_FAILED in go.refuses(*go.consistency(vkey, fork_at_4, from_4))


# -- refused ------------------------------------------------------------------------------------------


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_go_refuses_an_inclusion_proof_with_any_hash_altered_added_or_dropped(go: GoVerifier,
                                                                               grown: Grown) -> None:
    proof = TlogProof.parse(grown.proofs[9][4])
    record = grown.records[4]
    for j, at in itertools.product(range(len(proof.hashes)), (0, 31)):
        hashes = list(proof.hashes)
        hashes[j] = flipped(hashes[j], at)
        bad = TlogProof(proof.index, tuple(hashes), proof.checkpoint).text()
        assert PROOF_FAILED in go.refuses(*go.inclusion(grown.vkey, bad, record))
    for hashes in (proof.hashes[:-1], (*proof.hashes, proof.hashes[0])):
        bad = TlogProof(proof.index, hashes, proof.checkpoint).text()
        assert PROOF_FAILED in go.refuses(*go.inclusion(grown.vkey, bad, record))


def test_go_refuses_a_proof_for_the_wrong_record_or_index(go: GoVerifier, grown: Grown) -> None:
    proof = grown.proofs[9][4]
    for record in (grown.records[5], flipped(grown.records[4], 40), grown.records[4] + b"\n"):
        assert PROOF_FAILED in go.refuses(*go.inclusion(grown.vkey, proof, record))
    moved = proof.replace("\nindex 4\n", "\nindex 5\n")
    assert PROOF_FAILED in go.refuses(*go.inclusion(grown.vkey, moved, grown.records[4]))
    beyond = proof.replace("\nindex 4\n", "\nindex 9\n")  # no entry 9 in a tree of 9
    assert "invalid inputs" in go.refuses(*go.inclusion(grown.vkey, beyond, grown.records[4]))


def test_go_refuses_a_checkpoint_signed_by_another_key_or_altered(go: GoVerifier, grown: Grown) -> None:
    note = grown.checkpoints[9]
    text = open_note(note, [grown.publisher.verifier()])[0]
    other = Publisher.generate()
    by_other = other.sign_note(text)
    same_name = sign(text, grown.publisher.note_name, Ed25519PrivateKey.generate())  # an impostor
    for forged in (by_other, same_name):
        assert "no verifiable signatures" in go.refuses("checkpoint", grown.vkey, go.file(forged))
        proof = TlogProof.parse(grown.proofs[9][4])
        assert "no verifiable signatures" in go.refuses(*go.inclusion(
            grown.vkey, TlogProof(4, proof.hashes, forged).text(), grown.records[4]))
    go.accepts("checkpoint", other.verifier().text(), go.file(by_other))  # with its own key it opens
    assert "no verifiable signatures" in go.refuses("checkpoint", other.verifier().text(), go.file(note))
    altered = note.replace("\n9\n", "\n8\n", 1)  # our signature, another tree size
    assert altered != note
    assert "invalid signature" in go.refuses("checkpoint", grown.vkey, go.file(altered))


def test_go_refuses_a_consistency_proof_from_a_wrong_old_root_or_altered(go: GoVerifier,
                                                                         grown: Grown) -> None:
    old, request = 5, grown.requests[9][5]
    good_old = Checkpoint.parse(open_note(grown.checkpoints[old], [grown.publisher.verifier()])[0])
    swapped = [*grown.records[:old - 2], grown.records[old - 1], grown.records[old - 2]]
    for wrong in (root([leaf_hash(r) for r in swapped]), flipped(good_old.root, 0),
                  root([leaf_hash(r) for r in grown.records[:old - 1]])):
        signed = grown.publisher.sign_note(Checkpoint(grown.origin, old, wrong).text())  # signed, yet wrong
        assert PROOF_FAILED in go.refuses(*go.consistency(grown.vkey, signed, request))
    head, rest = request.split("\n\n", 1)
    lines = head.split("\n")
    for j in range(1, len(lines)):
        bad = lines.copy()
        bad[j] = base64.b64encode(flipped(base64.b64decode(bad[j]), 7)).decode()
        altered = "\n".join(bad) + "\n\n" + rest
        assert PROOF_FAILED in go.refuses(*go.consistency(grown.vkey, grown.checkpoints[old], altered))
    dropped = "\n".join(lines[:-1]) + "\n\n" + rest
    assert PROOF_FAILED in go.refuses(*go.consistency(grown.vkey, grown.checkpoints[old], dropped))
