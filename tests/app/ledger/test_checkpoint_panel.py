"""The Ledger tab's Checkpoint panel: the ledger's signed checkpoint, shown, copied, saved, checked against.

Ledgers are built through the core (``publish.save_policy``); forks, rollbacks and foreign signers
are made the way test_tlog makes them for the command line. What the panel shows must be what
``tlog`` says of the model's ledger, and a check must say what the core found, in words a user
can act on.
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontInfo, QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QFileDialog, QInputDialog, QMessageBox

from app import checkpoint_panel
from app.checkpoint_panel import EMPTY_TEXT, ERROR_STYLE, Checked, CheckpointPanel
from app.ledger_tab import LedgerTab
from app.model import AppModel
from policyledger_core.ledger import tlog
from policyledger_core.ledger.merkle import leaf_hash, root
from policyledger_core.ledger.note import MAX_NOTE_BYTES, Checkpoint, open_note
from policyledger_core.ledger.signing import Publisher
from tests.helpers.ledger_builder import build, save

ENTRIES = 3
TIMEOUT_MS = 20_000


@pytest.fixture
def model(tmp_path: Path) -> AppModel:
    built = build(tmp_path / "ws", tmp_path / "cfg", ENTRIES)
    return AppModel(workspace=built.root, config_dir=built.config)


@pytest.fixture
def tab(qtbot: Any, model: AppModel) -> Iterator[LedgerTab]:
    widget = LedgerTab(model)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


@pytest.fixture
def panel(tab: LedgerTab) -> CheckpointPanel:
    return tab.checkpoint


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _signed_file(model: AppModel, path: Path, publisher: Publisher | None = None) -> Path:
    """The model's ledger's checkpoint as it is now, signed (by this user unless ``publisher``),
    written to ``path``."""
    ledger = model.ctx.ledger
    note = tlog.signed_checkpoint(ledger, publisher or model.ctx.publisher)
    path.write_text(note, encoding="utf-8")
    return path


def _grow(model: AppModel, *seeds: int) -> None:
    for seed in seeds:
        save(model.ctx, seed)
    model.notify_changed()


def _check(qtbot: Any, panel: CheckpointPanel, monkeypatch: pytest.MonkeyPatch, path: Path) -> Any:
    """Click "Check against a checkpoint...", pick ``path``; what the check reported."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(panel.checked, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    assert panel.check_button.isEnabled()
    return blocker.args[0]


def _failed(panel: CheckpointPanel, result: Any) -> str:
    """The status line of a failed check (shown in the error style)."""
    assert isinstance(result, Checked) and not result.ok
    assert panel.status.styleSheet() == ERROR_STYLE
    return str(panel.status.text())


def _give_keys(monkeypatch: pytest.MonkeyPatch, panel: CheckpointPanel,
               *answers: tuple[str, bool]) -> list[str]:
    """Click "Other keys..." with the dialog answering ``answers`` in turn; the warnings it showed."""
    replies, warned = list(answers), []
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: replies.pop(0))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(str(a[2])))
    panel.keys_button.click()
    assert not replies
    return warned


def _tamper_entry(model: AppModel, index: int) -> None:
    """Change one field of entry ``index`` in ledger.json (its origin), leaving hash and signature."""
    path = model.ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    assert b'"origin":{"kind":"added"}' in lines[1 + index]
    lines[1 + index] = lines[1 + index].replace(b'"origin":{"kind":"added"}', b'"origin":{"kind":"trained"}')
    path.write_bytes(b"\n".join(lines))


def _truncate(workspace: Path, keep: int) -> None:
    """Cut a well-formed ledger.json back to its first ``keep`` entries (a rollback)."""
    path = workspace / "ledger.json"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*lines[:1 + keep], b"]}", b""]))


# -- showing the checkpoint -------------------------------------------------------------------


def test_the_panel_shows_tlogs_checkpoint_and_follows_appends(qtbot: Any, tab: LedgerTab,
                                                              model: AppModel) -> None:
    panel = tab.checkpoint
    assert panel.isVisibleTo(tab) and panel.objectName() == "checkpointPanel"
    for size in (ENTRIES, ENTRIES + 1):
        head = tlog.checkpoint(model.ctx.ledger, model.ctx.publisher.key_id)
        assert head.size == size
        assert panel.pages.currentWidget() is panel.values
        mine = tlog.origin(model.ctx.ledger, model.ctx.publisher.key_id)
        assert panel.origin_field.text() == head.origin == mine
        assert panel.size_label.text() == str(size)
        assert panel.root_field.text() == _b64(head.root) == _b64(root(model.ctx.ledger.leaf_hashes()))
        _grow(model, 100 + size)  # an append elsewhere: the model tells the tab, which refreshes the panel
    publisher = model.ctx.publisher
    assert panel.signer_field.text() == f"{publisher.note_name} (you)"
    assert panel.key_field.text() == publisher.verifier().text()
    for field in (panel.origin_field, panel.root_field, panel.signer_field, panel.key_field):
        assert field.isReadOnly() and field.isEnabled()  # selectable, never editable
    assert QFontInfo(panel.root_field.font()).fixedPitch() and QFontInfo(panel.key_field.font()).fixedPitch()
    assert panel.copy_button.isEnabled() and panel.save_button.isEnabled()


def test_an_empty_ledger_says_there_is_no_checkpoint_until_its_first_entry(qtbot: Any,
                                                                            tmp_path: Path) -> None:
    model = AppModel(workspace=tmp_path / "empty", config_dir=tmp_path / "cfg")
    tab = LedgerTab(model)
    qtbot.addWidget(tab)
    panel = tab.checkpoint
    assert panel.pages.currentWidget() is panel.message and panel.message.text() == EMPTY_TEXT
    assert "no checkpoint until the first entry" in EMPTY_TEXT.lower()
    assert not panel.copy_button.isEnabled() and not panel.save_button.isEnabled()
    assert "no checkpoint yet" in panel.copy_button.toolTip()
    assert panel.signer_field.text() == "" and "no key yet" in panel.signer_field.placeholderText()
    assert not (tmp_path / "cfg" / "publisher-ed25519.pem").exists()  # looking never makes a key
    _grow(model, 0)
    assert panel.pages.currentWidget() is panel.values and panel.size_label.text() == "1"
    assert panel.origin_field.text() == tlog.origin(model.ctx.ledger, model.ctx.publisher.key_id)
    tab.shutdown()


def test_a_damaged_ledger_shows_what_its_usable_entries_checkpoint_and_signs_nothing(
        qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    panel = tab.checkpoint
    records = [entry.record for entry in model.ctx.ledger.scanned()]
    _tamper_entry(model, 2)
    model.reload()
    assert model.ctx.ledger.problem is not None and model.ctx.ledger.problem.index == 2
    head = tlog.checkpoint(model.ctx.ledger, model.ctx.publisher.key_id)
    assert head.size == 2 and head.root == root([leaf_hash(r) for r in records[:2]])
    assert panel.size_label.text() == "2 usable" and panel.size_label.styleSheet() == ERROR_STYLE
    assert panel.root_field.text() == _b64(head.root) and panel.origin_field.text() == head.origin
    assert "2 usable entries before the damage at entry 2" in panel.status.text()
    assert "nothing is signed until the ledger is repaired" in panel.status.text()
    assert not panel.copy_button.isEnabled() and not panel.save_button.isEnabled()
    assert "damaged" in panel.save_button.toolTip()
    QGuiApplication.clipboard().clear()
    panel.copy()  # even called directly: nothing is signed for a damaged ledger
    assert QGuiApplication.clipboard().text() == ""


def test_a_ledger_damaged_at_its_first_entry_says_why_no_checkpoint_is_shown(
        qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    _tamper_entry(model, 0)
    model.reload()
    panel = tab.checkpoint
    assert panel.pages.currentWidget() is panel.message
    assert "damaged at entry 0" in panel.message.text() and "no entry is usable" in panel.message.text()
    assert not panel.copy_button.isEnabled()


# -- copying and saving -----------------------------------------------------------------------


def test_copy_puts_the_exact_signed_checkpoint_on_the_clipboard(qtbot: Any, panel: CheckpointPanel,
                                                                 model: AppModel) -> None:
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(panel.copy_button, Qt.MouseButton.LeftButton)
    note = QGuiApplication.clipboard().text()
    assert note == tlog.signed_checkpoint(model.ctx.ledger, model.ctx.publisher)
    text, _signers = open_note(note, [model.ctx.publisher.verifier()])
    assert Checkpoint.parse(text) == tlog.checkpoint(model.ctx.ledger, model.ctx.publisher.key_id)
    assert panel.status.text() == f"Copied the signed checkpoint of {ENTRIES} entries to the clipboard."

    qtbot.mouseClick(panel.copy_key_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == model.ctx.publisher.verifier().text()
    assert "verifier key" in panel.status.text()


def test_copying_the_verifier_key_makes_a_key_when_there_is_none(qtbot: Any, tmp_path: Path) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 1)
    model = AppModel(workspace=built.root, config_dir=tmp_path / "reader")  # another user, no key yet
    tab = LedgerTab(model)
    qtbot.addWidget(tab)
    panel = tab.checkpoint
    assert panel.key_field.text() == "" and panel.copy_key_button.isEnabled()
    panel.copy_key_button.click()
    key = model.ctx.publisher.verifier().text()
    assert QGuiApplication.clipboard().text() == key and panel.key_field.text() == key
    assert model.ctx.publisher.note_name in panel.signer_field.text()
    tab.shutdown()


def test_save_writes_the_signed_checkpoint(qtbot: Any, panel: CheckpointPanel, model: AppModel,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "kept" / "at-3.txt"
    target.parent.mkdir()
    offered: list[str] = []

    def pick(_parent: Any, _title: str, default: str, _filters: str) -> tuple[str, str]:
        offered.append(default)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", pick)
    with qtbot.waitSignal(panel.saved, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == target
    assert Path(offered[0]).name == f"checkpoint-{ENTRIES}.txt"
    assert target.read_text(encoding="utf-8") == tlog.signed_checkpoint(model.ctx.ledger, model.ctx.publisher)
    assert sorted(p.name for p in target.parent.iterdir()) == ["at-3.txt"]  # no temporary file left
    assert str(target) in panel.status.text()
    # The next dialog opens where this one saved.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: offered.append(a[2]) or ("", ""))
    panel.save()
    assert Path(offered[1]).parent == target.parent


def test_a_failed_save_says_why_in_one_line(qtbot: Any, panel: CheckpointPanel, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "no-such-folder" / "checkpoint.txt"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(str(a[2])))
    with qtbot.waitSignal(panel.saved, timeout=TIMEOUT_MS) as blocker:
        panel.save_button.click()
    assert blocker.args[0] is None and not target.parent.exists()
    assert len(warned) == 1 and "\n" not in warned[0]
    assert "checkpoint.txt" in warned[0] and "No such file or directory" in warned[0]
    assert panel.status.styleSheet() == ERROR_STYLE


# -- checking against a checkpoint ------------------------------------------------------------


def test_a_checkpoint_of_this_ledger_at_an_earlier_size_passes(qtbot: Any, panel: CheckpointPanel,
                                                               model: AppModel, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _signed_file(model, tmp_path / "at-3.txt")
    _grow(model, 100, 101)
    result = _check(qtbot, panel, monkeypatch, kept)
    assert isinstance(result, Checked) and result.ok
    origin = tlog.origin(model.ctx.ledger, model.ctx.publisher.key_id)
    assert panel.status.text() == (f"This ledger ({ENTRIES + 2} entries) extends the checkpoint of {ENTRIES} "
                                   f"entries ({origin}) in at-3.txt.")
    assert panel.status.styleSheet() != ERROR_STYLE
    _grow(model, 102)
    assert not panel.status.text().startswith("This ledger")  # the result spoke of the ledger before


def test_a_checkpoint_of_a_forked_copy_fails_naming_the_fork(qtbot: Any, panel: CheckpointPanel,
                                                             model: AppModel, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(model.workspace_root, tmp_path / "copy")
    copy = AppModel(workspace=tmp_path / "copy", config_dir=model.ctx.config_dir)
    key = model.ctx.publisher.key_id
    # one ledger, two copies
    assert tlog.checkpoint(copy.ctx.ledger, key) == tlog.checkpoint(model.ctx.ledger, key)
    _grow(model, 100)
    _grow(copy, 200)  # each copy gets another 4th entry: a fork
    fork = _signed_file(copy, tmp_path / "fork.txt")
    text = _failed(panel, _check(qtbot, panel, monkeypatch, fork))
    assert text.startswith("Checkpoint fork.txt: ")
    assert f"does not extend the checkpoint of {ENTRIES + 1} entries" in text and "fork" in text


@pytest.mark.parametrize("reader", ["this user", "a reader who never saw it"])
def test_a_rolled_back_ledger_fails(qtbot: Any, model: AppModel, tmp_path: Path, reader: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _signed_file(model, tmp_path / f"at-{ENTRIES}.txt")
    _truncate(model.workspace_root, ENTRIES - 1)
    if reader == "this user":
        model.reload()
        viewer = model
    else:
        viewer = AppModel(workspace=model.workspace_root, config_dir=tmp_path / "reader")
    tab = LedgerTab(viewer)
    qtbot.addWidget(tab)
    panel = tab.checkpoint
    if reader != "this user":
        assert viewer.ctx.ledger.problem is None  # nothing seen before: only the checkpoint tells
        _give_keys(monkeypatch, panel, (model.ctx.publisher.verifier().text(), True))
    text = _failed(panel, _check(qtbot, panel, monkeypatch, kept))
    assert f"the checkpoint saw {ENTRIES} entries, this ledger has {ENTRIES - 1}" in text
    assert "rolled back" in text
    tab.shutdown()


def test_a_checkpoint_signed_by_an_unknown_key_fails_until_its_key_is_given(
        qtbot: Any, panel: CheckpointPanel, model: AppModel, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    witness = Publisher.generate()  # someone else who signed this ledger's checkpoint (a witness, a mirror)
    cosigned = _signed_file(model, tmp_path / "witnessed.txt", witness)
    text = _failed(panel, _check(qtbot, panel, monkeypatch, cosigned))
    assert "not by any key it was checked against" in text and witness.note_name in text
    assert "Other keys" in text

    # A key that does not parse is refused, the dialog asked again; cancelling changes nothing.
    warned = _give_keys(monkeypatch, panel, ("not-a-key", True), ("", False))
    assert len(warned) == 1 and warned[0].startswith("key 1 (not-a-key)") and panel.other_keys == []
    warned = _give_keys(monkeypatch, panel, (f"  {witness.verifier().text()}\n", True))
    assert warned == [] and panel.other_keys == [witness.verifier()]
    assert "your key and 1 other" in panel.status.text()

    result = _check(qtbot, panel, monkeypatch, cosigned)
    assert result.ok and result.head.size == ENTRIES
    assert panel.status.text().startswith(f"This ledger ({ENTRIES} entries) extends the checkpoint")

    forged = cosigned.read_text(encoding="utf-8").replace(f"\n{ENTRIES}\n", f"\n{ENTRIES - 1}\n")
    (tmp_path / "forged.txt").write_text(forged, encoding="utf-8")
    text = _failed(panel, _check(qtbot, panel, monkeypatch, tmp_path / "forged.txt"))
    assert f"the signature of {witness.note_name} does not verify" in text


def test_a_checkpoint_of_another_ledger_fails_naming_its_origin(qtbot: Any, panel: CheckpointPanel,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    other = AppModel(workspace=tmp_path / "other", config_dir=panel.model.ctx.config_dir)
    _grow(other, 300)
    text = _failed(panel, _check(qtbot, panel, monkeypatch, _signed_file(other, tmp_path / "other.txt")))
    theirs = tlog.origin(other.ctx.ledger, other.ctx.publisher.key_id)
    assert f"the checkpoint is of another ledger: {theirs}" in text


@pytest.mark.parametrize("kind", ["too large", "binary", "missing", "fifo", "not a note"])
def test_a_file_that_is_no_checkpoint_is_refused_with_its_reason(qtbot: Any, panel: CheckpointPanel,
                                                                  tmp_path: Path, kind: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "picked.txt"
    expected = {"too large": f"larger than {MAX_NOTE_BYTES} bytes", "binary": "not a text file",
                "missing": "cannot read (No such file or directory)",
                "fifo": "not a regular file (a FIFO)", "not a note": "no blank line before the signatures"}
    if kind == "too large":
        path.write_text("a" * (MAX_NOTE_BYTES + 1), encoding="ascii")
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n\n")
    elif kind == "fifo":
        os.mkfifo(path)  # never waited on
    elif kind == "not a note":
        path.write_text("hello\n", encoding="ascii")
    text = _failed(panel, _check(qtbot, panel, monkeypatch, path))
    assert text.startswith("Checkpoint picked.txt: ") and expected[kind] in text
    assert "\n" not in text


def test_the_check_runs_off_the_gui_thread(qtbot: Any, panel: CheckpointPanel, model: AppModel,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = checkpoint_panel.check_task

    def check_task(*args: Any) -> Checked:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(checkpoint_panel, "check_task", check_task)
    result = _check(qtbot, panel, monkeypatch, _signed_file(model, tmp_path / "now.txt"))
    assert result.ok and threads and threads[0] is not threading.main_thread()


# -- keyboard and tooltips --------------------------------------------------------------------


def test_every_button_has_a_mnemonic_of_its_own_and_a_tooltip(tab: LedgerTab) -> None:
    panel = tab.checkpoint
    for button in (panel.copy_button, panel.save_button, panel.copy_key_button, panel.check_button,
                   panel.keys_button):
        assert "&" in button.text() and button.toolTip(), button.objectName()
    for field in (panel.origin_field, panel.root_field, panel.signer_field, panel.key_field):
        assert field.toolTip(), field.objectName()
    texts = [button.text().lower() for button in tab.findChildren(QAbstractButton)]
    letters = [text.split("&", 1)[1][0] for text in texts if "&" in text]
    assert len(letters) == len(set(letters)), letters


def test_alt_c_copies_the_checkpoint_and_alt_k_the_verifier_key(qtbot: Any, tab: LedgerTab,
                                                                model: AppModel) -> None:
    with qtbot.waitActive(tab):
        tab.show()
        tab.activateWindow()
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(tab, Qt.Key.Key_C, Qt.KeyboardModifier.AltModifier)
    note = tlog.signed_checkpoint(model.ctx.ledger, model.ctx.publisher)
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == note, timeout=TIMEOUT_MS)
    qtbot.keyClick(tab, Qt.Key.Key_K, Qt.KeyboardModifier.AltModifier)
    key = model.ctx.publisher.verifier().text()
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == key, timeout=TIMEOUT_MS)
