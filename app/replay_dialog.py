"""Play one evaluation episode step by step.

A cyber-defense policy plays beside the myopic baseline on the same alerts (:class:`ReplayDialog`).
A toy-text task's table plays in Gymnasium's own environment, reset with the evaluation seed as the
verification's replay does, on the task's map (:class:`TaskReplayDialog`): the agent's cell, its path
so far, each step's reward and the return; for Taxi the taxi, the passenger and the destination.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Slot
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
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.policy_detail import ACTION_COLOURS, ACTION_TEXT
from app.task_map import (
    TASK_ACTION_COLOURS,
    TASK_ACTION_TEXT,
    Cell,
    GridView,
    TaskFacts,
    action_text,
    legend_html,
    taxi_parts,
)
from app.widgets import named
from policyledger_core.policy import MYOPIC_ACTIONS, Policy, TaskPolicy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.verify.episode import (
    EpisodeTrack,
    StepRecord,
    TaskEpisode,
    TaskStep,
    evaluation_seed,
    play_task_episode,
)
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


def _add_row(table: QTableWidget, cells: list[str], action_column: int, colours: tuple[str, str],
             tips: dict[int, str] | None = None) -> None:
    """Append one step's row; its action cell in the action's colours (``colours``: background, text)."""
    r = table.rowCount()
    table.insertRow(r)
    for c, text in enumerate(cells):
        item = QTableWidgetItem(text)
        if tips and c in tips:
            item.setToolTip(tips[c])
        if c == action_column:
            item.setBackground(QColor(colours[0]))
            item.setForeground(QColor(colours[1]))
        table.setItem(r, c, item)
    table.scrollToBottom()


class _EpisodeDialog(QDialog):
    """What both replays share: the evaluation episode's offset and seed, Step, Play/Pause, Reset.

    A subclass lays out its own view, defines :meth:`reset`, :meth:`step` and :attr:`episode_over`,
    then calls :meth:`_start`."""

    def __init__(self, name: str, title: str, step_text: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.offset = named(QSpinBox(minimum=0, maximum=MAX_OFFSET, value=0), "replayOffset")
        self.seed_label = named(QLabel(""), "replaySeed")
        self.step_button = named(QPushButton(step_text), "replayStepButton")
        self.play_button = named(QPushButton("&Play"), "replayPlayButton")
        self.reset_button = named(QPushButton("R&eset"), "replayResetButton")
        self.summary = named(QLabel(""), "replaySummary")
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_INTERVAL_MS)

    def _start(self) -> None:
        self.step_button.clicked.connect(self.step)
        self.play_button.clicked.connect(self.toggle_play)
        self.reset_button.clicked.connect(self.reset)
        self.offset.valueChanged.connect(self.reset)
        self.timer.timeout.connect(self.step)
        self.reset()

    def _seed_row(self, *buttons: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        label = QLabel("Evaluation episode &offset:")
        label.setBuddy(self.offset)
        row.addWidget(label)
        row.addWidget(self.offset)
        row.addWidget(self.seed_label, 1)
        for button in buttons:
            row.addWidget(button)
        return row

    @property
    def seed(self) -> int:
        return evaluation_seed(self.offset.value())

    @property
    def episode_over(self) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def _restart(self) -> None:
        """What every reset does first: stop playing, show the seed."""
        self._stop()
        self.seed_label.setText(f"seed 2**63 + {self.offset.value()} = {self.seed}")

    def _stop(self) -> None:
        self.timer.stop()
        self.play_button.setText("&Play")

    @Slot()
    def toggle_play(self) -> None:
        if self.timer.isActive():
            self._stop()
        elif not self.episode_over:
            self.timer.start()
            self.play_button.setText("&Pause")

    def play_to_end(self) -> None:
        """Step until the episode has ended."""
        while not self.episode_over:
            self.step()

    def done(self, result: int) -> None:
        self.timer.stop()
        super().done(result)


class ReplayDialog(_EpisodeDialog):
    """Step through one episode with the policy and, beside it, the myopic baseline."""

    def __init__(self, policy: Policy, parent: QWidget | None = None) -> None:
        super().__init__("replayDialog", f"Replay policy {policy.hash[:12]}", "&Step", parent)
        self.policy = policy
        self.policy_table = _table("replayPolicyTable")
        self.myopic_table = _table("replayMyopicTable")
        self.tracks: list[EpisodeTrack] = []
        self._layout()
        self._start()

    def _layout(self) -> None:
        seed_row = self._seed_row(self.step_button, self.play_button, self.reset_button)
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

    @Slot()
    def reset(self) -> None:
        """Start the chosen episode again for both players."""
        self._restart()
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
            self._stop()
            self.step_button.setEnabled(False)
            self.play_button.setEnabled(False)
        self._summarise()

    @property
    def episode_over(self) -> bool:
        """Both players' episodes have ended."""
        return all(track.done for track in self.tracks)

    def _append(self, table: QTableWidget, record: StepRecord) -> None:
        _add_row(table, _cells(record), 3, (ACTION_COLOURS[record.action], ACTION_TEXT[record.action]))

    def _summarise(self) -> None:
        parts = [f"{name}: {t.total:.1f} after {len(t.records)} steps ({'ended' if t.done else 'running'})"
                 for name, t in zip(("Policy", "Myopic"), self.tracks, strict=True)]
        self.summary.setText(".   ".join(parts) + ".")


TASK_COLUMNS = ("Step", "Cell", "Action", "Next cell", "Reward", "Return")
TAXI_COLUMNS = ("Step", "Taxi", "Passenger", "Action", "Next", "Reward", "Return")


def _number(value: float) -> str:
    """A reward or return as the task gives it (whole numbers here)."""
    return f"{value:g}"


class TaskReplayDialog(_EpisodeDialog):
    """Step through one episode of a toy-text task's table on the task's map, forwards and back.

    The episode is played whole at each reset in Gymnasium's environment (``gymnasium.make`` with the
    task's arguments and time limit, reset with the seed): offset i is episode i of the evaluation
    suite, exactly as the verification replays it. The controls then move through its steps.
    """

    def __init__(self, policy: TaskPolicy, facts: TaskFacts, parent: QWidget | None = None) -> None:
        super().__init__("taskReplayDialog", f"Replay policy {policy.hash[:12]} on {facts.info.title}",
                         "&Next", parent)
        self.policy, self.facts = policy, facts
        self.taxi = facts.family == "taxi"
        self.previous_button = named(QPushButton("Pre&vious"), "replayPreviousButton")
        self.map = GridView("replayMap")
        self.map.set_task(facts, facts.cells() if not self.taxi else {})
        self.map.set_actions(policy.actions)
        self.situation = named(QLabel(""), "replaySituation")
        """Taxi: where the passenger is and where it goes."""
        self.situation.setVisible(self.taxi)
        self.table = _table("replayStepsTable")
        columns = TAXI_COLUMNS if self.taxi else TASK_COLUMNS
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(list(columns))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.summary.setWordWrap(True)
        self.episode: TaskEpisode | None = None
        self.position = 0
        """Steps shown so far."""
        self._layout()
        self.previous_button.clicked.connect(self.previous)
        self._start()

    def _layout(self) -> None:
        seed_row = self._seed_row(self.previous_button, self.step_button, self.play_button, self.reset_button)
        spec = self.facts.info.spec
        kwargs = ", ".join(f"{k}={v!r}" for k, v in spec.kwargs)
        note = QLabel(f"Played in Gymnasium's own environment: gymnasium.make({spec.env_id!r}, {kwargs}) "
                      f"with a time limit of {spec.horizon} steps, reset with the seed. Offsets "
                      f"0-{DEFAULT_EPISODES - 1} are the episodes of the evaluation suite behind the "
                      "verified reward; any larger offset is another episode no training ever saw.")
        note.setWordWrap(True)
        legend = named(QLabel(legend_html(self.facts, replay=True)), "replayLegend")
        legend.setTextFormat(Qt.TextFormat.RichText)
        legend.setWordWrap(True)
        map_box = QGroupBox(f"{self.facts.info.title}: policy {self.policy.hash[:12]}")
        inner = QVBoxLayout(map_box)
        inner.addWidget(self.situation)
        inner.addWidget(self.map, 1)
        inner.addWidget(legend)
        steps_box = QGroupBox("Steps")
        QVBoxLayout(steps_box).addWidget(self.table)
        split = QSplitter()
        split.addWidget(map_box)
        split.addWidget(steps_box)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(seed_row)
        layout.addWidget(note)
        layout.addWidget(split, 1)
        layout.addWidget(self.summary)
        wide = self.facts.grid.cols > 2 * self.facts.grid.rows
        self.resize(1280, 600 if wide else 720)
        split.setSizes([760, 500] if wide else [640, 620])

    @property
    def steps(self) -> tuple[TaskStep, ...]:
        return self.episode.steps if self.episode is not None else ()

    @property
    def episode_over(self) -> bool:
        """Every step of the episode is shown."""
        return self.position >= len(self.steps)

    @property
    def total(self) -> float:
        """The return so far."""
        return self.steps[self.position - 1].cumulative if self.position else 0.0

    @Slot()
    def reset(self) -> None:
        """Play the chosen episode in Gymnasium, then show its start."""
        self._restart()
        self.episode = play_task_episode(self.policy.env_id, self.policy.actions, self.seed)
        self.position = 0
        self.table.setRowCount(0)
        self._show()

    @Slot()
    def step(self) -> None:
        """Show one more step."""
        if self.position >= len(self.steps):
            self._stop()
            return
        self._append(self.steps[self.position])
        self.position += 1
        if self.episode_over:
            self._stop()
        self._show()

    @Slot()
    def previous(self) -> None:
        """Take the last step shown back."""
        if self.position == 0:
            return
        self._stop()
        self.position -= 1
        self.table.removeRow(self.table.rowCount() - 1)
        self._show()

    def _cell(self, observation: int) -> Cell:
        return self.facts.grid.positions[observation]

    def _show(self) -> None:
        """The map and the summary at the current step."""
        episode = self.episode
        assert episode is not None
        path = [self._cell(obs) for obs in episode.observations(self.position)]
        now = episode.observations(self.position)[-1]
        if self.taxi:
            _, _, passenger, destination = taxi_parts(self.facts.grid, now)
            pads = self.facts.grid.pads
            in_taxi = passenger == len(pads)
            self.map.set_cells(self.facts.cells(passenger, destination))
            self.map.set_episode(path[-1], path, None if in_taxi else pads[passenger], in_taxi,
                                 pads[destination])
            places = self.facts.places()
            waiting = "in the taxi" if in_taxi else f"waiting at {places[passenger]}"
            self.situation.setText(f"Passenger: {waiting} \u00b7 destination: {places[destination]} "
                                   "\u00b7 the arrows are the table's actions for this passenger and "
                                   "destination")
        else:
            self.map.set_episode(path[-1], path)
        over = self.episode_over
        self.step_button.setEnabled(not over)
        self.play_button.setEnabled(not over)
        self.previous_button.setEnabled(self.position > 0)
        last = self.steps[self.position - 1] if self.position else None
        parts = [f"Step {self.position} of {len(self.steps)}"]
        if last is not None:
            parts.append(f"reward {_number(last.reward)}")
        parts.append(f"return {_number(self.total)}")
        parts.append(self._ending() if over else "running")
        self.summary.setText(" \u00b7 ".join(parts) + ".")

    def _ending(self) -> str:
        episode = self.episode
        assert episode is not None
        if episode.ending == "truncated":
            return f"ended: the time limit of {self.facts.horizon} steps"
        end = self._cell(episode.steps[-1].next_observation)
        kind = self.facts.grid.kind(*end)
        if self.taxi:
            return "ended: the passenger was dropped off at the destination"
        return {"goal": "ended: reached the goal", "hole": "ended: fell into a hole"}.get(kind, "ended")

    def _append(self, record: TaskStep) -> None:
        labels, grid = self.facts.labels, self.facts.grid

        def where(obs: int) -> str:
            row, col = grid.positions[obs]
            return f"({row}, {col})"

        if self.taxi:
            _, _, passenger, _ = taxi_parts(grid, record.observation)
            places = self.facts.places()
            cells = [str(record.step), where(record.observation),
                     "in taxi" if passenger == len(places) - 1 else f"at {places[passenger]}",
                     action_text(self.facts, record.action), where(record.next_observation),
                     _number(record.reward), _number(record.cumulative)]
            action_column, tips = 3, {1: labels[record.observation], 4: labels[record.next_observation]}
        else:
            cells = [str(record.step), where(record.observation), action_text(self.facts, record.action),
                     where(record.next_observation), _number(record.reward), _number(record.cumulative)]
            action_column, tips = 2, {1: labels[record.observation], 3: labels[record.next_observation]}
        _add_row(self.table, cells, action_column,
                 (TASK_ACTION_COLOURS[record.action], TASK_ACTION_TEXT[record.action]),
                 {c: f"observation: {label}" for c, label in tips.items()})
