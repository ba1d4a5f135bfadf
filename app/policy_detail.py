"""The detail panel of one marketplace policy: decision heatmap, action mix, result against references.

A cyber-defense policy's decisions are a heatmap; a toy-text task's table is its map
(:class:`app.task_map.TaskMapPanel`), with its exact value beside the optimum, the best
stationary table and the baselines. Plot items are created once (a task's bars once per kind of
task); showing another policy only sets new data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.task_map import TASK_ACTION_COLOURS, TaskDetail, TaskMapPanel
from app.widgets import named
from policyledger_core.errors import BadInput
from policyledger_core.policy import AnyPolicy, Policy, TaskPolicy, config_dict
from policyledger_core.sim import dynamics as dyn
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.verify.suite import BASELINES, VerificationReport
from policyledger_core.workspace.curves import Curve
from policyledger_core.workspace.marketplace import RankedPolicy

ACTION_COLOURS = ("#c8c8c8", "#56b4e9", "#e69f00", "#d55e00", "#0072b2")
"""One colour per action (Okabe-Ito, readable with colour-blindness), by action index."""
ACTION_TEXT = ("black", "black", "black", "white", "white")
"""Readable text colour on each action's colour."""
ACTION_SHORT = ("IGN", "MON", "RATE", "BLOCK", "ISO")
AXIS_TEXT = "#202020"
"""Tick and axis-title colour: dark on the white plot background (pyqtgraph's default grey is faint)."""
RESULT_LABELS = ("this policy", "optimum", *BASELINES)
"""The bars of the result chart, top to bottom."""
TASK_RESULT_LABELS = ("this policy", "exact value", "optimum", "best table")
"""The first bars of a task policy's result chart (its task's baselines follow)."""
TASK_RESULT_COLOURS = ("#0072b2", "#56b4e9", "#009e73", "#86cfae")
BASELINE_COLOUR = "#b0b0b0"

HEATMAP_ROWS = [f"{('LOW', 'MED', 'HIGH')[s]} {('SCAN', 'BRUTE', 'DOS')[a]} {('lo', 'hi')[c]}"
                for s in range(3) for a in range(3) for c in range(2)]
"""Row labels: severity x attack type x confidence, in alert-code order."""
HEATMAP_COLUMNS = [(h, d) for h in range(2) for d in range(2)]
"""Columns: (health, duration); CRITICAL is terminal and not shown."""
HEATMAP_OBS = np.array([[dyn.observation_index(s, a, h, c, d) for h, d in HEATMAP_COLUMNS]
                        for s in range(3) for a in range(3) for c in range(2)], dtype=np.int64)
"""Observation index shown in each heatmap cell (18, 4)."""


class NotShown(BadInput):
    """A view asked of policies it cannot show together (the message says why)."""


def observation_name(obs: int) -> str:
    """A readable name of an observation index."""
    severity, attack, health, confidence, duration = dyn.decode_observation(obs)
    return (f"{dyn.SEVERITY_NAMES[severity]} {dyn.ATTACK_NAMES[attack]} "
            f"(confidence {dyn.CONFIDENCE_NAMES[confidence]}), {dyn.HEALTH_NAMES[health]}, "
            f"{dyn.DURATION_NAMES[duration]}")


def action_lut() -> npt.NDArray[np.uint8]:
    """The discrete lookup table of the heatmap: one RGB row per action."""
    colours = [QColor(c) for c in ACTION_COLOURS]
    return np.array([(c.red(), c.green(), c.blue()) for c in colours], dtype=np.uint8)


def legend() -> QLabel:
    """A legend of the five action colours (wraps when narrow)."""
    swatches = " &nbsp; ".join(f'<span style="background:{colour}">&nbsp;&nbsp;&nbsp;&nbsp;</span>'
                               f"&nbsp;{name}" for colour, name in zip(ACTION_COLOURS, dyn.ACTION_NAMES,
                                                                       strict=True))
    label = named(QLabel(swatches), "actionLegend")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    return label


def _plot(name: str) -> pg.PlotWidget:
    widget = pg.PlotWidget()  # titles are group boxes: a plot title would set the panel's minimum width
    widget.setObjectName(name)
    widget.setBackground("w")
    widget.setMouseEnabled(x=False, y=False)
    widget.setMenuEnabled(False)
    widget.hideButtons()
    widget.getViewBox().invertY(True)
    for side in ("left", "bottom", "top"):
        axis = widget.getAxis(side)
        axis.setTickFont(QFont(widget.font()))
        axis.setTextPen(AXIS_TEXT)
        axis.enableAutoSIPrefix(False)  # no "(x1e-12)" beside an axis title
    return widget


def set_category_ticks(plot: pg.PlotWidget, ticks: list[tuple[float, str]]) -> None:
    """Name categories on the left axis, with room for the longest name reserved at once.

    pyqtgraph measures tick text only while painting and widens the axis afterwards, and it
    drops a label that does not fit the current width: so the first paint (a screenshot, a
    window just shown) would show no names at all. A fixed text width avoids that.
    """
    axis = plot.getAxis("left")
    axis.setTicks([ticks])
    metrics = QFontMetrics(axis.style["tickFont"] or plot.font())
    width = max(metrics.boundingRect(text).width() for _, text in ticks) + 4  # anti-aliasing slack
    axis.setStyle(autoExpandTextSpace=False, tickTextWidth=width)


def _boxed(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    for widget in widgets:
        layout.addWidget(widget)
    return box


class HorizontalBars:
    """Labelled horizontal bars, one per category, with the value written beside each."""

    def __init__(self, plot: pg.PlotWidget, labels: list[str], value_format: str) -> None:
        self.plot = plot
        self.labels = labels
        self.format = value_format
        n = len(labels)
        self.bars = pg.BarGraphItem(x0=np.zeros(n), y=np.arange(n), height=0.7, width=np.zeros(n))
        plot.addItem(self.bars)
        set_category_ticks(plot, [(float(i), label) for i, label in enumerate(labels)])
        self.texts = [pg.TextItem("", color="k", anchor=(0, 0.5)) for _ in labels]
        for item in self.texts:
            plot.addItem(item)
        self.values = np.zeros(n)

    def set_values(self, values: npt.ArrayLike, colours: list[str], margin: npt.ArrayLike = 0.0) -> None:
        """Bar lengths and colours; ``margin`` moves a value's text further right (past a whisker)."""
        v = np.asarray(values, dtype=np.float64)
        text_x = np.maximum(v, 0.0) + np.broadcast_to(np.asarray(margin, dtype=np.float64), v.shape)
        self.values = v
        self.bars.setOpts(x0=np.minimum(v, 0.0), width=np.abs(v), brushes=[pg.mkBrush(c) for c in colours],
                          pens=[pg.mkPen("k", width=1)] * len(v))
        for i, item in enumerate(self.texts):
            item.setText(self.format.format(v[i]))
            item.setPos(float(text_x[i]), i)
        span = max(float(np.abs(v).max()), 1e-9)
        self.plot.setXRange(min(float(v.min()), 0.0) - 0.05 * span, float(text_x.max()) + 0.45 * span,
                            padding=0)
        self.plot.setYRange(-0.6, len(v) - 0.4, padding=0)


class DecisionHeatmap(QWidget):
    """The action of every non-terminal observation, as coloured cells with short action names."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = _plot("decisionHeatmap")
        self.plot.setLabel("left", "severity, attack type, confidence (lo/hi)")
        self.plot.setLabel("bottom", "health")
        self.plot.setLabel("top", "duration of the attack")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(action_lut())
        self.plot.addItem(self.image)
        set_category_ticks(self.plot, [(i + 0.5, t) for i, t in enumerate(HEATMAP_ROWS)])
        self.plot.getAxis("bottom").setTicks([[(2 * h + 1.0, dyn.HEALTH_NAMES[h]) for h in range(2)]])
        self.plot.getAxis("top").setTicks([[(j + 0.5, dyn.DURATION_NAMES[d])
                                            for j, (_, d) in enumerate(HEATMAP_COLUMNS)]])
        self.cells = [[pg.TextItem("", color="k", anchor=(0.5, 0.5)) for _ in HEATMAP_COLUMNS]
                      for _ in HEATMAP_ROWS]
        for i, row in enumerate(self.cells):
            for j, item in enumerate(row):
                item.setPos(j + 0.5, i + 0.5)
                self.plot.addItem(item)
        for pos, angle in ((2, 90), (6, 0), (12, 0)):  # between health groups and severities
            self.plot.addItem(pg.InfiniteLine(pos, angle=angle, pen=pg.mkPen("k", width=1)))
        self.plot.setXRange(0, len(HEATMAP_COLUMNS), padding=0)
        self.plot.setYRange(0, len(HEATMAP_ROWS), padding=0)
        self.data: npt.NDArray[np.int64] = np.zeros((0, 0), dtype=np.int64)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(legend())

    def set_policy(self, policy: Policy | None) -> None:
        """Show the decisions of ``policy`` (None clears)."""
        if policy is None:
            self.data = np.zeros((0, 0), dtype=np.int64)
            self.image.clear()
            for row in self.cells:
                for item in row:
                    item.setText("")
            return
        self.data = policy.action_array()[HEATMAP_OBS]
        self.image.setImage(self.data, levels=(0, dyn.N_ACTIONS), autoLevels=False)
        for i, row in enumerate(self.cells):
            for j, item in enumerate(row):
                action = int(self.data[i, j])
                item.setText(ACTION_SHORT[action])
                item.setColor(ACTION_TEXT[action])


class TaskBars:
    """Labelled bars on a plot whose categories depend on the task: rebuilt when they change."""

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.plot = plot
        self.bars: HorizontalBars | None = None
        self.ci_bar = pg.ErrorBarItem(x=np.zeros(1), y=np.zeros(1), left=np.zeros(1), right=np.zeros(1),
                                      beam=0.25, pen=pg.mkPen("k", width=1))

    def show(self, labels: list[str], values: list[float], colours: list[str], value_format: str,
             ci95: float | None = None) -> HorizontalBars:
        """Draw ``values``; ``ci95``: a whisker on the first bar."""
        if self.bars is None or self.bars.labels != labels:
            self.plot.clear()
            self.bars = HorizontalBars(self.plot, labels, value_format)
            self.plot.addItem(self.ci_bar)
        self.bars.format = value_format
        margin = [ci95 or 0.0, *([0.0] * (len(values) - 1))]
        self.bars.set_values(values, colours, margin=margin)
        half = np.array([ci95 or 0.0])
        self.ci_bar.setData(x=np.array([values[0]]), y=np.zeros(1), left=half, right=half)
        self.ci_bar.setVisible(ci95 is not None)
        return self.bars


class CurveView(QWidget):
    """A kept training curve: the mean of each bucket, and its min-max envelope (no spike hidden)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("trainingCurveChart")
        self.plot.setBackground("w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for side in ("left", "bottom"):
            self.plot.getAxis(side).setTextPen(AXIS_TEXT)
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "training episode")
        self._low = self.plot.plot([], [], pen=None)
        self._high = self.plot.plot([], [], pen=None)
        self.band = pg.FillBetweenItem(self._low, self._high, brush=pg.mkBrush(0, 114, 178, 50))
        self.plot.addItem(self.band)
        self.mean = self.plot.plot([], [], pen=pg.mkPen((0, 114, 178), width=1.5))
        self.note = named(QLabel(""), "trainingCurveNote")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        self.curve: Curve | None = None

    def set_curve(self, curve: Curve | None) -> None:
        self.curve = curve
        if curve is None or not len(curve):
            for item in (self._low, self._high, self.mean):
                item.setData([], [])
            self.plot.hide()
            self.note.setText("No training curve kept on this machine: the policy was trained "
                              "elsewhere, added from a file, or chained before curves were kept.")
            return
        x = curve.episode.astype(np.float64)
        self._low.setData(x, curve.low)
        self._high.setData(x, curve.high)
        self.mean.setData(x, curve.mean)
        self.plot.show()
        self.note.setText(f"{curve.label}, {curve.episodes:,} episodes: mean per bucket of "
                          f"{max(1, -(-curve.episodes // len(curve))):,}, shaded from min to max")


class PolicyDetail(QWidget):
    """Everything about the selected policy."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("policyDetail")
        self.message = named(QLabel("Select a policy to see its decisions and results."),
                             "detailMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fields: dict[str, QLabel] = {}
        summary = named(QGroupBox("Policy"), "detailSummary")
        form = QFormLayout(summary)
        for key, label in (("config", "Configuration"), ("reward", "Verified reward"),
                           ("fraction", "Of the optimum"), ("expected", "Expected return"),
                           ("best", "Best table"), ("baselines", "Baselines"),
                           ("publisher", "Publisher"), ("origin", "Origin"), ("training", "Training")):
            value = named(QLabel("-"), f"detail_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = value
            form.addRow(label, value)
        self.form = form
        self.heatmap = DecisionHeatmap(self)
        self.task_map = TaskMapPanel(self)
        """A toy-text task's table: its map (Taxi: one per passenger and destination)."""
        self.decisions = named(QStackedWidget(), "detailDecisions")
        self.decisions.addWidget(self.heatmap)
        self.decisions.addWidget(self.task_map)
        self.task_share_plot = _plot("taskActionShareChart")
        self.task_share_plot.setLabel("bottom", "% of the steps (exact)")
        self.task_share = TaskBars(self.task_share_plot)
        self.task_entropy = named(QLabel(""), "detailTaskEntropy")
        self.task_entropy.setWordWrap(True)
        self.task_result_plot = _plot("taskResultChart")
        self.task_result_plot.setLabel("bottom", "expected return")
        self.task_result = TaskBars(self.task_result_plot)
        self.best_note = named(QLabel(""), "detailBestNote")
        """The best stationary table beside the optimum, said honestly."""
        self.best_note.setWordWrap(True)
        self.best_note.hide()  # shown with a task policy: its page asks for no more room than the chart
        self.share_plot = _plot("actionShareChart")
        self.share = HorizontalBars(self.share_plot, list(dyn.ACTION_NAMES), "{:.1f}%")
        self.share_plot.setLabel("bottom", "% of the steps taken")
        self.result_plot = _plot("resultChart")
        self.result = HorizontalBars(self.result_plot, list(RESULT_LABELS), "{:.1f}")
        self.result_plot.setLabel("bottom", "mean return")  # the box's title says more; a long one is cut
        self.ci_bar = pg.ErrorBarItem(x=np.zeros(1), y=np.zeros(1), left=np.zeros(1), right=np.zeros(1),
                                      beam=0.25, pen=pg.mkPen("k", width=1))
        self.result_plot.addItem(self.ci_bar)
        self.entropy = named(QLabel(""), "detailEntropy")
        self.entropy.setWordWrap(True)
        upper, lower = QWidget(), QWidget()
        top = QHBoxLayout(upper)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(summary, 0)
        self.curve = CurveView(self)
        self.views = named(QTabWidget(), "detailViews")
        actions, task_actions = QWidget(), QWidget()
        inner = QVBoxLayout(actions)
        inner.addWidget(self.share_plot, 1)
        inner.addWidget(self.entropy)
        inner = QVBoxLayout(task_actions)
        inner.addWidget(self.task_share_plot, 1)
        inner.addWidget(self.task_entropy)
        self.action_views = QStackedWidget()
        self.action_views.addWidget(actions)
        self.action_views.addWidget(task_actions)
        self.views.addTab(self.action_views, "Actions")
        self.views.setTabToolTip(0, "Share of each action on the evaluation episodes")
        self.views.addTab(self.curve, "Training curve")
        top.addWidget(self.views, 1)
        bottom = QHBoxLayout(lower)
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(_boxed("Decision table", self.decisions), 3)
        task_results = QWidget()
        inner = QVBoxLayout(task_results)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.task_result_plot, 1)
        inner.addWidget(self.best_note)
        self.results = QStackedWidget()
        self.results.addWidget(self.result_plot)
        self.results.addWidget(task_results)
        self.result_box = _boxed("Verified mean return against the references", self.results)
        bottom.addWidget(self.result_box, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setSizes([260, 520])
        layout.addWidget(split, 1)
        self.split = split
        """The summary and the charts: hidden while no policy is shown (the message says why)."""
        self.empty_space = QWidget()
        """Holds the room of the charts while they are hidden: the message stays at the top."""
        layout.addWidget(self.empty_space, 1)
        self.empty_space.hide()
        self.policy_hash: str | None = None
        self._show_kind(task=False)

    def _show_kind(self, task: bool) -> None:
        """The cyber-defense views, or a toy-text task's."""
        page = 1 if task else 0
        for stack in (self.decisions, self.action_views, self.results):
            stack.setCurrentIndex(page)
        for key in ("best", "baselines"):
            self.form.setRowVisible(self.fields[key], task)
        self.form.invalidate()  # the panel's minimum height follows the rows shown
        self.best_note.setVisible(task)
        self.result_box.setTitle("Exact expected return against the references" if task
                                 else "Verified mean return against the references")
        self.views.setTabToolTip(0, "Expected share of each action in an episode (exact, from the task's "
                                 "model)" if task else "Share of each action on the evaluation episodes")

    def show_policy(self, row: RankedPolicy, policy: AnyPolicy, report: VerificationReport,
                    curve: Curve | None = None, task: TaskDetail | None = None) -> None:
        """Fill the panel from a ranked row, its policy, a fresh verification report and its kept curve
        (a toy-text task's policy: with its exact figures, ``task``)."""
        self.curve.set_curve(curve)
        self.policy_hash = row.policy_hash
        self.message.setText(f"Rank {row.rank} in {row.preset or 'custom'}: policy {row.policy_hash[:24]}... "
                             f"({row.entries} ledger entr{'y' if row.entries == 1 else 'ies'})")
        self.message.setToolTip(row.policy_hash)
        f = self.fields
        f["config"].setText(row.preset or "custom")
        f["config"].setToolTip(str(config_dict(row.config)))
        f["reward"].setText(f"{row.mean:.2f} \u00b1 {row.ci95:.2f} (95% CI, {report.episodes} episodes)")
        f["fraction"].setText(f"{row.fraction_of_optimum:.1%} (optimum {row.optimum:.2f})")
        f["expected"].setText(f"{report.expected:.2f} (exact, by policy evaluation)")
        f["publisher"].setText("you" if row.own else row.publisher_id)
        f["publisher"].setToolTip(row.publisher)
        f["origin"].setText(f"{row.origin}, {row.timestamp}")
        training = row.training
        f["training"].setText(training.summary() if training else "none recorded (added without training)")
        f["training"].setToolTip(training.settings() if training else "")
        if isinstance(policy, TaskPolicy):
            if task is None:
                raise ValueError("a task policy is shown with its exact figures")
            self._show_task(row, policy, report, task)
            return
        self._show_kind(task=False)
        for key in ("reward", "fraction", "expected"):
            f[key].setToolTip("")
        self.task_map.set_policy(None, None)
        self.heatmap.set_policy(policy)
        self.share.set_values(100 * np.asarray(report.action_share), list(ACTION_COLOURS))
        self.entropy.setText(f"Action entropy: {report.action_entropy:.2f} bits "
                             f"(at most {np.log2(dyn.N_ACTIONS):.2f})")
        values = [report.mean, report.optimum, *(report.baselines[name] for name in BASELINES)]
        self.result.set_values(values, ["#0072b2", "#009e73", *(["#b0b0b0"] * len(BASELINES))],
                               margin=[report.ci95, *([0.0] * (len(values) - 1))])
        self.ci_bar.setData(x=np.array([report.mean]), y=np.zeros(1), left=np.array([report.ci95]),
                            right=np.array([report.ci95]))
        self.empty_space.hide()
        self.split.show()

    def _show_task(self, row: RankedPolicy, policy: TaskPolicy, report: VerificationReport,
                   task: TaskDetail) -> None:
        facts, f = task.facts, self.fields
        fmt = facts.fmt
        self._show_kind(task=True)
        self.heatmap.set_policy(None)
        f["reward"].setText(f"{fmt(row.mean)} \u00b1 {fmt(row.ci95)} (95% CI, {report.episodes} episodes "
                            "in Gymnasium)")
        f["reward"].setToolTip("The mean return of the table replayed in Gymnasium's own environment, each "
                               "episode reset with a seed of the evaluation suite")
        f["fraction"].setText(f"{row.fraction_of_optimum:.2%} (exact value {fmt(task.exact)} of the optimum "
                              f"{fmt(facts.optimum)})")
        f["fraction"].setToolTip("The fraction of a toy-text task's optimum is exact: the table's expected "
                                 "return against the best time-dependent policy's, over the "
                                 f"{facts.horizon}-step horizon" + ("" if facts.optimum > 0 else
                                 " (every return is a cost here: the ratio of costs)"))
        f["expected"].setText(f"{fmt(task.exact)} (exact, over {facts.horizon} steps)")
        f["expected"].setToolTip("The table's expected return, by policy evaluation on the task's model "
                                 "(read from Gymnasium's environment)")
        best_share = fraction_of_optimum(facts.best_stationary, facts.optimum)
        f["best"].setText(f"{fmt(facts.best_stationary)} ({best_share:.2%} of the optimum)")
        f["best"].setToolTip(facts.best_note())
        f["baselines"].setText(" \u00b7 ".join(f"{b.name} {fmt(b.value)}" for b in facts.baselines))
        f["baselines"].setToolTip("\n".join(f"{b.name}: {b.description}, exact expected return {fmt(b.value)}"
                                            for b in facts.baselines))
        self.task_map.set_policy(policy, facts)
        names = list(facts.action_names)
        shares = 100 * np.asarray(task.expected_share)
        self.task_share.show(names, list(shares), list(TASK_ACTION_COLOURS[:len(names)]), "{:.1f}%")
        p = np.asarray(task.expected_share)
        entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
        self.task_entropy.setText(f"An episode lasts {task.expected_steps:.1f} steps on average (exact, "
                                  f"at most {facts.horizon}). Action entropy: {entropy:.2f} bits (at most "
                                  f"{np.log2(len(names)):.2f}).")
        baselines = facts.baselines
        labels = [*TASK_RESULT_LABELS, *(b.name for b in baselines)]
        values = [row.mean, task.exact, facts.optimum, facts.best_stationary, *(b.value for b in baselines)]
        colours = [*TASK_RESULT_COLOURS, *([BASELINE_COLOUR] * len(baselines))]
        self.task_result.show(labels, values, colours, f"{{:.{facts.decimals}f}}", ci95=row.ci95)
        self.best_note.setText(f"\u201cthis policy\u201d: the verified mean (replayed, with its 95% CI); the "
                               f"others are exact. {facts.best_note()}")
        self.empty_space.hide()
        self.split.show()

    def clear(self, message: str) -> None:
        """Empty the panel and say why."""
        self.policy_hash = None
        self.curve.set_curve(None)
        self.message.setText(message)
        self.message.setToolTip("")
        for label in self.fields.values():
            label.setText("-")
            label.setToolTip("")
        self.heatmap.set_policy(None)
        self.task_map.set_policy(None, None)
        self.best_note.setText("")
        self.task_entropy.setText("")
        self.share.set_values(np.zeros(dyn.N_ACTIONS), list(ACTION_COLOURS))
        self.result.set_values(np.zeros(len(self.result.labels)), ["#b0b0b0"] * len(self.result.labels))
        self.ci_bar.setData(x=np.zeros(1), y=np.zeros(1), left=np.zeros(1), right=np.zeros(1))
        self.entropy.setText("")
        self.split.hide()  # an empty state: no bars at 0.0 and no empty axes
        self.empty_space.show()
