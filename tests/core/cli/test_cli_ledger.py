"""policyledger-cli ledger commands: train, list, show, verify, export, import, add, repair.

Every command runs through ``cli.main`` with ``--workspace`` pointing at a
temporary folder; the ``workspace`` fixture gives each test its own config
folder (its own user). Exit codes: 0 done, 1 a failed check or a rejected
input, 2 bad usage or unreadable input, with one line on stderr for errors.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, NoReturn

import pytest

from policyledger_core.canonical import canonical_bytes
from policyledger_core.cli import learning as cli_learning
from policyledger_core.cli.main import main
from policyledger_core.ledger.entry import Origin, hash_body
from policyledger_core.ledger.signing import KEY_FILE, Publisher
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import PRESETS
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import prove_alone

STANDARD = PRESETS["standard"]
NON_TERMINAL = sorted(set(range(108)) - TERMINAL_OBSERVATIONS)


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str | Path, expect: int = 0) -> dict[str, Any]:
    code, out, err = run(*argv, "--json")
    assert code == expect, (code, out, err)
    assert "Traceback" not in err
    assert out.count("\n") == 1, out
    data: dict[str, Any] = json.loads(out)
    return data


def run_error(*argv: str | Path, expect: int) -> str:
    """Run a command that must fail: the exit code, nothing on stdout, one line on stderr."""
    code, out, err = run(*argv)
    assert code == expect, (code, out, err)
    assert out == ""
    assert err.startswith("policyledger-cli: ") and err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def train(root: Path, seed: int = 1, *extra: str) -> dict[str, Any]:
    return run_json("train", "--episodes", "200", "--seed", str(seed), "--workspace", root, *extra)


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``roots``: relative name -> bytes (None for a folder)."""
    out: dict[str, bytes | None] = {}
    for n, root in enumerate(roots):
        if root.exists():
            for path in sorted(root.rglob("*")):
                out[f"{n}:{path.relative_to(root)}"] = None if path.is_dir() else path.read_bytes()
    return out


def rewrite_entry(root: Path, index: int, at: int | None = None) -> None:
    """Change one character of entry ``index``'s line (by default a digit of its timestamp)."""
    path = root / "ledger.json"
    lines = path.read_bytes().split(b"\n")
    line = lines[index + 1]
    if at is None:
        at = line.index(b'"timestamp":"') + len(b'"timestamp":"')
    lines[index + 1] = line[:at] + (b"1" if line[at:at + 1] != b"1" else b"2") + line[at + 1:]
    path.write_bytes(b"\n".join(lines))


def variant(i: int) -> Policy:
    """Distinct policies (for prefix collisions): a few actions of the myopic policy changed."""
    actions = list(MYOPIC_ACTIONS)
    for k, obs in enumerate(NON_TERMINAL[:6]):
        actions[obs] = (actions[obs] + (i // 5**k) % 5) % 5
    return Policy(STANDARD, tuple(actions))


@pytest.fixture
def ws(workspace: Path) -> Path:
    return workspace


@pytest.fixture
def trained(ws: Path) -> dict[str, Any]:
    return train(ws, 1)


# -- train ------------------------------------------------------------------------------------------


def test_train_json_names_its_entry_and_an_identical_run_reuses_it(ws: Path) -> None:
    first = train(ws, 4)
    assert first["entry_index"] == 0
    assert re.fullmatch(r"[0-9a-f]{64}", first["entry_hash"])
    assert first["new_entry"] is True and first["entries_created"] == 1
    again = train(ws, 4)
    assert again["new_entry"] is False and again["entries_created"] == 0
    assert (again["entry_index"], again["entry_hash"], again["policy_hash"]) == (
        first["entry_index"], first["entry_hash"], first["policy_hash"])
    ctx = Context.open(ws)
    assert len(ctx.ledger) == 1
    entry = ctx.ledger.entry(0)
    assert entry.hash == first["entry_hash"] and entry.policy_hash == first["policy_hash"]
    assert entry.verification.replay_digest == first["replay_digest"]
    assert entry.origin == Origin("trained")
    assert entry.body["training"]["episodes"] == 200 and entry.body["training"]["seed"] == 4
    assert ctx.store.contains(first["policy_hash"])


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training fails the test: the command must stop before it."""
    def refuse(*args: object) -> NoReturn:
        raise AssertionError("training started before the workspace was checked")

    monkeypatch.setattr(cli_learning, "run_training", refuse)


def test_train_into_a_damaged_ledger_fails_before_training(ws: Path, trained: dict[str, Any],
                                                           tmp_path: Path, no_training: None) -> None:
    rewrite_entry(ws, 0)
    before = snapshot(ws, tmp_path / "config")
    err = run_error("train", "--episodes", "200", "--seed", "9", "--workspace", ws, expect=1)
    assert err.startswith("policyledger-cli: ledger is read-only until repaired: entry 0: ")
    assert snapshot(ws, tmp_path / "config") == before


def test_train_into_a_bad_workspace_fails_before_training(tmp_path: Path, workspace: Path,
                                                          no_training: None) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    assert "is not a folder" in run_error("train", "--workspace", file, expect=2)
    err = run_error("train", "--workspace", file / "below", expect=2)
    assert "--workspace" in err and str(file / "below") in err
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "policies").write_text("x")
    assert "policies" in run_error("train", "--workspace", tmp_path / "ws", expect=2)
    assert file.read_text() == "x" and not (tmp_path / "ws" / "ledger.json").exists()


def test_train_with_a_broken_publisher_key_fails_before_training(ws: Path, tmp_path: Path,
                                                                 no_training: None) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / KEY_FILE).write_text("not a key")
    assert "publisher key" in run_error("train", "--workspace", ws, expect=2)
    assert not (ws / "ledger.json").exists()


# -- list, show -------------------------------------------------------------------------------------


def test_list_and_show_after_training(ws: Path) -> None:
    runs = [train(ws, seed) for seed in (1, 2, 3)]
    policies = {r["policy_hash"] for r in runs}
    data = run_json("list", "--workspace", ws)
    rows = data["rows"]
    assert data["problem"] is None
    assert {r["policy_hash"] for r in rows} == policies
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    lows = [r["ci95_low"] for r in rows]
    assert lows == sorted(lows, reverse=True)
    for row in rows:
        assert row["own"] is True and row["origin"] == "trained" and row["preset"] == "standard"
        assert row["ci95_low"] == pytest.approx(row["verified_reward"] - row["ci95"])
    assert run_json("list", "--workspace", ws, "--preset", "extended")["rows"] == []

    target = runs[0]
    shown = run_json("show", target["policy_hash"][:10], "--workspace", ws)
    assert shown["policy_hash"] == target["policy_hash"]
    [entry] = shown["entries"]
    assert entry["hash"] == target["entry_hash"]
    assert entry["body"]["policy_hash"] == target["policy_hash"]
    assert entry["body"]["verification"]["mean"] == target["verified_reward"]
    assert run_json("show", target["policy_hash"].upper(), "--workspace", ws)["policy_hash"] == \
        target["policy_hash"]

    code, out, err = run("show", target["policy_hash"][:8], "--workspace", ws)
    assert code == 0 and err == ""
    assert f"policy {target['policy_hash']}" in out and "trained" in out


@pytest.fixture
def colliding(ws: Path) -> tuple[str, Policy, Policy]:
    """Two recorded policies whose hashes share their first four hex digits."""
    seen: dict[str, Policy] = {}
    for i in range(5**6):
        p = variant(i)
        prefix = p.hash[:4]
        if prefix in seen:
            a, b = seen[prefix], p
            break
        seen[prefix] = p
    else:  # pragma: no cover
        pytest.fail("no two variants share a four-digit prefix")
    for n, p in enumerate((a, b)):
        path = ws.parent / f"policy-{n}.json"
        path.write_bytes(p.canonical_bytes())
        run_json("add", path, "--workspace", ws)
    return prefix, a, b


def test_show_with_an_ambiguous_prefix_exits_2(ws: Path, colliding: tuple[str, Policy, Policy]) -> None:
    prefix, a, b = colliding
    err = run_error("show", prefix, "--workspace", ws, expect=2)
    assert f"{prefix} is ambiguous: 2 policies" in err
    assert "ambiguous" in run_error("export", prefix, "-o", ws.parent / "x.json", "--workspace", ws, expect=2)
    assert not (ws.parent / "x.json").exists()
    longer = a.hash[:5] if a.hash[4] != b.hash[4] else a.hash
    assert run_json("show", longer, "--workspace", ws)["policy_hash"] == a.hash


@pytest.mark.parametrize("prefix, reason", [
    ("abc", "expected 4 to 64 hex characters"),
    ("", "expected 4 to 64 hex characters"),
    ("xyzw", "expected 4 to 64 hex characters"),
    ("../../etc/passwd", "expected 4 to 64 hex characters"),
    ("a" * 65, "expected 4 to 64 hex characters"),
    ("unknown", "no recorded policy starts with"),
])
def test_show_with_a_bad_prefix_exits_2_with_one_line(ws: Path, trained: dict[str, Any], prefix: str,
                                                      reason: str) -> None:
    if reason.startswith("no recorded"):
        prefix = next(p for p in ("0000", "ffff", "1234") if not trained["policy_hash"].startswith(p))
    assert reason in run_error("show", prefix, "--workspace", ws, expect=2)
    assert reason in run_error("export", prefix, "-o", ws.parent / "b.json", "--workspace", ws, expect=2)


# -- verify -----------------------------------------------------------------------------------------


def test_verify_an_intact_ledger_exits_0(ws: Path) -> None:
    for seed in (1, 2):
        train(ws, seed)
    data = run_json("verify", "--workspace", ws)
    assert data["ok"] is True and data["problem"] is None and data["entries"] == 2
    replayed = run_json("verify", "--replay", "--workspace", ws)
    assert replayed["ok"] is True and replayed["replayed"] == 2
    code, out, err = run("verify", "--workspace", ws)
    assert code == 0 and err == "" and "ledger intact: 2 entries" in out


@pytest.mark.parametrize("command", ["verify", "repair"])
def test_verify_or_repair_a_folder_without_a_ledger_exits_2(ws: Path, tmp_path: Path, command: str) -> None:
    ws.mkdir()
    (ws / "policies").mkdir()
    for folder in (ws, tmp_path / "missing"):
        assert run_error(command, "--workspace", folder, expect=2) == \
            f"policyledger-cli: no ledger in {folder}\n"
        assert run_json(command, "--workspace", folder, expect=2) == \
            {"error": f"no ledger in {folder}", "exit": 2}
    assert sorted(p.name for p in ws.iterdir()) == ["policies"]  # nothing was created


def test_verify_a_deleted_ledger_seen_here_before_names_entry_0(ws: Path, trained: dict[str, Any]) -> None:
    (ws / "ledger.json").unlink()
    data = run_json("verify", "--workspace", ws, expect=1)
    assert data["problem"]["index"] == 0 and "missing" in data["problem"]["reason"]
    code, out, err = run("verify", "--workspace", ws)
    assert code == 1 and err == ""
    assert "ledger problem at entry 0" in out and "no entry is intact" in out and "0..-1" not in out


@pytest.mark.parametrize("damage, bad, reason", [
    ("edit", 1, "hash does not match"),
    ("signature", 2, "signature"),
    ("policy-file", 1, "file missing"),
])
def test_verify_a_tampered_ledger_exits_1_naming_the_first_bad_entry(ws: Path, damage: str, bad: int,
                                                                      reason: str) -> None:
    hashes = [train(ws, seed)["policy_hash"] for seed in (1, 2, 3)]
    assert len(set(hashes)) == 3
    if damage == "edit":
        rewrite_entry(ws, bad)
    elif damage == "signature":
        line = (ws / "ledger.json").read_bytes().split(b"\n")[bad + 1]
        rewrite_entry(ws, bad, at=len(line) - 3)
    else:
        (ws / "policies" / f"{hashes[bad]}.json").unlink()
    data = run_json("verify", "--workspace", ws, expect=1)
    assert data["ok"] is False
    assert data["problem"]["index"] == bad
    assert reason in data["problem"]["reason"]
    code, out, err = run("verify", "--workspace", ws)
    assert code == 1 and "Traceback" not in err
    assert f"ledger problem at entry {bad}" in out


# -- export and import ------------------------------------------------------------------------------


def test_export_then_import_as_another_user(ws: Path, trained: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = Context.open(ws).publisher.public_hex
    bundle = tmp_path / "bundle.json"
    exported = run_json("export", trained["policy_hash"][:12], "-o", bundle, "--workspace", ws)
    assert exported["policy_hash"] == trained["policy_hash"]
    assert exported["file"] == str(bundle) and exported["bytes"] == bundle.stat().st_size

    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "other-user"))
    other = tmp_path / "other-workspace"
    imported = run_json("import", bundle, "--workspace", other)
    assert imported["new_entry"] is True and imported["entry_index"] == 0
    assert imported["policy_hash"] == trained["policy_hash"]
    assert imported["verified_reward"] == trained["verified_reward"]
    again = run_json("import", bundle, "--workspace", other)
    assert again["new_entry"] is False and again["entry_hash"] == imported["entry_hash"]

    [row] = run_json("list", "--workspace", other)["rows"]
    assert row["origin"] == "imported" and row["publisher"] == publisher and row["own"] is False
    [entry] = run_json("show", trained["policy_hash"][:6], "--workspace", other)["entries"]
    assert entry["body"]["origin"]["publisher"] == publisher
    assert entry["body"]["origin"]["entry_hash"] == trained["entry_hash"]
    assert entry["body"]["publisher"] != publisher
    assert entry["body"]["verification"]["replay_digest"] == trained["replay_digest"]
    assert run_json("verify", "--replay", "--workspace", other)["ok"] is True

    code, out, err = run("import", bundle, "--workspace", other)
    assert code == 0 and err == "" and "already recorded as entry 0" in out


def _tamper_signature(data: bytes) -> bytes:
    doc = json.loads(data)
    sig = doc["entry"]["signature"]
    doc["entry"]["signature"] = ("1" if sig[0] != "1" else "2") + sig[1:]
    return json.dumps(doc).encode()


def _resealed(data: bytes, change: Any) -> bytes:
    """The bundle with its entry body changed, re-hashed and re-signed by a fresh key."""
    doc = json.loads(data)
    key = Publisher.generate()
    body = doc["entry"]["body"]
    change(body["verification"])
    body["publisher"] = doc["publisher"] = key.public_hex
    doc["entry"]["hash"] = hash_body(canonical_bytes(body))
    doc["entry"]["signature"] = key.sign(doc["entry"]["hash"])
    doc["tlog_proof"] = prove_alone(doc["entry"], key)  # consistent: only the check under test can fail
    return json.dumps(doc).encode()


def _forge_digest(data: bytes) -> bytes:
    return _resealed(data, lambda v: v.update(replay_digest="0" * 64))


def _claim_more(data: bytes) -> bytes:
    return _resealed(data, lambda v: v.update(replay_digest="0" * 64, mean=v["mean"] + 25.0))


def _small_suite(data: bytes) -> bytes:
    return _resealed(data, lambda v: v.update(episodes=999, suite="eval-v1/n=999"))




@pytest.mark.parametrize("tamper, reason", [
    (_tamper_signature, "rejected: bundle: the signature does not verify"),
    (_forge_digest, "rejected: bundle: claimed replay digest "),
    (_claim_more, "rejected: bundle: claimed mean "),
    (_small_suite, "rejected: bundle: evaluation suite too small (999 episodes, at least 1000)"),
    pytest.param(lambda d: d[: len(d) // 3], "rejected: bundle: not valid JSON"),
    pytest.param(lambda d: b"", "rejected: bundle: not valid JSON"),
    (lambda d: d + b" " * (1 << 20), "larger than 1048576 bytes"),
])
def test_import_of_a_rejected_bundle_exits_1_and_writes_nothing(ws: Path, trained: dict[str, Any],
                                                                 tmp_path: Path, tamper: Any,
                                                                 reason: str) -> None:
    bundle = tmp_path / "bundle.json"
    run_json("export", trained["policy_hash"][:12], "-o", bundle, "--workspace", ws)
    bundle.write_bytes(tamper(bundle.read_bytes()))
    other = tmp_path / "other-workspace"
    train(other, 2)  # the receiving workspace already holds an entry
    before = snapshot(other, tmp_path / "config")
    err = run_error("import", bundle, "--workspace", other, expect=1)
    assert reason in err
    assert snapshot(other, tmp_path / "config") == before


def test_import_into_a_damaged_ledger_exits_1_and_writes_nothing(ws: Path, trained: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    run_json("export", trained["policy_hash"][:12], "-o", bundle, "--workspace", ws)
    other = tmp_path / "other-workspace"
    train(other, 2)
    rewrite_entry(other, 0)
    before = snapshot(other)
    err = run_error("import", bundle, "--workspace", other, expect=1)
    assert "read-only until repaired" in err
    assert snapshot(other) == before


@pytest.mark.parametrize("number, reason", [
    (b"1" + b"0" * 400, "rejected: bundle: integer with 401 digits is too large"),
    (b"1" + b"0" * 5000, "rejected: bundle: integer with 5001 digits is too large"),
    (b"1e400", "rejected: bundle: number 1e400 is out of range"),
])
def test_import_of_a_bundle_with_an_overflowing_number_exits_1(ws: Path, trained: dict[str, Any],
                                                               tmp_path: Path, number: bytes,
                                                               reason: str) -> None:
    bundle = tmp_path / "bundle.json"
    run_json("export", trained["policy_hash"][:12], "-o", bundle, "--workspace", ws)
    data = re.sub(rb'"mean":[-0-9.eE+]+', b'"mean":' + number, bundle.read_bytes(), count=1)
    bundle.write_bytes(data)
    other = tmp_path / "other-workspace"
    before = snapshot(other)
    assert reason in run_error("import", bundle, "--workspace", other, expect=1)
    assert snapshot(other) == before


@pytest.mark.parametrize("command", ["import", "add"])
def test_an_unreadable_input_path_exits_2(ws: Path, tmp_path: Path, command: str) -> None:
    assert "cannot read" in run_error(command, tmp_path / "missing.json", "--workspace", ws, expect=2)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert "cannot read" in run_error(command, folder, "--workspace", ws, expect=2)
    assert not (ws / "ledger.json").exists()


def test_export_to_an_unwritable_place_exits_2(ws: Path, trained: dict[str, Any], tmp_path: Path) -> None:
    prefix = trained["policy_hash"][:12]
    assert "is a folder" in run_error("export", prefix, "-o", tmp_path, "--workspace", ws, expect=2)
    err = run_error("export", prefix, "-o", tmp_path / "no" / "such" / "b.json", "--workspace", ws, expect=2)
    assert "cannot write" in err


@pytest.mark.parametrize("argv, expect, reason", [
    (["train", "--agents", "0"], 2, "argument --agents: must be from 1 to"),
    (["list", "--preset", "nope"], 2, "argument --preset: invalid choice: 'nope'"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "the following arguments are required: command"),
    (["show", "zzzz", "--workspace", "WS"], 2, "policy hash prefix: expected 4 to 64 hex characters"),
    (["import", "MISSING", "--workspace", "WS"], 2, "cannot read"),
    (["verify", "--workspace", "EMPTY"], 2, "no ledger in"),
    (["add", "BROKEN", "--workspace", "WS"], 1, "rejected: policy file: not valid JSON"),
    (["import", "BROKEN", "--workspace", "WS"], 1, "rejected: bundle: not valid JSON"),
    (["add", "POLICY", "--workspace", "DAMAGED"], 1, "ledger is read-only until repaired: entry 0: "),
])
def test_errors_with_json_are_one_object_on_stdout(ws: Path, trained: dict[str, Any], tmp_path: Path,
                                                    argv: list[str], expect: int, reason: str) -> None:
    damaged = tmp_path / "damaged"
    train(damaged, 3)
    rewrite_entry(damaged, 0)
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "policy.json").write_bytes(variant(2).canonical_bytes())
    paths = {"WS": ws, "MISSING": tmp_path / "missing.json", "EMPTY": tmp_path, "DAMAGED": damaged,
             "BROKEN": tmp_path / "broken.json", "POLICY": tmp_path / "policy.json"}
    argv = [str(paths.get(a, a)) for a in argv]
    before = snapshot(ws, damaged)
    code, out, err = run(*argv, "--json")
    assert (code, err) == (expect, "")
    assert out.count("\n") == 1, out
    data = json.loads(out)
    assert set(data) == {"error", "exit"} and data["exit"] == expect
    assert reason in data["error"] and "\n" not in data["error"]
    # Without --json: the same message, one line on stderr, nothing on stdout.
    assert run_error(*argv, expect=expect) == f"policyledger-cli: {data['error']}\n"
    assert snapshot(ws, damaged) == before


def test_a_workspace_that_is_a_file_exits_2(tmp_path: Path, workspace: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    for argv in (["list"], ["verify"], ["repair"], ["show", "abcd"]):
        assert "is not a folder" in run_error(*argv, "--workspace", file, expect=2)


# -- add --------------------------------------------------------------------------------------------


def test_add_a_bare_policy_file(ws: Path, tmp_path: Path) -> None:
    policy = variant(7)
    path = tmp_path / "policy.json"
    path.write_bytes(policy.canonical_bytes())
    data = run_json("add", path, "--workspace", ws)
    assert data["new_entry"] is True and data["entry_index"] == 0
    assert data["policy_hash"] == policy.hash
    assert data["verified_reward"] == verify(policy).mean
    entry = Context.open(ws).ledger.entry(0)
    assert entry.origin == Origin("added") and entry.body["training"] is None
    assert run_json("add", path, "--workspace", ws)["new_entry"] is False
    # the same policy written differently (whitespace, key order) is the same policy
    path.write_text(json.dumps(json.loads(policy.canonical_bytes()), indent=2))
    again = run_json("add", path, "--workspace", ws)
    assert again["new_entry"] is False and again["entry_hash"] == data["entry_hash"]


def _policy_doc(**changes: Any) -> bytes:
    doc = variant(3).to_dict()
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("content, reason", [
    pytest.param(b"", "rejected: policy file: not valid JSON"),
    pytest.param(b"{\"schema\":", "rejected: policy file: not valid JSON"),
    (_policy_doc(version=10**25), "rejected: policy file: integer with 26 digits is too large"),
    (b"\xff\xfe", "not UTF-8"),
    (_policy_doc(actions=[5] * 108), "rejected: actions[0]: expected an action 0..4, got 5"),
    (_policy_doc(actions=[0] * 107), "rejected: actions: expected a list of 108 actions"),
    (_policy_doc(env_id="Other-v0"), "rejected: env_id: unknown environment"),
    (_policy_doc(extra=1), "rejected: policy: unknown field 'extra'"),
    (_policy_doc(version=True), "rejected: version: unsupported policy version True"),
    (b'{"schema":"policyledger/policy","schema":"x"}', "duplicate key 'schema'"),
    (_policy_doc().replace(b'"escalation_prob": 0.6', b'"escalation_prob": NaN'),
     "escalation_prob: non-finite number NaN"),
    (b" " * (64 * 1024 + 1), "larger than 65536 bytes"),
])
def test_add_a_broken_policy_file_exits_1_with_one_line(ws: Path, trained: dict[str, Any], tmp_path: Path,
                                                         content: bytes, reason: str) -> None:
    path = tmp_path / "policy.json"
    path.write_bytes(content)
    before = snapshot(ws, tmp_path / "config")
    assert reason in run_error("add", path, "--workspace", ws, expect=1)
    assert snapshot(ws, tmp_path / "config") == before


# -- repair -----------------------------------------------------------------------------------------


def test_repair_a_damaged_ledger_keeps_a_backup(ws: Path) -> None:
    first = train(ws, 1)
    train(ws, 2)
    rewrite_entry(ws, 1)
    damaged = (ws / "ledger.json").read_bytes()
    assert run_json("verify", "--workspace", ws, expect=1)["problem"]["index"] == 1
    data = run_json("repair", "--workspace", ws)
    backup = Path(data["backup"])
    assert backup.is_file() and backup.parent == ws and backup.name.startswith("ledger.json.damaged-")
    assert backup.read_bytes() == damaged
    assert data["entries"] == 1
    after = run_json("verify", "--workspace", ws)
    assert after["ok"] is True and after["entries"] == 1
    [row] = run_json("list", "--workspace", ws)["rows"]
    assert row["policy_hash"] == first["policy_hash"]
    # appends work again, after the kept entry
    again = train(ws, 2)
    assert again["new_entry"] is True and again["entry_index"] == 1
    assert run_json("verify", "--workspace", ws)["entries"] == 2


def test_repair_an_intact_ledger_has_nothing_to_do_and_exits_0(ws: Path, trained: dict[str, Any]) -> None:
    before = snapshot(ws)
    code, out, err = run("repair", "--workspace", ws)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1 and out.startswith("nothing to repair")
    data = run_json("repair", "--workspace", ws)
    assert data["backup"] is None and data["entries"] == 1
    assert snapshot(ws) == before


def test_list_of_a_damaged_ledger_ranks_only_entries_before_the_problem(ws: Path) -> None:
    first = train(ws, 1)
    train(ws, 2)
    train(ws, 3)
    rewrite_entry(ws, 1)
    data = run_json("list", "--workspace", ws)
    assert [r["policy_hash"] for r in data["rows"]] == [first["policy_hash"]]
    assert data["problem"].startswith("entry 1:")
    code, out, err = run("list", "--workspace", ws)
    assert code == 0 and err == "" and "only entries before the ledger problem are ranked" in out


def test_training_into_a_ledger_damaged_meanwhile_keeps_the_policy(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing learned is lost: when chaining is refused after the run, the policy file stays."""
    ws = tmp_path / "ws"
    code, _, err = run("train", "--workspace", ws, "--episodes", "50", "--preset", "short-burst")
    assert code == 0, err
    real = cli_learning.run_training

    def damaged_meanwhile(*args: Any) -> Any:
        done = real(*args)
        lines = (ws / "ledger.json").read_bytes().split(b"\n")
        lines[1] = lines[1].replace(b'"mean":', b'"mean":1', 1)  # damage entry 0 during the run
        (ws / "ledger.json").write_bytes(b"\n".join(lines))
        return done

    monkeypatch.setattr(cli_learning, "run_training", damaged_meanwhile)
    before = snapshot(ws)
    err = run_error("train", "--workspace", ws, "--episodes", "60", "--seed", "9", expect=1)
    assert "read-only until repaired" in err and "The policy is kept as" in err
    added = sorted(set(snapshot(ws)) - set(before))
    assert len(added) == 1 and added[0].split(":", 1)[1] in err
