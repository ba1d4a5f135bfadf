"""Hostile files inside a workspace, links out of it, and a config folder that cannot be written.

A ``ledger.json`` or policy file that is a FIFO, a device, a socket, a folder or
a huge sparse file must give a one-line reason at once with bounded memory,
never a hang or a MemoryError. Every call that could block on a FIFO runs
through :func:`bounded`, so a regression fails the test instead of hanging the
suite.
"""

from __future__ import annotations

import errno
import io
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.entry import Entry
from policyledger_core.paths import Workspace
from policyledger_core.policy import Policy
from policyledger_core.sim.config import preset
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from policyledger_core.workspace.store import StoreError
from tests.helpers.hostile import bounded, make_hostile

EPISODES = 50
KINDS = ["fifo", "dev-zero", "socket", "folder", "sparse"]


def make_policy(seed: int) -> Policy:
    rng = random.Random(seed)
    return Policy(config=preset("short-burst"), actions=tuple(rng.randrange(5) for _ in range(108)))


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = bounded(lambda: main([str(a) for a in argv], out=out, err=err))
    return code, out.getvalue(), err.getvalue()


def built(root: Path, config: Path, n: int = 3) -> tuple[Context, list[Entry]]:
    ctx = Context.open(root, config)
    entries = [save_policy(ctx, make_policy(i), None, {"kind": "added"}, episodes=EPISODES).entry
               for i in range(n)]
    return ctx, entries


# -- safeio -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_read_regular_refuses_at_once(tmp_path: Path, kind: str) -> None:
    from policyledger_core.safeio import FileTooLarge, NotARegularFile, read_regular

    path = tmp_path / "file.json"
    reason = make_hostile(path, kind)
    expected = FileTooLarge if kind == "sparse" else NotARegularFile
    with pytest.raises(expected) as err:
        bounded(lambda: read_regular(path, 1 << 20, "file.json"), fifo=path)
    assert str(err.value).startswith(f"file.json: {reason}")
    assert "\n" not in str(err.value)


def test_read_regular_reads_up_to_the_limit(tmp_path: Path) -> None:
    from policyledger_core.safeio import FileTooLarge, read_regular

    path = tmp_path / "file.json"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, 100) == b"x" * 100
    assert read_regular(path, 1000, offset=90) == b"x" * 10
    with pytest.raises(FileTooLarge, match="larger than 99 bytes"):
        read_regular(path, 99)
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing", 100)


# -- ledger.json ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_ledger_opens_read_only_and_repair_refuses(workspace: Path, tmp_path: Path,
                                                           kind: str) -> None:
    ctx, _ = built(workspace, tmp_path / "config", 2)
    path = ctx.workspace.ledger_path
    reason = make_hostile(path, kind)
    ledger = bounded(lambda: Ledger.open(Workspace.open(workspace), tmp_path / "config"), fifo=path)
    assert ledger.problem is not None and ledger.problem.index == 0, ledger.problem
    assert reason in ledger.problem.reason and "ledger.json" in ledger.problem.reason
    assert ledger.read_only and len(ledger) == 0
    assert bounded(ledger.set_aside, fifo=path) == []
    with pytest.raises(LedgerError, match="read-only"):
        bounded(lambda: ledger.append({"policy_hash": make_policy(9).hash}, ctx.publisher), fifo=path)
    with pytest.raises(LedgerError, match=r"ledger\.json") as err:
        bounded(ledger.repair, fifo=path)
    # /dev/zero is refused first for leading out of the workspace
    assert ("resolves outside the workspace (/dev/zero)" if kind == "dev-zero" else reason) in str(err.value)
    assert not list(workspace.glob("ledger.json.damaged-*"))  # nothing was copied
    assert path.is_symlink() or not path.is_file() or path.stat().st_size == 4 << 30


def test_sparse_ledger_bound() -> None:
    from policyledger_core.ledger.chain import MAX_LEDGER_BYTES

    assert MAX_LEDGER_BYTES == 1 << 30


def test_ledger_replaced_by_a_fifo_after_opening(workspace: Path, tmp_path: Path) -> None:
    ctx, _ = built(workspace, tmp_path / "config", 2)
    path = ctx.workspace.ledger_path
    make_hostile(path, "fifo")
    with pytest.raises(LedgerError, match="not a regular file"):
        bounded(lambda: save_policy(ctx, make_policy(7), None, {"kind": "added"}, episodes=EPISODES),
                fifo=path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["verify", "list"])
def test_cli_on_a_hostile_ledger(workspace: Path, kind: str, command: str) -> None:
    reason = make_hostile(workspace / "ledger.json", kind)
    code, out, err = run(command, "--workspace", workspace)
    # verify fails; list reports the problem under its (empty) ranking, as for any damaged ledger
    assert code == (1 if command == "verify" else 0), (code, out, err)
    assert "Traceback" not in err
    assert f"entry 0: ledger.json: {reason}" in out


@pytest.mark.parametrize("kind", KINDS)
def test_cli_verify_a_hostile_policy_file(workspace: Path, tmp_path: Path, kind: str) -> None:
    _, entries = built(workspace, Path(os.environ["POLICYLEDGER_CONFIG_DIR"]), 2)
    reason = make_hostile(workspace / "policies" / f"{entries[1].policy_hash}.json", kind)
    code, out, err = run("verify", "--workspace", workspace)
    assert code == 1, (code, out, err)
    assert "Traceback" not in err
    assert "ledger problem at entry 1" in out and reason in out


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "socket", "sparse"])
@pytest.mark.parametrize("command", ["add", "import"])
def test_cli_hostile_input_file(workspace: Path, tmp_path: Path, kind: str, command: str) -> None:
    path = tmp_path / "input.json"
    reason = make_hostile(path, kind)
    code, out, err = run(command, path, "--workspace", workspace)
    assert code == (1 if kind == "sparse" else 2), (code, out, err)
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert reason in err and str(path) in err
    assert not (workspace / "ledger.json").exists()


# -- links out of the workspace ---------------------------------------------------------------------


def _move_out(path: Path, target: Path) -> bytes:
    """Move ``path`` to ``target`` and leave a link to it; returns the bytes of a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    path.rename(target)
    path.symlink_to(target)
    return target.read_bytes() if target.is_file() else b""


def test_a_ledger_linked_outside_is_read_but_never_written(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, entries = built(workspace, config, 2)
    outside = tmp_path / "elsewhere" / "ledger.json"
    data = _move_out(ctx.workspace.ledger_path, outside)
    ledger = Ledger.open(Workspace.open(workspace), config)
    assert ledger.problem is None and [e.hash for e in ledger.entries()] == [e.hash for e in entries]
    fresh = Context.open(workspace, config)
    with pytest.raises(LedgerError) as err:
        save_policy(fresh, make_policy(5), None, {"kind": "added"}, episodes=EPISODES)
    assert str(err.value) == (f"ledger.json resolves outside the workspace ({outside}): "
                              "refusing to write through it")
    assert outside.read_bytes() == data
    outside.write_bytes(data.replace(b'"timestamp":"2', b'"timestamp":"1', 1))  # damage: a repair is due
    damaged = Ledger.open(Workspace.open(workspace), config)
    assert damaged.problem is not None
    with pytest.raises(LedgerError, match="resolves outside the workspace"):
        damaged.repair()
    assert not list(workspace.glob("ledger.json.damaged-*")) and not list(outside.parent.glob("*.damaged-*"))
    assert ctx.workspace.ledger_path.is_symlink()


def test_a_dangling_ledger_link_out_of_the_workspace_is_refused(workspace: Path, tmp_path: Path) -> None:
    workspace.mkdir()
    outside = tmp_path / "elsewhere" / "ledger.json"
    (workspace / "ledger.json").symlink_to(outside)
    ctx = Context.open(workspace, tmp_path / "config")
    assert ctx.ledger.problem is None and len(ctx.ledger) == 0
    with pytest.raises(LedgerError, match="resolves outside the workspace"):
        save_policy(ctx, make_policy(5), None, {"kind": "added"}, episodes=EPISODES)
    assert not outside.exists() and (workspace / "ledger.json").is_symlink()


def test_links_inside_the_workspace_are_fine(workspace: Path, tmp_path: Path) -> None:
    from policyledger_core.paths import outside_links

    config = tmp_path / "config"
    ctx, _ = built(workspace, config, 1)
    _move_out(ctx.workspace.ledger_path, workspace / "data" / "ledger.json")
    _move_out(ctx.workspace.policies_dir, workspace / "data" / "policies")
    again = Context.open(workspace, config)
    save_policy(again, make_policy(5), None, {"kind": "added"}, episodes=EPISODES)
    assert len(Context.open(workspace, config).ledger) == 2
    assert (workspace / "data" / "policies" / f"{make_policy(5).hash}.json").is_file()
    assert outside_links(again.workspace) == []


def test_policies_linked_outside_are_read_but_never_written(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, entries = built(workspace, config, 1)
    outside = tmp_path / "elsewhere" / "policies"
    _move_out(ctx.workspace.policies_dir, outside)
    before = sorted(p.name for p in outside.iterdir())
    again = Context.open(workspace, config)
    assert again.store.get(entries[0].policy_hash).hash == entries[0].policy_hash
    with pytest.raises(StoreError) as err:
        again.store.put(make_policy(5))
    assert str(err.value) == (f"policies resolves outside the workspace ({outside}): "
                              "refusing to write through it")
    with pytest.raises(StoreError, match="resolves outside"):
        save_policy(again, make_policy(5), None, {"kind": "added"}, episodes=EPISODES)
    assert sorted(p.name for p in outside.iterdir()) == before
    assert len(Context.open(workspace, config).ledger) == 1


def test_a_policy_file_linked_outside_is_never_written(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, entries = built(workspace, config, 1)
    name = f"{entries[0].policy_hash}.json"
    outside = tmp_path / "elsewhere" / name
    data = _move_out(ctx.workspace.policies_dir / name, outside)
    assert ctx.store.get(entries[0].policy_hash).hash == entries[0].policy_hash  # read through it
    outside.write_bytes(b"damaged")
    with pytest.raises(StoreError) as err:
        ctx.store.put(make_policy(0))
    assert str(err.value) == (f"policies/{name} resolves outside the workspace ({outside}): "
                              "refusing to write through it")
    assert outside.read_bytes() == b"damaged" and (ctx.workspace.policies_dir / name).is_symlink()
    assert data != b"damaged"


def test_outside_links_are_noted(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from policyledger_core.paths import outside_links

    ctx, entries = built(workspace, Path(os.environ["POLICYLEDGER_CONFIG_DIR"]), 2)
    ledger_target = tmp_path / "elsewhere" / "ledger.json"
    _move_out(ctx.workspace.ledger_path, ledger_target)
    name = f"{entries[1].policy_hash}.json"
    policy_target = tmp_path / "elsewhere" / name
    _move_out(ctx.workspace.policies_dir / name, policy_target)
    (ctx.workspace.policies_dir / f"{'0' * 64}.json").symlink_to("/dev/null")
    notes = [f"ledger.json is a link to {ledger_target} outside the workspace: read, never written",
             f"policies/{'0' * 64}.json is a link to /dev/null outside the workspace: read, never written",
             f"policies/{name} is a link to {policy_target} outside the workspace: read, never written"]
    assert outside_links(Workspace.open(workspace)) == sorted(notes)
    capsys.readouterr()
    for argv in (["list"], ["verify"]):
        code, _, err = run(*argv, "--workspace", workspace)
        assert code == 0, err
        printed = capsys.readouterr().err.splitlines()
        assert printed == [f"policyledger-cli: note: {n}" for n in sorted(notes)], printed
    other = tmp_path / "policies-elsewhere"
    ctx.workspace.policies_dir.rename(other)
    ctx.workspace.policies_dir.symlink_to(other)
    assert outside_links(Workspace.open(workspace))[1:] == [
        f"policies is a link to {other} outside the workspace: read, never written"]


# -- re-adding a policy heals its damaged stored file -----------------------------------------------

DAMAGED_NAME = re.compile(r"[0-9a-f]{64}\.json\.damaged-\d{8}T\d{6}Z(-\d+)?")


def _damage(ctx: Context, entry: Entry) -> Path:
    path = ctx.store.path_of(entry.policy_hash)
    path.write_bytes(b'{"damaged": true}')
    return path


def _damaged_copies(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".damaged-" in p.name)


def test_readding_heals_the_file_an_audit_found_damaged(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, entries = built(workspace, config, 3)
    path = _damage(ctx, entries[1])
    report = run_to_end(audit(Context.open(workspace, config).ledger, ctx.store))
    assert report.problem is not None and report.problem.index == 1
    again = Context.open(workspace, config)
    assert again.ledger.problem is not None  # remembered: read-only until...
    saved = save_policy(again, make_policy(1), None, {"kind": "added"}, episodes=EPISODES)
    assert saved.healed and not saved.created and saved.report is None
    assert saved.entry.index == 1 and saved.entry.hash == entries[1].hash
    assert path.read_bytes() == make_policy(1).canonical_bytes()
    [copy] = _damaged_copies(path.parent)
    assert DAMAGED_NAME.fullmatch(copy.name) and copy.name.startswith(path.name)
    assert copy.read_bytes() == b'{"damaged": true}'
    assert again.ledger.problem is None  # ...the file it was about is healed: usable again
    later = Context.open(workspace, config)
    assert later.ledger.problem is None and len(later.ledger) == 3
    assert run_to_end(audit(later.ledger, later.store)).ok
    assert save_policy(later, make_policy(5), None, {"kind": "added"}, episodes=EPISODES).created


def test_readding_past_a_problem_about_another_file_heals_but_stays_read_only(workspace: Path,
                                                                              tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, entries = built(workspace, config, 3)
    _damage(ctx, entries[0])
    path = _damage(ctx, entries[2])
    assert run_to_end(audit(Context.open(workspace, config).ledger, ctx.store)).problem is not None
    again = Context.open(workspace, config)
    assert again.ledger.problem is not None and again.ledger.problem.index == 0
    saved = save_policy(again, make_policy(2), None, {"kind": "added"}, episodes=EPISODES)
    assert saved.healed and not saved.created and saved.entry.hash == entries[2].hash
    assert path.read_bytes() == make_policy(2).canonical_bytes() and len(_damaged_copies(path.parent)) == 1
    for ledger in (again.ledger, Context.open(workspace, config).ledger):
        assert ledger.problem is not None and ledger.problem.index == 0  # not this file's problem


def test_a_failed_add_never_deletes_a_file_that_was_there(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx, _ = built(workspace, config, 2)
    lines = ctx.workspace.ledger_path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"timestamp":"2', b'"timestamp":"1', 1)  # entry 0 edited: read-only
    ctx.workspace.ledger_path.write_bytes(b"\n".join(lines))
    policy = make_policy(7)  # not recorded anywhere
    path = ctx.store.path_of(policy.hash)
    path.write_bytes(b"someone's bytes")
    with pytest.raises(LedgerError, match="read-only"):
        save_policy(Context.open(workspace, config), policy, None, {"kind": "added"}, episodes=EPISODES)
    assert path.exists()
    assert {p.read_bytes() for p in [path, *_damaged_copies(path.parent)]} >= {b"someone's bytes"}


def test_cli_add_heals_the_stored_file(workspace: Path, tmp_path: Path) -> None:
    _, entries = built(workspace, Path(os.environ["POLICYLEDGER_CONFIG_DIR"]), 3)
    path = _damage(Context.open(workspace), entries[1])
    code, out, _ = run("verify", "--workspace", workspace)
    assert code == 1 and "entry 1" in out
    genuine = tmp_path / "genuine.json"
    genuine.write_bytes(make_policy(1).canonical_bytes())
    code, out, err = run("add", genuine, "--workspace", workspace)
    assert code == 0, (out, err)
    assert out.startswith("healed the stored file of entry 1: policy ")
    assert path.read_bytes() == make_policy(1).canonical_bytes()
    code, out, err = run("verify", "--workspace", workspace)
    assert code == 0, (out, err)


# -- a config folder that cannot be written ---------------------------------------------------------

_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
ERRORS = {"read-only": (errno.EACCES, "Permission denied"),
          "disk-full": (errno.ENOSPC, "No space left on device")}


def unwritable(monkeypatch: pytest.MonkeyPatch, folder: Path, kind: str) -> None:
    """Make writes under ``folder`` fail as on a read-only folder or a full disk (tests run as root)."""
    code, text = ERRORS[kind]
    real_open, real_mkdir, real_unlink = os.open, os.mkdir, os.unlink
    real_rename, real_replace = os.rename, os.replace

    def under(path: object) -> bool:
        return isinstance(path, str | os.PathLike) and Path(os.fspath(path)).is_relative_to(folder)  # type: ignore[arg-type]

    def fail(path: object) -> None:
        if under(path):
            raise OSError(code, text, os.fspath(path))  # type: ignore[arg-type]

    def fake_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & _WRITES:
            fail(path)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def fake_mkdir(path: object, *args: object, **kwargs: object) -> None:
        fail(path)
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    def fake_unlink(path: object, *args: object, **kwargs: object) -> None:
        fail(path)
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    def fake_move(real: Callable[..., None]) -> Callable[..., None]:
        def move(src: object, dst: object, *args: object, **kwargs: object) -> None:
            fail(src)
            fail(dst)
            real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "unlink", fake_unlink)
    monkeypatch.setattr(os, "rename", fake_move(real_rename))
    monkeypatch.setattr(os, "replace", fake_move(real_replace))


def _config_that_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> Path:
    """A fresh config folder (no checkpoint yet) set as the default, made unwritable."""
    config = tmp_path / "unwritable-config"
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(config))
    if kind == "file":
        config.write_text("a file where the config folder should be")
    else:
        config.mkdir()
        unwritable(monkeypatch, config, kind)
    return config


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("policyledger-cli: warning: ")]


@pytest.mark.parametrize("kind", ["read-only", "disk-full", "file"])
def test_reading_commands_work_without_a_writable_config(workspace: Path, tmp_path: Path, kind: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, entries = built(workspace, tmp_path / "writer-config", 2)
    config = _config_that_cannot_be_written(tmp_path, monkeypatch, kind)
    prefix = entries[0].policy_hash[:12]
    capsys.readouterr()
    for argv in (["list"], ["verify"], ["show", prefix], ["export", prefix, "-o", tmp_path / "b.json"]):
        code, out, err = run(*argv, "--workspace", workspace)
        assert code == 0, (argv, out, err)
        warned = _warnings(capsys.readouterr().err)
        assert len(warned) == 1, (argv, warned)
        assert warned[0].startswith(f"policyledger-cli: warning: cannot update the checkpoint in {config}")
    assert (tmp_path / "b.json").is_file()
    ledger = Ledger.open(Workspace.open(workspace), config)
    assert ledger.problem is None and len(ledger) == 2
    assert len(ledger.warnings) == 1 and "cannot update the checkpoint" in ledger.warnings[0]
    ledger.reload()
    assert len(ledger.warnings) == 1  # the same reason is said once


@pytest.mark.parametrize("kind", ["read-only", "disk-full", "file"])
def test_verify_reports_a_problem_it_cannot_remember(workspace: Path, tmp_path: Path, kind: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ctx, entries = built(workspace, tmp_path / "writer-config", 2)
    _damage(ctx, entries[1])
    _config_that_cannot_be_written(tmp_path, monkeypatch, kind)
    capsys.readouterr()
    code, out, err = run("verify", "--workspace", workspace)
    assert code == 1 and "ledger problem at entry 1" in out, (out, err)
    assert any("not remembered" in w for w in _warnings(capsys.readouterr().err))


def _with_key(config: Path) -> None:
    from policyledger_core.ledger.signing import Publisher

    Publisher.load_or_create(config)


@pytest.mark.parametrize("kind", ["read-only", "disk-full"])
def test_appends_need_the_checkpoint_and_write_nothing_without_it(workspace: Path, tmp_path: Path,
                                                                  kind: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = Path(os.environ["POLICYLEDGER_CONFIG_DIR"])
    ctx, _ = built(workspace, config, 2)
    _with_key(config)
    before = ctx.workspace.ledger_path.read_bytes()
    policies = sorted(p.name for p in ctx.workspace.policies_dir.iterdir())
    unwritable(monkeypatch, config / "checkpoints", kind)
    text = ERRORS[kind][1]
    fresh = Context.open(workspace, config)
    with pytest.raises(LedgerError) as err:
        save_policy(fresh, make_policy(9), None, {"kind": "added"}, episodes=EPISODES)
    assert str(err.value).startswith(f"cannot update the checkpoint in {config / 'checkpoints'} ({text})")
    genuine = tmp_path / "new.json"
    genuine.write_bytes(make_policy(9).canonical_bytes())
    code, out, err_text = run("add", genuine, "--workspace", workspace)
    assert code == 1 and "cannot update the checkpoint" in err_text, (out, err_text)
    assert ctx.workspace.ledger_path.read_bytes() == before
    assert sorted(p.name for p in ctx.workspace.policies_dir.iterdir()) == policies
    ctx.workspace.ledger_path.write_bytes(before.replace(b'"timestamp":"2', b'"timestamp":"1', 1))
    damaged = ctx.workspace.ledger_path.read_bytes()
    with pytest.raises(LedgerError, match="cannot update the checkpoint"):
        Ledger.open(Workspace.open(workspace), config).repair()
    assert ctx.workspace.ledger_path.read_bytes() == damaged
    assert not list(workspace.glob("ledger.json.damaged-*"))
