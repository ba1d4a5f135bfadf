"""Witnessing: C2SP tlog-cosignatures (Ed25519, timestamped), add-checkpoint requests checked against
the last checkpoint seen, and cosignatures carried by checkpoints and proofs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policyledger_core.cli.main import main
from policyledger_core.ledger import tlog
from policyledger_core.ledger.cosign import (
    Cosigner,
    CosignerKey,
    Request,
    attach,
    cosignatures,
    message,
)
from policyledger_core.ledger.note import Checkpoint, NoteError, Verifier, open_note, split
from policyledger_core.ledger.peers import Peers
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import Publisher
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import build, save

HEAD = Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_cosignature_is_the_c2sp_ed25519_timestamped_signature() -> None:
    private = Ed25519PrivateKey.generate()
    cosigner = Cosigner(private)
    key = cosigner.key
    public = key.public
    assert key.key_id == hashlib.sha256(key.name.encode() + b"\n\x04" + public).digest()[:4]
    assert CosignerKey.parse(key.text()) == key
    line = cosigner.cosign(HEAD.text(), timestamp=1679315147)
    dash, name, payload = line.rstrip("\n").split(" ")
    raw = base64.b64decode(payload)
    assert dash == "\u2014" and name == key.name and len(raw) == 4 + 8 + 64
    assert raw[:4] == key.key_id and struct.unpack(">Q", raw[4:12]) == (1679315147,)
    signed = (b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
              b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
    assert message(HEAD.text(), 1679315147) == signed
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], signed)  # raises if not


def test_cosignatures_round_trip_on_a_note_and_bad_ones_are_not_counted() -> None:
    log = Publisher.generate()
    note = log.sign_note(HEAD.text())
    one, two = Cosigner(Ed25519PrivateKey.generate()), Cosigner(Ed25519PrivateKey.generate())
    cosigned = attach(note, [one.cosign(HEAD.text(), 100), two.cosign(HEAD.text(), 200)])
    assert open_note(cosigned, [log.verifier()])[0] == HEAD.text()  # the log's signature still checks
    assert cosignatures(cosigned, [one.key, two.key]) == [(one.key, 100), (two.key, 200)]
    other = Checkpoint(HEAD.origin, HEAD.size + 1, HEAD.root).text()
    wrong = attach(note, [one.cosign(other, 100)])  # a cosignature of another checkpoint
    assert cosignatures(wrong, [one.key]) == []
    payload = bytearray(base64.b64decode(two.cosign(HEAD.text(), 300).split(" ")[2]))
    payload[5] ^= 1  # the timestamp changed: the signature no longer matches
    flipped = f"\u2014 {two.key.name} {base64.b64encode(bytes(payload)).decode()}\n"
    assert cosignatures(attach(note, [flipped]), [two.key]) == []
    assert attach(cosigned, [one.cosign(HEAD.text(), 100)]) == cosigned  # not repeated
    with pytest.raises(NoteError, match="not an Ed25519 cosignature"):
        attach(note, [split(Publisher.generate().sign_note(HEAD.text()))[1][0].line()])  # a plain signature
    assert attach(note, [split(note)[1][0].line()]) == note  # the note's own line, from a cosigned copy


@pytest.mark.parametrize(("text", "reason"), [
    ("old 01\n\n", "not a decimal number"),
    ("old 0\nAAAA\n\n", "not 32 bytes"),
    ("old 0\n" + base64.b64encode(bytes(32)).decode() + "\n\n", "must be empty"),
    ("old 5\n" + (base64.b64encode(bytes(32)).decode() + "\n") * 64 + "\n", "more than 63"),
    ("new 5\n\n", "expected 'old N'"),
    ("old 5\nnot base64!\n\n", "not base64"),
    ("old " + "1" * 5000 + "\n\n", "not a decimal number"),  # more digits than int() takes
    (f"old {1 << 64}\n\n", "not a decimal number"),
    ("old 1\ud800\n\n", "not UTF-8"),
])
def test_a_malformed_request_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        Request.parse(text + "x\n")


def _request(root: Path, old: int) -> str:
    code, body, err = run("consistency", str(old), "--workspace", str(root))
    assert code == 0, err
    return body


def test_cosign_checks_each_request_against_the_last_checkpoint_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 3)
    twin = tmp_path / "alice-copy"
    shutil.copytree(alice.root, twin)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    key = run("checkpoint", "--verifier-key", "--workspace", str(alice.root))[1].strip()
    first = tmp_path / "r0"
    first.write_text(_request(alice.root, 0), encoding="utf-8")
    save(Context.open(alice.root, alice.config), 40)
    grown = tmp_path / "r3"
    grown.write_text(_request(alice.root, 3), encoding="utf-8")
    twin_ctx = Context.open(twin, alice.config)
    save(twin_ctx, 41)  # the same key signs another 4th entry: a fork ...
    save(twin_ctx, 42)
    forked = tmp_path / "fork"
    forked.write_text(_request(twin, 4), encoding="utf-8")  # ... shown to one who saw the real 4th

    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "carol-cfg"))
    carol = tmp_path / "carol"
    code, _out, err = run("cosign", str(first), "--workspace", str(carol))
    assert code == 1 and "not signed by any key" in err  # an unknown log needs its key
    code, out, err = run("cosign", str(first), "--key", key, "--workspace", str(carol), "--json")
    assert code == 0, err
    said = json.loads(out)
    witness_key = CosignerKey.parse(said["cosigner_key"])
    assert said["size"] == 3 and said["seen_before"] == "first"
    note = first.read_text(encoding="utf-8").partition("\n\n")[2]
    assert cosignatures(attach(note, [said["cosignature"]]), [witness_key])
    code, _out, err = run("cosign", str(first), "--workspace", str(carol))
    assert code == 1 and "starts from 0 entries" in err and "last cosigned 3" in err
    code, out, err = run("cosign", str(grown), "--workspace", str(carol), "--json")  # the key is remembered
    assert code == 0, err
    assert json.loads(out)["size"] == 4 and json.loads(out)["seen_before"] == "newer"
    code, _out, err = run("cosign", str(forked), "--workspace", str(carol))
    assert code == 1 and "fork of policyledger/ledger/" in err and "does not verify" in err
    assert len(list((tmp_path / "carol-cfg" / "tlog" / "forks").iterdir())) == 1
    code, _out, err = run("cosign", str(grown), "--workspace", str(carol))  # nothing changed by the fork
    assert code == 1 and "starts from 3 entries" in err and "last cosigned 4" in err


def test_a_witness_cosigns_only_what_extends_what_it_cosigned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint seen without a consistency proof (a bundle's) is taken as the latest, but it was
    never shown to extend what this user cosigned: a request must start from the size cosigned, so
    a fork shown first in a bundle cannot then be cosigned from there (two inconsistent cosignatures)."""
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 2)
    twin = tmp_path / "alice-copy"
    shutil.copytree(alice.root, twin)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    key = run("checkpoint", "--verifier-key", "--workspace", str(alice.root))[1].strip()
    save(Context.open(alice.root, alice.config), 40)
    honest = tmp_path / "honest"
    honest.write_text(_request(alice.root, 0), encoding="utf-8")  # 3 entries
    twin_ctx = Context.open(twin, alice.config)
    for seed in (41, 42, 43):  # the same key signs another 3rd entry and more: a fork
        save(twin_ctx, seed)
    bundled = run("checkpoint", "--workspace", str(twin))[1]  # what a bundle of the fork carries (5)
    save(twin_ctx, 44)
    from_5, from_3 = tmp_path / "from-5", tmp_path / "from-3"
    from_5.write_text(_request(twin, 5), encoding="utf-8")
    from_3.write_text(_request(twin, 3), encoding="utf-8")

    carol_cfg = tmp_path / "carol-cfg"
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(carol_cfg))
    carol = tmp_path / "carol"
    code, _out, err = run("cosign", str(honest), "--key", key, "--workspace", str(carol))
    assert code == 0, err
    seen = Peers(carol_cfg).observe(bundled, Verifier.parse(key))  # as a bundle import does
    assert seen.relation == "newer" and not seen.proved
    code, _out, err = run("cosign", str(from_5), "--workspace", str(carol))
    assert code == 1 and "starts from 5 entries" in err and "last cosigned 3" in err
    code, _out, err = run("cosign", str(from_3), "--workspace", str(carol))
    assert code == 1 and "fork of policyledger/ledger/" in err and "cosigned before does not verify" in err


def test_a_request_between_equal_sizes_carries_no_proof(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    key = run("checkpoint", "--verifier-key", "--workspace", str(alice.root))[1].strip()
    first, again = tmp_path / "r0", tmp_path / "r3"
    first.write_text(_request(alice.root, 0), encoding="utf-8")
    body = _request(alice.root, 3)
    assert body.startswith("old 3\n\n")
    again.write_text(body.replace("old 3\n", "old 3\n" + base64.b64encode(bytes(32)).decode() + "\n"),
                     encoding="utf-8")
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "carol-cfg"))
    carol = tmp_path / "carol"
    assert run("cosign", str(first), "--key", key, "--workspace", str(carol))[0] == 0
    code, _out, err = run("cosign", str(again), "--workspace", str(carol))
    assert code == 1 and "must be empty" in err
    again.write_text(body, encoding="utf-8")
    code, out, err = run("cosign", str(again), "--workspace", str(carol), "--json")
    assert code == 0 and json.loads(out)["seen_before"] == "same", err


def test_a_given_cosigners_line_that_does_not_verify_is_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cosignature of another checkpoint (an older response) by a cosigner the user names would
    travel with every proof, and a verifier that knows that cosigner refuses a note holding a
    signature of a known key that fails (C2SP signed-note; Go's note.Open does)."""
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    key = run("checkpoint", "--verifier-key", "--workspace", str(alice.root))[1].strip()
    old, new = tmp_path / "r0", tmp_path / "r3"
    old.write_text(_request(alice.root, 0), encoding="utf-8")
    save(Context.open(alice.root, alice.config), 40)
    new.write_text(_request(alice.root, 3), encoding="utf-8")
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "witness-cfg"))
    responses = []
    for request in (old, new):
        code, response, err = run("cosign", str(request), "--key", key, "--workspace", str(tmp_path / "w"))
        assert code == 0, err
        responses.append(tmp_path / f"{request.name}.response")
        responses[-1].write_text(response, encoding="utf-8")
    witness_key = run("cosign", "--verifier-key", "--workspace", str(tmp_path / "w"))[1].strip()
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    code, _out, err = run("checkpoint", "--cosignatures", *map(str, responses), "--cosigner-key", witness_key,
                          "--workspace", str(alice.root))
    assert code == 1 and "does not verify on this checkpoint" in err
    assert len(split(run("checkpoint", "--workspace", str(alice.root))[1])[1]) == 1  # nothing kept
    code, out, err = run("checkpoint", "--cosignatures", str(responses[1]), "--cosigner-key", witness_key,
                         "--workspace", str(alice.root), "--json")
    assert code == 0 and json.loads(out)["cosignatures"] == 1, err


def test_cosignatures_attached_to_a_checkpoint_travel_with_its_proofs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    request = tmp_path / "request"
    request.write_text(_request(alice.root, 0), encoding="utf-8")
    key = run("checkpoint", "--verifier-key", "--workspace", str(alice.root))[1].strip()
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "witness-cfg"))
    code, response, err = run("cosign", str(request), "--key", key, "--workspace", str(tmp_path / "w"))
    assert code == 0, err
    witness_key = run("cosign", "--verifier-key", "--workspace", str(tmp_path / "w"))[1].strip()
    (tmp_path / "response").write_text(response, encoding="utf-8")
    (tmp_path / "junk").write_text("hello\n", encoding="utf-8")

    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(alice.config))
    stranger = Cosigner(Ed25519PrivateKey.generate()).key.text()
    code, _out, err = run("checkpoint", "--cosignatures", str(tmp_path / "response"),
                          "--cosigner-key", stranger, "--workspace", str(alice.root))
    assert code == 1 and "no valid cosignature" in err
    code, _out, err = run("checkpoint", "--cosignatures", str(tmp_path / "junk"),
                          "--workspace", str(alice.root))
    assert code == 2 and "no signature line" in err
    cosigned = tmp_path / "cosigned"  # the response after the checkpoint, as tlog-witness suggests
    cosigned.write_text(request.read_text(encoding="utf-8").partition("\n\n")[2] + response, encoding="utf-8")
    code, out, err = run("checkpoint", "--cosignatures", str(cosigned),
                         "--cosigner-key", witness_key, "--workspace", str(alice.root), "--json")
    assert code == 0, err
    assert json.loads(out)["cosignatures"] == 1
    plain = run("checkpoint", "--workspace", str(alice.root))[1]
    assert plain == json.loads(out)["checkpoint"]  # kept: printed again without the option
    entry = Context.open(alice.root, alice.config).ledger.scanned()[1]
    proof = TlogProof.parse(run("prove", entry.policy_hash[:12], "--workspace", str(alice.root))[1])
    assert cosignatures(proof.checkpoint, [CosignerKey.parse(witness_key)])
    save(Context.open(alice.root, alice.config), 50)  # a new checkpoint: those cosignatures are not its
    proof = TlogProof.parse(run("prove", entry.policy_hash[:12], "--workspace", str(alice.root))[1])
    assert len(split(proof.checkpoint)[1]) == 1


def test_a_witness_refuses_a_checkpoint_whose_origin_names_another_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every copy of a workspace shares its ledger's name; each signer's log adds its key's id. A key
    signing a checkpoint under another signer's origin would borrow that log's cosignatures."""
    alice = build(tmp_path / "alice", tmp_path / "alice-cfg", 3)
    ctx = Context.open(alice.root, alice.config)
    mallory = Publisher.generate()
    name = tlog.origin(ctx.ledger, None)
    borrowed = Checkpoint(f"{name}/{ctx.publisher.key_id}", 3, ctx.ledger.tree().root())
    request = tmp_path / "request"
    request.write_text(f"old 0\n\n{mallory.sign_note(borrowed.text())}", encoding="utf-8")
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "witness-cfg"))
    code, _out, err = run("cosign", str(request), "--key", mallory.verifier().text(),
                          "--workspace", str(tmp_path / "w"))
    assert code == 1 and f"names key {ctx.publisher.key_id}" in err and mallory.note_name in err
    assert not (tmp_path / "witness-cfg" / "tlog" / "logs").exists()  # nothing recorded
