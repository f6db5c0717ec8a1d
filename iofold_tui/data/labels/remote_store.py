"""Labels on a live D1 database: the ``LabelStore`` protocol with each write sent as conditional statements.

Everything a label key does locally holds here too: the key records an intent in the sidecar history
(committed, milliseconds — shown pending), the writer thread (labels/writer.py) applies intents in order
with backoff. A label or note key is applied in ONE round trip, one D1 batch (a batch is one transaction):
  1. the key's row as it is; 2. the write, conditional: it replaces the row only when the row was last written
  no later than the key press (``updated_at``); our own writes are stamped with the key press time, so only
  a colleague's label made after the key press is "newer"; 3. the row after.
A row that was newer and so left as it is: a CONFLICT, flagged (a ``failed`` outcome naming both labels),
never written over. Otherwise the step (row before -> row after) goes to the sidecar history as applied, so
undo/redo and ``export-labels`` work as on a file. Undo/redo read the rows, then send conditional statements
(patch.py's rule: the row must still be exactly what was read; a guard ``SELECT CASE WHEN changes() = 1 THEN 1
ELSE json('…') END`` after each fails the batch — rolled back whole — when it moved meanwhile).
Network down, timeouts, 429 and 5xx leave the intent queued (``busy``: the writer backs off and retries; the
sidecar keeps it across restarts, so offline labels land when the network returns). A 403 on a write makes
the source read-only with that reason. A timeout after D1 applied the batch is safe: the retry finds the row
already at the target (no change, the intent is consumed). The one gap against the local store: the D1 commit
comes before the sidecar step, so a crash between the two leaves the label in D1 without its undo entry.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.labels.annotator import annotator_name
from iofold_tui.data.labels.history import APPLIED, FeedbackRow, Intent, LabelChange, LabelHistory
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.labels.store_types import (
    Applied,
    LabelWriteError,
    LockedError,
    NoLabelError,
    UndoConflictError,
    WritePlan,
    check_rating,
    new_feedback_id,
    utc_now,
)
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.d1.api import D1Error
from iofold_tui.data.source.d1.remote import Remote, RemoteConnection

_ROW = "SELECT id, rating, notes, created_at, updated_at FROM feedback WHERE eval_set_id = ? AND trace_id = ?"
# The row may be replaced when it was last written no later than the key press (text 'YYYY-MM-DD HH:MM:SS',
# ISO 'T' and fractions/zone ignored); a newer row is a colleague's newer label: left as it is.
_NOT_NEWER = "(updated_at IS NULL OR replace(substr(CAST(updated_at AS TEXT), 1, 19), 'T', ' ') <= ?)"


def label_batch(intent: Intent, new_id: str) -> list[tuple[str, list[Any]]]:
    """One label/note key as one D1 batch (one transaction): the row before, the conditional write(s), the
    row after. Our write is stamped with the key press time, so a later key of ours never looks "newer"
    than an earlier one, and an offline label keeps the time it was made."""
    es, tid = intent.eval_set_id, intent.trace_id
    at = _stamp19(intent.created_at)
    key = [es, tid]
    out: list[tuple[str, list[Any]]] = [(_ROW, key)]
    note = intent.note or None
    if intent.kind == "note":
        out.append((f"UPDATE feedback SET notes = ?, updated_at = ? WHERE eval_set_id = ? AND trace_id = ? "
                    f"AND {_NOT_NEWER} AND notes IS NOT ?", [note, at, *key, at, note]))
    elif intent.rating is None:
        out.append((f"DELETE FROM feedback WHERE eval_set_id = ? AND trace_id = ? AND {_NOT_NEWER}",
                    [*key, at]))
    else:
        set_note = 1 if intent.note_set else 0
        out.append(("UPDATE feedback SET rating = ?, notes = CASE WHEN ? THEN ? ELSE notes END, "
                    "updated_at = ? "
                    f"WHERE eval_set_id = ? AND trace_id = ? AND {_NOT_NEWER} "
                    "AND (rating IS NOT ? OR (? AND notes IS NOT ?))",
                    [intent.rating, set_note, note, at, *key, at, intent.rating, set_note, note]))
        out.append(("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
                    "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM feedback WHERE eval_set_id = ? AND trace_id = ?)",
                    [new_id, es, tid, intent.rating, note, at, at, *key]))
    out.append((_ROW, key))
    return out


def _row_of(result: Any) -> FeedbackRow | None:
    if not result.rows:
        return None
    r = result.rows[0]
    return FeedbackRow(r[0], r[1], r[2], r[3], r[4])


class LabelConflictError(LabelWriteError):
    """A colleague's newer label is on the row: ours is not written."""

    def __init__(self, message: str, current: FeedbackRow | None = None) -> None:
        super().__init__(message)
        self.current = current  # the row as D1 has it


def _stamp19(value: str | None) -> str:
    return (value or "").replace("T", " ")[:19]


def _same(row: FeedbackRow | None) -> tuple[str, list[Any]]:
    """WHERE text + params: the (eval set, trace) row is exactly ``row`` (patch.py's matching)."""
    assert row is not None
    return ("id = ? AND rating = ? AND notes IS ? AND updated_at IS ?",
            [row.id, row.rating, row.notes, row.updated_at])


MAX_PLAN_ROWS = 20_000  # rows one undoable step may change on a live D1 (all in one request, one transaction)
_GROUP_BYTES = 400_000  # JSON text per parameter: under D1's 2 MB per value


def _guard(n: int) -> tuple[str, list[Any]]:
    """Fails the batch (rolled back whole) unless the statement before changed exactly ``n`` rows."""
    return (f"SELECT CASE WHEN changes() = {int(n)} THEN 1 ELSE json('iofold: a row moved') END", [])


def _j(i: int) -> str:
    return f"json_extract(j.value, '$[{i}]')"


def _groups(items: list[list[Any]]) -> list[list[list[Any]]]:
    out: list[list[list[Any]]] = []
    size = 0
    for item in items:
        n = len(json.dumps(item, ensure_ascii=False))
        if not out or size + n > _GROUP_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


def plan_statements(writes: list[tuple[str, str, FeedbackRow | None, FeedbackRow | None]]
                    ) -> list[tuple[str, list[Any]]]:
    """Set-based conditional statements moving every row of ``writes`` from its current state (as read) to its
    target — rows as one JSON parameter per group (``json_each``), so a step of thousands of rows is a few
    statements — each followed by a guard on the number of rows it changed: sent as ONE batch, a row that
    moved meanwhile rolls the whole step back (patch.py's rule: matched on id, rating, notes, updated_at)."""
    if len(writes) > MAX_PLAN_ROWS:
        raise LabelWriteError(f"{len(writes):,} labels in one step: a live D1 takes at most "
                              f"{MAX_PLAN_ROWS:,} at once "
                              "(label fewer, or pull a copy, label there and push)")
    updates = [[es, tid, c.id, c.rating, c.notes, c.updated_at,
                n.id, n.rating, n.notes, n.created_at, n.updated_at]
               for es, tid, c, n in writes if c is not None and n is not None]
    inserts = [[es, tid, n.id, n.rating, n.notes, n.created_at, n.updated_at]
               for es, tid, c, n in writes if c is None and n is not None]
    deletes = [[es, tid, c.id, c.rating, c.notes, c.updated_at]
               for es, tid, c, n in writes if c is not None and n is None]
    same = (f"feedback.eval_set_id = {_j(0)} AND feedback.trace_id = {_j(1)} AND feedback.id = {_j(2)} "
            f"AND feedback.rating = {_j(3)} AND feedback.notes IS {_j(4)} AND feedback.updated_at IS {_j(5)}")
    out: list[tuple[str, list[Any]]] = []
    for group in _groups(updates):
        out.append((f"UPDATE feedback SET id = {_j(6)}, rating = {_j(7)}, notes = {_j(8)}, "
                    f"created_at = {_j(9)}, "
                    f"updated_at = {_j(10)} FROM json_each(?) AS j WHERE {same}", [json.dumps(group)]))
        out.append(_guard(len(group)))
    for group in _groups(deletes):
        out.append((f"DELETE FROM feedback WHERE EXISTS (SELECT 1 FROM json_each(?) AS j WHERE {same})",
                    [json.dumps(group)]))
        out.append(_guard(len(group)))
    for group in _groups(inserts):
        out.append(("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
                    f"SELECT {_j(2)}, {_j(0)}, {_j(1)}, {_j(3)}, {_j(4)}, {_j(5)}, {_j(6)} "
                    "FROM json_each(?) AS j "
                    "WHERE NOT EXISTS (SELECT 1 FROM feedback f WHERE f.eval_set_id = "
                    f"{_j(0)} AND f.trace_id = {_j(1)})", [json.dumps(group)]))
        out.append(_guard(len(group)))
    return out


class RemoteLabelStore(LabelStore):
    """``LabelStore`` for ``d1://`` sources (see the module docstring). Same methods, same sidecar."""

    WAITING_ON = "D1 unreachable"  # busy here means the network, 429 or 5xx, never a lock

    def __init__(self, remote: Remote, placeholder: Path, *, history_path: Path,
                 read_only_reason: str | None = None, max_wait_s: float = 30.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.remote = remote
        self.db_path = Path(placeholder)
        self.max_wait_s = max_wait_s
        self._busy_timeout_s = 5.0
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = RemoteConnection(remote, cached=False)  # type: ignore[assignment]
        self.read_only_reason = read_only_reason or remote.read_only_reason
        if not self.read_only_reason:
            with contextlib.suppress(D1Error):  # offline at start: labels queue; the schema is checked later
                self.read_only_reason = self._schema_problem()
        self.history = LabelHistory(history_path)
        self.history.set_meta("source_db", str(self.db_path))
        self.history.annotator = annotator_name(self.db_path)  # who made each step, as locally (issue 18)
        self.session = uuid.uuid4().hex
        self.session_start = clock()
        self._data_version = 0
        self._applying: Intent | None = None
        self._reconcile_due = True
        with contextlib.suppress(LockedError, D1Error):
            self._reconcile(wait_s=1.0)

    def _read_data_version(self) -> int:
        return self.remote.data_version()

    def others_version(self) -> int:
        return self.remote.others_version()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def _write(self, prepare: Callable[[Any], WritePlan | None],
               wait_s: float | None = None) -> WritePlan | None:
        if self.read_only_reason or self.remote.read_only_reason:
            raise ReadOnlyError(self.read_only_reason or self.remote.read_only_reason or "read-only")
        with self._lock:
            try:
                if self._reconcile_due:
                    self._reconcile(wait_s=self.max_wait_s if wait_s is None else wait_s)
                plan = prepare(self._conn)
            except D1Error as exc:
                raise self._mapped(exc) from None
            if plan is None:
                return None
            try:
                statements = plan_statements(plan.writes)
                if statements:
                    self.remote.client.batch(statements, retries=0, atomic=True)
            except D1Error as exc:
                if exc.retryable:  # D1 may or may not have applied it: the step stays in flight, and the rows
                    self._reconcile_due = True  # decide before the next write (the store's crash recovery)
                    raise self._mapped(exc) from None
                with contextlib.suppress(Exception):
                    plan.on_abort()  # D1 refused the batch: it rolled back whole
                if exc.kind == "sql" and "malformed JSON" in str(exc):
                    raise LockedError(
                        "a label row changed on D1 while it was written: reading it again") from None
                raise self._mapped(exc) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    plan.on_abort()
                raise
            self.remote.note_write(own=True)
            plan.on_commit()
            return plan

    def _mapped(self, exc: D1Error) -> Exception:
        if exc.retryable:
            return LockedError(f"label waiting for D1: {exc}")
        if exc.kind == "forbidden":
            self.read_only_reason = f"the API token cannot write to D1 ({exc})"
            self.remote.read_only_reason = self.read_only_reason
            return ReadOnlyError(self.read_only_reason)
        return LabelWriteError(f"label not saved: {exc}")

    def _apply(self, intent: Intent, wait_s: float) -> object:
        """A label or note key: ONE D1 batch (see the module docstring); undo/redo: the store's own path."""
        if intent.kind not in ("label", "note") or not intent.eval_set_id or not intent.trace_id:
            return super()._apply(intent, wait_s)
        if self.read_only_reason or self.remote.read_only_reason:
            raise ReadOnlyError(self.read_only_reason or self.remote.read_only_reason or "read-only")
        es, tid = intent.eval_set_id, intent.trace_id
        if intent.kind == "label":
            check_rating(intent.rating)
        try:
            if self._reconcile_due:
                self._reconcile(wait_s=wait_s)
            results = self.remote.client.batch(label_batch(intent, new_feedback_id()), retries=0)
        except D1Error as exc:
            raise self._mapped(exc) from None
        old, new = _row_of(results[0]), _row_of(results[-1])
        self.remote.note_write(own=True)
        if old is not None and new == old and _stamp19(old.updated_at) > _stamp19(intent.created_at):
            wanted = (intent.rating or "clear") if intent.kind == "label" else "note"
            target = (intent.rating, intent.note if intent.note_set else old.notes)
            if intent.kind == "note" or target != (old.rating, old.notes):
                # Short enough that the notification (which names the trace) shows it whole at 80 columns.
                theirs = f"{one_line(str(old.rating), 20)} ({_stamp19(old.updated_at)[:16]})"
                raise LabelConflictError(f"a colleague's {theirs} is newer than your {wanted}: theirs kept",
                                         old)
        if intent.kind == "note" and old is None:
            raise NoLabelError("note not saved: the trace has no label in this eval set")
        change = LabelChange(es, tid, old, new, intent.seconds_spent)
        if new == old:
            return change  # nothing to change: no step (the intent is consumed)
        step_id, _ = self.history.add_pending(intent.kind, self.session, [change], intent.id)
        self.history.set_status(step_id, APPLIED, consume=intent.id)
        return LabelChange(es, tid, old, new, intent.seconds_spent, step_id)

    def apply_next(self, wait_s: float = 0.25) -> Any:
        intent = self.history.next_queued()
        if intent is None:
            return Applied("empty")
        try:
            with self._lock:
                self._applying = intent
                try:
                    result = self._apply(intent, wait_s)
                finally:
                    self._applying = None
        except LabelConflictError as exc:
            self._queue_conflict(intent, exc.current)
            self.history.consume(intent.id)
            return Applied("failed", intent, error=f"{exc}; yours is in the conflict queue (Overview: C)")
        except LockedError as exc:
            return Applied("busy", intent, error=str(exc))
        except Exception as exc:
            self.history.consume(intent.id)
            return Applied("failed", intent, error=str(exc),
                           conflict=exc if isinstance(exc, UndoConflictError) else None)
        if result is None or (isinstance(result, LabelChange) and result.step_id is None):
            self.history.consume(intent.id)
        return Applied("applied", intent, result)

    def _queue_conflict(self, intent: Intent, current: FeedbackRow | None) -> None:
        """The key that lost to a colleague's newer label goes to the conflict queue as the alternative
        ("theirs" there: what this key wanted; "mine": the row as D1 has it), so it can still be taken in
        one key later, not only read once in a notification."""
        from iofold_tui.data.labels.conflict_queue import QueuedConflict, queue_conflicts

        assert intent.eval_set_id is not None and intent.trace_id is not None
        rating = intent.rating if intent.kind == "label" else (current.rating if current else None)
        keep_notes = intent.kind == "label" and not intent.note_set
        notes = (current.notes if current else None) if keep_notes else intent.note
        origin = f"your key at {_stamp19(intent.created_at)} (a colleague's label was newer)"
        wanted = QueuedConflict(intent.eval_set_id, intent.trace_id, origin, rating, notes,
                                annotator_name(self.db_path), _stamp19(utc_now().isoformat(sep=" ")))
        with contextlib.suppress(OSError):
            queue_conflicts(self.db_path, [wanted])

    def close(self) -> None:
        with self._lock:
            self.history.close()


def label_store_for(source: Any) -> LabelStore:
    """The LabelStore of ``source``: on a live D1 database labels go as conditional D1 statements."""
    if source.kind == "d1-remote":
        return RemoteLabelStore(source.db.remote, source.db.path, history_path=source.history_path,
                                read_only_reason=source.read_only_reason)
    return LabelStore(source.db.path, history_path=source.history_path,
                      read_only_reason=source.read_only_reason)
