"""The trace list's label keys, a layer of ``TracesPane`` (see ``traces_paging``). One ``LabelStore`` per
app (``ui/labeling.py``): a label is queued for the writer thread and the cursor moves on; a label still
queued shows as ⧗ pending; the bulk selection (space, ``*``) is labelled in one undo step."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from rich.text import Text

from iofold_tui.data.text import plural
from iofold_tui.ui.models.traces import BULK_LIMIT, pending_mark
from iofold_tui.ui.panes.traces_paging import TracePaging
from iofold_tui.ui.text import cell, rating_text
from iofold_tui.ui.widgets import Confirm

if TYPE_CHECKING:
    from iofold_tui.data.labels.history import Step


def _labeling() -> ModuleType:
    """The module; the label store and its history load on first use (not at start-up)."""
    from iofold_tui.ui import labeling

    return labeling


@dataclass
class BulkDone:
    step: Step | None
    rating: str
    error: str | None


class TraceLabels(TracePaging):

    def _rating_cell(self, trace_id: str, stored: str | None) -> Text:
        """The row's label; a label still queued (another process holds the lock) shows as ⧗ pending (the
        header says why)."""
        eval_set = self.iofold.state.eval_set
        # The app's state holds the queue (ui/labeling.py opens it): read there, the label store's modules
        # are not loaded for the first page's cells before the first frame.
        queue = self.iofold.state.label_queue if eval_set is not None else None
        intent = None if queue is None or eval_set is None else queue.pending_for(eval_set.id, trace_id)
        mark = pending_mark(intent)
        return rating_text(stored) if mark is None else Text(mark, style="bold yellow reverse")

    def on_label_applied(self, applied: object) -> None:
        """A queued label was written (ui.labeling.LabelQueue): the visible rows show the database again."""
        if self.app.screen is not self:
            self.stale = True  # reloaded when shown again
        elif self.is_mounted and self.model.page is not None:
            self.reload()  # same filter: the page around the cursor

    def show_pending_labels(self) -> None:
        """Queued labels were added or written: the rating cells of the page follow."""
        page = self.model.page
        if page is not None:
            for row in page.rows:
                if row.id in self.table.rows:
                    self.table.update_cell(row.id, "rating", self._rating_cell(row.id, row.rating))

    def _marker(self, trace_id: str) -> Text:
        return Text("●", style="bold magenta") if trace_id in self.model.selected else Text(" ")

    # -- the bulk selection ----------------------------------------------------------------------------
    def action_toggle_select(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.model.toggle(key)
        self.table.update_cell(key, "sel", self._marker(key))
        self.table.action_cursor_down()
        self.update_status()

    def action_select_all(self) -> None:
        if self.model.selected:
            self._set_selection(set())
            return
        self.notify("selecting every trace that matches the filter…")
        self.run_query(self.model.select_job(self.current_filter()), on_result=self._selection_resolved,
                       group="select", what="selecting traces")

    def _selection_resolved(self, ids: list[str] | None) -> None:
        if ids is None:
            self.notify(f"more than {BULK_LIMIT:,} traces match: narrow the filter to label them in one step",
                        severity="warning")
            return
        self._set_selection(set(ids))

    def _set_selection(self, ids: set[str]) -> None:
        self.model.selected = ids
        for row_key in list(self.table.rows):
            self.table.update_cell(row_key, "sel", self._marker(str(row_key.value)))
        self.update_status()

    # -- labelling -------------------------------------------------------------------------------------
    def action_label(self, rating: str) -> None:
        labeling, app, eval_set = _labeling(), self.iofold, self.iofold.state.eval_set
        reason = labeling.disabled_reason(app)
        if reason or eval_set is None:
            self.notify(f"labelling disabled: {reason}" if reason else "pick an eval set first (v)",
                        severity="warning")
            return
        if not self.model.selected:
            key = self.table.cursor_key
            if key is None:
                return
            try:  # queued: written by the writer thread, never waiting for the lock here
                labeling.label_queue(app).label(eval_set.id, key, rating)
            except labeling.LabelActionError as exc:
                self.notify(str(exc), severity="error")
                return
            self.table.update_cell(key, "rating", self._rating_cell(key, None))
            self.table.action_cursor_down()
            return
        ids = sorted(self.model.selected)
        question = Text(f"Label {plural(len(ids), 'selected trace')} {rating} in eval set ")
        question.append(cell(eval_set.name, 40, style="bold"))
        question.append("?\nOne undo step (u) reverts all of them.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._apply_bulk(eval_set.id, ids, rating)

        self.app.push_screen(Confirm(question), confirmed)

    def _apply_bulk(self, eval_set_id: str, ids: list[str], rating: str) -> None:
        labeling, app = _labeling(), self.app

        def write() -> BulkDone:
            try:
                step = labeling.write_bulk(labeling.label_store(app), eval_set_id, ids, rating)
            except labeling.LabelActionError as exc:
                return BulkDone(None, rating, str(exc))
            return BulkDone(step, rating, None)

        # group None: every bulk step's outcome is said, even when another one started meanwhile
        self.run_query(write, on_result=self._bulk_done, group=None, what="labelling")

    def _bulk_done(self, result: BulkDone) -> None:
        if result.error:
            self.notify(result.error, severity="error")
            return
        changed = len(result.step.changes) if result.step else 0
        self.notify(f"{plural(changed, 'label')} set to {result.rating} as one step (u undoes it)")
        self._set_selection(set())
        self.reload()

    # -- undo ------------------------------------------------------------------------------------------
    def action_undo(self) -> None:
        # Label keys stay enabled on a read-only source: pressing one says why it does nothing.
        if _labeling().explain_disabled(self.app):
            return
        self._travel_key(undo=True)

    def action_redo(self) -> None:
        if _labeling().explain_disabled(self.app):
            return
        self._travel_key(undo=False)

    def _travel_key(self, *, undo: bool) -> None:
        """Queued behind the labels before it (never waits for the lock); the rows reload when it lands."""
        labeling = _labeling()
        try:
            what, _ = labeling.label_queue(self.app).travel(undo=undo)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        if what == "cancelled":
            self.pending_changed()
