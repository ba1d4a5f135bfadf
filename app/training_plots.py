"""Live reward and epsilon plots: buffers that grow with the run, redrawn at most ~25 times a second.

Plot items are created once; a refresh only calls ``setData`` with numpy views.
Long runs stay fast with pyqtgraph's peak downsampling and clip-to-view.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
import pyqtgraph.exporters
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLabel, QWidget

from app.episode_columns import Columns

REFRESH_MS = 33  # 30 redraws per second at most
HEADER_HEIGHT = 28
"""The row above the view box that holds the title and the legend: a legend never covers data."""
CSV_COLUMNS = ("episode", "return", "smoothed", "mean_100", "epsilon", "env_steps")
"""``env_steps``: environment steps taken up to the end of the episode (for a population, per agent)."""
POPULATION_COLUMNS = ("band_low", "band_high", "best")
"""Added for a population: the 95% interval of the mean return across agents (mean less and plus
1.96 standard deviations over the square root of K), and the best agent's mean of its last 100 episodes."""
Z95 = 1.96
HOVER_RATE = 60
"""Mouse moves handled per second at most (pyqtgraph's SignalProxy)."""
READOUT_IDLE = "Hover over a plot to read an episode; click to pin the readout."
X_AXES = {"episodes": "episode", "steps": "env steps"}
"""The x axis choices and their axis labels (a population's steps are per agent)."""
EPSILON_TICKS = [[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], []]
"""Epsilon stays in [0, 1]: three labels fit the short plot (pyqtgraph's own crowd it)."""


class SeriesBuffer:
    """A growing float64 array with amortised O(1) append."""

    def __init__(self) -> None:
        self._data = np.empty(1024)
        self.size = 0

    def extend(self, values: npt.ArrayLike) -> None:
        values = np.asarray(values, dtype=np.float64)
        need = self.size + len(values)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)))
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size:need] = values
        self.size = need

    def view(self) -> npt.NDArray[np.float64]:
        return self._data[: self.size]

    def clear(self) -> None:
        self.size = 0


class Smoother:
    """TensorBoard's debiased exponential moving average, kept up to date point by point."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.values = SeriesBuffer()
        self._last = 0.0

    def extend(self, raw: list[float]) -> None:
        w, last, n = self.weight, self._last, self.values.size
        out = []
        for v in raw:
            n += 1
            last = last * w + (1 - w) * v
            out.append(last / (1 - w**n) if w > 0 else v)
        self._last = last
        self.values.extend(out)

    def reset(self, weight: float, raw: npt.NDArray[np.float64]) -> None:
        self.weight, self._last = weight, 0.0
        self.values.clear()
        self.extend(raw.tolist())


def _plot(name: str, title: str, y_label: str) -> pg.PlotWidget:
    widget = pg.PlotWidget()
    widget.setObjectName(name)
    widget.setBackground("w")
    widget.showGrid(x=False, y=False)
    widget.setLabel("bottom", "episode")
    widget.setLabel("left", y_label)
    item = widget.getPlotItem()
    # Title and legend in the title's row, above the view box (not over the curves).
    header = pg.GraphicsLayout()
    header.setContentsMargins(0, 0, 0, 0)
    header.addLabel(f"<b>{title}</b>", color="#333", size="10pt")
    legend = pg.LegendItem(offset=None, colCount=6, labelTextColor="#333", labelTextSize="9pt",
                           horSpacing=6, verSpacing=-6)
    header.addItem(legend)
    header.layout.setColumnStretchFactor(2, 1)
    header.addLabel("")  # takes the rest of the row: the title and the legend stay on the left
    header.setMinimumWidth(0)  # a long legend is cut at the right, never widens the plot past its widget
    item.legend = legend
    item.titleLabel.setVisible(False)
    item.layout.removeItem(item.titleLabel)
    item.layout.addItem(header, 0, 1)
    item.layout.setRowFixedHeight(0, HEADER_HEIGHT)
    for side in ("left", "bottom"):
        item.getAxis(side).enableAutoSIPrefix(False)  # "episode (x0.001)" helps nobody
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    return widget


class TrainingPlots:
    """The reward and epsilon plots of one training run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.reward = _plot("rewardPlot", "Episode reward", "return")
        self.epsilon = _plot("epsilonPlot", "Exploration", "epsilon")
        self.reward.setParent(parent)
        self.epsilon.setParent(parent)
        self.epsilon.setXLink(self.reward)
        self.reward.getPlotItem().getAxis("bottom").showLabel(False)
        self.smoothing = 0.9
        self.refreshes = 0
        self._raw = self.reward.plot([], [], pen=pg.mkPen((150, 170, 210), width=1), name="return")
        self._ema = self.reward.plot([], [], pen=pg.mkPen((30, 80, 200), width=1), name="smoothed")
        self._rolling = self.reward.plot([], [], pen=pg.mkPen((220, 110, 20), width=1),
                                         name="mean of last 100")
        self._upper = pg.PlotDataItem([], [], pen=pg.mkPen(None))
        self._lower = pg.PlotDataItem([], [], pen=pg.mkPen(None))
        self._band = pg.FillBetweenItem(self._upper, self._lower, brush=pg.mkBrush(30, 80, 200, 40))
        # The legend draws a PlotDataItem's fill, not a FillBetweenItem: a sample that is never plotted.
        self._band_sample = pg.PlotDataItem([], [], pen=pg.mkPen(None), fillLevel=0,
                                            fillBrush=pg.mkBrush(30, 80, 200, 80))
        self.reward.addItem(self._band)
        self._best = self.reward.plot([], [], pen=pg.mkPen((20, 150, 60), width=1),
                                      name="best agent")
        eps_axis = self.epsilon.getPlotItem().getAxis("left")
        eps_axis.setTicks(EPSILON_TICKS)
        # The plot is short: let the three labels fill it, and the end labels reach past its edges.
        eps_axis.setStyle(textFillLimits=[(0, 1.0)], hideOverlappingLabels=False)
        self._eps = self.epsilon.plot([], [], pen=pg.mkPen((120, 60, 160), width=1), name="epsilon")
        self.episodes = SeriesBuffer()
        self.returns = SeriesBuffer()
        self.rolling = SeriesBuffer()
        self.eps = SeriesBuffer()
        self.steps = SeriesBuffer()
        """Cumulative environment steps at the end of each episode (per agent for a population)."""
        self.spread = SeriesBuffer()
        self.best = SeriesBuffer()
        self.smoother = Smoother(self.smoothing)
        self.population = False
        self._dirty = False
        # The view grows in steps instead of auto-ranging on every refresh: a changed range
        # repaints the axes, which costs more than the curves (measured). A manual pan or
        # zoom hands the view to the user until the next run.
        self._follow = True
        self._shown: tuple[float, float, float, float] | None = None
        for plot in (self.reward, self.epsilon):
            plot.getPlotItem().getViewBox().sigRangeChangedManually.connect(self._on_view_changed_manually)
        self._show_best_in_legend(False)
        self.reward.getPlotItem().getViewBox().setRange(xRange=(0, 1000), yRange=(-50, 150), padding=0)
        self.epsilon.getPlotItem().getViewBox().setRange(xRange=(0, 1000), yRange=(0, 1.05), padding=0)
        self._timer = QTimer()
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.agents = 1
        self.stride = 1
        """Episodes plotted: those whose number this divides (1 until a run is long)."""
        self.log_x = False
        self.x_axis = "episodes"
        """What the x axis counts: a key of :data:`X_AXES`."""
        # Hover readout: a crosshair on both plots, a marker on the return, the values in a label.
        self.readout = QLabel(READOUT_IDLE, parent)
        self.readout.setObjectName("hoverReadout")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.readout.setStyleSheet("color: #333;")
        self.pinned = False
        self.hovered: int | None = None
        """Index of the episode read out, if any."""
        self._lines: list[pg.InfiniteLine] = []
        for plot in (self.reward, self.epsilon):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen((80, 80, 80), width=1, style=Qt.PenStyle.DashLine))
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self._lines.append(line)
        self._marker = pg.PlotDataItem([], [], pen=None, symbol="o", symbolSize=7,
                                       symbolBrush=(30, 80, 200), symbolPen="w")
        self.reward.addItem(self._marker, ignoreBounds=True)
        self._events = _PlotEvents(self)
        self._proxies: list[pg.SignalProxy] = []
        for plot in (self.reward, self.epsilon):
            scene = plot.scene()
            self._proxies.append(pg.SignalProxy(scene.sigMouseMoved, rateLimit=HOVER_RATE,
                                                slot=lambda args, p=plot: self.hover(args[0], p)))
            scene.sigMouseClicked.connect(lambda event, p=plot: self._on_click(event, p))
            plot.installEventFilter(self._events)
            plot.viewport().installEventFilter(self._events)

    # -- hover readout ---------------------------------------------------------------------------

    def nearest(self, x: float) -> int | None:
        """The index of the episode nearest to ``x`` on the x axis (binary search: episodes and
        cumulative steps both increase)."""
        n = min(self.episodes.size, self.returns.size, self.rolling.size, self.eps.size,
                self.steps.size, self.smoother.values.size)
        if n == 0:
            return None
        xs = self.x_view()[:n]
        i = int(np.searchsorted(xs, x))
        if i >= n:
            return n - 1
        if i > 0 and x - xs[i - 1] <= xs[i] - x:
            return i - 1
        return i

    def hover(self, pos: QPointF, plot: pg.PlotWidget) -> None:
        """The mouse is at scene position ``pos`` of ``plot``: read out the nearest episode, unless pinned."""
        if not self.pinned:
            self._read_at(pos, plot)

    def _read_at(self, pos: QPointF, plot: pg.PlotWidget) -> bool:
        view = plot.getPlotItem().getViewBox()
        if not view.sceneBoundingRect().contains(pos):
            self.hide_readout()
            return False
        x = view.mapSceneToView(pos).x()
        i = self.nearest(10.0 ** x if self.log_x else x)
        if i is None:
            self.hide_readout()
            return False
        self.show_episode(i)
        return True

    def show_episode(self, i: int) -> None:
        """Crosshair and readout at the episode of index ``i``."""
        self.hovered = i
        episode = float(self.episodes.view()[i])
        ret = float(self.returns.view()[i])
        at = float(self.x_view()[i])
        x = math.log10(at) if self.log_x and at > 0 else at
        for line in self._lines:
            line.setPos(x)
            line.setVisible(True)
        self._marker.setData([at], [ret])
        text = (f"episode {int(episode):,} ({int(self.steps.view()[i]):,} steps)  return {ret:.2f}  "
                f"smoothed {float(self.smoother.values.view()[i]):.2f}  "
                f"mean of last 100 {float(self.rolling.view()[i]):.2f}  "
                f"epsilon {float(self.eps.view()[i]):.3f}")
        if self.population and i < self.best.size:
            text += f"  best agent {float(self.best.view()[i]):.2f}"
        if self.pinned:
            text += "  [pinned]"
        self.readout.setText(text)
        self.readout.setToolTip("Pinned: click a plot or press Esc to release." if self.pinned else "")

    def hide_readout(self) -> None:
        self.hovered = None
        for line in self._lines:
            line.setVisible(False)
        self._marker.setData([], [])
        self.readout.setText(READOUT_IDLE)
        self.readout.setToolTip("")

    def _on_click(self, event: MouseClickEvent, plot: pg.PlotWidget) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        if self.pinned:
            self.pinned = False
            self._read_at(pos, plot)
        elif self._read_at(pos, plot):
            self.pin()

    def pin(self) -> None:
        """Keep the readout where it is until a click or Escape."""
        if self.hovered is not None:
            self.pinned = True
            self.show_episode(self.hovered)

    def unpin(self) -> None:
        self.pinned = False
        self.hide_readout()

    # -- x axis -------------------------------------------------------------------------------------

    def x_view(self) -> npt.NDArray[np.float64]:
        """The x of every episode drawn: its number, or the environment steps taken by its end."""
        return self.steps.view() if self.x_axis == "steps" else self.episodes.view()

    def x_label(self) -> str:
        label = X_AXES[self.x_axis]
        return f"{label} per agent" if self.x_axis == "steps" and self.population else label

    def set_x_axis(self, axis: str) -> None:
        """Draw against episodes or environment steps (a key of :data:`X_AXES`)."""
        if axis not in X_AXES:
            raise ValueError(f"unknown x axis {axis!r}: expected one of {', '.join(X_AXES)}")
        self.x_axis = axis
        self._label_x()
        self._dirty = True
        self._refit()

    def _label_x(self) -> None:
        # The x axes are linked: the name goes under the lower plot only, which leaves the short
        # exploration plot room for its own labels.
        self.epsilon.setLabel("bottom", self.x_label())

    def _refit(self) -> None:
        """The x mapping changed: redraw, and fit the view again (following a live run)."""
        self._shown = None
        self.refresh()
        if self._timer.isActive() and self._follow:
            self._follow_data()
        elif not self.empty:
            self.reward.getPlotItem().enableAutoRange()
        else:
            self.reward.getPlotItem().getViewBox().setXRange(*self._x_range(1000.0), padding=0)
        if self.hovered is not None:
            self.show_episode(self.hovered)

    def _x_range(self, high: float) -> tuple[float, float]:
        return (0.0, math.log10(high)) if self.log_x else (0.0, high)

    def set_log_x(self, on: bool) -> None:
        """A logarithmic x axis on both plots (episode 0 is not drawn)."""
        self.log_x = on
        for plot in (self.reward, self.epsilon):
            plot.setLogMode(x=on, y=False)
        self._refit()

    def start(self, population: bool, agents: int = 1) -> None:
        """Clear everything for a new run (of ``agents`` agents)."""
        self.agents = max(agents, 1)
        self._forget(population)
        for plot in (self.reward, self.epsilon):
            plot.getPlotItem().disableAutoRange()
        self.epsilon.getPlotItem().getViewBox().setRange(yRange=(0, 1.05), padding=0)
        self._show_best_in_legend(population)
        self._dirty = True
        self.refresh()
        self._timer.start()

    def _forget(self, population: bool) -> None:
        """No data, no readout, the view following again: what a new run and a cleared plot share."""
        self.unpin()
        for buffer in self._buffers():
            buffer.clear()
        self.smoother.reset(self.smoothing, self.returns.view())
        self.population = population
        self.stride = 1
        self._label_x()
        self._follow, self._shown = True, None

    def _buffers(self) -> tuple[SeriesBuffer, ...]:
        return (self.episodes, self.returns, self.rolling, self.eps, self.steps, self.spread, self.best)

    @property
    def empty(self) -> bool:
        """Nothing to draw (or to export)."""
        return self.episodes.size == 0

    def clear(self) -> None:
        """Back to the empty plots of a new window (another workspace was opened)."""
        self._timer.stop()
        self._forget(population=False)
        self._show_best_in_legend(False)
        self._dirty = True
        self.refresh()
        for plot in (self.reward, self.epsilon):
            plot.getPlotItem().disableAutoRange()
        self.reward.getPlotItem().getViewBox().setRange(xRange=self._x_range(1000.0), yRange=(-50, 150),
                                                        padding=0)
        self.epsilon.getPlotItem().getViewBox().setRange(xRange=self._x_range(1000.0), yRange=(0, 1.05),
                                                         padding=0)

    def stop(self) -> None:
        """The run ended: last redraw, then fit the view to the data (unless the user moved it)."""
        self._timer.stop()
        self.refresh()
        if self._follow:  # epsilon keeps its fixed [0, 1] scale (and its three labels)
            self.reward.getPlotItem().enableAutoRange()

    def _thin(self, stride: int) -> None:
        """Keep only the episodes whose number ``stride`` divides (a long run's history stays bounded);
        the smoothed curve is recomputed over what stays, as TensorBoard smooths its sampled points."""
        keep = self.episodes.view().astype(np.int64) % stride == 0
        for buffer in self._buffers():
            if buffer.size:
                kept = buffer.view()[keep[: buffer.size]].copy()
                buffer.clear()
                buffer.extend(kept)
        self.stride = stride
        self.smoother.reset(self.smoothing, self.returns.view())
        if self.hovered is not None:
            self.unpin()

    def add(self, batch: Columns) -> None:
        """Take a batch of episodes from the training process; drawn at the next tick."""
        if not len(batch) and batch.stride <= self.stride:
            return
        if batch.stride > self.stride:
            self._thin(batch.stride)
        self.episodes.extend(batch.episode)
        self.steps.extend(batch.steps)
        self.eps.extend(batch.epsilon)
        self.returns.extend(batch.ret)
        self.smoother.extend(batch.ret.tolist())
        self.rolling.extend(batch.rolling)
        if batch.spread is not None and batch.best is not None:
            self.spread.extend(batch.spread)
            self.best.extend(batch.best)
        self._dirty = True

    def _show_best_in_legend(self, shown: bool) -> None:
        legend = self.reward.getPlotItem().legend
        if legend is not None:
            legend.removeItem(self._best)
            legend.removeItem(self._band_sample)
            if shown:
                legend.addItem(self._band_sample, f"95% CI of mean, K={self.agents}")
                legend.addItem(self._best, "best agent")

    def _on_view_changed_manually(self, *_: object) -> None:
        self._follow = False

    def _follow_data(self) -> None:
        """Grow the visible range in steps so that it covers all the data."""
        if not self._follow or self.episodes.size == 0:
            return
        y = self.returns.view()
        last_x = float(self.x_view()[-1])
        low, high = float(y.min()), float(y.max())
        if self.population:
            half = self.half_width()
            low, high = min(low, float((y - half).min())), max(high, float((y + half).max()))
        shown = self._shown
        if shown is not None and last_x <= shown[1] and shown[2] <= low and high <= shown[3]:
            return
        margin = max((high - low) * 0.25, 5.0)
        x_high = max(1000.0, last_x * 2 if shown is None or last_x > shown[1] else shown[1])
        self._shown = (0.0, x_high, low - margin, high + margin)
        self.reward.getPlotItem().getViewBox().setRange(xRange=self._x_range(x_high), yRange=self._shown[2:],
                                                        padding=0)
        # pyqtgraph applies a new range while preparing the next paint, and the curves' bounds that
        # change with it ask for a second full paint. Applying it now makes one paint do (measured:
        # a range change with 5 overlaid runs of 100,000 episodes 27 -> 20 ms).
        for plot in (self.reward, self.epsilon):
            plot.scene().prepareForPaint()

    def half_width(self) -> npt.NDArray[np.float64]:
        """Half the 95% interval of the mean return across the agents: 1.96 std / sqrt(K)."""
        return self.spread.view() * (Z95 / math.sqrt(self.agents))

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        self.smoother.reset(weight, self.returns.view())
        self._dirty = True
        self.refresh()

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if not self._dirty:
            return
        self._dirty = False
        self.refreshes += 1
        x, y = self.x_view(), self.returns.view()
        self._raw.setData(x, y, skipFiniteCheck=True)
        self._ema.setData(x, self.smoother.values.view(), skipFiniteCheck=True)
        self._rolling.setData(x, self.rolling.view(), skipFiniteCheck=True)
        self._eps.setData(x, self.eps.view(), skipFiniteCheck=True)
        if self.population:
            half = self.half_width()
            self._upper.setData(x, y + half)
            self._lower.setData(x, y - half)
            self._best.setData(x, self.best.view())
        else:
            for item in (self._upper, self._lower, self._best):
                item.setData([], [])
        self._follow_data()

    def export_png(self, path: Path) -> None:
        """The reward plot as a PNG (pyqtgraph's exporter)."""
        pyqtgraph.exporters.ImageExporter(self.reward.getPlotItem()).export(str(path))

    def export_csv(self, path: Path) -> None:
        """Every series as CSV, one row per episode (:data:`CSV_COLUMNS`, then
        :data:`POPULATION_COLUMNS` for a population)."""
        y = self.returns.view()
        columns = [self.episodes.view(), y, self.smoother.values.view(), self.rolling.view(),
                   self.eps.view(), self.steps.view()]
        header = list(CSV_COLUMNS)
        if self.population:
            half = self.half_width()
            columns += [y - half, y + half, self.best.view()]
            header += POPULATION_COLUMNS
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for row in zip(*columns, strict=True):
                # Steps count up to billions: 6 significant digits would round them.
                writer.writerow([str(int(row[0])), *(f"{v:.6g}" for v in row[1:5]), f"{row[5]:.12g}",
                                 *(f"{v:.6g}" for v in row[6:])])


class _PlotEvents(QObject):
    """Escape unpins the readout; the mouse leaving a plot hides an unpinned one."""

    def __init__(self, plots: TrainingPlots) -> None:
        super().__init__()
        self._plots = plots

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Escape and self._plots.pinned:
            self._plots.unpin()
            return True
        if event.type() == QEvent.Type.Leave and not self._plots.pinned:
            self._plots.hide_readout()
        return False
