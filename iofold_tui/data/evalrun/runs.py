"""Run an eval over traces and apply its results as ONE undoable step (headless core).

    run = EvalRun(conn, "eval_x", "labelled", runs_file=runs_path(opened.history_path))
    summary = run.execute(on_batch=...)        # run.cancel() from any thread
    undo_run(conn, runs_file)                  # the database is back, row for row

Traces are streamed in keyset order (never all ids in memory), run in the sandbox, and written in
batches, each its own committed transaction, so a 1M-trace run shows progress and a cancel keeps what
was applied. Write order per batch (crash safety, like labels.py):
  1. ``BEGIN IMMEDIATE`` on the user's database; read the batch's current executions;
  2. record them in the run sidecar (committed, fsynced; the first record of a trace wins);
  3. upsert the new executions and ``COMMIT``.
A crash between 2 and 3 leaves sidecar rows equal to the database: restoring them is a no-op. After
the last batch the eval's counters are recomputed (scoped, errors apart: matrix_stats) and written; a
crashed run gets them on the next open (status ``interrupted``). Undo restores every recorded row and
the stored counters in one transaction, deleting the executions the run inserted.

Dry runs and read-only sources write nothing: they classify each result against the stored state and
return the per-cell changes (and the results) in memory.
"""

from __future__ import annotations

import json
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from iofold_tui.data.db import BUSY_TIMEOUT_MS, write_txn
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evalrun.history import (
    APPLIED,
    CANCELLED,
    CHUNK,
    COUNTERS,
    INTERRUPTED,
    RunError,
    RunHistory,
    UndoReport,
    chunks,
    current_rows,
    list_runs,
    lookup,
    recover_runs,
    runs_path,
    undo_run,
    write_counters,
)
from iofold_tui.data.evalrun.sandbox import EvalRunner, ExecResult
from iofold_tui.data.matrix.stats import recomputed_counts
from iofold_tui.data.traces.query import TraceFilter, TraceQuery

__all__ = ["CellChange", "EvalRun", "EvalTarget", "RunBatch", "RunError", "RunOptions", "RunProgress",
           "RunSummary", "Selection", "UndoReport", "count_selected", "describe_selection", "iter_selected",
           "list_runs", "load_target", "recover_runs", "runs_path", "undo_run"]

Selection = str | TraceFilter | Sequence[str]  # "labelled" | "all" | a trace filter | explicit trace ids
Mode = Literal["write", "dry-run", "read-only"]
PAGE = 256  # traces read per keyset page (steps can be MB each)


@dataclass(frozen=True)
class EvalTarget:
    id: str
    eval_set_id: str
    workspace_id: str | None
    name: str
    version: int
    code: str
    stored: tuple[Any, Any, Any]  # execution_count, contradiction_count, accuracy as stored


def load_target(conn: sqlite3.Connection, eval_id: str) -> EvalTarget:
    row = conn.execute(
        "SELECT e.id, e.eval_set_id, s.workspace_id, e.name, e.version, e.code, e.execution_count, "
        "e.contradiction_count, e.accuracy FROM evals e LEFT JOIN eval_sets s ON s.id = e.eval_set_id "
        "WHERE e.id = ?", (eval_id,)).fetchone()
    if row is None:
        raise RunError(f"no eval {eval_id!r} in this database")
    return EvalTarget(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]), str(row[3] or ""),
                      int(row[4] or 0), str(row[5] or ""), (row[6], row[7], row[8]))


# ---------------------------------------------------------------- which traces

def describe_selection(selection: Selection) -> str:
    if selection == "labelled":
        return "labelled traces"
    if selection == "all":
        return "all traces of the workspace"
    if isinstance(selection, TraceFilter):
        return "traces matching " + (", ".join(selection.describe()) or "no filter")
    return f"{len(selection):,} given traces"


def _check_selection(selection: Selection) -> None:
    if isinstance(selection, str) and selection not in ("labelled", "all"):
        raise RunError(f"traces to run: 'labelled' or 'all', not {selection!r}")


def count_selected(conn: sqlite3.Connection, target: EvalTarget, selection: Selection) -> int:
    _check_selection(selection)
    if selection == "labelled":
        return int(conn.execute("SELECT count(*) FROM feedback f JOIN traces t ON t.id = f.trace_id "
                                "WHERE f.eval_set_id = ?", (target.eval_set_id,)).fetchone()[0])
    if selection == "all":
        return int(conn.execute("SELECT count(*) FROM traces WHERE workspace_id = ?",
                                (target.workspace_id,)).fetchone()[0])
    if isinstance(selection, TraceFilter):
        return TraceQuery(conn, selection).count()
    ids = list(dict.fromkeys(selection))
    return sum(int(conn.execute("SELECT count(*) FROM traces WHERE id IN (SELECT value FROM json_each(?))",
                                (json.dumps(chunk),)).fetchone()[0]) for chunk in chunks(ids, CHUNK))


def iter_selected(conn: sqlite3.Connection, target: EvalTarget, selection: Selection,
                  page: int = PAGE) -> Iterator[tuple[str, Any]]:
    """``(trace id, steps JSON)`` in keyset pages: memory bound by one page, whatever the selection size."""
    _check_selection(selection)
    if selection == "labelled":  # UNIQUE(eval_set_id, trace_id) orders it for free
        sql = ("SELECT f.trace_id, t.steps FROM feedback f JOIN traces t ON t.id = f.trace_id "
               "WHERE f.eval_set_id = ? {after} ORDER BY f.trace_id LIMIT ?")
        yield from _keyset(conn, sql, "AND f.trace_id > ?", [target.eval_set_id], page)
    elif selection == "all":  # the workspace_id index holds (workspace_id, rowid)
        sql = ("SELECT rowid, id, steps FROM traces WHERE workspace_id = ? {after} ORDER BY rowid LIMIT ?")
        yield from _keyset(conn, sql, "AND rowid > ?", [target.workspace_id], page, key_col=True)
    elif isinstance(selection, TraceFilter):
        query = TraceQuery(conn, selection)
        result = query.first_page(page)
        while result.rows:
            yield from _steps_of(conn, [row.id for row in result.rows])
            if not result.has_after:
                return
            result = query.page_after(result.rows[-1].key, page)
    else:
        for chunk in chunks(list(dict.fromkeys(selection)), page):
            yield from _steps_of(conn, chunk)


def _keyset(conn: sqlite3.Connection, sql: str, after: str, params: list[Any], page: int,
            key_col: bool = False) -> Iterator[tuple[str, Any]]:
    rows = conn.execute(sql.format(after=""), [*params, page]).fetchall()
    while rows:
        for row in rows:
            yield (str(row[1]), row[2]) if key_col else (str(row[0]), row[1])
        if len(rows) < page:
            return
        rows = conn.execute(sql.format(after=after), [*params, rows[-1][0], page]).fetchall()


def _steps_of(conn: sqlite3.Connection, ids: list[str]) -> Iterator[tuple[str, Any]]:
    found = dict(conn.execute("SELECT id, steps FROM traces WHERE id IN (SELECT value FROM json_each(?))",
                              (json.dumps(ids),)).fetchall())
    for tid in ids:  # in the caller's order; ids without a trace are skipped
        if tid in found:
            yield tid, found[tid]


# ---------------------------------------------------------------- classification

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


def _ratings(conn: sqlite3.Connection, eval_set_id: str, ids: list[str]) -> dict[str, str]:
    sql = "SELECT trace_id, rating FROM feedback WHERE eval_set_id = ? AND trace_id IN (SELECT value FROM json_each(?))"
    return {str(r[0]): str(r[1]) for r in lookup(conn, sql, eval_set_id, ids)}


def _classify(results: list[ExecResult], current: dict[str, tuple[Any, ...]],
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
        return self.progress.contradictions if self.contradictions_after is None else self.contradictions_after

    def to_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "run_id": self.run_id, "eval_id": self.eval_id, "name": self.eval_name, "version": self.version,
            "eval_set_id": self.eval_set_id, "mode": self.mode, "traces": self.selection,
            "total": p.total, "done": p.done, "pass": p.passed, "fail": p.failed, "error": p.errors,
            "changed_cells": p.changed, "cancelled": self.cancelled,
            "contradictions_before": p.contradictions_before, "contradictions_after": self.contradictions,
            "elapsed_s": round(p.elapsed_s, 3), "traces_per_s": round(p.rate, 1),
            "stored_before": dict(zip(COUNTERS, self.stored_before, strict=True)),
            "stored_after": None if self.stored_after is None else dict(zip(COUNTERS, self.stored_after, strict=True)),
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


# ---------------------------------------------------------------- the run

def _stamp() -> str:
    """``executed_at``: 'YYYY-MM-DD HH:MM:SS' UTC, as SQLite's CURRENT_TIMESTAMP writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _upsert(conn: sqlite3.Connection, eval_id: str, results: list[ExecResult],
            current: dict[str, tuple[Any, ...]]) -> None:
    """Update existing rows (keeping their id), insert the rest; no reliance on the UNIQUE constraint."""
    now = _stamp()

    def values(r: ExecResult) -> tuple[Any, ...]:
        return (1 if r.result else 0, r.reason, r.execution_time_ms, r.error, r.stdout or None, r.stderr or None, now)

    conn.executemany(
        "UPDATE eval_executions SET result = ?, reason = ?, execution_time_ms = ?, error = ?, stdout = ?, "
        "stderr = ?, executed_at = ? WHERE eval_id = ? AND trace_id = ?",
        [(*values(r), eval_id, r.trace_id) for r in results if r.trace_id in current])
    conn.executemany(
        "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, error, stdout, "
        "stderr, executed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(execution_id(), eval_id, r.trace_id, *values(r)) for r in results if r.trace_id not in current])


def execution_id() -> str:
    """A new ``eval_executions.id``: time-ordered (nanoseconds, then 64 random bits: 32 hex digits like the
    uuid4 it replaces), so a run's inserts append to the primary-key index instead of landing on random
    pages of a multi-million-row index (a draft run at 1M traces was write-bound on exactly that)."""
    return f"exec_{time.time_ns():016x}{secrets.token_hex(8)}"


def _writer_connection(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    """A second connection to the same file for the applier thread (None for an in-memory database)."""
    row = next((r for r in conn.execute("PRAGMA database_list") if r[1] == "main"), None)
    if row is None or not row[2]:
        return None
    return sqlite3.connect(row[2], isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)


class _Applier:
    """Applies batches in order on its own thread; the first error stops the run (``on_error``) and is kept."""

    def __init__(self, apply: Callable[[list[ExecResult]], None], on_error: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._apply, self._on_error = apply, on_error
        self._queue: queue.Queue[list[ExecResult] | None] = queue.Queue(maxsize=3)  # back-pressure
        self._thread = threading.Thread(target=self._main, name="eval-run-applier", daemon=True)
        self._thread.start()

    def submit(self, batch: list[ExecResult]) -> None:
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _main(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain, so submit() never blocks on a dead applier
            try:
                self._apply(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the running thread, which re-raises it
                self.error = exc
                self._on_error()


class EvalRun:
    """One run of one eval. ``execute()`` once, from one thread; ``cancel()`` from any thread.

    ``results``: apply these (e.g. a dry run's) instead of running the sandbox. ``runs_file`` is required
    to write. Writes nothing when ``dry_run`` or ``read_only_reason`` is set.
    """

    def __init__(self, conn: sqlite3.Connection, eval_id: str, selection: Selection = "labelled", *,
                 runs_file: Path | None = None, dry_run: bool = False, read_only_reason: str | None = None,
                 options: RunOptions | None = None, results: Sequence[ExecResult] | None = None) -> None:
        _check_selection(selection)
        self.conn = conn
        self.eval_id = eval_id
        self.selection = selection
        self.options = options or RunOptions()
        self.given = None if results is None else list({r.trace_id: r for r in results}.values())
        self.mode: Mode = "read-only" if read_only_reason else "dry-run" if dry_run else "write"
        self.read_only_reason = read_only_reason
        if self.mode == "write" and runs_file is None:
            raise ValueError("runs_file is required to write a run")
        self.runs_file = runs_file
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._runner: EvalRunner | None = None

    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            if self._runner is not None:
                self._runner.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def execute(self, on_batch: Callable[[RunBatch], None] | None = None) -> RunSummary:
        """Run (or apply ``results``); raises EvalCodeError before anything is written if the code cannot run."""
        target = load_target(self.conn, self.eval_id)
        before = recomputed_counts(self.conn, [target.id]).get(target.id)
        contradictions = before.contradictions if before else 0
        total = len(self.given) if self.given is not None else count_selected(self.conn, target, self.selection)
        progress = RunProgress(total=total, contradictions_before=contradictions, contradictions=contradictions)
        summary = RunSummary(target.id, target.name, target.version, target.eval_set_id, self.mode,
                             describe_selection(self.selection) if self.given is None else "previewed results",
                             progress, stored_before=target.stored)
        if self.mode == "read-only":
            summary.notice = (f"read-only source ({self.read_only_reason}): results are kept in memory and "
                              "shown, nothing is written")
        elif self.mode == "dry-run":
            summary.notice = "dry run: nothing is written"
        runner_cm = nullcontext() if self.given is not None else EvalRunner(
            target.code, target.name, jobs=self.options.jobs, timeout_s=self.options.timeout_s,
            memory_mb=self.options.memory_mb, batch_size=self.options.batch_size, unconfined=self.options.unconfined)
        with runner_cm as runner:
            with self._lock:
                self._runner = runner
            if self._cancel.is_set() and runner is not None:
                runner.cancel()
            history = RunHistory(self.runs_file) if self.mode == "write" and self.runs_file else None
            try:
                if history is not None:
                    recover_runs(self.conn, history)
                    summary.run_id = history.begin(target.id, summary.selection, total, target.stored)
                stream: Iterable[ExecResult] = (self.given or [] if runner is None
                                                else runner.run(iter_selected(self.conn, target, self.selection)))
                self._loop(stream, target, history, summary, on_batch)
                summary.cancelled = self._cancel.is_set()
                if history is not None and summary.run_id is not None:
                    self._finish(history, summary, CANCELLED if summary.cancelled else APPLIED)
            except BaseException:
                if history is not None and summary.run_id is not None:
                    self._finish(history, summary, INTERRUPTED, quiet=True)
                raise
            finally:
                with self._lock:
                    self._runner = None
                if history is not None:
                    history.close()
        summary.progress.elapsed_s = time.monotonic() - progress.started
        return summary

    def _loop(self, stream: Iterable[ExecResult], target: EvalTarget, history: RunHistory | None,
              summary: RunSummary, on_batch: Callable[[RunBatch], None] | None) -> None:
        """Batches results; when writing, a second thread (own connection) applies them, so the sandbox
        keeps running while a batch is committed."""
        writer = _writer_connection(self.conn) if history is not None else None
        applier = _Applier(lambda batch: self._flush(batch, writer or self.conn, target, history, summary, on_batch),
                           self.cancel) if writer is not None else None
        apply = applier.submit if applier else (
            lambda batch: self._flush(batch, self.conn, target, history, summary, on_batch))
        try:
            buffer: list[ExecResult] = []
            last = time.monotonic()
            for result in stream:
                buffer.append(result)
                if len(buffer) >= self.options.write_batch or time.monotonic() - last >= self.options.flush_s:
                    apply(buffer)
                    buffer, last = [], time.monotonic()
                if self._cancel.is_set() and self.given is not None:
                    break
            if buffer:
                apply(buffer)
        finally:
            if applier is not None:
                applier.close()
            if writer is not None:
                writer.close()
        if applier is not None and applier.error is not None:
            raise applier.error

    def _flush(self, results: list[ExecResult], conn: sqlite3.Connection, target: EvalTarget,
               history: RunHistory | None, summary: RunSummary, on_batch: Callable[[RunBatch], None] | None) -> None:
        ids = [r.trace_id for r in results]
        if history is not None and summary.run_id is not None:
            with write_txn(conn):
                current = current_rows(conn, target.id, ids)
                ratings = _ratings(conn, target.eval_set_id, ids)
                history.save_prev(summary.run_id, [t for t in ids if t not in current], list(current.values()),
                                  summary.progress.done + len(results))
                _upsert(conn, target.id, results, current)
        else:
            current = current_rows(conn, target.id, ids)
            ratings = _ratings(conn, target.eval_set_id, ids)
        changes = _classify(results, current, ratings)
        summary.progress.add(changes)
        if history is None:
            room = self.options.keep - len(summary.results)
            summary.truncated |= room < len(results)
            summary.results.extend(results[:max(room, 0)])
            changed = [c for c in changes if c.changed]
            room = self.options.keep - len(summary.changes)
            summary.truncated |= room < len(changed)
            summary.changes.extend(changed[:max(room, 0)])
        if on_batch is not None:
            on_batch(RunBatch(results, changes, summary.progress.snapshot(), history is not None))

    def _finish(self, history: RunHistory, summary: RunSummary, status: str, quiet: bool = False) -> None:
        assert summary.run_id is not None
        try:
            with write_txn(self.conn) as conn:
                summary.stored_after = write_counters(conn, summary.eval_id)
            summary.contradictions_after = summary.stored_after[1]
            history.finish(summary.run_id, status, summary.stored_after, summary.progress.done)
        except (sqlite3.Error, ReadOnlyError):
            if not quiet:
                raise
            with suppress(sqlite3.Error):  # never hide the error that stopped the run
                history.finish(summary.run_id, INTERRUPTED, None, summary.progress.done)  # recover_runs retries


