"""The review pane's label keys, undo/redo and notes: a label is queued (recorded in the sidecar,
milliseconds; ``ui.labeling.LabelQueue``) and written by the writer thread, so the key never waits for the
database lock; once written (``on_label_applied``) the model's counts and labels follow."""

from __future__ import annotations

import time

from textual.widgets import TextArea

from iofold_tui.data.labels.history import Step
from iofold_tui.data.labels.review_queue import QueueItem
from iofold_tui.data.labels.store_types import UNCHANGED, Applied
from iofold_tui.ui import labeling
from iofold_tui.ui.panes.review_show import ReviewShow


def _linked(trace_id: str) -> QueueItem:
    return QueueItem(trace_id, -1, "", 0, None)


class ReviewLabels(ReviewShow):

    # -- labelling -----------------------------------------------------------------------------------
    def action_label(self, rating: str) -> None:
        """The label is queued (recorded in the sidecar, milliseconds) and written by the writer thread: the
        key never waits for the database lock, so the next key acts on the trace it is shown with."""
        t0 = time.perf_counter()
        self.iofold.hold_gc()
        item, es = self.current, self.eval_set
        reason = self.labels_off()
        if reason or es is None or item is None:
            why = f"labelling disabled: {reason}" if reason else "no trace to label"
            self.notify(why, severity="warning")
            return
        draft = self.model.drafts.get(item.trace_id)
        try:
            labeling.label_queue(self.app).label(es.id, item.trace_id, rating,
                                                 note=UNCHANGED if draft is None else draft,
                                                 seconds=time.monotonic() - self.shown_at)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.commit_ms.append((time.perf_counter() - t0) * 1000)  # key -> recorded durably (sidecar)
        self.model.drafts.pop(item.trace_id, None)
        self.model.label = self._label_for(item.trace_id)
        self.pending_t0 = t0
        if self.model.auto_advance:
            self._advance()
        else:
            self._render_current()

    def _apply_deltas(self, changes: list, reverse: bool = False) -> None:
        if self.eval_set is None:
            return
        mine = [c for c in changes if c.eval_set_id == self.eval_set.id]
        if self.model.shift_counts(labeling.rating_deltas(mine, reverse=reverse)):
            self.set_status()

    def action_undo(self) -> None:
        self._travel_key(undo=True)

    def action_redo(self) -> None:
        self._travel_key(undo=False)

    def _travel_key(self, *, undo: bool) -> None:
        """u/U: a label still queued is cancelled (U queues it again); otherwise the undo/redo is queued
        behind the labels before it and reported when written (``on_label_applied``)."""
        try:
            what, intent = labeling.label_queue(self.app).travel(undo=undo)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        if what in ("cancelled", "restored") and intent is not None and intent.trace_id:
            self._jump_to(_linked(intent.trace_id))  # show what was cancelled

    def on_label_applied(self, applied: Applied) -> None:
        """A queued label / note / undo / redo reached the database (or failed): counts, labels, the bar."""
        if self.eval_set is None or applied.intent is None or not self.is_mounted:
            return
        result, intent = applied.result, applied.intent
        if applied.outcome == "applied" and intent.kind in ("undo", "redo"):
            undo = intent.kind == "undo"
            if result is not None:
                for c in result.changes:  # type: ignore[attr-defined]
                    if c.eval_set_id == self.eval_set.id:
                        self.model.written(c.trace_id, c.old if undo else c.new)
                self._after_travel(result, undo=undo)  # type: ignore[arg-type]
                return
        elif applied.outcome == "applied" and result is not None:
            change = result
            if change.eval_set_id == self.eval_set.id:  # type: ignore[attr-defined]
                self.model.written(change.trace_id, change.new)  # type: ignore[attr-defined]
                if change.changed:  # type: ignore[attr-defined]
                    self._apply_deltas([change])
        if self.current is not None and self.current.trace_id in (intent.trace_id, None):
            self._refresh_label()
        else:
            self._update_bar()

    def _after_travel(self, step: Step | None, *, undo: bool) -> None:
        if step is None or self.eval_set is None:
            return
        self._apply_deltas(list(step.changes), reverse=undo)
        touched = {c.trace_id for c in step.changes if c.eval_set_id == self.eval_set.id}
        if len(touched) == 1:
            self._jump_to(_linked(next(iter(touched))))  # show what was reverted
        else:
            self._refresh_label()

    # -- notes ---------------------------------------------------------------------------------------
    def action_edit_note(self) -> None:
        item, label = self.current, self.model.label
        if item is None or self.editing_for is not None:
            return
        area = self.query_one("#review-note", TextArea)
        area.text = self.model.drafts.get(item.trace_id, label.notes if label and label.notes else "")
        area.border_title = "note (Esc saves and leaves; Enter is a new line)"
        area.add_class("editing")
        self.editing_for = item.trace_id
        self.refresh_bindings()

        def focus() -> None:  # after the refresh that displays it: a hidden widget cannot take focus
            area.focus()
            area.move_cursor(area.document.end)

        self.call_after_refresh(focus)

    def action_leave_note(self) -> None:
        self._finish_note()

    def _finish_note(self) -> None:
        trace_id, self.editing_for = self.editing_for, None
        if trace_id is None or self.eval_set is None:
            return
        drafts = self.model.drafts
        area = self.query_one("#review-note", TextArea)
        text = area.text if area.text.strip() else ""
        area.remove_class("editing")
        self.set_focus(None)
        self.refresh_bindings()
        label = self._label_for(trace_id)
        if (text or None) == (label.notes if label else None):
            drafts.pop(trace_id, None)
        elif label is None:
            drafts[trace_id] = text
            self.notify("Note kept: it is saved with this trace's label.")
        else:
            try:
                labeling.label_queue(self.app).note(self.eval_set.id, trace_id, text or None)
            except labeling.LabelActionError as exc:
                drafts[trace_id] = text  # keep the text; it is retried with the next label
                self.notify(f"note not saved: {exc}", severity="error")
            else:
                drafts.pop(trace_id, None)
                if self.current is not None and self.current.trace_id == trace_id:
                    self.model.label = self._label_for(trace_id)
        self._update_bar()
