"""Gymnasium's toy-text tasks in the app: their facts, worked out off the GUI thread, and the map.

:func:`task_facts` and :func:`task_detail` build the task's model and map through the core (they load
Gymnasium: call them in a worker). :class:`GridView` draws a grid world (FrozenLake, CliffWalking,
Taxi's 5x5 town) with its cells by kind, the table's action in every cell an episode can act in (an
arrow, or P and D for Taxi's pickup and dropoff) and, in a replay, the agent and its path.
:class:`TaskMapPanel` is the detail panel's decision table of a task policy: the map, and for Taxi
(500 observations: the taxi's cell x the passenger's place x the destination) one 5x5 map per choice
of passenger and destination.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QHelpEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.widgets import named
from policyledger_core.policy import TaskPolicy
from policyledger_core.tasks.base import Baseline, GridMap, fraction_of_optimum
from policyledger_core.tasks.model import TabularModel
from policyledger_core.tasks.spec import TaskInfo, task_info

Cell = tuple[int, int]

TASK_ACTION_COLOURS = ("#56b4e9", "#e69f00", "#009e73", "#cc79a7", "#0072b2", "#d55e00")
"""One colour per action of a toy-text task (Okabe-Ito), by action index."""
TASK_ACTION_TEXT = ("black", "black", "white", "black", "white", "white")
KIND_COLOURS = {"start": "#bcd9ef", "frozen": "#eaf4fa", "hole": "#1f3b57", "goal": "#2e9e5b",
                "cliff": "#7a4a2a", "floor": "#f5f5f5", "pad": "#f5f5f5"}
"""The fill of each kind of cell."""
KIND_NAMES = {"start": "start", "frozen": "frozen (safe)", "hole": "hole (ends the episode)",
              "goal": "goal (ends the episode)", "cliff": "cliff (-100, back to the start)",
              "floor": "road", "pad": "pick-up and drop-off place"}
PAD_COLOURS = {"R": "#f4b6b6", "G": "#b8e2b2", "Y": "#f6e8a3", "B": "#b6cff4"}
"""Taxi's four places, tinted as Gymnasium draws them."""
GRID_LINE = "#9a9a9a"
ARROW = "#161616"
ARROW_DIMMED = "#8a8a8a"
"""Arrows of the other cells while an agent is shown (its own cell's arrow stays dark)."""
AGENT = "#d55e00"
PASSENGER = "#7b3294"
WALL = "#202020"
DIRECTIONS: dict[str, Cell] = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0),
                               "north": (-1, 0), "south": (1, 0), "east": (0, 1), "west": (0, -1)}
"""The move of each action name, as (rows, columns)."""
GLYPHS = {"pickup": "P", "dropoff": "D"}
"""Actions that do not move, drawn as a letter."""
# Arrow geometry, in cell widths from the cell's centre along the action's direction.
SHAFT = (-0.32, 0.1)
SHAFT_HALF_WIDTH = 0.045
HEAD = (0.05, 0.36)
HEAD_HALF_WIDTH = 0.19


# -- facts (worked out in a worker: they build the task's model through Gymnasium) ----------------


def task_decimals(optimum: float) -> int:
    """Digits worth showing for a toy-text task's rewards: FrozenLake's values are probabilities of
    reaching the goal (policies differ in the third decimal), the others' whole numbers."""
    return 4 if abs(optimum) <= 1 else 2


@dataclass(frozen=True)
class TaskFacts:
    """What the app shows of a toy-text task, whatever the policy: its map and exact references."""

    info: TaskInfo
    grid: GridMap
    labels: tuple[str, ...]
    """What each observation means (the core's ``observation_label``)."""
    acting: frozenset[int]
    """The observations an episode can be in when an action is chosen (where a table matters)."""
    optimum: float
    """Exact expected return of the best time-dependent policy within the horizon."""
    best_stationary: float
    """The best table (one action per observation) the core's local search found, valued exactly."""
    baselines: tuple[Baseline, ...]

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.info.action_names

    @property
    def horizon(self) -> int:
        return self.info.spec.horizon

    @property
    def decimals(self) -> int:
        return task_decimals(self.optimum)

    def fmt(self, value: float) -> str:
        return f"{value:.{self.decimals}f}"

    def best_note(self) -> str:
        """The best stationary table beside the optimum, said honestly."""
        if self.best_stationary >= self.optimum - 1e-9:
            return (f"The best table found reaches the optimum ({self.fmt(self.best_stationary)}): here one "
                    "action per observation is enough.")
        share = fraction_of_optimum(self.best_stationary, self.optimum)
        return (f"A table takes one action per observation. With the {self.horizon}-step time limit the "
                "optimum may change its action as time runs out, which no table can: the best table "
                f"found reaches {self.fmt(self.best_stationary)}, {share:.2%} of the optimum.")

    def cells(self, passenger: int | None = None, destination: int | None = None) -> dict[Cell, int]:
        """The observation each map cell shows: its own (a grid world), or for Taxi the taxi in that
        cell with the passenger and destination given (indexes into the pads; len(pads): in the taxi)."""
        if self.family != "taxi":
            return {cell: obs for obs, cell in enumerate(self.grid.positions)}
        if passenger is None or destination is None:
            raise ValueError("Taxi: a passenger place and a destination are needed")
        return {(r, c): taxi_observation(self.grid, r, c, passenger, destination)
                for r in range(self.grid.rows) for c in range(self.grid.cols)}

    def places(self) -> list[str]:
        """Taxi's places by index (the pads' letters), then "in the taxi"."""
        return [self.grid.label(r, c) for r, c in self.grid.pads] + ["in the taxi"]


@dataclass(frozen=True)
class TaskDetail:
    """A task policy's own exact figures, beside its task's facts."""

    facts: TaskFacts
    exact: float
    """The table's exact expected return within the horizon."""
    expected_share: tuple[float, ...]
    """Expected share of the steps taking each action (exact, from the model)."""
    expected_steps: float
    """Expected length of an episode, in steps."""


def taxi_observation(grid: GridMap, row: int, col: int, passenger: int, destination: int) -> int:
    """Taxi's observation index of the taxi at (row, col), the passenger's place and the destination."""
    places = len(grid.pads)
    return ((row * grid.cols + col) * (places + 1) + passenger) * places + destination


def taxi_parts(grid: GridMap, observation: int) -> tuple[int, int, int, int]:
    """(row, column, passenger place, destination) of a Taxi observation."""
    places = len(grid.pads)
    rest, destination = divmod(observation, places)
    rest, passenger = divmod(rest, places + 1)
    row, col = divmod(rest, grid.cols)
    return row, col, passenger, destination


@functools.cache
def task_facts(env_id: str) -> TaskFacts:
    """The facts of a task (computed once per task; loads Gymnasium: call it off the GUI thread)."""
    from policyledger_core.tasks.toytext import toy_text_task
    from policyledger_core.verify.comparison import task_acting_observations

    task = toy_text_task(env_id)
    labels = tuple(task.observation_label(obs) for obs in range(task.n_observations))
    return TaskFacts(task_info(env_id), task.grid(), labels, frozenset(task_acting_observations(env_id)),
                     task.optimum(), task.best_stationary_value(), tuple(task.baselines().values()))


def expected_action_share(model: TabularModel, horizon: int,
                          actions: Sequence[int]) -> tuple[npt.NDArray[np.float64], float]:
    """Expected number of steps taking each action within ``horizon`` (exact, forward through the model)
    as shares, and the expected episode length."""
    table = np.asarray(actions, dtype=np.int64)
    pair = model.pair_of_outcome
    source = pair // model.n_actions
    chosen = (pair % model.n_actions) == table[source]
    weight = model.probs * (chosen & ~model.terminated)
    here = model.initial.copy()
    counts = np.zeros(model.n_actions)
    for _ in range(horizon):
        if here.sum() < 1e-15:
            break
        counts += np.bincount(table, weights=here, minlength=model.n_actions)
        here = np.bincount(model.next_states, weights=weight * here[source],
                           minlength=model.n_states).astype(np.float64)
    total = float(counts.sum())
    return (counts / total if total > 0 else counts), total


def task_detail(policy: TaskPolicy) -> TaskDetail:
    """A task policy's exact figures (loads Gymnasium: call it off the GUI thread)."""
    from policyledger_core.tasks.toytext import toy_text_task

    task = toy_text_task(policy.env_id)
    share, steps = expected_action_share(task.model(), task.horizon, policy.actions)
    return TaskDetail(task_facts(policy.env_id), task.expected_return(policy.actions),
                      tuple(float(s) for s in share), steps)


def action_text(facts: TaskFacts, action: int) -> str:
    """An action's name, with its arrow or letter."""
    name = facts.action_names[action]
    glyph = {(0, -1): "\u2190", (0, 1): "\u2192", (-1, 0): "\u2191", (1, 0): "\u2193"}.get(
        DIRECTIONS.get(name, (0, 0)), GLYPHS.get(name, ""))
    return f"{glyph} {name}" if glyph else name


def legend_html(facts: TaskFacts, replay: bool = False) -> str:
    """Swatches of the kinds of cell the map has, and what the marks mean."""
    kinds = [k for k in KIND_COLOURS if k in facts.grid.cells and k != "pad"]
    swatch = ('<span style="background:{}; border: 1px solid #808080">&nbsp;&nbsp;&nbsp;&nbsp;</span>'
              "&nbsp;{}")
    shown = [k for k in kinds if k != "floor" or facts.family == "taxi"]
    parts = [swatch.format(KIND_COLOURS[k], KIND_NAMES[k].replace(" ", "&nbsp;")) for k in shown]
    if facts.family == "taxi":
        parts.append("R G Y B: the four places; thick lines: walls")
        parts.append("P: pick up, D: drop off")
        parts.append(f'<span style="color:{PASSENGER}">\u25cf</span> passenger, '
                     f'<span style="color:{PASSENGER}">dashed</span>: destination')
    else:
        parts.append("arrow: the table's action")
    if replay:
        parts.append(f'<span style="color:{AGENT}">ring</span>: the agent now; shaded: cells visited')
    return " &nbsp; ".join(parts)


class GridView(QWidget):
    """A grid world's map: cells by kind, the table's action in every cell it acts in, and an episode.

    What is drawn is also kept as plain data (:meth:`arrows`, :meth:`tooltip_at`), and every cell's
    place on screen is :meth:`cell_rect`.
    """

    def __init__(self, name: str = "taskMap", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.facts: TaskFacts | None = None
        self.cell_obs: dict[Cell, int] = {}
        self.table: tuple[int, ...] | None = None
        self.agent: Cell | None = None
        self.path: list[Cell] = []
        self.passenger: Cell | None = None
        self.passenger_in_taxi = False
        self.destination: Cell | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(100, 60)
        self.setMouseTracking(True)

    # -- data -------------------------------------------------------------------------------

    def set_task(self, facts: TaskFacts | None, cells: Mapping[Cell, int] | None = None) -> None:
        """Show ``facts``' map, each cell standing for the observation ``cells`` gives (default: its own)."""
        self.facts = facts
        self.cell_obs = dict(cells if cells is not None else (facts.cells() if facts is not None
                                                               and facts.family != "taxi" else {}))
        self.updateGeometry()
        self.update()

    def set_cells(self, cells: Mapping[Cell, int]) -> None:
        self.cell_obs = dict(cells)
        self.update()

    def set_actions(self, actions: Sequence[int] | None) -> None:
        self.table = None if actions is None else tuple(int(a) for a in actions)
        self.update()

    def set_episode(self, agent: Cell | None, path: Sequence[Cell] = (), passenger: Cell | None = None,
                    in_taxi: bool = False, destination: Cell | None = None) -> None:
        """The agent's cell, the cells visited so far, and Taxi's passenger and destination."""
        self.agent, self.path = agent, list(path)
        self.passenger, self.passenger_in_taxi, self.destination = passenger, in_taxi, destination
        self.update()

    def arrows(self) -> dict[Cell, int]:
        """The action drawn in each cell (cells the table acts in only)."""
        if self.facts is None or self.table is None:
            return {}
        acting = self.facts.acting
        return {cell: self.table[obs] for cell, obs in self.cell_obs.items() if obs in acting}

    def tooltip_at(self, row: int, col: int) -> str:
        """What a cell is, and what the table does there."""
        facts = self.facts
        if facts is None:
            return ""
        kind = facts.grid.kind(row, col)
        obs = self.cell_obs.get((row, col))
        if obs is None:
            return f"row {row}, column {col}: {KIND_NAMES[kind]}, never an observation"
        text = f"observation {obs}: {facts.labels[obs]}"
        if obs not in facts.acting:
            why = {"hole": "the episode ends here", "goal": "the episode ends here",
                   "cliff": "never entered: stepping onto the cliff sends the agent back to the start"}
            reason = why.get(kind, "the episode has ended" if facts.family == "taxi" else "never reached")
            return f"{text}\nno action: {reason}"
        if self.table is not None:
            text += f"\naction: {action_text(facts, self.table[obs])}"
        return text

    # -- geometry ---------------------------------------------------------------------------

    def _cell_size(self) -> float:
        if self.facts is None:
            return 0.0
        grid = self.facts.grid
        return max(4.0, min((self.width() - 2) / grid.cols, (self.height() - 2) / grid.rows))

    def _origin(self) -> QPointF:
        assert self.facts is not None
        size, grid = self._cell_size(), self.facts.grid
        return QPointF((self.width() - size * grid.cols) / 2, (self.height() - size * grid.rows) / 2)

    def cell_rect(self, row: int, col: int) -> QRectF:
        """Where a cell is drawn, in widget coordinates."""
        size, origin = self._cell_size(), self._origin()
        return QRectF(origin.x() + col * size, origin.y() + row * size, size, size)

    def cell_at(self, point: QPointF) -> Cell | None:
        if self.facts is None:
            return None
        size, origin = self._cell_size(), self._origin()
        col, row = int((point.x() - origin.x()) // size), int((point.y() - origin.y()) // size)
        grid = self.facts.grid
        return (row, col) if 0 <= row < grid.rows and 0 <= col < grid.cols else None

    def sizeHint(self) -> QSize:
        if self.facts is None:
            return QSize(320, 240)
        grid = self.facts.grid
        return QSize(44 * grid.cols + 2, 44 * grid.rows + 2)

    def minimumSizeHint(self) -> QSize:
        if self.facts is None:
            return QSize(100, 60)
        grid = self.facts.grid
        return QSize(min(22 * grid.cols + 2, 240), min(22 * grid.rows + 2, 120))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            cell = self.cell_at(QPointF(event.pos()))
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.tooltip_at(*cell), self)
            return True
        return super().event(event)

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), QColor("white"))
            if self.facts is not None:
                self._paint(painter, self.facts)
        finally:
            painter.end()

    def _paint(self, painter: QPainter, facts: TaskFacts) -> None:
        grid, size = facts.grid, self._cell_size()
        visits: dict[Cell, int] = {}
        for cell in self.path:
            visits[cell] = visits.get(cell, 0) + 1
        for r in range(grid.rows):
            for c in range(grid.cols):
                rect = self.cell_rect(r, c)
                kind = grid.kind(r, c)
                fill = KIND_COLOURS[kind] if kind != "pad" else PAD_COLOURS.get(grid.label(r, c), "#f5f5f5")
                painter.fillRect(rect, QColor(fill))
                if kind == "cliff":
                    painter.fillRect(rect, QBrush(QColor("#4a2a14"), Qt.BrushStyle.BDiagPattern))
                if (r, c) in visits:
                    shade = QColor(AGENT)
                    shade.setAlpha(min(50 + 20 * visits[(r, c)], 130))
                    painter.fillRect(rect, shade)
        self._paint_path(painter, size)
        painter.setPen(QPen(QColor(GRID_LINE), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for r in range(grid.rows):
            for c in range(grid.cols):
                painter.drawRect(self.cell_rect(r, c))
        self._paint_labels(painter, facts, size)
        arrows = self.arrows()
        for (r, c), action in arrows.items():
            dark = self.agent is None or self.agent == (r, c)
            self._paint_action(painter, self.cell_rect(r, c), facts.action_names[action],
                               QColor(ARROW if dark else ARROW_DIMMED))
        painter.setPen(QPen(QColor(WALL), max(3.0, size * 0.08), Qt.PenStyle.SolidLine,
                            Qt.PenCapStyle.FlatCap))
        for r, c in grid.walls:
            rect = self.cell_rect(r, c)
            painter.drawLine(rect.topRight(), rect.bottomRight())
        self._paint_episode(painter, size)

    def _paint_labels(self, painter: QPainter, facts: TaskFacts, size: float) -> None:
        grid = facts.grid
        corner, centre = QFont(self.font()), QFont(self.font())
        corner.setPixelSize(max(8, int(size * 0.2)))
        corner.setBold(True)
        centre.setPixelSize(max(9, int(size * 0.42)))
        centre.setBold(True)
        for r in range(grid.rows):
            for c in range(grid.cols):
                kind, letter, rect = grid.kind(r, c), grid.label(r, c), self.cell_rect(r, c)
                if kind in ("hole", "goal"):  # terminal: the letter large, no arrow
                    painter.setFont(centre)
                    painter.setPen(QColor("white"))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, letter)
                elif letter and kind in ("start", "pad"):
                    painter.setFont(corner)
                    painter.setPen(QColor("#303030"))
                    inner = rect.adjusted(size * 0.1, size * 0.07, 0, 0)
                    painter.drawText(inner, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                                     letter)

    def _paint_action(self, painter: QPainter, rect: QRectF, name: str, colour: QColor) -> None:
        size, centre = rect.width(), rect.center()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        move = DIRECTIONS.get(name)
        if move is None:  # pickup, dropoff: a letter in a ring
            font = QFont(self.font())
            font.setPixelSize(max(8, int(size * 0.36)))
            font.setBold(True)
            painter.setFont(font)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(colour, max(1.5, size * 0.05)))
            radius = size * 0.26
            painter.drawEllipse(centre, radius, radius)
            painter.drawText(QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius),
                             Qt.AlignmentFlag.AlignCenter, GLYPHS.get(name, name[:1].upper()))
            return
        dr, dc = move
        along, across = QPointF(dc * size, dr * size), QPointF(-dr * size, dc * size)

        def at(a: float, b: float) -> QPointF:
            return centre + along * a + across * b

        shaft = QPolygonF([at(SHAFT[0], -SHAFT_HALF_WIDTH), at(SHAFT[1], -SHAFT_HALF_WIDTH),
                           at(SHAFT[1], SHAFT_HALF_WIDTH), at(SHAFT[0], SHAFT_HALF_WIDTH)])
        head = QPolygonF([at(HEAD[0], -HEAD_HALF_WIDTH), at(HEAD[1], 0.0), at(HEAD[0], HEAD_HALF_WIDTH)])
        painter.drawPolygon(shaft)
        painter.drawPolygon(head)

    def _paint_path(self, painter: QPainter, size: float) -> None:
        if len(self.path) > 1:
            line = QColor(AGENT)
            line.setAlpha(150)
            painter.setPen(QPen(line, max(1.5, size * 0.04)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolyline(QPolygonF([self.cell_rect(*cell).center() for cell in self.path]))

    def _paint_episode(self, painter: QPainter, size: float) -> None:
        if self.destination is not None:
            pen = QPen(QColor(PASSENGER), max(2.0, size * 0.06), Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            inset = size * 0.05  # along the cell's edge: the place's letter and the arrow stay readable
            painter.drawRect(self.cell_rect(*self.destination).adjusted(inset, inset, -inset, -inset))
        if self.agent is not None:
            painter.setPen(QPen(QColor(AGENT), max(3.0, size * 0.09)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            inset = size * 0.07
            painter.drawRoundedRect(self.cell_rect(*self.agent).adjusted(inset, inset, -inset, -inset),
                                    size * 0.12, size * 0.12)
        where = self.agent if self.passenger_in_taxi else self.passenger
        if where is not None:
            rect = self.cell_rect(*where)
            painter.setPen(QPen(QColor("white"), 1.5))
            painter.setBrush(QColor(PASSENGER))
            radius = size * 0.11
            spot = QPointF(rect.right() - size * 0.24, rect.bottom() - size * 0.24)
            painter.drawEllipse(spot, radius, radius)


class TaskMapPanel(QWidget):
    """The decision table of a task policy as a map; for Taxi, one map per passenger and destination."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("taskMapPanel")
        self.view = GridView("taskMap", self)
        self.passenger_combo = named(QComboBox(), "taxiPassenger")
        self.destination_combo = named(QComboBox(), "taxiDestination")
        self.taxi_row = QWidget()
        """Taxi's choice of passenger place and destination (hidden for the other tasks)."""
        row = QHBoxLayout(self.taxi_row)
        row.setContentsMargins(0, 0, 0, 0)
        for text, combo in (("&Passenger:", self.passenger_combo), ("&Destination:", self.destination_combo)):
            label = QLabel(text)
            label.setBuddy(combo)
            # Narrow at need (the panel must not widen the detail panel): the text fits in any case.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(4)
            row.addWidget(label)
            row.addWidget(combo)
        row.addStretch(1)
        self.taxi_row.hide()
        self.taxi_row.setToolTip("Taxi has 500 observations: the taxi's cell (the map) x where the passenger "
                                 "is x the destination. Pick the last two to see the table's action in "
                                 "every cell.")
        self.legend = named(QLabel(""), "taskMapLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.note = named(QLabel(""), "taskMapNote")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.taxi_row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.note)
        for label in (self.legend, self.note):
            label.hide()  # shown with a policy: an empty panel asks for no room
        self.facts: TaskFacts | None = None
        self.passenger_combo.currentIndexChanged.connect(self._on_choice_changed)
        self.destination_combo.currentIndexChanged.connect(self._on_choice_changed)

    def set_policy(self, policy: TaskPolicy | None, facts: TaskFacts | None) -> None:
        """Show ``policy``'s table on its task's map (None clears)."""
        if policy is None or facts is None:
            self.facts = None
            self.view.set_task(None)
            self.view.set_episode(None)
            self.view.set_actions(None)
            self.legend.setText("")
            self.note.setText("")
            self.legend.hide()
            self.note.hide()
            return
        if self.facts is None or self.facts.info != facts.info:
            self.facts = facts
            taxi = facts.family == "taxi"
            self.taxi_row.setVisible(taxi)
            if taxi:
                places = facts.places()
                for combo, items, default in ((self.passenger_combo, places, 0),
                                              (self.destination_combo, places[:-1], 1)):
                    combo.blockSignals(True)
                    combo.clear()
                    combo.addItems([p if combo is self.destination_combo or p == places[-1] else f"at {p}"
                                    for p in items])
                    combo.setCurrentIndex(default)
                    combo.blockSignals(False)
            self.view.set_task(facts, self._cells())
            self.view.set_episode(None)  # no passenger or destination of another task's map
            self.legend.setText(legend_html(facts))
        self.view.set_actions(policy.actions)
        self.legend.show()
        self.note.show()
        self._explain()

    def choose(self, passenger: int, destination: int) -> None:
        """Taxi: show the table for this passenger place and destination."""
        self.passenger_combo.setCurrentIndex(passenger)
        self.destination_combo.setCurrentIndex(destination)

    def _cells(self) -> dict[Cell, int]:
        assert self.facts is not None
        if self.facts.family != "taxi":
            return self.facts.cells()
        return self.facts.cells(self.passenger_combo.currentIndex(), self.destination_combo.currentIndex())

    def _on_choice_changed(self, _index: int) -> None:
        if self.facts is not None and self.facts.family == "taxi":
            self.view.set_cells(self._cells())
            self._explain()

    def _mark_taxi_choice(self) -> None:
        """The passenger (waiting at its place) and the destination, on the map."""
        assert self.facts is not None
        pads = self.facts.grid.pads
        p, d = self.passenger_combo.currentIndex(), self.destination_combo.currentIndex()
        waiting = pads[p] if 0 <= p < len(pads) else None
        self.view.set_episode(None, (), waiting, False, pads[d] if 0 <= d < len(pads) else None)

    def _explain(self) -> None:
        facts = self.facts
        assert facts is not None
        if facts.family == "taxi":
            self._mark_taxi_choice()
            places = facts.places()
            p, d = self.passenger_combo.currentIndex(), self.destination_combo.currentIndex()
            if p == d:
                self.note.setText(f"The passenger is already at {places[d]}, the destination: the episode "
                                  "has ended, the table is never used here.")
            else:
                where = "in the taxi" if p == len(places) - 1 else f"waiting at {places[p]}"
                self.note.setText(f"The table's action in each cell of the taxi, with the passenger {where} "
                                  f"and the destination {places[d]}. Hover a cell for its observation.")
        elif facts.family == "frozenlake":
            self.note.setText("Slippery ice: the agent moves as the arrow says only one time in three, else "
                              "to either side. Holes and the goal end the episode. Hover a cell for details.")
        else:
            self.note.setText("Every step costs 1; stepping onto the cliff costs 100 and sends the agent "
                              "back to the start. Hover a cell for details.")
