"""The matrix pane's filters, sort, search, version choice and jumps (actions over ``MatrixModel``), and
its status line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Input

from iofold_tui.data.matrix.grid import FILTERS
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source import catalog
from iofold_tui.data.text import plural
from iofold_tui.ui.models.matrix import SORTS, MatrixModel
from iofold_tui.ui.models.matrix_results import EvalLocated, SourceDate
from iofold_tui.ui.navigation import OpenReviewQueue
from iofold_tui.ui.panes.matrix_widgets import FILTER_TITLES, SourceDateScreen, VersionPicker
from iofold_tui.ui.widgets import PickOne, Prompt

if TYPE_CHECKING:
    from iofold_tui.ui.panes.matrix import MatrixPane


def status_line(m: MatrixModel) -> Text:
    """Filter, sort, where, the page's rows and query time, the statistics' state."""
    status = Text()
    status.append(FILTER_TITLES[m.filter], style="bold cyan" if m.filter != "all" else "bold")
    status.append(f"  ·  {SORTS[m.sort_index][2]}")
    parts = []
    if m.where.sources:
        parts.append("source=" + ",".join(one_line(s, 20) for s in m.where.sources))
    if m.where.date_from or m.where.date_to:
        parts.append(f"{m.where.date_from or '…'}→{m.where.date_to or '…'}")
    if m.text:
        parts.append(f'"{one_line(m.text, 30)}"')
    if parts:
        status.append("  ·  " + " · ".join(parts), style="cyan")
    if m.sorting:
        status.append("  ·  sorting… (ranking contradicted traces)", style="bold yellow")
    elif m.page is not None:
        rows = len(m.page.rows)
        status.append(f"  ·  {rows} row{'s' if rows != 1 else ''} on this page" if rows else "  ·  no rows match",
                      style="" if rows else "bold yellow")
        if m.page.has_after:
            status.append(" (more below)", style="dim")
        status.append(f"  ·  query {m.page.query_ms:.1f} ms", style="dim")
    if m.stats is None:
        status.append("  ·  statistics: computing…", style="yellow")
    elif m.relabelled:
        status.append("  ·  stats updated incrementally", style="cyan")
    elif m.stats_ms is not None:
        status.append(f"  ·  stats {'cached' if m.stats_cached else f'{m.stats_ms / 1000:.1f} s'}", style="dim")
    return status


class MatrixFilters:
    """Mixed into ``MatrixPane``."""

    # -- filters and sort --------------------------------------------------------------------------------
    def action_set_filter(self: MatrixPane, name: str) -> None:
        if name in FILTERS and name != self.model.filter:
            self.model.filter = name
            self._requery()

    def action_pick_filter(self: MatrixPane) -> None:
        options = [(name, f"{i}  {FILTER_TITLES[name]}") for i, name in enumerate(FILTERS)]

        def chosen(value: str | None) -> None:
            if value:
                self.action_set_filter(value)

        self.app.push_screen(PickOne("Show rows (digit keys pick directly)", options, self.model.filter), chosen)

    def action_cycle_sort(self: MatrixPane) -> None:
        self.model.sort_index = (self.model.sort_index + 1) % len(SORTS)
        self.notify(f"sort: {SORTS[self.model.sort_index][2]}")
        self._requery()

    def action_source_date(self: MatrixPane) -> None:
        def done(result: SourceDate | None) -> None:
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

    def action_clear_filters(self: MatrixPane) -> None:
        self.query_one("#search-bar", Input).remove_class("visible")
        self.model.clear_filters()
        self._requery()

    def action_search(self: MatrixPane) -> None:
        bar = self.query_one("#search-bar", Input)
        bar.value = self.model.text
        bar.add_class("visible")
        bar.focus()

    def action_close_search(self: MatrixPane) -> None:
        bar = self.query_one("#search-bar", Input)
        if bar.has_focus:
            bar.value = ""
            bar.remove_class("visible")
            self.grid.focus()

    def action_pick_versions(self: MatrixPane) -> None:
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
    def action_next_contradiction(self: MatrixPane) -> None:
        if self.model.set_id is not None:
            self._grid_query(self.model.jump_job(True, self.grid.cursor_key))

    def action_previous_contradiction(self: MatrixPane) -> None:
        if self.model.set_id is not None:
            self._grid_query(self.model.jump_job(False, self.grid.cursor_key))

    def action_goto(self: MatrixPane) -> None:
        def go(value: str | None) -> None:
            if value and value.strip():
                self.select_item(value.strip())

        self.app.push_screen(Prompt("Go to a trace (id or external id), an eval version or an eval set"), go)

    def _eval_located(self: MatrixPane, result: EvalLocated) -> None:
        state = self.iofold.state
        if result.eval_set_id not in {es.id for es in state.eval_sets}:
            self.notify(f"eval {one_line(result.eval_id, 40)} is not in this workspace", severity="warning")
            return
        self.model.focus_eval = result.eval_id
        if result.eval_set_id != state.eval_set_id:
            state.eval_set_id = result.eval_set_id
            self.iofold.refresh_panes()
        else:
            self._want_column(result.eval_id)

    def _drilled(self: MatrixPane, ids: list[str], more: bool, title: str) -> None:
        if not ids:
            self.notify(f"no traces in {title}", severity="warning")
            return
        self.post_message(OpenReviewQueue(tuple(ids)))  # exactly those traces: other trace filters are dropped
        capped = f" (the first {len(ids):,} by trace id)" if more else ""
        self.app.notify(f"review queue: {plural(len(ids), 'trace')}, {title}{capped}. "
                   "f in review mode (or c in the trace list) drops it.", timeout=10)
