"""The label history sidecar: every label change made with iofold-tui, for undo/redo and the D1 patch.

It lives in its own SQLite file (never in the user's tables). One row in ``steps`` per user action
(a label, a note edit, a bulk label), its rows in ``changes`` with the exact feedback row before and
after. A step's ``status`` drives undo/redo and crash recovery:

    pending  -> written before the feedback transaction commits (see labels.py for the write order)
    applied  -> the feedback rows hold the step's "new" state; undo pops the highest applied id
    undoing  -> an undo is in flight;  undone -> on the redo stack (redo pops the lowest undone id)
    redoing  -> a redo is in flight;   discarded -> was undone, then a new change cleared the redo stack

Invariant kept by the stack discipline: every undone id is greater than every applied id.

The ``queued`` table is the write-ahead log of label keys: a key records its intent (label / note / undo /
redo) here, committed, before anything touches the user's database, and the writer thread applies intents
in order when the database lock is free. An intent being applied is bound to its step (``step_id``) in the
same sidecar transaction that records the step, and deleted in the one that settles it; a dropped step
unbinds it (``ON DELETE SET NULL``), so after any crash an intent is either consumed or still queued.

The tables and their migration are in data/labels/history_schema.py.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iofold_tui.data.db import write_txn
from iofold_tui.data.labels.history_schema import DDL, FORMAT_VERSION, add_annotator_column

PENDING, APPLIED, UNDOING, UNDONE, REDOING, DISCARDED = (
    "pending", "applied", "undoing", "undone", "redoing", "discarded")
IN_FLIGHT = (PENDING, UNDOING, REDOING)


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One ``feedback`` row as iofold stores it (the columns iofold-tui reads and restores)."""

    id: str
    rating: str
    notes: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class LabelChange:
    """The state of one (eval set, trace) before and after a change; ``None`` means no feedback row."""

    eval_set_id: str
    trace_id: str
    old: FeedbackRow | None
    new: FeedbackRow | None
    seconds_spent: float | None = None
    step_id: int | None = None  # None when the call changed nothing

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True, slots=True)
class Step:
    """One undoable user action."""

    id: int
    at: str
    kind: str
    status: str
    changes: tuple[LabelChange, ...]


class IntentCancelled(Exception):
    """The intent being applied was cancelled (undone while still queued): nothing is written."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A label key recorded in the sidecar, not yet written to the user's database."""

    id: int
    created_at: str
    kind: str  # label | note | undo | redo
    eval_set_id: str | None
    trace_id: str | None
    rating: str | None
    note_set: bool  # False: keep the stored note
    note: str | None
    seconds_spent: float | None
    force: bool = False
    step_id: int | None = None  # bound while being applied


_INTENT_COLS = ("id, created_at, kind, eval_set_id, trace_id, rating, note_set, note, seconds_spent, force, "
                "step_id")


def _intent(r: sqlite3.Row | tuple[Any, ...]) -> Intent:
    return Intent(int(r[0]), r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], bool(r[9]),
                  None if r[10] is None else int(r[10]))


def utc_stamp(moment: datetime | None = None) -> str:
    """A sortable UTC text stamp with microseconds, used for every history time."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _row(values: tuple[str | None, ...]) -> FeedbackRow | None:
    fid, rating, notes, created, updated = values
    if fid is None or rating is None:
        return None
    return FeedbackRow(fid, rating, notes, created, updated)


def _cols(row: FeedbackRow | None) -> tuple[str | None, ...]:
    if row is None:
        return (None, None, None, None, None)
    return (row.id, row.rating, row.notes, row.created_at, row.updated_at)


_CHANGE_COLS = ("eval_set_id, trace_id, old_id, old_rating, old_notes, old_created_at, old_updated_at, "
                "new_id, new_rating, new_notes, new_created_at, new_updated_at, seconds_spent")


def change_from_row(row: sqlite3.Row | tuple[Any, ...], step_id: int | None = None) -> LabelChange:
    """Build a LabelChange from a row selected with ``_CHANGE_COLS`` (in that order)."""
    return LabelChange(row[0], row[1], _row(tuple(row[2:7])), _row(tuple(row[7:12])), row[12], step_id)


class LabelHistory:
    """The sidecar file. Each method is its own committed transaction (the crash-safety protocol needs
    that)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.conn = open_sidecar(self.path, DDL, FORMAT_VERSION, busy_timeout_s=busy_timeout_s)
        add_annotator_column(self.conn)
        self.annotator: str | None = None  # who writes this instance's steps (the store sets it; issue 18)
        # The UI thread records intents while the writer thread settles steps on the same connection: one
        # sidecar transaction at a time (held for milliseconds, never while waiting for the user's database).
        self._txn_lock = threading.RLock()
        self.conn.execute("PRAGMA cache_size=-32000")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.conn.close()

    def _txn(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_txn(self.conn, lock=self._txn_lock)

    def set_meta(self, key: str, value: str) -> None:
        with self._txn():
            self.conn.execute("INSERT INTO meta VALUES (?, ?) "
                              "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # -- writing -------------------------------------------------------------------------------------

    def add_pending(self, kind: str, session: str, changes: list[LabelChange],
                    intent: int | None = None, annotator: str | None = None) -> tuple[int, str]:
        """Record a step as pending (committed) before its feedback transaction commits (bound to the queued
        ``intent`` it applies, in the same transaction)."""
        now = utc_stamp()
        with self._txn():
            cur = self.conn.execute(
                "INSERT INTO steps (created_at, kind, status, status_at, session, n_changes, annotator) "
                "VALUES (?,?,?,?,?,?,?)",
                (now, kind, PENDING, now, session, len(changes), annotator or self.annotator))
            step_id = int(cur.lastrowid or 0)
            self.conn.executemany(
                f"INSERT INTO changes (step_id, seq, {_CHANGE_COLS}) VALUES ({','.join('?' * 15)})",
                ((step_id, seq, c.eval_set_id, c.trace_id, *_cols(c.old), *_cols(c.new), c.seconds_spent)
                 for seq, c in enumerate(changes)))
            if intent is not None:
                self.bind(intent, step_id)
        return step_id, now

    def set_status(self, step_id: int, status: str, consume: int | None = None) -> None:
        """Move a step to ``status``; a newly applied step (from pending) clears the redo stack.

        In-flight marks (undoing/redoing) are fsynced; settling marks (applied/undone) are not: if power
        loss drops one, the step is back in flight and reconciliation settles it again from the rows.
        """
        self.conn.execute(f"PRAGMA synchronous={'FULL' if status in IN_FLIGHT else 'NORMAL'}")
        try:
            self._set_status(step_id, status, consume)
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    def _set_status(self, step_id: int, status: str, consume: int | None = None) -> None:
        with self._txn():
            if consume is not None:  # the intent this step applies: settled in the same transaction
                self.conn.execute("DELETE FROM queued WHERE id = ?", (consume,))
            previous = self.conn.execute("SELECT status FROM steps WHERE id = ?", (step_id,)).fetchone()
            now = utc_stamp()
            self.conn.execute("UPDATE steps SET status = ?, status_at = ? WHERE id = ?",
                              (status, now, step_id))
            if status == APPLIED and previous is not None and previous[0] == PENDING:
                self.conn.execute("UPDATE steps SET status = ?, status_at = ? WHERE status = ? AND id < ?",
                                  (DISCARDED, now, UNDONE, step_id))

    def drop(self, step_id: int) -> None:
        """Forget a pending step whose feedback transaction never committed (its intent is queued again)."""
        with self._txn():
            self.conn.execute("DELETE FROM steps WHERE id = ?", (step_id,))

    # -- the queue of intents (the write-ahead log of label keys) -----------------------------------

    def enqueue(self, kind: str, session: str, *, eval_set_id: str | None = None, trace_id: str | None = None,
                rating: str | None = None, note_set: bool = False, note: str | None = None,
                seconds_spent: float | None = None, force: bool = False) -> Intent:
        """Record an intent, committed (fsynced), before anything is tried; a new one ends the cancelled
        ones' chance of a redo."""
        now = utc_stamp()
        with self._txn():
            self.conn.execute("DELETE FROM queued WHERE status = 'cancelled'")
            cur = self.conn.execute(
                "INSERT INTO queued (created_at, session, kind, eval_set_id, trace_id, rating, note_set, "
                "note, seconds_spent, force) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (now, session, kind, eval_set_id, trace_id, rating, int(note_set), note, seconds_spent,
                 int(force)))
        return Intent(int(cur.lastrowid or 0), now, kind, eval_set_id, trace_id, rating, note_set, note,
                      seconds_spent, force)

    def queued(self) -> list[Intent]:
        """Intents not yet written, oldest first."""
        with self._txn_lock:
            return [_intent(r) for r in self.conn.execute(
                f"SELECT {_INTENT_COLS} FROM queued WHERE status = 'queued' ORDER BY id")]

    def next_queued(self) -> Intent | None:
        with self._txn_lock:
            row = self.conn.execute(
                f"SELECT {_INTENT_COLS} FROM queued WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
        return None if row is None else _intent(row)

    def bind(self, intent_id: int, step_id: int) -> None:
        """Inside a sidecar transaction: the step ``step_id`` applies ``intent_id``. Raises IntentCancelled
        when the user cancelled it (undo) after the writer picked it up: the transaction rolls back."""
        cur = self.conn.execute("UPDATE queued SET step_id = ? WHERE id = ? AND status = 'queued'",
                                (step_id, intent_id))
        if cur.rowcount == 0:
            raise IntentCancelled(intent_id)

    def unbind(self, intent_id: int) -> None:
        with self._txn():
            self.conn.execute("UPDATE queued SET step_id = NULL WHERE id = ?", (intent_id,))

    def consume(self, intent_id: int) -> None:
        """An intent that is written (or never can be): gone from the queue."""
        with self._txn():
            self.conn.execute("DELETE FROM queued WHERE id = ?", (intent_id,))

    def cancel_latest(self) -> Intent | None:
        """Undo of a label that is still queued: the latest queued intent, unless it is being written."""
        with self._txn():
            row = self.conn.execute(f"SELECT {_INTENT_COLS} FROM queued WHERE status = 'queued' "
                                    "ORDER BY id DESC LIMIT 1").fetchone()
            if row is None or row[10] is not None or row[2] not in ("label", "note"):
                return None
            self.conn.execute("UPDATE queued SET status = 'cancelled' WHERE id = ?", (row[0],))
        return _intent(row)

    def restore_cancelled(self) -> Intent | None:
        """Redo of a cancelled intent (the earliest cancelled one): queued again."""
        with self._txn():
            row = self.conn.execute(f"SELECT {_INTENT_COLS} FROM queued WHERE status = 'cancelled' "
                                    "ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            self.conn.execute("UPDATE queued SET status = 'queued' WHERE id = ?", (row[0],))
        return _intent(row)

    def settle_bound(self) -> None:
        """After a crash (in-flight steps already settled): consume intents whose step landed, requeue
        others."""
        with self._txn():
            rows = self.conn.execute("SELECT q.id, q.kind, s.status FROM queued q JOIN steps s "
                                     "ON s.id = q.step_id WHERE q.step_id IS NOT NULL").fetchall()
            for intent_id, kind, status in rows:
                if status == (UNDONE if kind == "undo" else APPLIED):
                    self.conn.execute("DELETE FROM queued WHERE id = ?", (intent_id,))
                else:
                    self.conn.execute("UPDATE queued SET step_id = NULL WHERE id = ?", (intent_id,))

    def record_exported(self, items: Iterable[tuple[str, str, str]]) -> None:
        """Remember (eval set, trace, JSON state) written into a patch: a later patch may replace them."""
        now = utc_stamp()
        with self._txn():
            self.conn.executemany("INSERT OR IGNORE INTO exported VALUES (?, ?, ?, ?)",
                                  ((e, t, state, now) for e, t, state in items))

    def exported_states(self, eval_set_id: str, trace_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT state FROM exported WHERE eval_set_id = ? AND trace_id = ? ORDER BY at, state",
            (eval_set_id, trace_id))]

    # -- reading -------------------------------------------------------------------------------------

    def in_flight(self) -> list[tuple[int, str]]:
        marks = ",".join("?" * len(IN_FLIGHT))
        rows = self.conn.execute(f"SELECT id, status FROM steps WHERE status IN ({marks}) ORDER BY id",
                                 IN_FLIGHT)
        return [(int(r[0]), str(r[1])) for r in rows]

    def top_applied(self) -> int | None:
        row = self.conn.execute("SELECT max(id) FROM steps WHERE status = ?", (APPLIED,)).fetchone()
        return None if row[0] is None else int(row[0])

    def next_redo(self) -> int | None:
        row = self.conn.execute("SELECT min(id) FROM steps WHERE status = ?", (UNDONE,)).fetchone()
        return None if row[0] is None else int(row[0])

    def count(self, status: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM steps WHERE status = ?", (status,)).fetchone()[0])

    def iter_changes(self, step_id: int) -> Iterator[LabelChange]:
        cur = self.conn.execute(f"SELECT {_CHANGE_COLS} FROM changes WHERE step_id = ? ORDER BY seq",
                                (step_id,))
        for row in cur:
            yield change_from_row(row, step_id)

    def load(self, step_id: int) -> Step | None:
        row = self.conn.execute("SELECT id, created_at, kind, status FROM steps WHERE id = ?",
                                (step_id,)).fetchone()
        if row is None:
            return None
        return Step(int(row[0]), row[1], row[2], row[3], tuple(self.iter_changes(step_id)))

    def recent(self, limit: int = 50) -> list[Step]:
        """The latest steps (not discarded), newest first."""
        ids = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM steps WHERE status != ? ORDER BY id DESC LIMIT ?", (DISCARDED, limit))]
        return [s for s in (self.load(i) for i in ids) if s is not None]

    def session_changes(self, session: str) -> list[tuple[str, float | None]]:
        """(step created_at, seconds_spent) for single labels of a session that are still applied."""
        rows = self.conn.execute(
            "SELECT s.created_at, c.seconds_spent FROM steps s JOIN changes c ON c.step_id = s.id "
            "WHERE s.session = ? AND s.kind = 'label' AND s.status = ? AND c.new_rating IS NOT NULL "
            "ORDER BY s.id", (session, APPLIED))
        return [(r[0], r[1]) for r in rows]

    def iter_key_histories(self, since: str | None) -> Iterator[list[tuple[str, str, LabelChange]]]:
        """Per (eval set, trace) touched by a settled step created or undone/redone at/after ``since``:
        the (status, status_at, change) of every settled step touching it, oldest first. Streams."""
        marks = ",".join("?" * len(IN_FLIGHT))
        window = "" if since is None else "AND (s.created_at >= ? OR s.status_at >= ?)"
        cols = ", ".join("c." + c for c in _CHANGE_COLS.split(", "))
        sql = (f"WITH touched AS (SELECT DISTINCT c.eval_set_id, c.trace_id FROM changes c "
               f"JOIN steps s ON s.id = c.step_id WHERE s.status NOT IN ({marks}) {window}) "
               f"SELECT s.status, s.status_at, s.id, {cols} FROM touched t "
               f"JOIN changes c ON c.eval_set_id = t.eval_set_id AND c.trace_id = t.trace_id "
               f"JOIN steps s ON s.id = c.step_id WHERE s.status NOT IN ({marks}) "
               f"ORDER BY c.eval_set_id, c.trace_id, s.id, c.seq")
        params = (*IN_FLIGHT, *(() if since is None else (since, since)), *IN_FLIGHT)
        group: list[tuple[str, str, LabelChange]] = []
        for r in self.conn.execute(sql, params):
            change = change_from_row(tuple(r[3:]), int(r[2]))
            key = (change.eval_set_id, change.trace_id)
            if group and (group[-1][2].eval_set_id, group[-1][2].trace_id) != key:
                yield group
                group = []
            group.append((r[0], r[1], change))
        if group:
            yield group


def open_sidecar(path: Path, ddl: str, format_version: str, *,
                 busy_timeout_s: float = 10.0) -> sqlite3.Connection:
    """Open (creating) one of iofold-tui's own history files: WAL, fsynced commits (an entry must be on disk
    before the user's database commits), schema ``ddl`` and a ``meta`` format version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    with write_txn(conn):
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (format_version,))
    return conn


def iter_chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
