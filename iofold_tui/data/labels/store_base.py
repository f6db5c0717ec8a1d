"""What ``LabelStore`` is built on: the user's database opened for labelling (connection, schema check,
reads, ``data_version``), the label history sidecar's reads and queued intents, and the feedback-row
reads and writes every write transaction uses. The writes themselves (and their crash safety) are
``store.LabelStore``'s."""

from __future__ import annotations

import os
import sqlite3
import statistics
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from iofold_tui.data import introspect
from iofold_tui.data.db import tolerant
from iofold_tui.data.errors import ReadOnlyError, SourceError
from iofold_tui.data.labels.history import (
    APPLIED,
    PENDING,
    REDOING,
    UNDOING,
    UNDONE,
    FeedbackRow,
    Intent,
    LabelChange,
    LabelHistory,
    Step,
    iter_chunks,
)

CHUNK = 500  # ids per IN (...) query; far below SQLite's variable limit
_REQUIRED = {"id", "eval_set_id", "trace_id", "rating", "notes", "created_at", "updated_at"}


@dataclass(frozen=True, slots=True)
class SessionStats:
    labels: int  # single labels of this session still applied (bulk steps excluded)
    elapsed_s: float  # since the store was opened
    labels_per_hour: float  # labels / max(elapsed, 60 s)
    median_seconds: float | None  # median seconds_spent per label, None before any timed label
    annotator: str | None = None  # who this store records as the labeller (issue 18)


class LabelStoreBase:
    """The reading half of a label store; its attributes are set by the store's ``__init__``."""

    db_path: Path
    read_only_reason: str | None
    history: LabelHistory
    session: str
    session_start: datetime
    _conn: sqlite3.Connection
    _lock: threading.RLock
    _clock: Callable[[], datetime]
    _data_version: int

    # -- opening -------------------------------------------------------------------------------------

    def _writability(self) -> str | None:
        if not os.access(self.db_path, os.W_OK):
            return f"{self.db_path.name} is not writable (file permissions)"
        if not os.access(self.db_path.parent, os.W_OK):
            return f"the folder of {self.db_path.name} is not writable (SQLite needs it for its journal)"
        return None

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        uri = self.db_path.resolve().as_uri()
        modes = ["mode=ro", "mode=ro&immutable=1"] if self.read_only_reason else ["mode=rw"]
        for i, mode in enumerate(modes):
            try:
                conn = sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None,
                                       timeout=busy_timeout_s, check_same_thread=False)
                tolerant(conn)  # invalid UTF-8 in a note or id must not fail a read
                conn.execute("PRAGMA foreign_keys=ON")  # a label on a missing trace fails here, not on D1
                conn.execute("PRAGMA cache_size=-32000")  # per connection: bulk steps touch many index pages
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                return conn
            except sqlite3.OperationalError as exc:
                # A WAL file in a read-only folder cannot get its -shm: fall back to immutable.
                if i + 1 == len(modes):
                    raise SourceError(self.db_path, f"cannot open for labelling: {exc}") from None
        raise AssertionError("unreachable")

    def _schema_problem(self) -> str | None:
        cols = introspect.column_set(self._conn, "feedback")
        if not cols:
            return "this database has no feedback table, so labels cannot be stored"
        missing = sorted(_REQUIRED - cols)
        if missing:
            return (
                f"its feedback table lacks {', '.join(missing)} (not iofold schema v1.0): labelling disabled"
            )
        return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self.history.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    @property
    def annotator(self) -> str | None:
        """Who the steps of this store are recorded as made by (data/labels/annotator.py)."""
        return self.history.annotator

    # -- reading -------------------------------------------------------------------------------------

    def get(self, eval_set_id: str, trace_id: str) -> FeedbackRow | None:
        with self._lock:
            return read_rows(self._conn, eval_set_id, [trace_id]).get(trace_id)

    def changed_since_last_check(self) -> bool:
        """True when another connection/process committed to the database since the previous call."""
        with self._lock:
            version = self._read_data_version()
            changed, self._data_version = version != self._data_version, version
            return changed

    def others_version(self) -> int:
        """Moves only when another connection or process commits (this store's own writes leave it alone)."""
        with self._lock:
            return self._read_data_version()

    def _read_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def can_undo(self) -> bool:
        with self._lock:
            return self.history.top_applied() is not None

    def can_redo(self) -> bool:
        with self._lock:
            return self.history.next_redo() is not None

    def peek_undo(self) -> Step | None:
        """The step ``undo()`` would revert (for a "u: undo <what>" hint)."""
        with self._lock:
            step_id = self.history.top_applied()
            return None if step_id is None else self.history.load(step_id)

    def peek_redo(self) -> Step | None:
        with self._lock:
            step_id = self.history.next_redo()
            return None if step_id is None else self.history.load(step_id)

    def recent_steps(self, limit: int = 50) -> list[Step]:
        with self._lock:
            return self.history.recent(limit)

    def _stamp(self) -> str:
        """``feedback`` timestamps: 'YYYY-MM-DD HH:MM:SS' UTC, as SQLite's CURRENT_TIMESTAMP writes them."""
        return self._clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def session_stats(self) -> SessionStats:
        rows = self.history.session_changes(self.session)  # the sidecar only: never waits for the writer
        elapsed = max((self._clock() - self.session_start).total_seconds(), 0.0)
        timed = [s for _, s in rows if s is not None]
        return SessionStats(
            labels=len(rows), elapsed_s=elapsed,
            labels_per_hour=len(rows) * 3600.0 / max(elapsed, 60.0),
            median_seconds=statistics.median(timed) if timed else None, annotator=self.annotator)

    # -- the queue: label keys never wait for the lock (its records; LabelStore writes them)

    def _enqueue(self, kind: str, **fields: object) -> Intent:
        if self.read_only_reason:
            raise ReadOnlyError(self.read_only_reason)
        return self.history.enqueue(kind, self.session, **fields)  # type: ignore[arg-type]

    def queue_note(self, eval_set_id: str, trace_id: str, note: str | None) -> Intent:
        return self._enqueue(
            "note", eval_set_id=eval_set_id, trace_id=trace_id, note_set=True, note=note or None
        )

    def queue_travel(self, *, undo: bool, force: bool = False) -> Intent:
        return self._enqueue("undo" if undo else "redo", force=force)

    def queued(self) -> list[Intent]:
        """Intents not written yet, oldest first (the sidecar only: never waits for the writer)."""
        return self.history.queued()

    def cancel_queued(self) -> Intent | None:
        """Undo of a label still queued (not being written): it will never be written; None if none."""
        return self.history.cancel_latest()

    def restore_cancelled(self) -> Intent | None:
        return self.history.restore_cancelled()


def read_rows(conn: sqlite3.Connection, eval_set_id: str, trace_ids: list[str]) -> dict[str, FeedbackRow]:
    found: dict[str, FeedbackRow] = {}
    for chunk in iter_chunks(trace_ids, CHUNK):
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(
                f"SELECT trace_id, id, rating, notes, created_at, updated_at FROM feedback "
                f"WHERE eval_set_id = ? AND trace_id IN ({marks})", (eval_set_id, *chunk)):
            found[r[0]] = FeedbackRow(r[1], r[2], r[3], r[4], r[5])
    return found


def current_rows(conn: sqlite3.Connection,
                  changes: Iterable[LabelChange]) -> dict[tuple[str, str], FeedbackRow]:
    by_set: dict[str, list[str]] = {}
    for c in changes:
        by_set.setdefault(c.eval_set_id, []).append(c.trace_id)
    return {(es, tid): row for es, tids in by_set.items() for tid, row in read_rows(conn, es, tids).items()}


def apply_writes(conn: sqlite3.Connection,
                  writes: list[tuple[str, str, FeedbackRow | None, FeedbackRow | None]]) -> None:
    """Move each row from its current state to its target; current is known (read under the write lock)."""
    deletes = [(es, tid) for es, tid, cur, new in writes if new is None and cur is not None]
    inserts = [(new.id, es, tid, new.rating, new.notes, new.created_at, new.updated_at)
               for es, tid, cur, new in writes if new is not None and cur is None]
    updates = [(new.id, new.rating, new.notes, new.created_at, new.updated_at, es, tid)
               for es, tid, cur, new in writes if new is not None and cur is not None]
    conn.executemany("DELETE FROM feedback WHERE eval_set_id = ? AND trace_id = ?", deletes)
    conn.executemany("UPDATE feedback SET id = ?, rating = ?, notes = ?, created_at = ?, updated_at = ? "
                     "WHERE eval_set_id = ? AND trace_id = ?", updates)
    conn.executemany(
        "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        inserts,
    )


def settle_in_flight(conn: sqlite3.Connection, history: LabelHistory,
                     in_flight: list[tuple[int, str]]) -> None:
    """Decide each step a crash left in flight by the rows it would have written (read under the lock):
    still at "old", its transaction never committed; at "new", it did (``LabelStore._reconcile``)."""
    for step_id, status in in_flight:
        step = history.load(step_id)
        if step is None:
            continue
        current = current_rows(conn, step.changes)
        at_old = all(current.get((c.eval_set_id, c.trace_id)) == c.old for c in step.changes)
        at_new = all(current.get((c.eval_set_id, c.trace_id)) == c.new for c in step.changes)
        if status == PENDING and at_old and not at_new:
            history.drop(step_id)  # its feedback transaction never committed
        elif status == PENDING:
            history.set_status(step_id, APPLIED)
        elif status == UNDOING:
            history.set_status(step_id, UNDONE if at_old else APPLIED)
        elif status == REDOING:
            history.set_status(step_id, APPLIED if at_new else UNDONE)


def travel_writes(conn: sqlite3.Connection, step: Step, undo: bool) -> tuple[
        list[tuple[str, str, FeedbackRow | None, FeedbackRow | None]], list[tuple[str, str]]]:
    """The rows an undo (or redo) of ``step`` writes, and the keys someone else changed since the step."""
    current = current_rows(conn, step.changes)
    writes, conflicts = [], []
    for c in step.changes:
        here = current.get((c.eval_set_id, c.trace_id))
        expected, target = (c.new, c.old) if undo else (c.old, c.new)
        if here != expected:
            conflicts.append((c.eval_set_id, c.trace_id))
        if here != target:
            writes.append((c.eval_set_id, c.trace_id, here, target))
    return writes, conflicts
