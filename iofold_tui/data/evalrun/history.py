"""The eval-run sidecar, crash recovery and undo: what every eval run overwrote, so a whole run undoes
as one step (running a run is eval_runs.py).

Its own SQLite file (never the user's tables), beside the label history: ``<history>.runs.sqlite``.
One ``runs`` row per run (the eval's counters before and after), and in ``prev`` the exact
``eval_executions`` row each touched trace had before the run (or ``existed = 0``). Value columns are
declared without a type, so every value keeps its SQLite storage class and undo restores it bit for bit.

Status of a run:  running -> applied | cancelled | interrupted (crashed, or failed mid-way);
                  applied/cancelled/interrupted -> undoing -> undone.
``prev`` rows are committed *before* the user's transaction that overwrites those executions commits
(see eval_runs.py), so after any crash the sidecar covers every row the run may have changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iofold_tui.data.db import write_txn
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.labels.history import open_sidecar, utc_stamp
from iofold_tui.data.matrix.stats import recomputed_counts

FORMAT_VERSION = "1"
RUNNING, APPLIED, CANCELLED, INTERRUPTED, UNDOING, UNDONE = (
    "running", "applied", "cancelled", "interrupted", "undoing", "undone")
UNDOABLE = (APPLIED, CANCELLED, INTERRUPTED, UNDOING)
KEEP_RUNS = 50  # older runs are forgotten (and no longer undoable) when a new one starts
EXEC_COLS = ("id", "result", "reason", "execution_time_ms", "error", "stdout", "stderr", "executed_at")
COUNTERS = ("execution_count", "contradiction_count", "accuracy")
# Said before every writing run (CLI and TUI): the stored counters are iofold's, a run overwrites them.
COUNTERS_NOTICE = (
    "running it replaces iofold's stored evals.accuracy, contradiction_count and execution_count "
    "with recounts (scoped to the eval's own set); undoing the run restores them"
)

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  eval_id TEXT NOT NULL,
  selection TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL, status_at TEXT NOT NULL,   -- UTC 'YYYY-MM-DD HH:MM:SS.ffffff'
  pid INTEGER NOT NULL,                                -- the process running it (crash detection)
  total INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,
  old_execution_count, old_contradiction_count, old_accuracy,   -- untyped: restored exactly
  new_execution_count, new_contradiction_count, new_accuracy
);
CREATE INDEX IF NOT EXISTS runs_eval ON runs(eval_id, id);
CREATE TABLE IF NOT EXISTS prev (
  run_id INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  existed INTEGER NOT NULL,
  id, result, reason, execution_time_ms, error, stdout, stderr, executed_at,
  PRIMARY KEY (run_id, trace_id)
) WITHOUT ROWID;
"""

# Runs of this process that are in progress, per sidecar file: a "running" row whose pid is ours but
# which is not listed here was left by an earlier crash in a reused pid (or a test harness).
_ACTIVE: set[tuple[str, int]] = set()
_ACTIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunRecord:
    id: int
    eval_id: str
    selection: str
    status: str
    created_at: str
    status_at: str
    pid: int
    total: int
    done: int
    old_counters: tuple[Any, Any, Any]  # execution_count, contradiction_count, accuracy as stored
    new_counters: tuple[Any, Any, Any] | None


def runs_path(history_path: Path) -> Path:
    """The run sidecar that belongs with a label history file (``x.sqlite`` -> ``x.runs.sqlite``)."""
    history_path = Path(history_path)
    return history_path.with_name(f"{history_path.stem}.runs.sqlite")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class RunHistory:
    """The sidecar file; every method is its own committed transaction."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._key = str(self.path.resolve())
        # Previous rows must be on disk before the user's commit: open_sidecar fsyncs every commit.
        self.conn = open_sidecar(self.path, _DDL, FORMAT_VERSION, busy_timeout_s=busy_timeout_s)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------

    def begin(self, eval_id: str, selection: str, total: int, old_counters: Sequence[Any]) -> int:
        now = utc_stamp()
        with write_txn(self.conn):
            self._prune()
            cur = self.conn.execute(
                "INSERT INTO runs (eval_id, selection, status, created_at, status_at, pid, total, "
                "old_execution_count, old_contradiction_count, old_accuracy) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (eval_id, selection, RUNNING, now, now, os.getpid(), total, *old_counters))
            run_id = int(cur.lastrowid or 0)
        with _ACTIVE_LOCK:
            _ACTIVE.add((self._key, run_id))
        return run_id

    def _prune(self) -> None:
        row = self.conn.execute("SELECT max(id) FROM runs").fetchone()
        if row[0] is None:
            return
        cutoff = int(row[0]) - KEEP_RUNS + 1
        self.conn.execute("DELETE FROM prev WHERE run_id < ?", (cutoff,))
        self.conn.execute("DELETE FROM runs WHERE id < ?", (cutoff,))

    def save_prev(
        self, run_id: int, missing: Sequence[str], rows: Sequence[Sequence[Any]], done: int
    ) -> None:
        """Record the state before a batch (first record of a trace wins): ``rows`` are
        ``(trace_id, *EXEC_COLS)`` of existing executions, ``missing`` the traces that had none."""
        marks = ",".join("?" * (3 + len(EXEC_COLS)))
        with write_txn(self.conn):
            self.conn.executemany(f"INSERT OR IGNORE INTO prev VALUES ({marks})",
                                  ((run_id, row[0], 1, *row[1:]) for row in rows))
            self.conn.executemany(
                "INSERT OR IGNORE INTO prev (run_id, trace_id, existed) VALUES (?, ?, 0)",
                ((run_id, tid) for tid in missing))
            self.conn.execute("UPDATE runs SET done = ? WHERE id = ?", (done, run_id))

    def finish(
        self, run_id: int, status: str, new_counters: Sequence[Any] | None, done: int | None = None
    ) -> None:
        with write_txn(self.conn):
            self.conn.execute(
                "UPDATE runs SET status = ?, status_at = ?, done = coalesce(?, done), "
                "new_execution_count = ?, new_contradiction_count = ?, new_accuracy = ? WHERE id = ?",
                (status, utc_stamp(), done, *(new_counters or (None, None, None)), run_id))
        with _ACTIVE_LOCK:
            _ACTIVE.discard((self._key, run_id))

    def set_status(self, run_id: int, status: str) -> None:
        with write_txn(self.conn):
            self.conn.execute(
                "UPDATE runs SET status = ?, status_at = ? WHERE id = ?", (status, utc_stamp(), run_id)
            )

    # -- reading -------------------------------------------------------------------------------------

    def _record(self, r: Sequence[Any]) -> RunRecord:
        return RunRecord(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), int(r[8]),
                         (r[9], r[10], r[11]), None if r[3] == RUNNING else (r[12], r[13], r[14]))

    _COLS = (
        "id, eval_id, selection, status, created_at, status_at, pid, total, done, old_execution_count, "
        "old_contradiction_count, old_accuracy, new_execution_count, new_contradiction_count, new_accuracy"
    )

    def get(self, run_id: int) -> RunRecord | None:
        row = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._record(row)

    def recent(self, limit: int = 20) -> list[RunRecord]:
        rows = self.conn.execute(f"SELECT {self._COLS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [self._record(r) for r in rows]

    def last_undoable(self) -> RunRecord | None:
        marks = ",".join("?" * len(UNDOABLE))
        row = self.conn.execute(
            f"SELECT {self._COLS} FROM runs WHERE status IN ({marks}) ORDER BY id DESC LIMIT 1", UNDOABLE
        ).fetchone()
        return None if row is None else self._record(row)

    def later_runs(self, run: RunRecord) -> list[int]:
        """Runs of the same eval after ``run`` that still hold their results (undo them first)."""
        marks = ",".join("?" * (len(UNDOABLE) + 1))
        rows = self.conn.execute(
            f"SELECT id FROM runs WHERE eval_id = ? AND id > ? AND status IN ({marks}) ORDER BY id",
            (run.eval_id, run.id, *UNDOABLE, RUNNING))
        return [int(r[0]) for r in rows]

    def is_live(self, run: RunRecord) -> bool:
        """Whether a ``running`` run is still being executed by some process."""
        if run.pid == os.getpid():
            with _ACTIVE_LOCK:
                return (self._key, run.id) in _ACTIVE
        return _pid_alive(run.pid)

    def stale_running(self) -> list[RunRecord]:
        rows = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE status = ? ORDER BY id", (RUNNING,))
        return [run for run in (self._record(r) for r in rows) if not self.is_live(run)]

    def iter_prev(self, run_id: int, chunk: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
        """``(trace_id, existed, *EXEC_COLS)`` in trace order, in chunks (keyset: a 1M-trace run streams)."""
        cols = f"SELECT trace_id, existed, {', '.join(EXEC_COLS)} FROM prev WHERE run_id = ?"
        rows = self.conn.execute(f"{cols} ORDER BY trace_id LIMIT ?", (run_id, chunk)).fetchall()
        while rows:
            yield [tuple(r) for r in rows]
            rows = self.conn.execute(f"{cols} AND trace_id > ? ORDER BY trace_id LIMIT ?",
                                     (run_id, rows[-1][0], chunk)).fetchall()


class RunError(ValueError):
    """A run or undo cannot be done (unknown eval, nothing to undo, a later run in the way...)."""


# ---------------------------------------------------------------- the user database

CHUNK = 500  # ids per json_each lookup


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def lookup(conn: sqlite3.Connection, sql: str, key: str, ids: list[str]) -> list[sqlite3.Row]:
    rows: list[Any] = []
    for chunk in chunks(ids, CHUNK):
        rows.extend(conn.execute(sql, (key, json.dumps(chunk))).fetchall())
    return rows


def current_rows(conn: sqlite3.Connection, eval_id: str, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The batch's executions as ``(trace_id, *EXEC_COLS)``."""
    sql = (f"SELECT trace_id, {', '.join(EXEC_COLS)} FROM eval_executions WHERE eval_id = ? "
           "AND trace_id IN (SELECT value FROM json_each(?))")
    return {str(r[0]): tuple(r) for r in lookup(conn, sql, eval_id, ids)}


def write_counters(conn: sqlite3.Connection, eval_id: str) -> tuple[Any, Any, Any]:
    """Recompute (scoped) and store the eval's counters; call inside a write transaction."""
    counts = recomputed_counts(conn, [eval_id]).get(eval_id)
    values = (
        (0, 0, None) if counts is None
        else (counts.execution_count, counts.contradictions, counts.accuracy)
    )
    conn.execute("UPDATE evals SET execution_count = ?, contradiction_count = ?, accuracy = ? WHERE id = ?",
                 (*values, eval_id))
    return values


# ---------------------------------------------------------------- crash recovery and undo

def recover_runs(conn: sqlite3.Connection, history: RunHistory) -> list[int]:
    """Runs left ``running`` by a dead process become ``interrupted`` with recomputed counters (their
    committed batches stay; undo still restores everything). Also settles interrupted runs whose
    counters could not be written. Returns the run ids settled."""
    settled = []
    pending = history.stale_running() + [r for r in history.recent(KEEP_RUNS)
                                         if r.status == INTERRUPTED and r.new_counters == (None, None, None)]
    for run in pending:
        with write_txn(conn):
            counters = write_counters(conn, run.eval_id)
        history.finish(run.id, INTERRUPTED, counters)
        settled.append(run.id)
    return settled


def _reinsert_missing(conn: sqlite3.Connection, eval_id: str, chunk: list[tuple[Any, ...]]) -> None:
    existing = current_rows(conn, eval_id, [row[0] for row in chunk if row[1]])
    cols = ", ".join(EXEC_COLS)
    marks = ",".join("?" * len(EXEC_COLS))
    conn.executemany(
        f"INSERT INTO eval_executions (eval_id, trace_id, {cols}) VALUES (?, ?, {marks})",
        [(eval_id, row[0], *row[2:]) for row in chunk if row[1] and row[0] not in existing])


@dataclass(frozen=True)
class UndoReport:
    run_id: int
    eval_id: str
    restored: int  # executions put back as they were
    deleted: int  # executions the run had inserted
    counters: tuple[Any, Any, Any]


def list_runs(runs_file: Path, limit: int = 20) -> list[RunRecord]:
    with RunHistory(runs_file) as history:
        return history.recent(limit)


def undo_run(conn: sqlite3.Connection, runs_file: Path, run_id: int | None = None, *,
             read_only_reason: str | None = None) -> UndoReport:
    """Put back every execution a run touched and the eval's stored counters, in one transaction."""
    if read_only_reason:
        raise ReadOnlyError(read_only_reason)
    with RunHistory(runs_file) as history:
        recover_runs(conn, history)
        run = history.last_undoable() if run_id is None else history.get(run_id)
        if run is None:
            raise RunError("no eval run to undo" if run_id is None else f"no eval run {run_id}")
        if run.status == RUNNING:
            raise RunError(f"run {run.id} is still in progress")
        if run.status not in UNDOABLE:
            raise RunError(f"run {run.id} is {run.status}: nothing to undo")
        later = history.later_runs(run)
        if later:
            raise RunError(f"run {later[-1]} of the same eval came later: undo it first")
        history.set_status(run.id, UNDOING)
        restored = deleted = 0
        with write_txn(conn):
            for chunk in history.iter_prev(run.id):
                gone = [(run.eval_id, row[0]) for row in chunk if not row[1]]
                back = [(*row[2:], run.eval_id, row[0]) for row in chunk if row[1]]
                conn.executemany("DELETE FROM eval_executions WHERE eval_id = ? AND trace_id = ?", gone)
                sets = ", ".join(f"{col} = ?" for col in EXEC_COLS)
                cur = conn.executemany(
                    f"UPDATE eval_executions SET {sets} WHERE eval_id = ? AND trace_id = ?", back
                )
                if cur.rowcount < len(back):  # someone deleted rows the run had overwritten: put them back
                    _reinsert_missing(conn, run.eval_id, chunk)
                restored, deleted = restored + len(back), deleted + len(gone)
            conn.execute(
                "UPDATE evals SET execution_count = ?, contradiction_count = ?, accuracy = ? WHERE id = ?",
                (*run.old_counters, run.eval_id),
            )
        history.set_status(run.id, UNDONE)
        return UndoReport(run.id, run.eval_id, restored, deleted, run.old_counters)
