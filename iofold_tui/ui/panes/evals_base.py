"""What the evals pane's parts share: the model, the highlighters kept, the widgets they look up and the
status line. ``EvalsDiff`` and ``EvalsActions`` build on it and ``EvalsPane`` on both, so each part is typed
against what it really uses (no self-annotated mixins)."""

from __future__ import annotations

from collections import OrderedDict

from rich.text import Text
from textual.widgets import DataTable, TabbedContent

from iofold_tui.data.evals import versions as core
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.models.evals import DiffKey, EvalsModel
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.evals_widgets import CodeView, DiffView, Highlighter, LinesView


class EvalsPaneBase(Pane):
    def __init__(self) -> None:
        super().__init__()
        self.model = EvalsModel()  # the list, counts, selection, details and diff (ui/models/evals.py)
        self.hls: OrderedDict[str, Highlighter] = OrderedDict()

    # what tests and other panes read
    @property
    def selected_id(self) -> str | None:
        return self.model.selected_id

    @property
    def base_override(self) -> str | None:
        return self.model.base_override

    @property
    def diff_key(self) -> DiffKey | None:
        return self.model.diff_key

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#evals-table", DataTable)

    @property
    def active_tab(self) -> str:
        return (self.query_one(TabbedContent).active or "tab-code").removeprefix("tab-")

    def _view(self) -> LinesView:
        """The view that search and n/N act on: the diff in the diff tab, else the code."""
        return self.query_one(DiffView) if self.active_tab == "diff" else self.query_one(CodeView)

    def update_status(self) -> None:
        model, evals, status = self.model, self.model.evals, Text()
        if evals is None:
            return self.set_status(status)
        if evals.problem:
            return self.set_status(Text(one_line(evals.problem, 200), style="yellow"))
        names = len({s.name for s, _ in evals.rows})
        status.append(f"{plural(len(evals.rows), 'eval')}, {plural(names, 'name')}", style="bold")
        if evals.truncated:
            status.append(f" (first {core.MAX_LIST:,} only)", style="yellow")
        if model.counts is None and evals.rows:
            status.append("  ·  recomputing counts…", style="dim")
        elif evals.rows:
            differ = model.disagreeing()
            status.append("  ·  * recomputed in this set, errors apart")
            if differ:
                status.append(f"  ·  {differ} with stored counters that disagree", style="bold yellow")
        if model.selected_id and self.active_tab in ("code", "diff"):
            view = self._view()
            if view.search_text:
                matches = len(view.matches)
                pos = f"{view.current + 1}/{matches}" if view.current >= 0 else f"{matches}"
                status.append(f'  ·  "{one_line(view.search_text, 30)}": {pos} matches (n/N)', style="cyan")
        self.set_status(status)
        return None
