"""The matrix pane's filters, sort, search, version choice and jumps (actions over ``MatrixModel``)."""

from __future__ import annotations

from textual.widgets import Input

from iofold_tui.data.matrix.grid_query import FILTERS
from iofold_tui.data.source import catalog
from iofold_tui.data.text import plural
from iofold_tui.data.traces.query import TraceFilter
from iofold_tui.ui.models.matrix import SORTS
from iofold_tui.ui.models.matrix_results import SourceDate
from iofold_tui.ui.navigation import OpenReviewQueue
from iofold_tui.ui.panes.matrix_base import MatrixPaneBase
from iofold_tui.ui.panes.matrix_dialogs import SourceDateScreen, VersionPicker
from iofold_tui.ui.panes.matrix_widgets import FILTER_TITLES
from iofold_tui.ui.widgets import PickOne, Prompt


class MatrixFilters(MatrixPaneBase):

    # -- filters and sort --------------------------------------------------------------------------------
    def action_set_filter(self, name: str) -> None:
        if name in FILTERS and name != self.model.filter:
            self.model.filter = name
            self._requery()

    def action_pick_filter(self) -> None:
        options = [(name, f"{i}  {FILTER_TITLES[name]}") for i, name in enumerate(FILTERS)]

        def chosen(value: str | None) -> None:
            if value:
                self.action_set_filter(value)

        picker = PickOne("Show rows (digit keys pick directly)", options, self.model.filter)
        self.app.push_screen(picker, chosen)

    def action_cycle_sort(self) -> None:
        self.model.sort_index = (self.model.sort_index + 1) % len(SORTS)
        self.notify(f"sort: {SORTS[self.model.sort_index][2]}")
        self._requery()

    def action_source_date(self) -> None:
        def done(chosen: TraceFilter | None) -> None:
            result = None if chosen is None else SourceDate(chosen.sources, chosen.date_from, chosen.date_to)
            if result is not None and result != self.model.where:
                self.model.where = result
                self._requery()

        state = self.iofold.state
        ws = state.workspace_id if len(state.workspaces) > 1 else None
        db = self.iofold.db

        def sources() -> list[str]:
            with db.fresh() as conn:
                return catalog.sources(conn, ws)

        self.run_query(sources, on_result=lambda found: self.app.push_screen(
            SourceDateScreen(self.model.where, found), done), group="sources", what="listing sources")

    def action_clear_filters(self) -> None:
        self.query_one("#search-bar", Input).remove_class("visible")
        self.model.clear_filters()
        self._requery()

    def action_search(self) -> None:
        bar = self.query_one("#search-bar", Input)
        bar.value = self.model.text
        bar.add_class("visible")
        bar.focus()

    def action_close_search(self) -> None:
        bar = self.query_one("#search-bar", Input)
        if bar.has_focus:
            bar.value = ""
            bar.remove_class("visible")
            self.grid.focus()

    def action_pick_versions(self) -> None:
        m = self.model
        if not m.versions or m.set_id is None:
            self.notify("this eval set has no eval versions", severity="warning")
            return
        set_id = m.set_id
        current = m.chosen.get(set_id) or tuple(v.id for v in m.versions)
        options = [(v.id, f"{v.name} v{v.version}  ({v.status}, {v.id})") for v in m.versions]

        def done(picked: tuple[str, ...] | None) -> None:
            if picked is not None and set_id == m.set_id:
                m.choose_versions(picked)
                self._requery()

        self.app.push_screen(VersionPicker(options, current), done)

    # -- jumps ---------------------------------------------------------------------------------------------
    def action_next_contradiction(self) -> None:
        if self.model.set_id is not None:
            self._grid_query(self.model.jump_job(True, self.grid.cursor_key))

    def action_previous_contradiction(self) -> None:
        if self.model.set_id is not None:
            self._grid_query(self.model.jump_job(False, self.grid.cursor_key))

    def action_goto(self) -> None:
        def go(value: str | None) -> None:
            if value and value.strip():
                self.select_item(value.strip())

        self.app.push_screen(Prompt("Go to a trace (id or external id), an eval version or an eval set"), go)

    def _drilled(self, ids: list[str], more: bool, title: str) -> None:
        if not ids:
            self.notify(f"no traces in {title}", severity="warning")
            return
        # exactly those traces: the other trace filters are dropped
        self.post_message(OpenReviewQueue(tuple(ids)))
        capped = f" (the first {len(ids):,} by trace id)" if more else ""
        self.app.notify(f"review queue: {plural(len(ids), 'trace')}, {title}{capped}. "
                   "f in review mode (or c in the trace list) drops it.", timeout=10)
