"""What an eval run produces, and how it is told to run: each result classified against the stored cell
(``CellChange``), the progress after each batch, the summary, and the run's options (headless core)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from iofold_tui.data.evalrun.history import COUNTERS, lookup
from iofold_tui.data.evalrun.results import ExecResult

Mode = Literal["write", "dry-run", "read-only"]


def _state(error: object, result: object) -> str:
    return "error" if error is not None else "pass" if result == 1 else "fail"


def _contradicts(rating: str | None, state: str) -> bool:
    return (rating == "positive" and state == "fail") or (rating == "negative" and state == "pass")


@dataclass(frozen=True, slots=True)
class CellChange:
    """One trace's cell for this eval, before and after the run (``rating``: its label in the eval's set)."""

    trace_id: str
    rating: str | None
    old: str  # pass / fail / error / not_run
    new: str  # pass / fail / error
    old_contradiction: bool
    new_contradiction: bool
    reason: str
    error: str | None

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def to_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "rating": self.rating, "old": self.old, "new": self.new,
                "old_contradiction": self.old_contradiction, "new_contradiction": self.new_contradiction,
                "reason": self.reason, "error": self.error}


def ratings_of(conn: sqlite3.Connection, eval_set_id: str, ids: list[str]) -> dict[str, str]:
    sql = ("SELECT trace_id, rating FROM feedback "
           "WHERE eval_set_id = ? AND trace_id IN (SELECT value FROM json_each(?))")
    return {str(r[0]): str(r[1]) for r in lookup(conn, sql, eval_set_id, ids)}


def classify(results: list[ExecResult], current: dict[str, tuple[Any, ...]],
              ratings: dict[str, str]) -> list[CellChange]:
    out = []
    for r in results:
        rating = ratings.get(r.trace_id)
        row = current.get(r.trace_id)
        old = "not_run" if row is None else _state(row[5], row[2])
        new = _state(r.error, 1 if r.result else 0)
        out.append(CellChange(r.trace_id, rating, old, new, old != "not_run" and _contradicts(rating, old),
                              _contradicts(rating, new), r.reason, r.error))
    return out


# ---------------------------------------------------------------- progress and summary

@dataclass
class RunProgress:
    total: int
    contradictions_before: int
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    changed: int = 0  # cells whose verdict changed
    contradictions: int = 0  # so far: before + the changes applied
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, changes: list[CellChange]) -> None:
        for c in changes:
            self.done += 1
            self.passed += c.new == "pass"
            self.failed += c.new == "fail"
            self.errors += c.new == "error"
            self.changed += c.changed
            self.contradictions += int(c.new_contradiction) - int(c.old_contradiction)
        self.elapsed_s = time.monotonic() - self.started

    def snapshot(self) -> RunProgress:
        return RunProgress(self.total, self.contradictions_before, self.done, self.passed, self.failed,
                           self.errors, self.changed, self.contradictions, self.started, self.elapsed_s)


@dataclass(frozen=True)
class RunBatch:
    """Results of one batch (applied when the run writes) and the progress after it."""

    results: list[ExecResult]
    changes: list[CellChange]
    progress: RunProgress
    written: bool


@dataclass
class RunSummary:
    eval_id: str
    eval_name: str
    version: int
    eval_set_id: str
    mode: Mode
    selection: str
    progress: RunProgress
    run_id: int | None = None
    cancelled: bool = False
    contradictions_after: int | None = None  # recomputed from the database (write mode)
    stored_before: tuple[Any, Any, Any] = (None, None, None)
    stored_after: tuple[Any, Any, Any] | None = None
    notice: str | None = None
    changes: list[CellChange] = field(default_factory=list)  # cells whose verdict changed (not in write mode)
    results: list[ExecResult] = field(default_factory=list)  # every result (not in write mode)
    truncated: bool = False  # more changes/results than were kept in memory

    @property
    def contradictions(self) -> int:
        if self.contradictions_after is None:
            return self.progress.contradictions
        return self.contradictions_after

    def to_dict(self) -> dict[str, Any]:
        p = self.progress
        stored_after = (
            None if self.stored_after is None else dict(zip(COUNTERS, self.stored_after, strict=True))
        )
        return {
            "run_id": self.run_id, "eval_id": self.eval_id, "name": self.eval_name, "version": self.version,
            "eval_set_id": self.eval_set_id, "mode": self.mode, "traces": self.selection,
            "total": p.total, "done": p.done, "pass": p.passed, "fail": p.failed, "error": p.errors,
            "changed_cells": p.changed, "cancelled": self.cancelled,
            "contradictions_before": p.contradictions_before, "contradictions_after": self.contradictions,
            "elapsed_s": round(p.elapsed_s, 3), "traces_per_s": round(p.rate, 1),
            "stored_before": dict(zip(COUNTERS, self.stored_before, strict=True)),
            "stored_after": stored_after,
            "notice": self.notice, "truncated": self.truncated,
            "changes": [c.to_dict() for c in self.changes],
            "results": [{"trace_id": r.trace_id, "result": r.result, "reason": r.reason, "error": r.error,
                         "execution_time_ms": r.execution_time_ms, "stdout": r.stdout, "stderr": r.stderr}
                        for r in self.results],
        }


@dataclass(frozen=True)
class RunOptions:
    jobs: int | None = None
    timeout_s: float = 5.0
    memory_mb: int = 256
    batch_size: int = 64  # traces per sandbox round-trip
    write_batch: int = 2000  # results per committed transaction...
    flush_s: float = 0.25  # ...or at least this often, so progress moves
    keep: int = 200_000  # results / changes kept in memory by dry runs and read-only runs
    unconfined: bool = False  # run even where the OS does not confine the sandbox (the user said so)
