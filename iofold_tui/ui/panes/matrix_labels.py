"""The matrix pane's label keys: a relabel is queued (ui.labeling), and once written the model patches the
grid's TEMP table, the row and the statistics (``MatrixModel.relabel_job`` / ``relabel_done``)."""

from __future__ import annotations

import contextlib
import time

from iofold_tui.ui import labeling
from iofold_tui.ui.models.matrix_results import Move, Refreshed, Relabelled
from iofold_tui.ui.models.matrix_stats_state import INCREMENTAL_LIMIT
from iofold_tui.ui.panes.matrix_base import MatrixPaneBase


class MatrixRelabel(MatrixPaneBase):

    def action_label(self, rating: str) -> None:
        t0 = time.perf_counter()
        reason = labeling.disabled_reason(self.app)
        trace_id, set_id = self.grid.cursor_key, self.model.set_id
        if reason or set_id is None:
            why = f"labelling disabled: {reason}" if reason else "pick an eval set first (v)"
            self.notify(why, severity="warning")
            return
        if trace_id is None:
            return
        try:  # queued: the writer thread writes it (never waiting for the lock here); see on_label_applied
            labeling.label_queue(self.app).label(set_id, trace_id, rating)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self._label_t0[trace_id] = t0

    def on_label_applied(self, applied: object) -> None:
        """A queued label / undo / redo reached the database: the rows and the statistics follow."""
        intent, result = getattr(applied, "intent", None), getattr(applied, "result", None)
        if intent is None or result is None or getattr(applied, "outcome", "") != "applied":
            return
        if intent.kind in ("undo", "redo"):
            moves = self.model.travel_moves(getattr(result, "changes", []), undo=intent.kind == "undo")
            if len(moves) > INCREMENTAL_LIMIT:
                self._load_stats()
                self._refresh_same()
            elif moves:
                self._apply_transitions(moves)
            return
        if getattr(result, "eval_set_id", None) != self.model.set_id:
            return
        old = result.old.rating if result.old else None
        new = result.new.rating if result.new else None
        if old != new:
            self._apply_transitions([(result.trace_id, old, new)], self._label_t0.pop(result.trace_id, None))

    def action_undo(self) -> None:
        if labeling.explain_disabled(self.app):
            return
        with contextlib.suppress(labeling.LabelActionError):
            labeling.label_queue(self.app).travel(undo=True)

    def action_redo(self) -> None:
        if labeling.explain_disabled(self.app):
            return
        with contextlib.suppress(labeling.LabelActionError):
            labeling.label_queue(self.app).travel(undo=False)

    def _apply_transitions(self, moves: list[Move], t0: float | None = None) -> None:
        """Labels moved (committed already): patch the grid's TEMP table, the rows and the statistics."""
        job = self.model.relabel_job(moves, t0)
        if job is None:
            return
        page_ticket = self.ticket("grid")  # rows are patched only on the page this relabel saw
        # group None: never dropped, every relabel's statistics delta must arrive exactly once
        self.run_query(job, on_result=lambda result: self.on_relabelled(result, page_ticket),
                       on_error=lambda _: self.on_relabelled(None, page_ticket), group=None,
                       what="refreshing the relabelled rows")

    def on_relabelled(self, result: Relabelled | None, page_ticket: int = 0) -> None:
        m = self.model
        outcome = m.relabel_done(result)
        if outcome == "recompute":
            if result is not None and result.error:
                self.notify(f"refreshing the relabelled rows failed: {result.error}", severity="error")
            self._load_stats()
            if result is None or result.error:
                self._refresh_same()
                return
        elif outcome == "applied" and result is not None and result.t0 is not None:  # measured once painted
            t0 = result.t0
            self.call_after_refresh(lambda: self.relabel_ms.append((time.perf_counter() - t0) * 1000))
        if result is not None and self.is_latest("grid", page_ticket) and m.page is not None:
            for item in result.items:
                self._replace_row(item)
        self._show_stats()
        self.update_status()
        if m.take_recheck():
            self._start_check()

    def _replace_row(self, item: Refreshed) -> None:
        row = self.model.replace_row(item)
        if row is not None:
            keys = [str(k) for k in self.grid.columns]
            self.grid.update_cells(row.trace_id, dict(zip(keys, self._cells(row), strict=True)))
