"""Label writes that survive anything: upsert/relabel/clear, bulk, notes, persistent undo/redo.

Write order (crash safety). Every write runs as:
  1. ``BEGIN IMMEDIATE`` on the user's database (busy timeout + bounded retries with backoff), then read
     the current feedback rows, so the recorded "old" state is exactly what we overwrite;
  2. write the history step to the sidecar, *committed*, as ``pending`` (or mark an undo/redo in flight);
  3. write the feedback rows and ``COMMIT`` the user's database;
  4. mark the step ``applied`` (``undone`` for an undo) in the sidecar.
A ``kill -9`` between 2 and 4 leaves an in-flight step. On open, ``_reconcile`` takes the database's
write lock (so no live writer is mid-way) and compares the rows with the step: rows at the step's "new"
state -> the transaction committed -> keep it (applied); still at "old" -> it never committed -> drop
it. So the database and the history agree after any crash, and every call that returned is in both.
The sidecar is a separate file because transactions spanning two WAL databases are not atomic.

Label keys do not wait for the lock (``queue_label`` & co.): they record an intent in the sidecar's
``queued`` table (committed before anything else) and ``apply_next`` — run by ``LabelWriter``'s thread —
applies the oldest intent with a short lock wait, through the protocol above, so a neighbour holding the
write lock for minutes delays labels (shown as pending) but never loses or reorders one.

What the store reads and opens with is ``store_base``'s; its errors, ratings and plan types are
``store_types``'s.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from iofold_tui.data.db import begin_immediate, is_readonly, write_txn
from iofold_tui.data.errors import ReadOnlyError, SourceError
from iofold_tui.data.labels.annotator import annotator_name
from iofold_tui.data.labels.history import (
    APPLIED,
    REDOING,
    UNDOING,
    UNDONE,
    FeedbackRow,
    Intent,
    IntentCancelled,
    LabelChange,
    LabelHistory,
    Step,
    iter_chunks,
)
from iofold_tui.data.labels.store_base import (
    CHUNK,
    LabelStoreBase,
    apply_writes,
    read_rows,
    settle_in_flight,
    travel_writes,
)
from iofold_tui.data.labels.store_types import (
    UNCHANGED,
    Applied,
    LabelWriteError,
    LockedError,
    NoLabelError,
    Unchanged,
    UndoConflictError,
    WritePlan,
    check_rating,
    new_feedback_id,
    utc_now,
)
from iofold_tui.data.ratings import Rating
from iofold_tui.data.sanitize import one_line


class LabelStore(LabelStoreBase):
    """Labels of one database. Thread-safe (one lock); each write is committed before it returns."""

    WAITING_ON = "db locked"  # what a queued label waits for (the header's "pending (db locked 12 s)")

    def __init__(self, db_path: Path, *, history_path: Path, read_only_reason: str | None = None,
                 busy_timeout_s: float = 5.0, max_wait_s: float = 30.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.is_file():
            raise SourceError(self.db_path, "no such database file")
        self.max_wait_s = max_wait_s
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock
        self._lock = threading.RLock()
        self.read_only_reason = read_only_reason or self._writability()
        self._conn = self._connect(busy_timeout_s)
        self.read_only_reason = self.read_only_reason or self._schema_problem()
        self.history = LabelHistory(history_path)
        self.history.set_meta("source_db", str(self.db_path.resolve()))
        self.history.annotator = annotator_name(self.db_path)  # recorded with every step (issue 18)
        self.session = uuid.uuid4().hex
        self.session_start = clock()
        self._data_version = self._read_data_version()
        self._applying: Intent | None = None  # the intent the running write applies (writer thread)
        self._reconcile_due = True
        with contextlib.suppress(LockedError):  # locked now: the writer settles it before the next write
            self._reconcile(wait_s=min(self.max_wait_s, 1.0))

    # -- label writes --------------------------------------------------------------------------------

    def set_label(
        self,
        eval_set_id: str,
        trace_id: str,
        rating: Rating | None,
        note: str | Unchanged | None = UNCHANGED,
        seconds_spent: float | None = None,
    ) -> LabelChange:
        """Label (or relabel, or clear with ``rating=None``) one trace; committed when this returns.

        ``note``: UNCHANGED keeps the stored note, a string replaces it, None/"" clears it.
        A call that changes nothing writes nothing and returns a change with ``step_id=None``.
        """
        check_rating(rating)

        def build(conn: sqlite3.Connection) -> list[LabelChange]:
            current = read_rows(conn, eval_set_id, [trace_id]).get(trace_id)
            new = self._target(current, rating, note)
            return [LabelChange(eval_set_id, trace_id, current, new, seconds_spent)]

        return self._single("label", eval_set_id, trace_id, build)

    def set_note(self, eval_set_id: str, trace_id: str, note: str | None,
                 seconds_spent: float | None = None) -> LabelChange:
        """Replace the note of an existing label (raises NoLabelError when the trace is unlabelled)."""

        def build(conn: sqlite3.Connection) -> list[LabelChange]:
            current = read_rows(conn, eval_set_id, [trace_id]).get(trace_id)
            if current is None:
                raise NoLabelError("label the trace before adding a note (iofold requires a rating)")
            return [LabelChange(eval_set_id, trace_id, current, self._target(current, current.rating, note),
                                seconds_spent)]

        return self._single("note", eval_set_id, trace_id, build)

    def set_labels(self, eval_set_id: str, trace_ids: Iterable[str], rating: Rating | None) -> Step | None:
        """Label (or clear) many traces as ONE transaction and ONE undo step; None when nothing changed."""
        check_rating(rating)
        ids = list(dict.fromkeys(trace_ids))

        def build(conn: sqlite3.Connection) -> list[LabelChange]:
            changes: list[LabelChange] = []
            now = self._stamp()
            for chunk in iter_chunks(ids, CHUNK):
                current = read_rows(conn, eval_set_id, chunk)
                for tid in chunk:
                    old = current.get(tid)
                    new = self._target(old, rating, UNCHANGED, now)
                    if new != old:
                        changes.append(LabelChange(eval_set_id, tid, old, new))
            return changes

        plan = self._write(lambda conn: self._plan_new_step("bulk", build(conn)))
        return None if plan is None else plan.result  # type: ignore[return-value]

    def put_rows(self, rows: Iterable[tuple[str, str, tuple[object, ...] | None, FeedbackRow | None]],
                 kind: str = "carry", annotator: str | None = None) -> Step | None:
        """Set exact rows (id and timestamps included) as ONE undo step: ``(eval set, trace, expected, new)``
        moves a key to ``new`` only while its row is still ``expected`` (its (id, rating, notes, updated_at),
        None for no row); others are left out. None when nothing changed. Carries labels made on an older
        copy."""
        items = list(rows)

        def build(conn: sqlite3.Connection) -> list[LabelChange]:
            changes: list[LabelChange] = []
            by_set: dict[str, list[tuple[str, tuple[object, ...] | None, FeedbackRow | None]]] = {}
            for es, tid, expected, new in items:
                if new is not None:
                    check_rating(new.rating)
                by_set.setdefault(es, []).append((tid, expected, new))
            for es, wanted in by_set.items():
                current = read_rows(conn, es, [tid for tid, _, _ in wanted])
                for tid, expected, new in wanted:
                    old = current.get(tid)
                    state = None if old is None else (old.id, old.rating, old.notes, old.updated_at)
                    if state == expected and new != old:
                        changes.append(LabelChange(es, tid, old, new))
            return changes

        plan = self._write(lambda conn: self._plan_new_step(kind, build(conn), annotator))
        return None if plan is None else plan.result  # type: ignore[return-value]

    def _target(self, current: FeedbackRow | None, rating: str | None,
                note: str | Unchanged | None, now: str | None = None) -> FeedbackRow | None:
        if rating is None:
            return None
        notes = (current.notes if current else None) if isinstance(note, Unchanged) else (note or None)
        if current is not None and (current.rating, current.notes) == (rating, notes):
            return current
        now = now or self._stamp()
        if current is None:
            return FeedbackRow(new_feedback_id(), rating, notes, now, now)
        return replace(current, rating=rating, notes=notes, updated_at=now)

    def _single(
        self,
        kind: str,
        eval_set_id: str,
        trace_id: str,
        build: Callable[[sqlite3.Connection], list[LabelChange]],
        wait_s: float | None = None,
    ) -> LabelChange:
        seen: list[LabelChange] = []

        def prepare(conn: sqlite3.Connection) -> WritePlan | None:
            changes = build(conn)
            seen.extend(changes)
            return self._plan_new_step(kind, [c for c in changes if c.changed])

        plan = self._write(prepare, wait_s)
        if plan is None:
            return seen[0] if seen else LabelChange(eval_set_id, trace_id, None, None)
        step: Step = plan.result  # type: ignore[assignment]
        return step.changes[0]

    def _plan_new_step(self, kind: str, changes: list[LabelChange],
                       annotator: str | None = None) -> WritePlan | None:
        if not changes:
            return None
        intent = None if self._applying is None else self._applying.id
        step_id, at = self.history.add_pending(kind, self.session, changes, intent, annotator)
        # Direct construction: dataclasses.replace costs seconds on a 100k-trace bulk step.
        step = Step(step_id, at, kind, APPLIED, tuple(
            LabelChange(c.eval_set_id, c.trace_id, c.old, c.new, c.seconds_spent, step_id) for c in changes))
        return WritePlan(writes=[(c.eval_set_id, c.trace_id, c.old, c.new) for c in changes],
                     on_commit=lambda: self.history.set_status(step_id, APPLIED, consume=intent),
                     on_abort=lambda: self.history.drop(step_id), result=step)

    # -- undo / redo ---------------------------------------------------------------------------------

    def undo(self, *, force: bool = False) -> Step | None:
        """Restore the rows before the latest applied step (exactly: same id, created_at, updated_at)."""
        return self._travel(undo=True, force=force)

    def redo(self, *, force: bool = False) -> Step | None:
        """Re-apply the most recently undone step; a new change clears the redo stack."""
        return self._travel(undo=False, force=force)

    def _travel(self, *, undo: bool, force: bool, wait_s: float | None = None) -> Step | None:
        def prepare(conn: sqlite3.Connection) -> WritePlan | None:
            step_id = self.history.top_applied() if undo else self.history.next_redo()
            step = None if step_id is None else self.history.load(step_id)
            if step is None:
                return None
            writes, conflicts = travel_writes(conn, step, undo)
            if conflicts and not force:
                es, tid = conflicts[0]
                raise UndoConflictError(
                    f"{'undo' if undo else 'redo'} refused: {len(conflicts)} label(s) were changed outside "
                    f"iofold-tui since (e.g. trace {one_line(tid, 60)} in eval set {one_line(es, 60)}); "
                    f"force it to overwrite them", step, conflicts)
            intent = None if self._applying is None else self._applying.id
            if intent is not None:  # before the in-flight mark: a crash in between leaves it queued
                with self.history._txn():
                    self.history.bind(intent, step.id)
            self.history.set_status(step.id, UNDOING if undo else REDOING)
            before, after = (APPLIED, UNDONE) if undo else (UNDONE, APPLIED)

            def abort() -> None:
                self.history.set_status(step.id, before)
                if intent is not None:
                    self.history.unbind(intent)

            return WritePlan(
                writes=writes,
                on_commit=lambda: self.history.set_status(step.id, after, consume=intent),
                on_abort=abort,
                result=replace(step, status=after),
            )

        plan = self._write(prepare, wait_s)
        return None if plan is None else plan.result  # type: ignore[return-value]

    # -- the one write path --------------------------------------------------------------------------

    def _write(self, prepare: Callable[[sqlite3.Connection], WritePlan | None],
               wait_s: float | None = None) -> WritePlan | None:
        if self.read_only_reason:
            raise ReadOnlyError(self.read_only_reason)
        with self._lock:
            if self._reconcile_due:
                self._reconcile(wait_s=self.max_wait_s if wait_s is None else wait_s)
            plan: WritePlan | None = None
            committed = False
            try:
                with write_txn(self._conn, max_wait_s=self.max_wait_s if wait_s is None else wait_s,
                               timeout_error=self._locked_error):
                    plan = prepare(self._conn)
                    if plan is None:
                        return None
                    apply_writes(self._conn, plan.writes)
                committed = True
            except sqlite3.IntegrityError as exc:
                raise LabelWriteError(f"label not saved: {exc} (does the trace / eval set exist?)") from None
            except sqlite3.OperationalError as exc:
                if is_readonly(exc):
                    raise ReadOnlyError(f"the database refused the write: {exc}") from None
                raise
            finally:
                if not committed and plan is not None:
                    with contextlib.suppress(sqlite3.Error):
                        plan.on_abort()  # if this fails too, _reconcile settles it on the next open
            plan.on_commit()
            return plan

    def _locked_error(self, exc: sqlite3.OperationalError) -> LockedError:
        return LockedError(
            f"label not saved: another process kept {self.db_path.name} locked for over "
            f"{self.max_wait_s:g} s (wrangler dev or a script?); try again")

    def _reconcile(self, wait_s: float) -> None:
        """Settle steps left in flight by a crash (see the module docstring), then the intents bound to them.
        Raises LockedError when the lock stays busy for ``wait_s`` (it is retried before the next write)."""
        in_flight = self.history.in_flight()
        if not in_flight:
            self.history.settle_bound()
            self._reconcile_due = False
            return
        with self._lock:
            if self.read_only_reason:
                self._conn.execute("BEGIN")
            else:
                begin_immediate(self._conn, time.monotonic() + wait_s, self._locked_error)
            try:
                settle_in_flight(self._conn, self.history, in_flight)
            finally:
                self._conn.execute("ROLLBACK")
            self.history.settle_bound()
            self._reconcile_due = False

    # -- the queue: label keys never wait for the lock (recording the others: LabelStoreBase) ---------

    def queue_label(self, eval_set_id: str, trace_id: str, rating: Rating | None,
                    note: str | Unchanged | None = UNCHANGED, seconds_spent: float | None = None) -> Intent:
        """Record a label key (committed to the sidecar, milliseconds); ``apply_next`` writes it."""
        check_rating(rating)
        keep = isinstance(note, Unchanged)
        return self._enqueue(
            "label",
            eval_set_id=eval_set_id,
            trace_id=trace_id,
            rating=rating,
            note_set=not keep,
            note=None if keep else (note or None),
            seconds_spent=seconds_spent,
        )

    def apply_next(self, wait_s: float = 0.25) -> Applied:
        """Write the oldest queued intent, waiting at most ``wait_s`` for the lock (writer thread)."""
        intent = self.history.next_queued()
        if intent is None:
            return Applied("empty")
        with self._lock:
            self._applying = intent
            self._conn.execute(f"PRAGMA busy_timeout = {max(1, int(wait_s * 1000))}")
            try:
                result = self._apply(intent, wait_s)
            except LockedError as exc:
                return Applied("busy", intent, error=str(exc))
            except IntentCancelled:  # undone by the user while this write waited: it stays cancelled
                return Applied("cancelled", intent)
            except UndoConflictError as exc:
                self.history.consume(intent.id)
                return Applied("failed", intent, error=str(exc), conflict=exc)
            except (LabelWriteError, NoLabelError, ReadOnlyError, ValueError) as exc:
                self.history.consume(intent.id)
                return Applied("failed", intent, error=str(exc))
            finally:
                self._applying = None
                self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        if result is None or (isinstance(result, LabelChange) and result.step_id is None):
            self.history.consume(intent.id)  # it changed nothing: no step consumed it
        return Applied("applied", intent, result)

    def _apply(self, intent: Intent, wait_s: float) -> object:
        if intent.kind in ("undo", "redo"):
            return self._travel(undo=intent.kind == "undo", force=intent.force, wait_s=wait_s)
        es, tid = intent.eval_set_id or "", intent.trace_id or ""
        note: str | Unchanged | None = intent.note if intent.note_set else UNCHANGED
        if intent.kind == "note":
            def build(conn: sqlite3.Connection) -> list[LabelChange]:
                current = read_rows(conn, es, [tid]).get(tid)
                if current is None:
                    raise NoLabelError("note not saved: the trace has no label in this eval set")
                return [LabelChange(es, tid, current, self._target(current, current.rating, note))]
        else:
            def build(conn: sqlite3.Connection) -> list[LabelChange]:
                current = read_rows(conn, es, [tid]).get(tid)
                return [LabelChange(es, tid, current, self._target(current, intent.rating, note),
                                    intent.seconds_spent)]
        return self._single(intent.kind, es, tid, build, wait_s)

