"""Compare 2-4 marketplace policies: metrics side by side, differing decisions, paired evaluation.

The comparisons themselves are the core's (:mod:`policyledger_core.verify.comparison`),
worked out by :func:`compare` in a background task; this dialog shows them.
"""

from __future__ import annotations

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

from app.policy_detail import ACTION_COLOURS, ACTION_TEXT, cyber_policy, observation_name
from app.widgets import named
from policyledger_core.policy import Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.verify.comparison import (
    NON_TERMINAL_OBSERVATIONS,
    PairedEvaluation,
    differing_among,
    paired_evaluation,
)
from policyledger_core.verify.suite import VerificationReport, verify
from policyledger_core.workspace.marketplace import RankedPolicy
from policyledger_core.workspace.store import PolicyStore

LETTERS = "ABCD"


@dataclass(frozen=True)
class Comparison:
    """Everything the dialog shows, worked out away from the GUI thread."""

    rows: tuple[RankedPolicy, ...]
    policies: tuple[Policy, ...]
    reports: tuple[VerificationReport, ...]
    differing: list[int]
    paired: PairedEvaluation


def compare(rows: Sequence[RankedPolicy], store: PolicyStore) -> Comparison:
    """Load the policies of ``rows``, replay each on the evaluation suite and compare them (slow)."""
    policies = tuple(cyber_policy(store.get(row.policy_hash)) for row in rows)
    return Comparison(tuple(rows), policies, tuple(verify(policy) for policy in policies),
                      differing_among(policies), paired_evaluation(policies))


def _table(name: str, rows: int, headers: list[str]) -> QTableWidget:
    table = named(QTableWidget(rows, len(headers)), name)
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

    def __init__(self, comparison: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        rows = comparison.rows
        self.setWindowTitle(f"Compare {len(rows)} policies")
        self.names = [f"{LETTERS[i]}: {r.policy_hash[:10]}" for i, r in enumerate(rows)]
        self.metrics = self._metrics(rows, comparison.reports)
        self.differing = comparison.differing
        self.differences = self._differences(comparison.policies)
        self.paired = comparison.paired
        self.paired_table, self.paired_note = self._paired(self.paired)
        layout = QVBoxLayout(self)
        for title, widgets in (
            ("Metrics", [self.metrics]),
            (f"Decisions that differ ({len(self.differing)} of {len(NON_TERMINAL_OBSERVATIONS)} "
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

    def _metrics(self, rows: Sequence[RankedPolicy], reports: Sequence[VerificationReport]) -> QTableWidget:
        labels = ["Rank", "Configuration", "Verified reward", "Of the optimum", "Expected return",
                  "Action entropy (bits)", "Publisher", "Origin", "Training"]
        table = _table("compareMetrics", len(labels), self.names)
        table.setVerticalHeaderLabels(labels)
        for col, (row, report) in enumerate(zip(rows, reports, strict=True)):
            values = [str(row.rank), row.preset or "custom", f"{row.mean:.2f} \u00b1 {row.ci95:.2f}",
                      f"{row.fraction_of_optimum:.1%}", f"{report.expected:.2f}",
                      f"{report.action_entropy:.2f}", "you" if row.own else row.publisher_id, row.origin,
                      row.training.summary() if row.training else "none recorded"]
            tips = {0: row.policy_hash, len(values) - 1: row.training.settings() if row.training else ""}
            for r, text in enumerate(values):
                table.setItem(r, col, _item(text, tips.get(r, "")))
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
        table = _table("comparePaired", len(paired.pairs), ["Pair", "Mean difference", "95% CI", "Reading"])
        for r, pair in enumerate(paired.pairs):
            a, b, result = LETTERS[pair.first], LETTERS[pair.second], pair.result
            table.setItem(r, 0, _item(f"{a} - {b}"))
            if result is None:
                cells = ["-", "-", "different configurations: not paired"]
            else:
                better = {"a": f"{a} is better", "b": f"{b} is better", None: "no difference shown"}
                ci = result.interval
                cells = [f"{result.mean_diff:+.2f}", f"[{ci.low:+.2f}, {ci.high:+.2f}]",
                         better[result.better]]
            for c, text in enumerate(cells, start=1):
                table.setItem(r, c, _item(text))
        note = f"Mean return on the suite: {means}. Differences are per episode, on identical episodes."
        if any(pair.result is None for pair in paired.pairs):
            note += (" Only policies of the same configuration can be paired: the others play "
                     "different episodes.")
        label = named(QLabel(note), "comparePairedNote")
        label.setWordWrap(True)
        return table, label

    def differing_rows(self) -> list[list[str]]:
        """The differing-decisions table as text (for tests and copying)."""
        t = self.differences
        return [[(item.text() if (item := t.item(r, c)) is not None else "") for c in range(t.columnCount())]
                for r in range(t.rowCount())]

