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

What a run is given is ``selection.py``'s (the eval, the traces); what it produces is ``run_results.py``'s.
"""

from __future__ import annotations

import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iofold_tui.data.db import BUSY_TIMEOUT_MS, write_txn
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evalrun.history import (
    APPLIED,
    CANCELLED,
    INTERRUPTED,
    RunHistory,
    current_rows,
    recover_runs,
    write_counters,
)
from iofold_tui.data.evalrun.results import ExecResult
from iofold_tui.data.evalrun.run_results import (
    Mode,
    RunBatch,
    RunOptions,
    RunProgress,
    RunSummary,
    classify,
    ratings_of,
)
from iofold_tui.data.evalrun.sandbox import EvalRunner
from iofold_tui.data.evalrun.selection import (
    EvalTarget,
    Selection,
    check_selection,
    count_selected,
    describe_selection,
    iter_selected,
    load_target,
)
from iofold_tui.data.matrix.stats import recomputed_counts


def _stamp() -> str:
    """``executed_at``: 'YYYY-MM-DD HH:MM:SS' UTC, as SQLite's CURRENT_TIMESTAMP writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _upsert(conn: sqlite3.Connection, eval_id: str, results: list[ExecResult],
            current: dict[str, tuple[Any, ...]]) -> None:
    """Update existing rows (keeping their id), insert the rest; no reliance on the UNIQUE constraint."""
    now = _stamp()

    def values(r: ExecResult) -> tuple[Any, ...]:
        result = 1 if r.result else 0
        return (result, r.reason, r.execution_time_ms, r.error, r.stdout or None, r.stderr or None, now)

    conn.executemany(
        "UPDATE eval_executions SET result = ?, reason = ?, execution_time_ms = ?, error = ?, stdout = ?, "
        "stderr = ?, executed_at = ? WHERE eval_id = ? AND trace_id = ?",
        [(*values(r), eval_id, r.trace_id) for r in results if r.trace_id in current])
    conn.executemany(
        "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, error, "
        "stdout, stderr, executed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    return sqlite3.connect(
        row[2], isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )


class _Applier:
    """Applies batches in order on its own thread; the first error stops the run (``on_error``) and is
    kept."""

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
            except BaseException as exc:  # handed to the running thread, which re-raises it
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
        check_selection(selection)
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
        """Run (or apply ``results``); raises EvalCodeError before anything is written if the code cannot
        run."""
        target = load_target(self.conn, self.eval_id)
        before = recomputed_counts(self.conn, [target.id]).get(target.id)
        contradictions = before.contradictions if before else 0
        if self.given is not None:
            total, selection = len(self.given), "previewed results"
        else:
            total = count_selected(self.conn, target, self.selection)
            selection = describe_selection(self.selection)
        progress = RunProgress(
            total=total, contradictions_before=contradictions, contradictions=contradictions
        )
        summary = RunSummary(target.id, target.name, target.version, target.eval_set_id, self.mode,
                             selection, progress, stored_before=target.stored)
        if self.mode == "read-only":
            summary.notice = (f"read-only source ({self.read_only_reason}): results are kept in memory and "
                              "shown, nothing is written")
        elif self.mode == "dry-run":
            summary.notice = "dry run: nothing is written"
        options = self.options
        runner_cm = nullcontext() if self.given is not None else EvalRunner(
            target.code, target.name, jobs=options.jobs, timeout_s=options.timeout_s,
            memory_mb=options.memory_mb, batch_size=options.batch_size, unconfined=options.unconfined)
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
                stream: Iterable[ExecResult] = (
                    (self.given or []) if runner is None
                    else runner.run(iter_selected(self.conn, target, self.selection))
                )
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
        applier = _Applier(
            lambda batch: self._flush(batch, writer or self.conn, target, history, summary, on_batch),
            self.cancel,
        ) if writer is not None else None
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

    def _flush(
        self, results: list[ExecResult], conn: sqlite3.Connection, target: EvalTarget,
        history: RunHistory | None, summary: RunSummary, on_batch: Callable[[RunBatch], None] | None,
    ) -> None:
        ids = [r.trace_id for r in results]
        if history is not None and summary.run_id is not None:
            with write_txn(conn):
                current = current_rows(conn, target.id, ids)
                ratings = ratings_of(conn, target.eval_set_id, ids)
                missing = [t for t in ids if t not in current]
                history.save_prev(summary.run_id, missing, list(current.values()),
                                  summary.progress.done + len(results))
                _upsert(conn, target.id, results, current)
        else:
            current = current_rows(conn, target.id, ids)
            ratings = ratings_of(conn, target.eval_set_id, ids)
        changes = classify(results, current, ratings)
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
            with suppress(sqlite3.Error):  # never hide the error that stopped the run; recover_runs retries
                history.finish(summary.run_id, INTERRUPTED, None, summary.progress.done)
