"""Live reward and epsilon plots of a run's bounded history, redrawn at most ~30 times a second.

The history (:class:`app.plot_history.PlotHistory`) keeps recent episodes as they came and older
ones in buckets of min, max and mean: lines go through the means, a band through the extremes,
so a run of hours is drawn from a few thousand points and no spike is lost. Plot items are
created once; a refresh only calls ``setData``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from app.episode_relay import BAND_HIGH, BAND_LOW, BEST, EPSILON, MEAN_100, RETURN, Relay
from app.plot_history import PlotHistory, centres
from policyledger_core.learn.envelope import Records

REFRESH_MS = 33  # 30 redraws per second at most
Y_MARGIN = 5.0
"""The least margin above and below the returns while the view follows a run (the cyber-defense
task's returns span tens; a run may ask for another, see :meth:`TrainingPlots.start`)."""
HEADER_HEIGHT = 28
"""The row above the view box that holds the title and the legend: a legend never covers data."""
HOVER_RATE = 60
"""Mouse moves handled per second at most (pyqtgraph's SignalProxy)."""
READOUT_IDLE = "Hover over a plot to read an episode; click to pin the readout."
X_AXES = {"episodes": "episode", "steps": "env steps"}
"""The x axis choices and their axis labels (a population's steps are per agent)."""
EPSILON_TICKS = [[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], []]
"""Epsilon stays in [0, 1]: three labels fit the short plot (pyqtgraph's own crowd it)."""
BAND_PEN = pg.mkPen((200, 212, 238), width=1)
BAND_SAMPLE_BRUSH = pg.mkBrush(200, 212, 238)
"""A population's 95% band, and its sample in the legend."""
RANGE_PEN = pg.mkPen((214, 222, 238), width=1)
RANGE_SAMPLE_BRUSH = pg.mkBrush(214, 222, 238)
"""A one-agent run's min-max band over merged episodes, and its sample."""
BAND_POINTS = 1600
"""Vertical strokes of a band at most (more than a plot's pixels: no column left out). A band
is drawn as one stroke per bucket from its low to its high, as pyqtgraph's peak downsampling
draws a curve: a filled polygon between two noisy edges cost 8-10 ms a paint (measured),
strokes well under one."""


class _Curve(pg.PlotDataItem):  # type: ignore[misc]  # pyqtgraph has no type hints
    """A curve whose data a refresh sets again right after moving the view.

    pyqtgraph recomputes a clipped, downsampled curve as soon as the view's range changes, then
    the refresh's ``setData`` computes it again for the new data: every curve twice on the refresh
    that grows the view (measured: 2.5-3 ms of the 7 ms refresh in the longest UI stalls). While
    :attr:`replacing`, a range change only marks the curve's display data stale; the ``setData``
    that follows recomputes it once, for the new range."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.replacing = False

    def viewRangeChanged(self, vb: object = None, ranges: object = None, changed: object = None) -> None:
        if not self.replacing:
            super().viewRangeChanged(vb, ranges, changed)
            return
        # What pyqtgraph's own handler records; the next setData reads it and recomputes.
        self.setProperty("xViewRangeWasChanged", True)
        self.setProperty("yViewRangeWasChanged", True)


def _curve(plot: pg.PlotWidget, name: str, pen: object) -> _Curve:
    """A named curve of ``plot`` (in its legend), as ``plot.plot`` makes one."""
    curve = _Curve([], [], pen=pen, name=name)
    plot.getPlotItem().addItem(curve)
    return curve


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
        self._raw = _curve(self.reward, "return", pg.mkPen((150, 170, 210), width=1))
        self._ema = _curve(self.reward, "smoothed", pg.mkPen((30, 80, 200), width=1))
        self._rolling = _curve(self.reward, "mean of last 100", pg.mkPen((220, 110, 20), width=1))
        self._band = _Curve([], [], pen=BAND_PEN, connect="pairs")
        # The legend draws a PlotDataItem's fill, not a FillBetweenItem: a sample that is never plotted.
        self._band_sample = pg.PlotDataItem([], [], pen=pg.mkPen(None), fillLevel=0,
                                            fillBrush=BAND_SAMPLE_BRUSH)
        self.reward.addItem(self._band)
        # Strokes come in pairs of points: neither thinned nor clipped (either could split a pair).
        self._band.setDownsampling(ds=1, auto=False)
        self._band.setClipToView(False)
        self._band.setZValue(-1)  # under the curves
        self._best = _curve(self.reward, "best agent", pg.mkPen((20, 150, 60), width=1))
        eps_axis = self.epsilon.getPlotItem().getAxis("left")
        eps_axis.setTicks(EPSILON_TICKS)
        # The plot is short: let the three labels fill it, and the end labels reach past its edges.
        eps_axis.setStyle(textFillLimits=[(0, 1.0)], hideOverlappingLabels=False)
        self._eps = _curve(self.epsilon, "epsilon", pg.mkPen((120, 60, 160), width=1))
        self._curves = (self._raw, self._ema, self._rolling, self._band, self._best, self._eps)
        """Every item a refresh sets the data of."""
        self.history = PlotHistory(self.smoothing)
        self.population = False
        self._range_in_legend = False
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
        self.y_margin = Y_MARGIN
        self.log_x = False
        self.x_axis = "episodes"
        """What the x axis counts: a key of :data:`X_AXES`."""
        # Hover readout: a crosshair on both plots, a marker on the return, the values in a label.
        self.readout = QLabel(READOUT_IDLE, parent)
        self.readout.setObjectName("hoverReadout")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.readout.setStyleSheet("color: #333;")
        # A long readout (a bucket of a population) is cut at the right, never widens the window.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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
        """The index of the point nearest to ``x`` on the x axis (binary search: episodes and
        cumulative steps both increase)."""
        xs = self.x_view()
        n = len(xs)
        if n == 0:
            return None
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
        """Crosshair and readout at the point of index ``i`` (an episode, or a bucket of older ones)."""
        self.hovered = i
        ret = float(self.history.drawn().mean(RETURN)[i])
        at = float(self.x_view()[i])
        x = math.log10(at) if self.log_x and at > 0 else at
        for line in self._lines:
            line.setPos(x)
            line.setVisible(True)
        self._marker.setData([at], [ret])
        text = self.history.describe(i)
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

    def x_view(self) -> np.ndarray:
        """The x of every point drawn: its episode number (a bucket's middle), or the environment
        steps taken by its end."""
        drawn = self.history.drawn()
        return drawn.x_steps if self.x_axis == "steps" else drawn.x_episode

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

    def start(self, population: bool, agents: int = 1, y_margin: float | None = None) -> None:
        """Clear everything for a new run (of ``agents`` agents); ``y_margin``: the least margin
        above and below its returns (default :data:`Y_MARGIN`; a toy-text task's returns may span
        less than one)."""
        self.agents = max(agents, 1)
        self.y_margin = Y_MARGIN if y_margin is None else y_margin
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
        self.history.start(population)
        self.population = population
        self._band.setPen(BAND_PEN if population else RANGE_PEN)
        self._label_x()
        self._follow, self._shown = True, None

    @property
    def empty(self) -> bool:
        """Nothing to draw (or to export)."""
        return len(self.history) == 0

    @property
    def points(self) -> int:
        """Points drawn: episodes, and buckets of older ones (bounded however long the run)."""
        return len(self.history)

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

    def add(self, relay: Relay) -> None:
        """Take a relay of episodes from the training process; drawn at the next tick."""
        if len(relay) or relay.through > self.history.through:
            self.history.add(relay)
            self._dirty = True

    def _show_best_in_legend(self, shown: bool) -> None:
        legend = self.reward.getPlotItem().legend
        self._range_in_legend = False
        if legend is not None:
            legend.removeItem(self._best)
            legend.removeItem(self._band_sample)
            if shown:
                self._band_sample.setFillBrush(BAND_SAMPLE_BRUSH)
                legend.addItem(self._band_sample, f"95% CI of mean, K={self.agents}")
                legend.addItem(self._best, "best agent")

    def _show_range_in_legend(self) -> None:
        """A one-agent run's band appears once older episodes are merged: say what it is."""
        legend = self.reward.getPlotItem().legend
        if legend is not None and not self._range_in_legend:
            self._range_in_legend = True
            self._band_sample.setFillBrush(RANGE_SAMPLE_BRUSH)
            legend.addItem(self._band_sample, "min\u2013max of merged episodes")

    def _on_view_changed_manually(self, *_: object) -> None:
        self._follow = False

    def _follow_data(self) -> None:
        """Grow the visible range in steps so that it covers all the data."""
        if not self._follow or self.empty:
            return
        drawn = self.history.drawn()
        last_x = float(self.x_view()[-1])
        low, high = float(drawn.lo(RETURN).min()), float(drawn.hi(RETURN).max())
        if self.population:
            low, high = min(low, float(drawn.lo(BAND_LOW).min())), max(high, float(drawn.hi(BAND_HIGH).max()))
        shown = self._shown
        if shown is not None and last_x <= shown[1] and shown[2] <= low and high <= shown[3]:
            return
        margin = max((high - low) * 0.25, self.y_margin)
        x_high = max(1000.0, last_x * 2 if shown is None or last_x > shown[1] else shown[1])
        self._shown = (0.0, x_high, low - margin, high + margin)
        self.reward.getPlotItem().getViewBox().setRange(xRange=self._x_range(x_high), yRange=self._shown[2:],
                                                        padding=0)
        # pyqtgraph applies a new range while preparing the next paint, and the curves' bounds that
        # change with it ask for a second full paint. Applying it now makes one paint do (measured:
        # a range change with 5 overlaid runs of 100,000 episodes 27 -> 20 ms).
        for plot in (self.reward, self.epsilon):
            plot.scene().prepareForPaint()

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        self.history.set_smoothing(weight)
        self._dirty = True
        self.refresh()

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if not self._dirty:
            return
        self._dirty = False
        self.refreshes += 1
        # The view moves first, the curves are then computed once for it (see _Curve).
        for curve in self._curves:
            curve.replacing = True
        try:
            self._follow_data()
            self._set_curves()
        finally:
            for curve in self._curves:
                curve.replacing = False

    def _set_curves(self) -> None:
        drawn = self.history.drawn()
        x = self.x_view()
        self._raw.setData(x, drawn.mean(RETURN), skipFiniteCheck=True)
        self._ema.setData(x, drawn.smoothed, skipFiniteCheck=True)
        self._rolling.setData(x, drawn.mean(MEAN_100), skipFiniteCheck=True)
        self._eps.setData(x, drawn.mean(EPSILON), skipFiniteCheck=True)
        if self.population:
            self._set_band(drawn.records, BAND_LOW, BAND_HIGH)
            self._best.setData(x, drawn.mean(BEST), skipFiniteCheck=True)
        else:
            # One agent: the band spans the merged episodes' extremes (no spike is lost); the
            # records kept as they came have none, so it stops where they begin.
            merged = np.flatnonzero(drawn.records.count > 1)
            end = int(merged[-1]) + 1 if len(merged) else 0
            self._set_band(drawn.records.slice(0, end), RETURN, RETURN)
            self._best.setData([], [])
            if end:
                self._show_range_in_legend()

    def _set_band(self, records: Records, low: int, high: int) -> None:
        """The band from the lows of series ``low`` to the highs of ``high``, merged to at most
        :data:`BAND_POINTS` strokes (exactly: a coarser band is wider, never narrower)."""
        merged = records.at_most(BAND_POINTS)
        episodes, steps = centres(merged)
        x = steps if self.x_axis == "steps" else episodes
        self._band.setData(np.repeat(x, 2), np.column_stack([merged.lo[low], merged.hi[high]]).ravel(),
                           skipFiniteCheck=True)

    def band(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The band drawn: each stroke's x, low and high."""
        x, y = self._band.getData()
        if x is None or y is None or not len(x):
            return np.zeros(0), np.zeros(0), np.zeros(0)
        return x[::2], y[::2], y[1::2]

    def export_png(self, path: Path) -> None:
        """The reward plot as a PNG (pyqtgraph's exporter)."""
        pyqtgraph.exporters.ImageExporter(self.reward.getPlotItem()).export(str(path))

    def export_csv(self, path: Path) -> None:
        """The history as drawn, one row per point (:data:`app.plot_history.CSV_COLUMNS`)."""
        self.history.write_csv(path)


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
