"""Per-version statistics of the contradiction matrix: exact, scoped and honest.

Every trace an eval version is judged on falls in exactly one cell of a 4×4 table
``rating × state`` (rating: positive / negative / neutral / unlabelled *in the eval's own set*;
state: pass / fail / error / invalid / not_run; invalid: no error, but a ``result`` other than 0/1 —
2, -1, NULL, 'true', a BLOB — judged neither pass nor fail and left out of n with that reason). All
metrics derive from that table, so a relabel is a move of
one unit between two cells and equals a full recompute by construction.

The table comes from three cheap aggregates instead of one big join:
  1. labelled cells: ``eval_comparison`` rows whose ``eval_set_id`` is the eval's own set. SQLite
     turns the view's LEFT JOIN into an inner join and drives it from the feedback index, so it
     touches only the set's labels (not every execution). UNIQUE(eval_set_id, trace_id) guarantees
     one row per execution.
  2. per-eval execution totals (count / errors / passes) from ``eval_executions``; unlabelled =
     totals − labelled, so an execution whose trace is labelled only in other sets (which the view
     repeats once per foreign label) is still counted exactly once.
  3. label totals of the set from the covering ``feedback(eval_set_id, rating)`` index;
     not run = labels − labelled executions.
When the view is missing or customised (data/matrix/comparison_view.py), step 1 runs the same join on the
base tables.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from iofold_tui.data.labels.counts import label_counts
from iofold_tui.data.matrix.comparison_view import SOURCE_MISSING, SOURCE_VIEW, comparison_source
from iofold_tui.data.values import to_count, to_float, to_int, to_text

RATINGS = ("positive", "negative", "neutral", "unlabelled")
STATES = ("pass", "fail", "error", "invalid", "not_run")
EXECUTED = STATES[:4]  # the states of an execution that exists
METRICS = ("accuracy", "precision", "recall", "f1", "specificity", "cohens_kappa", "contradiction_rate")


@dataclass(frozen=True)
class Metric:
    """A metric value, or ``None`` with the reason it is undefined (never a fake 0)."""

    value: float | None
    reason: str | None = None

    def text(self, digits: int = 3) -> str:
        return (self.reason or "n/a") if self.value is None else f"{self.value:.{digits}f}"


def _ratio(num: int, den: int, reason: str) -> Metric:
    return Metric(num / den) if den else Metric(None, reason)


def _empty_cells() -> dict[str, dict[str, int]]:
    return {r: dict.fromkeys(STATES, 0) for r in RATINGS}


@dataclass
class MatrixStats:
    eval_id: str
    eval_set_id: str
    name: str
    version: int
    status: str
    source: str
    cells: dict[str, dict[str, int]] = field(default_factory=_empty_cells)
    stored_accuracy: float | None = None
    stored_contradictions: int | None = None
    stored_executions: int | None = None
    view_contradictions: int | None = None  # what the unscoped view says (None = not computed)
    view_rows: int | None = None

    # --- the confusion matrix (positive class = human positive, predicted positive = pass) ---
    @property
    def tp(self) -> int:
        return self.cells["positive"]["pass"]

    @property
    def fn(self) -> int:
        return self.cells["positive"]["fail"]

    @property
    def fp(self) -> int:
        return self.cells["negative"]["pass"]

    @property
    def tn(self) -> int:
        return self.cells["negative"]["fail"]

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def contradictions(self) -> int:
        return self.fp + self.fn

    @property
    def errors(self) -> int:
        return sum(self.cells[r]["error"] for r in RATINGS)

    @property
    def invalid(self) -> int:
        """Executions whose ``result`` is not 0/1 (and no error): neither pass nor fail."""
        return sum(self.cells[r]["invalid"] for r in RATINGS)

    @property
    def neutral(self) -> int:
        return self.cells["neutral"]["pass"] + self.cells["neutral"]["fail"]

    @property
    def unlabelled(self) -> int:
        return self.cells["unlabelled"]["pass"] + self.cells["unlabelled"]["fail"]

    @property
    def not_run(self) -> int:
        return sum(self.cells[r]["not_run"] for r in RATINGS[:3])

    @property
    def execution_count(self) -> int:
        return sum(self.cells[r][s] for r in RATINGS for s in EXECUTED)

    @property
    def excluded(self) -> dict[str, int]:
        return {"neutral": self.neutral, "errors": self.errors, "invalid_result": self.invalid,
                "unlabelled": self.unlabelled, "not_run": self.not_run}

    # --- metrics ---
    @property
    def accuracy(self) -> Metric:
        return _ratio(self.tp + self.tn, self.n, "n/a (n = 0)")

    @property
    def precision(self) -> Metric:
        return _ratio(self.tp, self.tp + self.fp, "n/a (no predicted positives)")

    @property
    def recall(self) -> Metric:
        return _ratio(self.tp, self.tp + self.fn, "n/a (no human positives)")

    @property
    def specificity(self) -> Metric:
        return _ratio(self.tn, self.tn + self.fp, "n/a (no human negatives)")

    @property
    def f1(self) -> Metric:
        precision, recall = self.precision, self.recall
        if precision.value is None:
            return precision
        if recall.value is None:
            return recall
        # 2TP / (2TP + FP + FN): also well defined (0) when precision = recall = 0.
        return Metric(2 * self.tp / (2 * self.tp + self.fp + self.fn))

    @property
    def cohens_kappa(self) -> Metric:
        n = self.n
        if n == 0:
            return Metric(None, "n/a (n = 0)")
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        observed = Fraction(tp + tn, n)
        chance = Fraction((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), n * n)
        if chance == 1:
            return Metric(None, "n/a (chance agreement is 1: one class only)")
        return Metric(float((observed - chance) / (1 - chance)))

    @property
    def contradiction_rate(self) -> Metric:
        return _ratio(self.contradictions, self.n, "n/a (n = 0)")

    def metrics(self) -> dict[str, Metric]:
        return {name: getattr(self, name) for name in METRICS}

    # --- stored counters vs recomputed ---
    @property
    def differs(self) -> dict[str, bool]:
        """Which stored ``evals`` counters disagree with the recomputed values (absent = no flag)."""
        accuracy = self.accuracy.value
        stored = self.stored_accuracy
        return {
            "accuracy": stored is not None and (accuracy is None or abs(stored - accuracy) > 1e-9),
            "contradiction_count": self.stored_contradictions is not None
            and self.stored_contradictions != self.contradictions,
            "execution_count": self.stored_executions is not None
            and self.stored_executions != self.execution_count,
        }

    # --- incremental update ---
    def relabel(self, old_rating: str | None, new_rating: str | None, state: str) -> None:
        """Apply one trace's label change in this eval's set (``None`` = no label) without re-querying.

        ``state`` is the trace's cell for this version: pass / fail / error / invalid / not_run. An unlabelled
        trace that was never run is outside the table, so it enters (or leaves) only as not_run.
        """
        old, new = old_rating or "unlabelled", new_rating or "unlabelled"
        if old not in RATINGS or new not in RATINGS or state not in STATES:
            raise ValueError(f"bad relabel {old_rating!r} -> {new_rating!r} in state {state!r}")
        if old == new:
            return
        if old != "unlabelled" or state != "not_run":
            if self.cells[old][state] <= 0:
                raise ValueError(f"no {old}/{state} trace to relabel in {self.eval_id}")
            self.cells[old][state] -= 1
        if new != "unlabelled" or state != "not_run":
            self.cells[new][state] += 1

    # --- JSON ---
    def to_dict(self) -> dict[str, Any]:
        """Machine-readable: keys named after the metrics, undefined metrics null with a reason."""
        metrics = self.metrics()
        return {
            "eval_id": self.eval_id,
            "eval_set_id": self.eval_set_id,
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "source": self.source,
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            **{name: m.value for name, m in metrics.items()},
            "undefined": {name: m.reason for name, m in metrics.items() if m.value is None},
            "contradictions": self.contradictions,
            "execution_count": self.execution_count,
            "excluded": self.excluded,
            "stored": {
                "accuracy": self.stored_accuracy,
                "contradiction_count": self.stored_contradictions,
                "execution_count": self.stored_executions,
                "differs": self.differs,
            },
            "view_unscoped": {"contradictions": self.view_contradictions, "rows": self.view_rows},
            "cells": {r: dict(s) for r, s in self.cells.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatrixStats:
        cells = _empty_cells()
        for rating, states in data["cells"].items():
            for state, count in states.items():
                cells[rating][state] = int(count)
        stored, view = data["stored"], data["view_unscoped"]
        return cls(
            eval_id=data["eval_id"], eval_set_id=data["eval_set_id"], name=data["name"],
            version=int(data["version"]), status=data["status"], source=data["source"], cells=cells,
            stored_accuracy=stored["accuracy"], stored_contradictions=stored["contradiction_count"],
            stored_executions=stored["execution_count"], view_contradictions=view["contradictions"],
            view_rows=view["rows"],
        )


@dataclass(frozen=True)
class EvalCounts:
    """Recomputed counters for the evals pane (scoped to the eval's own set, errors apart)."""

    execution_count: int
    contradictions: int
    accuracy: float | None
    errors: int


# ---------------------------------------------------------------- the aggregates

# Step 1: SQLite drives this from the feedback(eval_set_id) index (see the module docstring).
_LABELLED_VIEW = """
SELECT c.eval_id, c.human_rating, c.execution_error IS NOT NULL, c.predicted_result = 1,
       coalesce(c.predicted_result IN (0, 1), 0) = 0, COUNT(*)
FROM evals v JOIN eval_comparison c ON c.eval_id = v.id AND c.eval_set_id = v.eval_set_id
WHERE v.id IN (SELECT value FROM json_each(?))
GROUP BY 1, 2, 3, 4, 5"""
_LABELLED_TABLES = """
SELECT e.eval_id, f.rating, e.error IS NOT NULL, e.result = 1, coalesce(e.result IN (0, 1), 0) = 0, COUNT(*)
FROM evals v JOIN feedback f ON f.eval_set_id = v.eval_set_id
JOIN eval_executions e ON e.eval_id = v.id AND e.trace_id = f.trace_id
WHERE v.id IN (SELECT value FROM json_each(?))
GROUP BY 1, 2, 3, 4, 5"""
_TOTALS = """
SELECT eval_id, COUNT(*), SUM(error IS NOT NULL), SUM(error IS NULL AND result = 1),
       SUM(error IS NULL AND coalesce(result IN (0, 1), 0) = 0)
FROM eval_executions WHERE eval_id IN (SELECT value FROM json_each(?)) GROUP BY eval_id"""
_EVALS = """
SELECT id, eval_set_id, name, version, status, accuracy, contradiction_count, execution_count
FROM evals WHERE {where} ORDER BY version, id"""
_VIEW_UNSCOPED = """
SELECT eval_id, COUNT(*), SUM(is_contradiction = 1) FROM eval_comparison
WHERE eval_id IN (SELECT value FROM json_each(?)) GROUP BY eval_id"""


def _json_list(items: Iterable[str]) -> str:
    return json.dumps(list(items), default=to_text)  # a BLOB id matches nothing instead of failing


def _load_evals(conn: sqlite3.Connection, eval_set_id: str | None, eval_ids: Sequence[str] | None,
                source: str) -> list[MatrixStats]:
    params: list[str | None]
    if eval_ids is not None:
        where, params = "id IN (SELECT value FROM json_each(?))", [_json_list(eval_ids)]
        if eval_set_id is not None:
            where += " AND eval_set_id = ?"
            params.append(eval_set_id)
    else:
        where, params = "eval_set_id = ?", [eval_set_id]
    out = []
    for r in conn.execute(_EVALS.format(where=where), params):
        out.append(MatrixStats(
            eval_id=to_text(r[0]), eval_set_id=to_text(r[1]), name=to_text(r[2]), version=to_count(r[3]),
            status=str(r[4] or ""), source=source,
            stored_accuracy=to_float(r[5]),
            stored_contradictions=to_int(r[6]),
            stored_executions=to_int(r[7]),
        ))
    return out


def _fill(conn: sqlite3.Connection, stats: list[MatrixStats], source: str) -> None:
    by_id = {s.eval_id: s for s in stats}
    ids = _json_list(by_id)
    labelled_sql = _LABELLED_VIEW if source == SOURCE_VIEW else _LABELLED_TABLES
    for eval_id, rating, errored, passed, invalid, count in conn.execute(labelled_sql, (ids,)):
        if rating not in RATINGS[:3]:
            continue  # a rating outside the CHECK constraint: not a label we can judge against
        state = "error" if errored else "invalid" if invalid else "pass" if passed else "fail"
        by_id[eval_id].cells[rating][state] += int(count)
    for eval_id, total, errors, passes, invalids in conn.execute(_TOTALS, (ids,)):
        s = by_id[eval_id]
        labelled = {st: sum(s.cells[r][st] for r in RATINGS[:3]) for st in EXECUTED}
        errors, passes, invalids = to_count(errors), to_count(passes), to_count(invalids)
        s.cells["unlabelled"]["error"] = errors - labelled["error"]
        s.cells["unlabelled"]["invalid"] = invalids - labelled["invalid"]
        s.cells["unlabelled"]["pass"] = passes - labelled["pass"]
        s.cells["unlabelled"]["fail"] = to_count(total) - errors - passes - invalids - labelled["fail"]
    labels: dict[str, dict[str, int]] = {}
    for s in stats:
        if s.eval_set_id not in labels:
            labels[s.eval_set_id] = label_counts(conn, s.eval_set_id)
        for rating in RATINGS[:3]:
            executed = sum(s.cells[rating][st] for st in EXECUTED)
            s.cells[rating]["not_run"] = int(labels[s.eval_set_id].get(rating, 0)) - executed


def compute_stats(conn: sqlite3.Connection, eval_set_id: str, eval_ids: Sequence[str] | None = None, *,
                  with_view_counts: bool = False) -> list[MatrixStats]:
    """Statistics for the set's eval versions (all, or ``eval_ids``), oldest version first.

    ``with_view_counts`` also runs the unscoped view aggregate (as expensive as a full join): the
    inflated numbers the UI shows as an explanation, never as truth.
    """
    source = comparison_source(conn)
    stats = _load_evals(conn, eval_set_id, eval_ids, source)
    if stats:
        _fill(conn, stats, source)
        if with_view_counts:
            add_view_counts(conn, stats)
    return stats


def add_view_counts(conn: sqlite3.Connection, stats: list[MatrixStats]) -> None:
    """What ``eval_comparison`` would say unscoped (rows and contradictions per eval), if it exists."""
    if not stats or comparison_source(conn) == SOURCE_MISSING:
        return
    by_id = {s.eval_id: s for s in stats}
    for s in stats:
        s.view_rows, s.view_contradictions = 0, 0
    try:
        rows = conn.execute(_VIEW_UNSCOPED, (_json_list(by_id),)).fetchall()
    except sqlite3.DatabaseError:  # a customised view without these columns
        for s in stats:
            s.view_rows = s.view_contradictions = None
        return
    for eval_id, count, contra in rows:
        if eval_id in by_id:
            by_id[eval_id].view_rows, by_id[eval_id].view_contradictions = int(count), int(contra or 0)


def recomputed_counts(conn: sqlite3.Connection, eval_ids: Sequence[str]) -> dict[str, EvalCounts]:
    """Scoped counters for any evals (of any sets), keyed by eval id; unknown ids are left out."""
    source = comparison_source(conn)
    stats = _load_evals(conn, None, list(eval_ids), source)
    if stats:
        _fill(conn, stats, source)
    return {
        s.eval_id: EvalCounts(execution_count=s.execution_count, contradictions=s.contradictions,
                              accuracy=s.accuracy.value, errors=s.errors)
        for s in stats
    }
