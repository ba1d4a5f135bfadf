"""Play one evaluation episode step by step: the policy beside the myopic baseline on the same alerts."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.policy_detail import ACTION_COLOURS, ACTION_TEXT
from app.widgets import named
from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.verify.episode import EpisodeTrack, StepRecord, evaluation_seed
from policyledger_core.verify.suite import DEFAULT_EPISODES

PLAY_INTERVAL_MS = 300
MAX_OFFSET = 2**31 - 1  # QSpinBox is 32-bit; every seed from EVAL_SEED_BASE up is free of training
COLUMNS = ("Step", "Alert", "Health", "Action", "Reward", "Cumulative")


def _cells(record: StepRecord) -> list[str]:
    info = record.info
    before, after = dyn.HEALTH_NAMES[info["health"]], dyn.HEALTH_NAMES[record.health_after]
    return [str(record.step),
            f"{dyn.SEVERITY_NAMES[info['severity']]} {dyn.ATTACK_NAMES[info['attack_type']]} "
            f"(conf {dyn.CONFIDENCE_NAMES[info['confidence']]})",
            before if before == after else f"{before} -> {after}",
            dyn.ACTION_NAMES[record.action],
            f"{record.reward:+.1f}",
            f"{record.cumulative:.1f}"]


def _table(name: str) -> QTableWidget:
    table = named(QTableWidget(0, len(COLUMNS)), name)
    table.setHorizontalHeaderLabels(list(COLUMNS))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    return table


class ReplayDialog(QDialog):
    """Step through one episode with the policy and, beside it, the myopic baseline."""

    def __init__(self, policy: Policy, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("replayDialog")
        self.setWindowTitle(f"Replay policy {policy.hash[:12]}")
        self.policy = policy
        self.offset = named(QSpinBox(minimum=0, maximum=MAX_OFFSET, value=0), "replayOffset")
        self.seed_label = named(QLabel(""), "replaySeed")
        self.step_button = named(QPushButton("&Step"), "replayStepButton")
        self.play_button = named(QPushButton("&Play"), "replayPlayButton")
        self.reset_button = named(QPushButton("R&eset"), "replayResetButton")
        self.policy_table = _table("replayPolicyTable")
        self.myopic_table = _table("replayMyopicTable")
        self.summary = named(QLabel(""), "replaySummary")
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_INTERVAL_MS)
        self.tracks: list[EpisodeTrack] = []
        self._layout()
        self.step_button.clicked.connect(self.step)
        self.play_button.clicked.connect(self.toggle_play)
        self.reset_button.clicked.connect(self.reset)
        self.offset.valueChanged.connect(self.reset)
        self.timer.timeout.connect(self.step)
        self.reset()

    def _layout(self) -> None:
        seed_row = QHBoxLayout()
        label = QLabel("Evaluation episode &offset:")
        label.setBuddy(self.offset)
        seed_row.addWidget(label)
        seed_row.addWidget(self.offset)
        seed_row.addWidget(self.seed_label, 1)
        for button in (self.step_button, self.play_button, self.reset_button):
            seed_row.addWidget(button)
        note = QLabel(f"Offsets 0-{DEFAULT_EPISODES - 1} are the episodes of the evaluation suite behind "
                      "the verified reward; any larger offset is another episode no training ever saw.")
        note.setWordWrap(True)
        tables = QHBoxLayout()
        for title, table in ((f"Policy {self.policy.hash[:12]}", self.policy_table),
                             ("Myopic baseline (best immediate reward)", self.myopic_table)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(table)
            tables.addWidget(box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(seed_row)
        layout.addWidget(note)
        layout.addLayout(tables, 1)
        layout.addWidget(self.summary)
        self.resize(1280, 680)

    @property
    def seed(self) -> int:
        return evaluation_seed(self.offset.value())

    @Slot()
    def reset(self) -> None:
        """Start the chosen episode again for both players."""
        self.timer.stop()
        self.play_button.setText("&Play")
        self.seed_label.setText(f"seed 2**63 + {self.offset.value()} = {self.seed}")
        config = self.policy.config
        self.tracks = [EpisodeTrack(config, self.policy.actions, self.seed),
                       EpisodeTrack(config, MYOPIC_ACTIONS, self.seed)]
        for table in (self.policy_table, self.myopic_table):
            table.setRowCount(0)
        self.step_button.setEnabled(True)
        self.play_button.setEnabled(True)
        self._summarise()

    @Slot()
    def step(self) -> None:
        """One step for each player whose episode is still running."""
        records = []
        for track, table in zip(self.tracks, (self.policy_table, self.myopic_table), strict=True):
            record = track.step()
            records.append(record)
            if record is not None:
                self._append(table, record)
        mine, myopic = records
        if mine is not None and myopic is not None and mine.action != myopic.action:
            for table in (self.policy_table, self.myopic_table):  # same alert, other choice: stand out
                item = table.item(table.rowCount() - 1, 3)
                if item is not None:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
        if self.episode_over:
            self.timer.stop()
            self.play_button.setText("&Play")
            self.step_button.setEnabled(False)
            self.play_button.setEnabled(False)
        self._summarise()

    @Slot()
    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.play_button.setText("&Play")
        elif not self.episode_over:
            self.timer.start()
            self.play_button.setText("&Pause")

    def play_to_end(self) -> None:
        """Step until both episodes have ended."""
        while not self.episode_over:
            self.step()

    @property
    def episode_over(self) -> bool:
        return all(track.done for track in self.tracks)

    def _append(self, table: QTableWidget, record: StepRecord) -> None:
        r = table.rowCount()
        table.insertRow(r)
        for c, text in enumerate(_cells(record)):
            item = QTableWidgetItem(text)
            if c == 3:
                item.setBackground(QColor(ACTION_COLOURS[record.action]))
                item.setForeground(QColor(ACTION_TEXT[record.action]))
            table.setItem(r, c, item)
        table.scrollToBottom()

    def _summarise(self) -> None:
        parts = [f"{name}: {t.total:.1f} after {len(t.records)} steps ({'ended' if t.done else 'running'})"
                 for name, t in zip(("Policy", "Myopic"), self.tracks, strict=True)]
        self.summary.setText(".   ".join(parts) + ".")

    def done(self, result: int) -> None:
        self.timer.stop()
        super().done(result)
