"""Compare 2-4 marketplace policies: metrics side by side, differing decisions, paired evaluation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.policy_detail import ACTION_COLOURS, ACTION_TEXT, observation_name
from policyledger_core import dynamics as dyn
from policyledger_core.marketplace import Row
from policyledger_core.policy import TERMINAL_OBSERVATIONS, Policy
from policyledger_core.replay import observation_decider, replay
from policyledger_core.verification import DEFAULT_EPISODES, Z95, VerificationReport, suite_uniforms

LETTERS = "ABCD"


# -- Qt-free computations (candidates for the core) -------------------------------------------------

def differing_observations(policies: Sequence[Policy]) -> list[int]:
    """Non-terminal observations on which the policies do not all take the same action."""
    return [obs for obs in range(dyn.N_OBS) if obs not in TERMINAL_OBSERVATIONS
            and len({p.actions[obs] for p in policies}) > 1]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-episode return differences (first - second) and its 95% CI half-width."""

    first: int
    second: int
    mean: float | None
    """None when the two policies have different configurations (no shared episodes)."""
    ci95: float | None


@dataclass(frozen=True)
class PairedEvaluation:
    episodes: int
    means: list[float]
    differences: list[PairedDifference]


def paired_evaluation(policies: Sequence[Policy], episodes: int = DEFAULT_EPISODES) -> PairedEvaluation:
    """Replay every policy on its configuration's evaluation suite; pair those sharing a configuration."""
    tenths = [replay(p.config, suite_uniforms(p.config, episodes),
                     observation_decider(p.action_array())).returns_tenths for p in policies]
    means = [int(t.sum()) / (10 * episodes) for t in tenths]
    diffs = []
    for i in range(len(policies)):
        for j in range(i + 1, len(policies)):
            if policies[i].config != policies[j].config:
                diffs.append(PairedDifference(i, j, None, None))
                continue
            d = (tenths[i] - tenths[j]) / 10.0
            std = float(d.std(ddof=1)) if episodes > 1 else 0.0
            diffs.append(PairedDifference(i, j, int((tenths[i] - tenths[j]).sum()) / (10 * episodes),
                                          Z95 * std / math.sqrt(episodes)))
    return PairedEvaluation(episodes, means, diffs)


# -- the dialog -----------------------------------------------------------------------------------

def _table(name: str, rows: int, headers: list[str]) -> QTableWidget:
    table = QTableWidget(rows, len(headers), objectName=name)
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if tooltip:
        item.setToolTip(tooltip)
    return item


class CompareDialog(QDialog):
    """Side-by-side comparison of the selected policies."""

    def __init__(self, rows: Sequence[Row], policies: Sequence[Policy], reports: Sequence[VerificationReport],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle(f"Compare {len(rows)} policies")
        self.names = [f"{LETTERS[i]}: {r.policy_hash[:10]}" for i, r in enumerate(rows)]
        self.metrics = self._metrics(rows, reports)
        self.differing = differing_observations(policies)
        self.differences = self._differences(policies)
        self.paired = paired_evaluation(policies)
        self.paired_table, self.paired_note = self._paired(self.paired)
        layout = QVBoxLayout(self)
        for title, widgets in (
            ("Metrics", [self.metrics]),
            (f"Decisions that differ ({len(self.differing)} of {dyn.N_OBS - len(TERMINAL_OBSERVATIONS)} "
             "observations)", [self.differences]),
            (f"Paired evaluation on the same {self.paired.episodes} evaluation episodes",
             [self.paired_table, self.paired_note]),
        ):
            box = QGroupBox(title)
            inner = QVBoxLayout(box)
            for widget in widgets:
                inner.addWidget(widget)
            layout.addWidget(box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(900, 760)

    def _metrics(self, rows: Sequence[Row], reports: Sequence[VerificationReport]) -> QTableWidget:
        labels = ["Rank", "Configuration", "Verified reward", "Of the optimum", "Expected return",
                  "Action entropy (bits)", "Publisher", "Origin"]
        table = _table("compareMetrics", len(labels), self.names)
        table.setVerticalHeaderLabels(labels)
        for col, (row, report) in enumerate(zip(rows, reports, strict=True)):
            values = [str(row.rank), row.preset or "custom", f"{row.mean:.2f} +/- {row.ci95:.2f}",
                      f"{row.fraction_of_optimum:.1%}", f"{report.expected:.2f}",
                      f"{report.action_entropy:.2f}", "you" if row.own else row.publisher_id, row.origin]
            for r, text in enumerate(values):
                table.setItem(r, col, _item(text, row.policy_hash if r == 0 else ""))
        table.resizeRowsToContents()
        table.setFixedHeight(table.verticalHeader().length() + table.horizontalHeader().sizeHint().height()
                             + 2 * table.frameWidth())
        return table

    def _differences(self, policies: Sequence[Policy]) -> QTableWidget:
        table = _table("compareDifferences", len(self.differing), ["Observation", *self.names])
        for r, obs in enumerate(self.differing):
            table.setItem(r, 0, _item(observation_name(obs), f"observation {obs}"))
            for c, policy in enumerate(policies):
                action = policy.actions[obs]
                item = _item(dyn.ACTION_NAMES[action])
                item.setBackground(QColor(ACTION_COLOURS[action]))
                item.setForeground(QColor(ACTION_TEXT[action]))
                table.setItem(r, c + 1, item)
        return table

    def _paired(self, paired: PairedEvaluation) -> tuple[QTableWidget, QLabel]:
        means = ", ".join(f"{LETTERS[i]} {m:.2f}" for i, m in enumerate(paired.means))
        table = _table("comparePaired", len(paired.differences),
                       ["Pair", "Mean difference", "95% CI", "Reading"])
        unpaired = 0
        for r, d in enumerate(paired.differences):
            table.setItem(r, 0, _item(f"{LETTERS[d.first]} - {LETTERS[d.second]}"))
            if d.mean is None or d.ci95 is None:
                unpaired += 1
                table.setItem(r, 1, _item("-"))
                table.setItem(r, 2, _item("-"))
                table.setItem(r, 3, _item("different configurations: not paired"))
                continue
            low, high = d.mean - d.ci95, d.mean + d.ci95
            reading = ("no difference shown" if low <= 0 <= high
                       else f"{LETTERS[d.first] if low > 0 else LETTERS[d.second]} is better")
            table.setItem(r, 1, _item(f"{d.mean:+.2f}"))
            table.setItem(r, 2, _item(f"[{low:+.2f}, {high:+.2f}]"))
            table.setItem(r, 3, _item(reading))
        note = (f"Mean return on the suite: {means}. Differences are per episode, on identical episodes.")
        if unpaired:
            note += (" Only policies of the same configuration can be paired: the others play "
                     "different episodes.")
        label = QLabel(note, objectName="comparePairedNote")
        label.setWordWrap(True)
        return table, label

    def differing_rows(self) -> list[list[str]]:
        """The differing-decisions table as text (for tests and copying)."""
        t = self.differences
        return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]

