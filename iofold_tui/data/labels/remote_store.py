"""Labels on a live D1 database: the ``LabelStore`` protocol with each write sent as conditional statements.

Everything a label key does locally holds here too: the key records an intent in the sidecar history
(committed, milliseconds — shown pending), the writer thread (labels/writer.py) applies intents in order
with backoff. Applying one:
  1. read the key's current row from D1 (never from the page cache);
  2. if that row was written by someone else after the intent was recorded (its ``updated_at`` is newer than
     the key press and it is not a row this store wrote), the label is a CONFLICT: flagged (a ``failed``
     outcome naming both labels), never written over the colleague's newer one;
  3. else record the step in the sidecar as pending and send ONE D1 batch: per row the statement is
     conditional on the row still being what step 1 read (patch.py's rule: matched on id, rating, notes,
     updated_at; INSERT only WHERE NOT EXISTS), each followed by a guard ``SELECT CASE WHEN changes() = 1
     THEN 1 ELSE json('…') END`` that fails the batch — D1 runs a batch as one transaction, so it rolls back
     whole — when a row moved between 1 and 3; the intent is then retried from 1 (and becomes a conflict);
  4. D1 acknowledged: the step is marked applied (the label shows as written).
Network down, timeouts, 429 and 5xx leave the intent queued (``busy``: the writer backs off and retries;
the sidecar keeps it across restarts, so offline labels land when the network returns). A 403 on a write
makes the source read-only with that reason. A timeout after D1 did apply the batch is safe: the retry reads
the row, finds it already at the target, and records it as applied.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.labels.history import FeedbackRow, Intent, LabelChange, LabelHistory
from iofold_tui.data.labels.store import LabelStore, LabelWriteError, LockedError, _Plan, _read_rows, _utc_now
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.d1client import D1Error
from iofold_tui.data.source.d1remote import Remote, RemoteConnection

_GUARD = "SELECT CASE WHEN changes() = 1 THEN 1 ELSE json('iofold: row moved') END"


class LabelConflictError(LabelWriteError):
    """A colleague's newer label is on the row: ours is not written."""


def _stamp19(value: str | None) -> str:
    return (value or "").replace("T", " ")[:19]


def _same(row: FeedbackRow | None) -> tuple[str, list[Any]]:
    """WHERE text + params: the (eval set, trace) row is exactly ``row`` (patch.py's matching)."""
    assert row is not None
    return ("id = ? AND rating = ? AND notes IS ? AND updated_at IS ?",
            [row.id, row.rating, row.notes, row.updated_at])


def conditional_statements(es: str, tid: str, cur: FeedbackRow | None,
                           new: FeedbackRow | None) -> list[tuple[str, list[Any]]]:
    """The statements moving the D1 row from ``cur`` (as read) to ``new``, each followed by its guard."""
    if new is None and cur is None:
        return []
    if new is None:
        where, ps = _same(cur)
        stmt = (f"DELETE FROM feedback WHERE eval_set_id = ? AND trace_id = ? AND {where}", [es, tid, *ps])
    elif cur is None:
        stmt = ("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
                "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM feedback WHERE eval_set_id = ? AND trace_id = ?)",
                [new.id, es, tid, new.rating, new.notes, new.created_at, new.updated_at, es, tid])
    else:
        where, ps = _same(cur)
        stmt = ("UPDATE feedback SET id = ?, rating = ?, notes = ?, created_at = ?, updated_at = ? "
                f"WHERE eval_set_id = ? AND trace_id = ? AND {where}",
                [new.id, new.rating, new.notes, new.created_at, new.updated_at, es, tid, *ps])
    return [stmt, (_GUARD, [])]


class RemoteLabelStore(LabelStore):
    """``LabelStore`` for ``d1://`` sources (see the module docstring). Same methods, same sidecar."""

    def __init__(self, remote: Remote, placeholder: Path, *, history_path: Path,
                 read_only_reason: str | None = None, max_wait_s: float = 30.0,
                 clock: Callable[[], datetime] = _utc_now) -> None:
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
        self.session = uuid.uuid4().hex
        self.session_start = clock()
        self._data_version = 0
        self._applying: Intent | None = None
        self._reconcile_due = True
        self._written: dict[tuple[str, str], FeedbackRow | None] = {}
        with contextlib.suppress(LockedError, D1Error):
            self._reconcile(wait_s=1.0)

    def _read_data_version(self) -> int:
        return self.remote.data_version()

    def others_version(self) -> int:
        return self.remote.others_version()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def _write(self, prepare: Callable[[Any], _Plan | None], wait_s: float | None = None) -> _Plan | None:
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
            statements: list[tuple[str, list[Any]]] = []
            for es, tid, cur, new in plan.writes:
                statements += conditional_statements(es, tid, cur, new)
            try:
                self.remote.client.batch(statements, retries=0) if statements else None
            except D1Error as exc:
                with contextlib.suppress(Exception):
                    plan.on_abort()
                if exc.kind == "sql" and "malformed JSON" in str(exc):
                    raise LockedError("a label row changed on D1 while it was written: reading it again") from None
                raise self._mapped(exc) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    plan.on_abort()
                raise
            self.remote.note_write(own=True)
            for es, tid, _cur, new in plan.writes:
                self._written[(es, tid)] = new
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
        if intent.kind in ("label", "note") and intent.eval_set_id and intent.trace_id:
            key = (intent.eval_set_id, intent.trace_id)
            self._conn.memo = {}  # the write below reads the same row: answered from this read, one round trip
            try:
                current = _read_rows(self._conn, key[0], [key[1]]).get(key[1])  # type: ignore[arg-type]
            except D1Error as exc:
                self._conn.memo = None
                raise self._mapped(exc) from None
            if (current is not None and key not in self._written
                    and _stamp19(current.updated_at) > _stamp19(intent.created_at)
                    and not self._is_ours(current)):
                self._conn.memo = None
                wanted = intent.rating if intent.kind == "label" else current.rating
                raise LabelConflictError(
                    f"conflict on trace {one_line(key[1], 40)}: a colleague labelled it "
                    f"{current.rating} at {_stamp19(current.updated_at)}, after your "
                    f"{wanted or 'clear'} ({_stamp19(intent.created_at)}); theirs is kept, yours not written")
        try:
            return super()._apply(intent, wait_s)
        finally:
            self._conn.memo = None

    def _is_ours(self, row: FeedbackRow) -> bool:
        """The row is one an earlier session of this history wrote (its feedback id and stamp)."""
        for step in self.history.recent(200):
            for c in step.changes:
                if c.new is not None and c.new.id == row.id and c.new.updated_at == row.updated_at:
                    return True
        return False

    def apply_next(self, wait_s: float = 0.25) -> Any:  # noqa: ANN401 - Applied
        from iofold_tui.data.labels.store import Applied

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
            self.history.consume(intent.id)
            return Applied("failed", intent, error=str(exc))
        except LockedError as exc:
            return Applied("busy", intent, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - NoLabel, ReadOnly, LabelWriteError, UndoConflict...
            from iofold_tui.data.labels.store import UndoConflictError

            self.history.consume(intent.id)
            return Applied("failed", intent, error=str(exc),
                           conflict=exc if isinstance(exc, UndoConflictError) else None)
        if result is None or (isinstance(result, LabelChange) and result.step_id is None):
            self.history.consume(intent.id)
        return Applied("applied", intent, result)

    def close(self) -> None:
        with self._lock:
            self.history.close()
