"""What the user is looking at, shared by all panes (workspace, eval set, trace filter)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from iofold_tui.data.source.catalog import EvalSet, Workspace
from iofold_tui.data.traces.query import TraceFilter

if TYPE_CHECKING:
    from iofold_tui.data.labels.carry import StrandedReport
    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.ui.labeling import LabelQueue


@dataclass
class AppState:
    workspaces: list[Workspace] = field(default_factory=list)
    eval_sets: list[EvalSet] = field(default_factory=list)  # of the current workspace
    workspace_id: str | None = None
    eval_set_id: str | None = None
    trace_filter: TraceFilter = field(default_factory=TraceFilter)
    # the full-text query behind trace_filter.step_text (highlighted in the trace view and review while
    # they are equal; a facet's rowid set has a step_text too, but no query)
    search_query: str = ""
    # handed from one pane to the next (set by the sender, taken by the receiver once it shows)
    pending_matrix_eval: str | None = None  # the matrix puts its cursor on this eval version's column
    review_queue_pending: bool = False  # review mode takes the trace filter as its queue (open_review_queue)
    # remembered per database
    trace_columns: object = None  # the trace list's chosen columns (ui/trace_columns.py prefs form)
    # `iofold-tui screenshot --pane compare --diff OTHER`: the eval the compare view diffs against
    screenshot_diff_with: str | None = None
    # the app's label writing (ui/labeling.py opens them on first use, from any thread)
    label_store: LabelStore | None = None
    label_queue: LabelQueue | None = None
    stranded_labels: StrandedReport | None = None  # labels made on an older export of this D1 (ui/carry.py)

    @property
    def eval_set(self) -> EvalSet | None:
        return next((es for es in self.eval_sets if es.id == self.eval_set_id), None)

    @property
    def workspace(self) -> Workspace | None:
        return next((w for w in self.workspaces if w.id == self.workspace_id), None)

    def scoped_filter(self) -> TraceFilter:
        """The trace filter with the current workspace and eval set applied."""
        ws = self.workspace_id if len(self.workspaces) > 1 else None
        return replace(self.trace_filter, workspace_id=ws, eval_set_id=self.eval_set_id)
