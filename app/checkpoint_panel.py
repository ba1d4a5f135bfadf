"""The Ledger tab's Checkpoint panel: the ledger's signed tree head, to keep, share and check against.

What it shows is the core's :mod:`~policyledger_core.ledger.tlog` for the GUI's own view of the
ledger (origin, size, root), refreshed whenever the tab is. "Copy" and "Save..." sign that
checkpoint with this user's key (created then if there is none yet, as the command line's
``checkpoint`` does); nothing is signed for a damaged ledger, as the command line refuses too.
"Check against a checkpoint..." runs :func:`~policyledger_core.ledger.tlog.check_extends` as a
background task on a Context of its own, with this user's verifier key and the other keys the
user gave (kept until the app closes).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings
from app.model import AppModel, Place
from app.widgets import named
from app.worker import TaskRunner, one_line
from policyledger_core.atomic import write_atomic
from policyledger_core.errors import Rejected
from policyledger_core.ledger import tlog
from policyledger_core.ledger.note import MAX_NOTE_BYTES, Checkpoint, NoteError, Verifier
from policyledger_core.ledger.signing import Publisher, PublisherKeyError
from policyledger_core.safeio import FileTooLarge, describe, read_regular

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
CHECKPOINT_FILES = "Checkpoints (*.txt *.checkpoint);;All files (*)"
DIALOG_KIND = "checkpoint"
"""The file dialogs' remembered folder (:func:`app.settings.last_folder`)."""
EMPTY_TEXT = ("No checkpoint until the first entry: an empty ledger has no origin yet (it is named "
              "by its first entry).")
KEYS_TITLE = "Other signers' verifier keys"
KEYS_PROMPT = ("Checkpoints signed by any of these keys are accepted too, besides your own.\n"
               "One verifier key a line (<name>+<key ID>+<key>, as 'policyledger-cli checkpoint "
               "--verifier-key' prints it). Kept until the app closes.")
DAMAGED_TIP = ("The ledger is damaged: nothing is signed for it until it is repaired (the command "
               "line's checkpoint refuses too).")


def parse_keys(text: str) -> list[Verifier]:
    """The verifier keys in ``text`` (separated by spaces or lines; a key holds neither), each once.

    Raises NoteError naming the first key that does not parse.
    """
    keys: dict[str, Verifier] = {}
    for number, word in enumerate(text.split(), 1):
        try:
            verifier = Verifier.parse(word)
        except NoteError as exc:
            shown = word if len(word) <= 40 else word[:40] + "\u2026"
            raise NoteError(f"key {number} ({shown}): {exc}") from None
        keys.setdefault(verifier.text(), verifier)
    return list(keys.values())


@dataclass(frozen=True)
class Checked:
    """How a check against a checkpoint file ended: ``head`` when the ledger extends it, else ``problem``."""

    name: str
    """The checkpoint file's name."""
    head: Checkpoint | None = None
    problem: str | None = None
    entries: int = 0
    """The ledger's usable entries, as the check read them."""
    damaged_at: int | None = None
    """Where the ledger is damaged (only the entries before were checked), or None."""

    @property
    def ok(self) -> bool:
        return self.head is not None

    def text(self) -> str:
        if self.head is not None:
            said = (f"This ledger ({self.entries} entries) extends the checkpoint of {self.head.size} "
                    f"entries ({self.head.origin}) in {self.name}.")
        else:
            said = f"Checkpoint {self.name}: {self.problem}."
        if self.damaged_at is not None:
            said += (f" Only the {self.entries} usable entries before the damage at entry "
                     f"{self.damaged_at} were checked.")
        return said


def check_task(place: Place, path: Path, verifiers: Sequence[Verifier]) -> Checked:
    """Whether the workspace's ledger extends the signed checkpoint in ``path`` (run in a worker thread).

    The file is read only if it is a regular file of at most the core's note bound, and only as text.
    """
    name = path.name
    try:
        data = read_regular(path, MAX_NOTE_BYTES, name)  # a FIFO or a device is refused, never waited on
    except FileTooLarge as exc:
        return Checked(name, problem=f"{exc} (a checkpoint is a short note of a few hundred bytes)")
    except OSError as exc:
        return Checked(name, problem=describe(exc, name))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        return Checked(name, problem="not a text file (a checkpoint is a signed note: UTF-8 text)")
    ledger = place.open().ledger
    damaged_at = None if ledger.problem is None else ledger.problem.index
    try:
        head = tlog.check_extends(ledger, text, verifiers)
    except (NoteError, Rejected) as exc:
        hint = (": add that signer's verifier key with Other keys... to accept it"
                if isinstance(exc, tlog.UnknownSigner) else "")
        return Checked(name, problem=one_line(exc) + hint, entries=len(ledger), damaged_at=damaged_at)
    return Checked(name, head=head, entries=len(ledger), damaged_at=damaged_at)


def _value_field(name: str, tip: str, monospace: bool = False) -> QLineEdit:
    """A read-only, selectable value (a field: a long key scrolls instead of widening the window)."""
    field = named(QLineEdit(), name)
    field.setReadOnly(True)
    field.setToolTip(tip)
    if monospace:
        field.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return field


def _set_value(field: QLineEdit, text: str) -> None:
    field.setText(text)
    field.setCursorPosition(0)  # the start of a long value shows, not its end


class CheckpointPanel(QGroupBox):
    """The current checkpoint (origin, size, root, signer); copy, save, and check against one."""

    checked = Signal(object)
    """A :class:`Checked`, or None when the check failed, was refused before it began or is obsolete."""
    saved = Signal(object)
    """The path the signed checkpoint was written to, or None when it was not."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoint", parent)
        self.setObjectName("checkpointPanel")
        self.model = model
        self.head: Checkpoint | None = None
        """The checkpoint shown: tlog's for the model's ledger as it is now (None: there is none)."""
        self.other_keys: list[Verifier] = []
        """Other signers' verifier keys the user gave, accepted by a check (for this session)."""
        self.origin_field = _value_field("checkpointOrigin", "The ledger's origin: it names this ledger "
                                         "for its whole life (from its first entry's hash) as your key "
                                         "signs it (its id ends the origin).")
        # An origin is always this long: it shows whole, whatever the width.
        self.origin_field.setMinimumWidth(self.origin_field.fontMetrics().horizontalAdvance(
            tlog.ORIGIN_PREFIX + "0" * 16 + "/" + "0" * 16) + 16)
        self.size_label = named(QLabel(), "checkpointSize")
        self.size_label.setToolTip("How many entries the checkpoint covers (its tree size): a damaged "
                                   "ledger's usable ones, before its problem.")
        self.size_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.root_field = _value_field("checkpointRoot", "The RFC 6962 Merkle tree root of the entries' "
                                       "bytes (base64).", monospace=True)
        self.signer_field = _value_field("checkpointSigner", "The key name your checkpoints are signed "
                                         "under (your publisher key's id).")
        self.signer_field.setPlaceholderText("no key yet: made when you copy or save a checkpoint "
                                             "(or with your first entry)")
        self.key_field = _value_field("checkpointVerifierKey", "Your verifier key: whoever checks a "
                                      "checkpoint you signed needs it.", monospace=True)
        self.message = named(QLabel(wordWrap=True), "checkpointMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.copy_button = named(QPushButton("&Copy"), "copyCheckpointButton")
        self.copy_button.setToolTip("Copy the signed checkpoint (origin, entries, root and your "
                                    "signature, a C2SP signed note) to the clipboard")
        self.save_button = named(QPushButton("&Save..."), "saveCheckpointButton")
        self.save_button.setToolTip("Save the signed checkpoint to a file, to keep or send: whoever "
                                    "holds it can later check that this ledger only grew")
        self.copy_key_button = named(QPushButton("Copy verifier &key"), "copyVerifierKeyButton")
        self.copy_key_button.setToolTip("Copy your verifier key: others need it to check the "
                                        "checkpoints you sign (your key is made now if you have none)")
        self.check_button = named(QPushButton("Check &against a checkpoint..."), "checkAgainstButton")
        self.check_button.setToolTip("Check that this ledger extends a checkpoint file (one kept earlier, or "
                                     "from another copy): its signature, its origin, then a consistency "
                                     "proof. Forks, rollbacks and forged checkpoints fail.")
        self.keys_button = named(QPushButton("&Other keys..."), "otherKeysButton")
        self.status = named(QLabel(wordWrap=True), "checkpointStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._tips = {button: button.toolTip() for button in (self.copy_button, self.save_button)}
        """The signing buttons' own tooltips (a line saying why one is off is added to them)."""
        self._key_problem: str | None = None
        """Why this user's key cannot be used, or None."""
        self._idle = True
        """The status line shows the idle text (kept current as the ledger changes), not a result."""
        self._tasks = TaskRunner(self)
        """Saving a file and checking against one: one at a time."""
        self._generation = 0
        self._layout()
        self.copy_button.clicked.connect(self.copy)
        self.save_button.clicked.connect(self.save)
        self.copy_key_button.clicked.connect(self.copy_verifier_key)
        self.check_button.clicked.connect(self.check_against)
        self.keys_button.clicked.connect(self.edit_other_keys)
        self._tasks.busy_changed.connect(lambda _busy: self._update_buttons())
        self.refresh()

    def _layout(self) -> None:
        self.values = values = named(QWidget(), "checkpointValues")
        grid = QGridLayout(values)
        grid.setContentsMargins(0, 0, 0, 0)
        rows = (("Origin:", self.origin_field), ("Root:", self.root_field),
                ("Signed by:", self.signer_field), ("Verifier key:", self.key_field))
        for row, (text, field) in enumerate(rows):
            label = QLabel(text)
            label.setBuddy(field)
            grid.addWidget(label, row, 0)
            grid.addWidget(field, row, 1, 1, 3 if row else 1)
        grid.addWidget(QLabel("Entries:"), 0, 2)
        grid.addWidget(self.size_label, 0, 3)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(3, 2)
        self.pages = named(QStackedWidget(), "checkpointPages")
        self.pages.addWidget(values)
        self.pages.addWidget(self.message)  # same height as the values: nothing jumps
        buttons = QGridLayout()
        buttons.addWidget(self.copy_button, 0, 0)
        buttons.addWidget(self.save_button, 0, 1)
        buttons.addWidget(self.copy_key_button, 1, 0, 1, 2)
        buttons.addWidget(self.check_button, 2, 0, 1, 2)
        buttons.addWidget(self.keys_button, 3, 0, 1, 2)
        top = QHBoxLayout()
        top.addWidget(self.pages, 1)
        top.addLayout(buttons)
        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addWidget(self.status)

    # -- showing ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the checkpoint of the model's ledger as it is now, and who signs it."""
        ledger = self.model.ctx.ledger
        problem = ledger.problem
        publisher, _problem = self._key()  # the log is this user's: its origin ends with their key's id
        try:  # the usable entries' (those before a problem)
            self.head = tlog.checkpoint(ledger, None if publisher is None else publisher.key_id)
        except tlog.EmptyLog:
            self.head = None
        if self.head is None:
            self.pages.setCurrentWidget(self.message)
            self.message.setText(EMPTY_TEXT if problem is None else
                                 f"No checkpoint: the ledger is damaged at entry 0 ({problem.reason}), "
                                 "so no entry is usable: there is none until it is repaired.")
            self.message.setStyleSheet("" if problem is None else ERROR_STYLE)
            for field in (self.origin_field, self.root_field):
                field.clear()
            self.size_label.clear()
        else:
            self.pages.setCurrentWidget(self.values)
            _set_value(self.origin_field, self.head.origin)
            _set_value(self.root_field, base64.b64encode(self.head.root).decode("ascii"))
            self.size_label.setText(f"{self.head.size}" if problem is None else f"{self.head.size} usable")
            self.size_label.setStyleSheet("" if problem is None else ERROR_STYLE)
        self._show_signer()
        self._update_buttons()
        if self._idle:
            self._say_idle()

    def _key(self) -> tuple[Publisher | None, str | None]:
        """This user's key if there is one (looking never creates it), or why it cannot be used."""
        try:
            return Publisher.load_existing(self.model.ctx.config_dir), None
        except (PublisherKeyError, OSError) as exc:
            return None, one_line(exc)

    def _show_signer(self) -> None:
        publisher, problem = self._key()
        self._key_problem = problem
        if problem is not None:
            _set_value(self.signer_field, f"your key cannot be used: {problem}")
            self.signer_field.setStyleSheet(ERROR_STYLE)
            self.key_field.clear()
        else:
            self.signer_field.setStyleSheet("")
            if publisher is None:
                self.signer_field.clear()  # the placeholder says a key is made on first use
                self.key_field.clear()
            else:
                _set_value(self.signer_field, f"{publisher.note_name} (you)")
                _set_value(self.key_field, publisher.verifier().text())

    def _update_buttons(self) -> None:
        why = self._unsignable()
        idle = not self._tasks.busy
        self.copy_button.setEnabled(why is None)
        self.save_button.setEnabled(why is None and idle)
        self.copy_key_button.setEnabled(self._key_problem is None)
        self.check_button.setEnabled(idle)
        for button, tip in self._tips.items():
            button.setToolTip(tip if why is None else f"{tip}\n\n{why}")
        self.keys_button.setToolTip("Verifier keys of other signers whose checkpoints a check accepts "
                                    f"(now: {self._keys_said()}; kept until the app closes)")

    def _unsignable(self) -> str | None:
        """Why the shown checkpoint cannot be signed now, or None when it can."""
        if self.head is None:
            return "There is no checkpoint yet."
        if self.model.ctx.ledger.problem is not None:
            return DAMAGED_TIP
        if self._key_problem is not None:
            return f"Your key cannot be used: {self._key_problem}."
        return None

    def _keys_said(self) -> str:
        others = len(self.other_keys)
        return "your key only" if not others else f"your key and {others} other{'s' if others > 1 else ''}"

    def _say(self, text: str, style: str = "") -> None:
        self._idle = False
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setStyleSheet(style)

    def _say_idle(self) -> None:
        """What the checkpoint is for, or what it covers when the ledger is damaged (kept current)."""
        problem = self.model.ctx.ledger.problem
        if problem is not None and self.head is not None:
            self._say(f"The checkpoint shown covers the {self.head.size} usable entries before the damage at "
                      f"entry {problem.index}; nothing is signed until the ledger is repaired.", ERROR_STYLE)
        else:
            self._say("Keep or send the signed checkpoint; a check against one kept earlier passes only "
                      f"while this ledger extends it (accepted signers: {self._keys_said()}).")
        self._idle = True

    def forget(self) -> None:
        """The ledger changed elsewhere, or another workspace was opened: a check's result (or a copy's
        confirmation) spoke of the ledger before."""
        if not self._tasks.busy:
            self._say_idle()

    def _fail(self, title: str, text: str) -> None:
        self._say(text, ERROR_STYLE)
        QMessageBox.warning(self, title, text)

    # -- copying and saving -------------------------------------------------------------------

    def signed_note(self, title: str) -> str | None:
        """The shown checkpoint signed by this user's key (made now if there is none); None when
        nothing can be signed (said in a message box)."""
        ledger = self.model.ctx.ledger
        if self._unsignable() is not None:
            return None
        try:
            publisher = self.model.ctx.publisher
        except (PublisherKeyError, OSError) as exc:
            self._fail(title, f"Nothing was signed: your key cannot be used ({one_line(exc)}).")
            return None
        note = tlog.signed_checkpoint(ledger, publisher)
        self._show_signer()  # the key may have been made just now
        self._update_buttons()
        return note

    def copy(self) -> None:
        """Put the signed checkpoint on the clipboard."""
        note = self.signed_note("Copy checkpoint")
        if note is None or self.head is None:
            return
        QGuiApplication.clipboard().setText(note)
        self._say(f"Copied the signed checkpoint of {self.head.size} entries to the clipboard.", OK_STYLE)

    def copy_verifier_key(self) -> None:
        """Put this user's verifier key on the clipboard (the key is made if there is none yet)."""
        try:
            key = self.model.ctx.publisher.verifier().text()
        except (PublisherKeyError, OSError) as exc:
            self._fail("Copy verifier key", f"Your key cannot be used: {one_line(exc)}.")
            return
        self._show_signer()
        self._update_buttons()
        QGuiApplication.clipboard().setText(key)
        self._say(f"Copied your verifier key to the clipboard: {key}", OK_STYLE)

    def _start_folder(self) -> Path:
        return Path(settings.last_folder(DIALOG_KIND, self.model.workspace_root, self.model.ctx.config_dir))

    def save(self) -> None:
        """Write the signed checkpoint to a file the user picks (atomically, in the background)."""
        if self._tasks.busy:
            return
        note = self.signed_note("Save checkpoint")
        if note is None or self.head is None:
            return
        size = self.head.size
        path, _ = QFileDialog.getSaveFileName(self, "Save the signed checkpoint",
                                              str(self._start_folder() / f"checkpoint-{size}.txt"),
                                              CHECKPOINT_FILES)
        if not path:
            return
        settings.remember_folder(DIALOG_KIND, str(Path(path).parent), self.model.ctx.config_dir)
        target, data = Path(path), note.encode("utf-8")
        self._say(f"Saving the signed checkpoint of {size} entries...")
        self._tasks.call(lambda: write_atomic(target, data),
                         done=lambda _none: self._on_saved(target, size),
                         error=lambda exc: self._on_save_failed(target, exc))

    def _on_saved(self, target: Path, size: int) -> None:
        self._say(f"Saved the signed checkpoint of {size} entries to {target}.", OK_STYLE)
        self.saved.emit(target)

    def _on_save_failed(self, target: Path, exc: Exception) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        self._fail("Save checkpoint", f"Could not save {target.name}, nothing was written: {reason}.")
        self.saved.emit(None)

    # -- checking against a checkpoint --------------------------------------------------------

    def edit_other_keys(self) -> None:
        """Ask for other signers' verifier keys (until every one parses, or the user cancels)."""
        text = "\n".join(v.text() for v in self.other_keys)
        while True:
            text, ok = QInputDialog.getMultiLineText(self, KEYS_TITLE, KEYS_PROMPT, text)
            if not ok:
                return
            try:
                keys = parse_keys(text)
            except NoteError as exc:
                QMessageBox.warning(self, KEYS_TITLE, f"{exc}. Nothing was changed.")
                continue
            break
        self.other_keys = keys
        self._update_buttons()
        if not self._tasks.busy:
            self._say(f"A check now accepts checkpoints signed by {self._keys_said()}.")

    def verifiers(self) -> list[Verifier]:
        """What a check accepts signatures by: this user's key (if there is one) and the keys given."""
        publisher, _problem = self._key()
        own = [] if publisher is None else [publisher.verifier()]
        return [*own, *(v for v in self.other_keys if v not in own)]

    def check_against(self) -> None:
        """Pick a checkpoint file; check in the background that the ledger extends it."""
        if self._tasks.busy:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Check against a checkpoint", str(self._start_folder()),
                                              CHECKPOINT_FILES)
        if not path:
            return
        settings.remember_folder(DIALOG_KIND, str(Path(path).parent), self.model.ctx.config_dir)
        verifiers = self.verifiers()
        if not verifiers:
            _publisher, problem = self._key()
            why = "you have no key yet" if problem is None else f"your key cannot be used ({problem})"
            self._say(f"Nothing to check {Path(path).name} with: {why}. Add the signer's verifier key "
                      "with Other keys...", ERROR_STYLE)
            self.checked.emit(None)
            return
        place, target = self.model.place, Path(path)
        self._generation = self.model.generation
        self._say(f"Checking the ledger against {target.name}...")
        self._tasks.call(lambda: check_task(place, target, verifiers), done=self._on_checked,
                         error=self._on_check_failed)

    def _on_checked(self, result: Checked) -> None:
        if self._generation != self.model.generation:
            self._say_idle()
            self.checked.emit(None)
            return
        self._say(result.text(), OK_STYLE if result.ok else ERROR_STYLE)
        self.checked.emit(result)

    def _on_check_failed(self, exc: Exception) -> None:
        self._say(f"The check failed: {one_line(exc)}", ERROR_STYLE)
        self.checked.emit(None)

    def shutdown(self) -> None:
        """Wait for a save or check under way (window closing); nothing is reported after."""
        self._tasks.shutdown()
