"""Compare 2-4 marketplace policies: metrics side by side, differing decisions, paired evaluation.

The comparisons themselves are the core's (:mod:`policyledger_core.verify.comparison`),
worked out by :func:`compare` in a background task; this dialog shows them. Policies of one
toy-text task compare the same way: their figures (exact ones beside the replayed mean), the
observations their tables act on where they differ (named by the task), and their returns paired
on the same Gymnasium episodes.
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

from app.policy_detail import ACTION_COLOURS, ACTION_TEXT, NotShown, observation_name
from app.task_map import TASK_ACTION_COLOURS, TASK_ACTION_TEXT, TaskDetail, action_text, task_detail
from app.widgets import named
from policyledger_core.policy import AnyPolicy, TaskPolicy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.verify.comparison import (
    PairedEvaluation,
    acting_observations,
    differing_among,
    differing_elsewhere,
    paired_evaluation,
)
from policyledger_core.verify.suite import VerificationReport
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.marketplace import RankedPolicy
from policyledger_core.workspace.store import PolicyStore

LETTERS = "ABCD"


@dataclass(frozen=True)
class Comparison:
    """Everything the dialog shows, worked out away from the GUI thread."""

    rows: tuple[RankedPolicy, ...]
    policies: tuple[AnyPolicy, ...]
    reports: tuple[VerificationReport, ...]
    differing: list[int]
    paired: PairedEvaluation
    acting: int = 0
    """How many observations the tables act on (the differing ones are among them)."""
    elsewhere: tuple[int, ...] = ()
    """Observations no episode acts on where the tables differ all the same (toy-text tasks)."""
    tasks: tuple[TaskDetail, ...] = ()
    """Each toy-text task policy's exact figures (empty for cyber-defense policies)."""


def compare(rows: Sequence[RankedPolicy], store: PolicyStore) -> Comparison:
    """Load the policies of ``rows``, replay each on the evaluation suite and compare them (slow).

    Cyber-defense policies compare whatever their configurations (those of another one are not
    paired); toy-text task policies only with policies of the same task.
    """
    policies = tuple(store.get(row.policy_hash) for row in rows)
    kinds = {p.env_id if isinstance(p, TaskPolicy) else "" for p in policies}
    if len(kinds) > 1:
        names = sorted(row.preset or "custom" for row in rows)
        raise NotShown(f"policies of different tasks ({', '.join(dict.fromkeys(names))}) have different "
                       "observations: compare policies of one task")
    tasks = tuple(task_detail(p) for p in policies if isinstance(p, TaskPolicy))
    return Comparison(tuple(rows), policies, tuple(verify_policy(policy) for policy in policies),
                      differing_among(policies), paired_evaluation(policies),
                      len(acting_observations(policies[0])) if policies else 0,
                      tuple(differing_elsewhere(policies)), tasks)


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


def _fill_column(table: QTableWidget, col: int, values: list[str], tips: dict[int, str]) -> None:
    """One policy's column of a metrics table: a value per row, with its tooltip where there is one."""
    for r, text in enumerate(values):
        table.setItem(r, col, _item(text, tips.get(r, "")))


def _fit_rows(table: QTableWidget) -> None:
    """As tall as its rows: a metrics table never scrolls."""
    table.resizeRowsToContents()
    table.setFixedHeight(table.verticalHeader().length() + table.horizontalHeader().sizeHint().height()
                         + 2 * table.frameWidth())


class CompareDialog(QDialog):
    """Side-by-side comparison of the selected policies."""

    def __init__(self, comparison: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        rows = comparison.rows
        self.setWindowTitle(f"Compare {len(rows)} policies")
        self.names = [f"{LETTERS[i]}: {r.policy_hash[:10]}" for i, r in enumerate(rows)]
        self.tasks = comparison.tasks
        self.metrics = (self._task_metrics(rows, comparison.reports, self.tasks) if self.tasks
                        else self._metrics(rows, comparison.reports))
        self.differing = comparison.differing
        self.differences = self._differences(comparison.policies)
        self.elsewhere_note = named(QLabel(self._elsewhere(comparison)), "compareElsewhereNote")
        self.elsewhere_note.setWordWrap(True)
        self.elsewhere_note.setVisible(bool(self.elsewhere_note.text()))
        self.paired = comparison.paired
        self.paired_table, self.paired_note = self._paired(self.paired)
        layout = QVBoxLayout(self)
        where = "observations the tables act on" if self.tasks else "observations"
        for title, widgets in (
            ("Metrics", [self.metrics]),
            (f"Decisions that differ ({len(self.differing)} of {comparison.acting} {where})",
             [self.differences, self.elsewhere_note]),
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
            _fill_column(table, col, values, tips)
        _fit_rows(table)
        return table

    def _task_metrics(self, rows: Sequence[RankedPolicy], reports: Sequence[VerificationReport],
                      tasks: Sequence[TaskDetail]) -> QTableWidget:
        facts = tasks[0].facts
        fmt = facts.fmt
        labels = ["Rank", "Task", "Verified reward", "Exact value", "Of the optimum", "Optimum", "Best table",
                  "Publisher", "Origin", "Training"]
        table = _table("compareMetrics", len(labels), self.names)
        table.setVerticalHeaderLabels(labels)
        for col, (row, report, task) in enumerate(zip(rows, reports, tasks, strict=True)):
            values = [str(row.rank), row.preset or "custom",
                      f"{fmt(row.mean)} \u00b1 {fmt(row.ci95)} ({report.episodes} episodes)",
                      fmt(task.exact), f"{row.fraction_of_optimum:.2%}", fmt(task.facts.optimum),
                      fmt(task.facts.best_stationary), "you" if row.own else row.publisher_id, row.origin,
                      row.training.summary() if row.training else "none recorded"]
            tips = {0: row.policy_hash, 3: "exact expected return (policy evaluation on the task's model)",
                    6: task.facts.best_note(),
                    len(values) - 1: row.training.settings() if row.training else ""}
            _fill_column(table, col, values, tips)
        _fit_rows(table)
        return table

    def _differences(self, policies: Sequence[AnyPolicy]) -> QTableWidget:
        table = _table("compareDifferences", len(self.differing), ["Observation", *self.names])
        facts = self.tasks[0].facts if self.tasks else None
        for r, obs in enumerate(self.differing):
            name = observation_name(obs) if facts is None else facts.labels[obs]
            table.setItem(r, 0, _item(name, f"observation {obs}"))
            for c, policy in enumerate(policies):
                action = policy.actions[obs]
                if facts is None:
                    item = _item(dyn.ACTION_NAMES[action])
                    item.setBackground(QColor(ACTION_COLOURS[action]))
                    item.setForeground(QColor(ACTION_TEXT[action]))
                else:
                    item = _item(action_text(facts, action))
                    item.setBackground(QColor(TASK_ACTION_COLOURS[action]))
                    item.setForeground(QColor(TASK_ACTION_TEXT[action]))
                table.setItem(r, c + 1, item)
        return table

    @staticmethod
    def _elsewhere(comparison: Comparison) -> str:
        if not comparison.elsewhere:
            return ""
        n = len(comparison.elsewhere)
        return (f"The tables also differ on {n} observation{'s' if n > 1 else ''} no episode acts on "
                "(where an episode has already ended, or that cannot be reached): that makes their hashes "
                "differ, never what they do.")

    def _paired(self, paired: PairedEvaluation) -> tuple[QTableWidget, QLabel]:
        d = self.tasks[0].facts.decimals if self.tasks else 2  # FrozenLake's returns: chances of the goal
        means = ", ".join(f"{LETTERS[i]} {m:.{d}f}" for i, m in enumerate(paired.means))
        table = _table("comparePaired", len(paired.pairs), ["Pair", "Mean difference", "95% CI", "Reading"])
        for r, pair in enumerate(paired.pairs):
            a, b, result = LETTERS[pair.first], LETTERS[pair.second], pair.result
            table.setItem(r, 0, _item(f"{a} - {b}"))
            if result is None:
                cells = ["-", "-", "different configurations: not paired"]
            else:
                better = {"a": f"{a} is better", "b": f"{b} is better", None: "no difference shown"}
                ci = result.interval
                cells = [f"{result.mean_diff:+.{d}f}", f"[{ci.low:+.{d}f}, {ci.high:+.{d}f}]",
                         better[result.better]]
            for c, text in enumerate(cells, start=1):
                table.setItem(r, c, _item(text))
        note = f"Mean return on the suite: {means}. Differences are per episode, on identical episodes."
        if self.tasks:
            note += (" Each episode is played in Gymnasium's environment, reset with the same seed for "
                     "every policy.")
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

