"""The contradiction matrix: traces × eval versions of the current eval set, with exact per-version stats.

A view over ``ui.models.matrix.MatrixModel`` (the state, the statistics' freshness and the queries). The
parts: ``MatrixPaneBase`` (matrix_base.py: the model's jobs, the grid's pages, the statistics and the status
line), ``MatrixFilters`` (matrix_filters.py: filters, sort, search, versions, jumps) and ``MatrixRelabel``
(matrix_labels.py: label keys); this class holds the keys, the layout, loading and the screen's handlers.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from iofold_tui.data.matrix.grid_query import FILTERS
from iofold_tui.ui.label_keys import label_bindings
from iofold_tui.ui.panes.matrix_dialogs import CellDetailScreen
from iofold_tui.ui.panes.matrix_filters import MatrixFilters
from iofold_tui.ui.panes.matrix_labels import MatrixRelabel
from iofold_tui.ui.panes.matrix_widgets import (
    CONFUSION_TITLES,
    FILTER_TITLES,
    StatsTable,
)
from iofold_tui.ui.row_table import RowTable


class MatrixPane(MatrixFilters, MatrixRelabel):
    pane_title = "Matrix"
    selects_on_start = True
    requires = ("evals", "eval_executions")
    BINDINGS = [
        Binding("f", "pick_filter", "Filter", id="matrix.filter"),
        *[
            Binding(str(i), f"set_filter('{name}')", FILTER_TITLES[name], id=f"matrix.filter_{name}",
                    show=False)
            for i, name in enumerate(FILTERS)
        ],
        Binding("d", "source_date", "Src/date", id="matrix.source_date"),
        Binding("slash", "search", "Search", id="matrix.search"),
        Binding("c", "clear_filters", "Clear", id="matrix.clear", show=False),
        Binding("o", "cycle_sort", "Sort", id="matrix.sort"),
        Binding("e", "pick_versions", "Versions", id="matrix.versions"),
        Binding("right_square_bracket", "next_contradiction", "Jump ≠", id="matrix.next_contradiction",
                key_display="]/["),
        Binding("left_square_bracket", "previous_contradiction", "Previous ≠",
                id="matrix.previous_contradiction", show=False),
        Binding("tab", "toggle_focus", "Stats", id="matrix.focus"),
        Binding("colon", "goto", "Go to id", id="matrix.goto", show=False),
        Binding("t", "open_trace", "Trace", id="matrix.trace", show=False),
        Binding("escape", "close_search", "Close search", id="matrix.close_search", show=False,
                priority=True),
        *label_bindings("matrix", digits=False),
        Binding("r", "run_eval", "Run eval", id="matrix.run_eval"),
        Binding("N", "new_version", "New version", id="matrix.new_version"),  # n labels neutral here
        Binding("u", "undo", "Undo", id="matrix.undo"),
        Binding("U", "redo", "Redo", id="matrix.redo", show=False),
    ]
    AUTO_FOCUS = "#mx-grid"
    DEFAULT_CSS = """
    MatrixPane #mx-grid { height: 1fr; }
    MatrixPane #mx-stats { height: auto; max-height: 10; border-top: solid $panel; }
    MatrixPane #mx-notes { height: auto; max-height: 7; padding: 0 1; background: $boost; }
    """

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="search input/output previews (Enter keeps, Esc clears)", id="search-bar")
        yield RowTable(id="mx-grid", cursor_type="cell")
        yield StatsTable(id="mx-stats")
        yield Static(id="mx-notes")

    # -- loading -----------------------------------------------------------------------------------------
    def reload(self) -> None:
        m, state = self.model, self.iofold.state
        set_id = state.eval_set_id
        pending, state.pending_matrix_eval = state.pending_matrix_eval, None
        if set_id is None:
            m.set_id, m.page, m.stats = None, None, None
            self.grid.clear(columns=True)
            self.stats_table.clear()
            none = "No eval set in this workspace: create one in review mode (R, then c)."
            self.query_one("#mx-notes", Static).update(Text(none, style="bold yellow"))
            self.set_status()
            return
        if pending and pending not in {v.id for v in m.versions} | {set_id} and set_id == m.set_id:
            self._grid_query(m.locate_job(pending))  # maybe an eval of another set: switch to it
            return
        if pending:
            self._want_column(pending)
        if set_id != m.set_id or m.page is None:
            self._open_set(set_id)
        else:
            self._refresh_same()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.iofold.state.pending_matrix_eval and not self.stale:
            self.reload()

    def action_run_eval(self) -> None:
        """Re-run the eval under the cursor (else the first version shown) in the local sandbox."""
        from iofold_tui.ui.run_eval import start_eval_run

        column, ids = self._cursor_column() or "", self.model.column_ids
        eval_id = column[2:] if column.startswith("v:") else (ids[0] if ids else None)
        if eval_id is None:
            self.notify("no eval version in this eval set", severity="warning")
            return
        start_eval_run(self.app, eval_id)

    def action_new_version(self) -> None:
        """The eval editor on the version under the cursor (saving makes the next version; its column
        is shown when the editor closes)."""
        from iofold_tui.ui.panes.eval_editor import EvalEditorScreen

        column = self._cursor_column() or ""
        if not column.startswith("v:"):
            self.notify("put the cursor on an eval version's column: N writes its next version",
                        severity="warning")
            return
        self.app.push_screen(EvalEditorScreen(column[2:]), self._editor_closed)

    def _editor_closed(self, saved_id: str | None) -> None:
        m = self.model
        if not saved_id or m.set_id is None:
            return
        if saved_id in {v.id for v in m.versions}:
            self._want_column(saved_id)
            return
        chosen = m.chosen.get(m.set_id)
        if chosen is not None:  # the user picked the versions shown: the new one joins them
            m.chosen[m.set_id] = (*chosen, saved_id)
        m.focus_eval = saved_id
        self._open_set(m.set_id)  # the set's versions again, with the new one

    def on_eval_results_applied(self) -> None:
        """A batch of a local run was written: redraw the visible cells now; the statistics are
        recomputed when the run ends (the app reloads the pane then)."""
        self.model.executions_changed = True  # updates in place: the cheap signature check cannot see them
        if self.model.page is not None:
            self._load_page("around", focus_id=self.grid.cursor_key)

    # -- the grid ----------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        """Lay the grid out again for the new width (columns dropped or back, the input takes the rest)."""
        self.query_one("#mx-notes", Static).styles.max_height = 3 if self.size.height < 30 else 7
        table, page = self.grid, self.model.page
        if not table.columns:
            return
        layout = self.model.layout(table.size.width or self.app.size.width)
        if [k for k, _, _ in layout] == [str(k) for k in table.columns]:
            for key, _, width in layout:
                table.set_column_width(key, width)
            return
        cursor = table.cursor_key
        self._build_columns(self.model.column_ids)
        if page is not None:
            table.show_page(((r.trace_id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                            has_after=page.has_after, focus_key=cursor)

    @on(RowTable.Boundary, "#mx-grid")
    def _boundary(self, event: RowTable.Boundary) -> None:
        self._load_page(event.direction)

    @on(RowTable.CellSelected, "#mx-grid")
    def _cell_chosen(self, event: RowTable.CellSelected) -> None:
        trace_id, column = str(event.cell_key.row_key.value), str(event.cell_key.column_key.value)
        if not column.startswith("v:") or self.model.set_id is None:
            self._open_trace(trace_id)
            return
        eval_id, row = column[2:], self.model.row(trace_id)
        agreement = next((c.agreement for c in row.cells if c.eval_id == eval_id), None) if row else None
        self.app.push_screen(CellDetailScreen(trace_id, eval_id, self.model.set_id, agreement))

    def _open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(trace_id))

    def action_open_trace(self) -> None:
        if self.grid.cursor_key:
            self._open_trace(self.grid.cursor_key)

    def action_toggle_focus(self) -> None:
        (self.stats_table if self.grid.has_focus else self.grid).focus()

    # -- search and selection (handlers stay on the screen class: Textual collects them from it)
    @on(Input.Changed, "#search-bar")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != self.model.text:
            self.model.text = event.value
            self._requery()

    @on(Input.Submitted, "#search-bar")
    def _search_done(self, _: Input.Submitted) -> None:
        self.grid.focus()
        if not self.model.text:
            self.query_one("#search-bar", Input).remove_class("visible")

    def select_item(self, value: str) -> None:
        """An eval set (name or id), an eval version (its column) or a trace (its row)."""
        state = self.iofold.state
        es = next((e for e in state.eval_sets if value in (e.id, e.name)), None)
        if es is not None:
            if es.id != state.eval_set_id:
                state.eval_set_id = es.id
                self.iofold.refresh_panes()
            return
        if value in {v.id for v in self.model.versions}:
            self._want_column(value)
            return
        self._grid_query(self.model.locate_job(value))

    # -- drill-down from the statistics --------------------------------------------------------------------
    @on(StatsTable.Drill)
    def _drill(self, event: StatsTable.Drill) -> None:
        titles = self.model.titles()
        title = f"{titles.get(event.eval_id, event.eval_id)} {CONFUSION_TITLES[event.cell]}"
        self.notify(f"collecting {title}…")

        def drilled(found: tuple[list[str], bool]) -> None:
            ids, more = found
            self._drilled(ids, more, title)

        job = self.model.drill_job(event.eval_id, event.cell)
        self.run_query(job, on_result=drilled, group="drill", what="collecting the traces")

    # -- relabelling ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True  # label keys stay enabled where labelling is off: pressing one says why

    def on_unmount(self) -> None:
        self.model.close()
