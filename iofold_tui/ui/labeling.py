"""THE label store of the app, and the label keys shared by the trace list, review mode and the matrix.

One ``LabelStore`` per app (created lazily, thread-safe): every label, bulk step, note, undo and redo
goes through it, so there is one undo stack and one history sidecar whatever pane the key was pressed in.
The write helpers turn the store's exceptions into ``LabelActionError`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text

from iofold_tui.data.errors import ReadOnlyError, SourceError
from iofold_tui.data.labels.history import Intent, LabelChange, Step
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.labels.store_types import UNCHANGED, LabelWriteError, NoLabelError, UndoConflictError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.widgets import Confirm

_create_lock = threading.Lock()


class LabelActionError(Exception):
    """A label action failed; the message is one line for a notification."""


def label_store(app: Any) -> LabelStore:
    """The app's one LabelStore (created on first use, from any thread; closed when the app goes away)."""
    store = app.state.label_store
    if store is not None:
        return store
    with _create_lock:
        store = app.state.label_store
        if store is None:
            source = app.source
            store = open_store(source)
            app.state.label_store = store
            weakref.finalize(app, store.close)
    return store


def open_store(source: Any) -> LabelStore:  # an OpenedSource
    """The LabelStore for ``source``: a live D1 database writes labels as conditional D1 statements."""
    from iofold_tui.data.labels.remote_store import label_store_for

    return label_store_for(source)


def open_label_store(app: Any) -> LabelStore | None:
    """The app's LabelStore if something already opened it (never opens one)."""
    return app.state.label_store


def close_label_store(app: Any) -> None:
    """For the app's unmount (and tests that restart an app on the same files)."""
    close_label_queue(app)  # the writer first: it uses the store
    store = app.state.label_store
    if store is not None:
        app.state.label_store = None
        store.close()


def disabled_reason(app: Any) -> str | None:
    """Why labelling is off for this source (read-only file, no feedback table...), or None."""
    if app.source.read_only_reason:
        return app.source.read_only_reason
    try:
        return label_store(app).read_only_reason
    except SourceError as exc:
        return str(exc)


def explain_disabled(app: Any) -> bool:
    """A label/undo key in a pane where labelling is off: say why (one notification) and return True."""
    reason = disabled_reason(app)
    if reason:
        app.notify(f"labelling disabled: {one_line(reason, 160)}", severity="warning")
        return True
    if app.state.eval_set_id is None:
        app.notify("no eval set to label in: pick one (v) or create one in review mode (R, then c)",
                   severity="warning")
        return True
    return False


def _wrap(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ReadOnlyError, LabelWriteError, NoLabelError, SourceError) as exc:
        raise LabelActionError(one_line(str(exc), 200)) from None


def write_label(store: LabelStore, eval_set_id: str, trace_id: str, rating: str | None, *,
                note: str | object | None = UNCHANGED, seconds: float | None = None) -> LabelChange:
    """One label (or relabel / clear), committed when this returns."""
    # ``rating`` comes from a key binding as a str; the store checks it is a Rating (ignores below too).
    return _wrap(lambda: store.set_label(eval_set_id, trace_id, rating, note=note,  # type: ignore[arg-type]
                                         seconds_spent=seconds))


def write_note(store: LabelStore, eval_set_id: str, trace_id: str, note: str | None) -> LabelChange:
    return _wrap(lambda: store.set_note(eval_set_id, trace_id, note))


def write_bulk(store: LabelStore, eval_set_id: str, trace_ids: Iterable[str],
               rating: str | None) -> Step | None:
    """Many labels as ONE transaction and ONE undo step."""
    return _wrap(lambda: store.set_labels(eval_set_id, trace_ids, rating))  # type: ignore[arg-type]


def travel(store: LabelStore, *, undo: bool, force: bool = False) -> Step | None:
    """Undo or redo one step; raises UndoConflictError when someone else changed those rows since."""
    return _wrap(lambda: store.undo(force=force) if undo else store.redo(force=force))


def describe_change(change: LabelChange, *, undone: bool = False) -> str:
    """"trace_001: unlabelled → positive", read in the direction the label moved (``undone``: back)."""
    old = change.old.rating if change.old else "unlabelled"
    new = change.new.rating if change.new else "unlabelled"
    if undone:
        old, new = new, old
    if old == new:
        return f"{one_line(change.trace_id, 40)}: note {'edited' if change.new else 'cleared'}"
    return f"{one_line(change.trace_id, 40)}: {old} → {new}"


def describe_step(step: Step, *, undone: bool) -> str:
    """"Undid trace_001: positive → unlabelled" / "Redid bulk step of 120 labels"."""
    verb = "Undid" if undone else "Redid"
    if len(step.changes) == 1:
        return f"{verb} {describe_change(step.changes[0], undone=undone)}"
    return f"{verb} {step.kind} step of {plural(len(step.changes), 'label')}"


def conflict_question(exc: UndoConflictError, *, undo: bool) -> Text:
    what = "Undo" if undo else "Redo"
    text = Text(f"{what} conflicts with changes made outside iofold-tui\n\n", style="bold")
    text.append(one_line(str(exc), 300))
    text.append(f"\n\nOverwrite {plural(len(exc.conflicts), 'label')} anyway?")
    return text


def rating_deltas(changes: Iterable[LabelChange], *, reverse: bool = False) -> dict[str, int]:
    """How per-rating counts move when ``changes`` are applied (``reverse``: undone)."""
    deltas: dict[str, int] = {}
    for c in changes:
        before, after = (c.new, c.old) if reverse else (c.old, c.new)
        if before is not None:
            deltas[before.rating] = deltas.get(before.rating, 0) - 1
        if after is not None:
            deltas[after.rating] = deltas.get(after.rating, 0) + 1
    return deltas


def undo_redo(app: Any, *, undo: bool, done: Callable[[Step | None], None]) -> None:
    """Undo/redo from a key: notify what happened, ask before overwriting foreign changes, then ``done``."""
    store = label_store(app)

    def finish(step: Step | None) -> None:
        if step is None:
            app.notify(f"nothing to {'undo' if undo else 'redo'}")
        else:
            app.notify(describe_step(step, undone=undo), timeout=4)
        done(step)

    def forced(yes: bool | None) -> None:
        if yes:
            try:
                finish(travel(store, undo=undo, force=True))
            except LabelActionError as exc:
                app.notify(str(exc), severity="error")

    try:
        step = travel(store, undo=undo)
    except UndoConflictError as exc:
        app.push_screen(Confirm(conflict_question(exc, undo=undo)), forced)
        return
    except LabelActionError as exc:
        app.notify(str(exc), severity="error")
        return
    finish(step)


# -- queued labels: keys never wait for the database lock --------------------------------------------


class LabelQueue:
    """The app's queued labels as the UI shows them (UI thread), fed by the writer thread.

    A label key records its intent in the sidecar (milliseconds) and returns; ``LabelWriter`` writes it when
    the database lock is free. ``pending`` is what is not written yet (shown as PENDING on the trace, in the
    review bar and as a count in every pane's header); panes get ``on_label_applied(applied)`` when one lands.
    """

    def __init__(self, app: Any, store: LabelStore) -> None:
        from iofold_tui.data.labels.writer import LabelWriter

        self.app, self.store = app, store
        self.pending: list[Intent] = [] if store.read_only else store.queued()
        self.from_last_session = len(self.pending)
        self.waiting_s = 0.0  # how long the oldest pending label has waited for the lock
        self.error: str | None = None
        self.writer = None
        if not store.read_only:
            timing = getattr(app, "label_writer_timing", None)
            self.writer = LabelWriter(store, self._from_thread, timing).start()
            if self.pending:
                self.writer.wake()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()

    # -- the writer's events, on the UI thread
    def _from_thread(self, event: Any) -> None:
        if not self.app.is_running:  # the app is going away: the intents are safe in the sidecar
            return
        self.app.call_from_thread(self._on_event, event)

    def _on_event(self, event: Any) -> None:
        if event.kind == "busy":
            self.waiting_s, self.error = event.waiting_s, event.applied.error if event.applied else None
            self._refresh_headers()
            return
        self.waiting_s, self.error = 0.0, None
        if event.kind == "idle":
            if self.pending:
                self.pending = self.store.queued()
                self._refresh_headers()
            if self.from_last_session and not self.pending:
                self.app.notify(f"{self.from_last_session:,} label(s) queued by the previous session are now "
                                "written to the database.", title="labels", timeout=8)
                self.from_last_session = 0
            return
        applied = event.applied
        self.pending = self.store.queued()
        if event.kind == "failed":
            intent = applied.intent
            if intent and intent.trace_id:
                what = f"{intent.kind} of {one_line(intent.trace_id, 40)}"
            else:
                what = intent.kind if intent else "label"
            if applied.conflict is not None:
                undo = intent is not None and intent.kind == "undo"

                def forced(yes: bool | None) -> None:
                    if yes:
                        self._add(self.store.queue_travel(undo=undo, force=True))

                self.app.push_screen(Confirm(conflict_question(applied.conflict, undo=undo)), forced)
            else:
                self.app.notify(f"{what} not saved: {one_line(applied.error or '', 160)}", severity="error",
                                timeout=10)
        elif applied.intent is not None and applied.intent.kind in ("undo", "redo"):
            step = applied.result
            self.app.notify(f"nothing to {applied.intent.kind}" if step is None else
                            describe_step(step, undone=applied.intent.kind == "undo"), timeout=4)
        for screen in _all_screens(self.app):
            handler = getattr(screen, "on_label_applied", None)
            if handler is not None:
                handler(applied)
        self._refresh_headers()

    def _refresh_headers(self) -> None:
        screen = self.app.screen
        if getattr(screen, "is_mounted", False) and hasattr(screen, "pending_changed"):
            with contextlib.suppress(Exception):  # a pane half-way through (un)mounting
                screen.pending_changed()

    # -- keys
    def _add(self, intent: Intent) -> Intent:
        self.pending.append(intent)
        if self.writer is not None:
            self.writer.wake()
        self._refresh_headers()
        return intent

    def label(self, eval_set_id: str, trace_id: str, rating: str | None, *, note: Any = UNCHANGED,
              seconds: float | None = None) -> Intent:
        return self._add(_wrap(lambda: self.store.queue_label(
            eval_set_id, trace_id, rating, note=note, seconds_spent=seconds)))  # type: ignore[arg-type]

    def note(self, eval_set_id: str, trace_id: str, note: str | None) -> Intent:
        return self._add(_wrap(lambda: self.store.queue_note(eval_set_id, trace_id, note)))

    def travel(self, *, undo: bool) -> tuple[str, Intent | None]:
        """Undo/redo as a key: a label still queued is cancelled (redo queues it again); otherwise an undo or
        redo intent is queued behind the labels before it. Returns (what happened, the intent)."""
        if undo:
            cancelled = _wrap(self.store.cancel_queued)
            if cancelled is not None:
                self.pending = self.store.queued()
                self._refresh_headers()
                self.app.notify(f"Cancelled the queued label of {one_line(cancelled.trace_id or '', 40)} "
                                "(it was never written)", timeout=4)
                return "cancelled", cancelled
        else:
            restored = _wrap(self.store.restore_cancelled)
            if restored is not None:
                self.app.notify(f"Queued again: the label of {one_line(restored.trace_id or '', 40)}",
                                timeout=4)
                return "restored", self._add(restored)
        return "queued", self._add(_wrap(lambda: self.store.queue_travel(undo=undo)))

    def pending_for(self, eval_set_id: str, trace_id: str) -> Intent | None:
        """The latest label/note still queued for this trace in this set."""
        for intent in reversed(self.pending):
            if intent.trace_id == trace_id and intent.eval_set_id == eval_set_id:
                return intent
        return None

    def pending_traces(self, eval_set_id: str) -> dict[str, Intent]:
        return {i.trace_id: i for i in self.pending if i.eval_set_id == eval_set_id and i.trace_id}

    def summary(self) -> str | None:
        """For the header: "⧗ 3 labels pending (database locked 12 s)", or None."""
        if not self.pending:
            return None
        n = len(self.pending)
        text = f"⧗ {n:,} label{'s' if n != 1 else ''} pending"
        if self.waiting_s >= 1:
            text += f" ({self.store.WAITING_ON} {self.waiting_s:.0f} s)"
        return text


def _all_screens(app: Any) -> list[Any]:
    seen: list[Any] = []
    for stack in getattr(app, "_screen_stacks", {}).values():
        for screen in stack:
            if screen not in seen:
                seen.append(screen)
    return seen


def label_queue(app: Any) -> LabelQueue:
    """The app's LabelQueue (opens the store and starts the writer on first use)."""
    queue = app.state.label_queue
    if queue is None:
        store = label_store(app)
        with _create_lock:
            queue = app.state.label_queue
            if queue is None:
                queue = LabelQueue(app, store)
                app.state.label_queue = queue
    return queue


def open_label_queue(app: Any) -> LabelQueue | None:
    return app.state.label_queue


def close_label_queue(app: Any) -> None:
    queue = app.state.label_queue
    if queue is not None:
        app.state.label_queue = None
        queue.close()
