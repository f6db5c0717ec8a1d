"""THE label store of the app, and the label keys shared by the trace list, review mode and the matrix.

One ``LabelStore`` per app (created lazily, thread-safe): every label, bulk step, note, undo and redo
goes through it, so there is one undo stack and one history sidecar whatever pane the key was pressed in.
The write helpers turn the store's exceptions into ``LabelActionError`` with a one-line message.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text

from iofold_tui.data.errors import ReadOnlyError, SourceError
from iofold_tui.data.labels.store import (
    UNCHANGED,
    LabelChange,
    LabelStore,
    LabelWriteError,
    NoLabelError,
    Step,
    UndoConflictError,
)
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.label_keys import RATING_KEYS, label_bindings, undo_bindings  # noqa: F401 - re-exported
from iofold_tui.ui.widgets import Confirm

# rating, main key, digit key (iofold v1.0 review page: 1 positive, 2 neutral, 3 negative), footer text
_ATTR = "_iofold_label_store"
_create_lock = threading.Lock()


class LabelActionError(Exception):
    """A label action failed; the message is one line for a notification."""


def label_store(app: Any) -> LabelStore:
    """The app's one LabelStore (created on first use, from any thread; closed when the app goes away)."""
    store = getattr(app, _ATTR, None)
    if store is not None:
        return store
    with _create_lock:
        store = getattr(app, _ATTR, None)
        if store is None:
            source = app.source
            store = LabelStore(source.db.path, history_path=source.history_path,
                               read_only_reason=source.read_only_reason)
            setattr(app, _ATTR, store)
            weakref.finalize(app, store.close)
    return store


def open_label_store(app: Any) -> LabelStore | None:
    """The app's LabelStore if something already opened it (never opens one)."""
    return getattr(app, _ATTR, None)


def close_label_store(app: Any) -> None:
    """For the app's unmount (and tests that restart an app on the same files)."""
    store = getattr(app, _ATTR, None)
    if store is not None:
        setattr(app, _ATTR, None)
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
                note: str | None | object = UNCHANGED, seconds: float | None = None) -> LabelChange:
    """One label (or relabel / clear), committed when this returns."""
    return _wrap(lambda: store.set_label(eval_set_id, trace_id, rating, note=note,  # type: ignore[arg-type]
                                         seconds_spent=seconds))


def write_note(store: LabelStore, eval_set_id: str, trace_id: str, note: str | None) -> LabelChange:
    return _wrap(lambda: store.set_note(eval_set_id, trace_id, note))


def write_bulk(store: LabelStore, eval_set_id: str, trace_ids: Iterable[str], rating: str | None) -> Step | None:
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
    text = Text(f"{'Undo' if undo else 'Redo'} conflicts with changes made outside iofold-tui\n\n", style="bold")
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
