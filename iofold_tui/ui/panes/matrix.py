"""The contradiction matrix: traces × eval versions of the current eval set, with exact per-version stats.

A view over ``ui.models.matrix.MatrixModel`` (the state, the statistics' freshness and the queries): the
model's jobs run through ``Pane.run_query`` — grid queries in the group "grid" (a newer page, jump or
requery makes an older result stale), statistics in "stats" — and their results go back through the
model's transitions. Widgets are touched only on the UI thread.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from iofold_tui.data.matrix.grid import FILTERS, MatrixRow
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.ui import labeling
from iofold_tui.ui.models.matrix import MatrixModel
from iofold_tui.ui.models.matrix_results import (
    Direction,
    EvalLocated,
    GridNote,
    GridResult,
    MoveTo,
    PageLoaded,
    StatsChecked,
    StatsExtra,
    StatsLoaded,
)
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.matrix_filters import MatrixFilters, status_line
from iofold_tui.ui.panes.matrix_labels import MatrixRelabel
from iofold_tui.ui.panes.matrix_widgets import (
    CONFUSION_TITLES,
    FILTER_TITLES,
    CellDetailScreen,
    StatsTable,
    contradiction_mark,
    matrix_cell,
    stats_notes,
)
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.text import cell, rating_text


class MatrixPane(MatrixFilters, MatrixRelabel, Pane):
    pane_title = "Matrix"
    selects_on_start = True
    requires = ("evals", "eval_executions")
    BINDINGS = [
        Binding("f", "pick_filter", "Filter", id="matrix.filter"),
        *[Binding(str(i), f"set_filter('{name}')", FILTER_TITLES[name], id=f"matrix.filter_{name}", show=False)
          for i, name in enumerate(FILTERS)],
        Binding("d", "source_date", "Src/date", id="matrix.source_date"),
        Binding("slash", "search", "Search", id="matrix.search"),
        Binding("c", "clear_filters", "Clear", id="matrix.clear", show=False),
        Binding("o", "cycle_sort", "Sort", id="matrix.sort"),
        Binding("e", "pick_versions", "Versions", id="matrix.versions"),
        Binding("right_square_bracket", "next_contradiction", "Jump ≠", id="matrix.next_contradiction",
                key_display="]/["),
        Binding("left_square_bracket", "previous_contradiction", "Previous ≠", id="matrix.previous_contradiction",
                show=False),
        Binding("tab", "toggle_focus", "Stats", id="matrix.focus"),
        Binding("colon", "goto", "Go to id", id="matrix.goto", show=False),
        Binding("t", "open_trace", "Trace", id="matrix.trace", show=False),
        Binding("escape", "close_search", "Close search", id="matrix.close_search", show=False, priority=True),
        *labeling.label_bindings("matrix", digits=False),
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

    def __init__(self) -> None:
        super().__init__()
        self._label_t0: dict[str, float] = {}  # trace -> when its label key was pressed (queued labels)
        self._notes_key: tuple[object, ...] | None = None
        self._status_key: tuple[object, ...] | None = None
        # ms from a label key to the statistics updated by it being on screen (the bench reads it)
        self.relabel_ms: deque[float] = deque(maxlen=10_000)

    @functools.cached_property
    def model(self) -> MatrixModel:
        return MatrixModel(self.iofold.db)

    # the model's state, as the tests and the bench read it
    set_id = property(lambda self: self.model.set_id)
    stats = property(lambda self: self.model.stats)
    stats_cached = property(lambda self: self.model.stats_cached)
    relabelled = property(lambda self: self.model.relabelled,
                          lambda self, value: setattr(self.model, "relabelled", value))

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="search input/output previews (Enter keeps, Esc clears)", id="search-bar")
        yield RowTable(id="mx-grid", cursor_type="cell")
        yield StatsTable(id="mx-stats")
        yield Static(id="mx-notes")

    @property
    def grid(self) -> RowTable:
        return self.query_one("#mx-grid", RowTable)

    @property
    def stats_table(self) -> StatsTable:
        return self.query_one("#mx-stats", StatsTable)

    # -- running the model's jobs ------------------------------------------------------------------------
    def _grid_query(self, job: Callable[[], GridResult] | None) -> None:
        if job is not None:
            self.run_query(job, on_result=self._grid_result, on_error=lambda _: self._grid_failed(),
                           group="grid", what="matrix query")

    def _grid_result(self, result: GridResult) -> None:
        if isinstance(result, PageLoaded):
            self.on_page_loaded(result)
        elif isinstance(result, MoveTo):
            self.on_move_to(result)
        elif isinstance(result, EvalLocated):
            self._eval_located(result)
        elif isinstance(result, GridNote):
            self.notify(result.text, severity=result.severity)
            self._grid_failed()

    def _grid_failed(self) -> None:
        if self.model.grid_failed():
            self._load_stats()
        self.update_status()

    def _load_page(self, direction: Direction, focus_id: str | None = None) -> None:
        self._grid_query(self.model.page_job(direction, focus_id))
        if self.model.sorting:
            self.update_status()

    def _requery(self, direction: Direction = "first") -> None:
        self._load_page(direction)
        self.update_status()

    # -- loading -----------------------------------------------------------------------------------------
    def reload(self) -> None:
        m, state = self.model, self.iofold.state
        set_id = state.eval_set_id
        pending, state.pending_matrix_eval = state.pending_matrix_eval, None
        if set_id is None:
            m.set_id, m.page, m.stats = None, None, None
            self.grid.clear(columns=True)
            self.stats_table.clear()
            self.query_one("#mx-notes", Static).update(
                Text("No eval set in this workspace: create one in review mode (R, then c).", style="bold yellow"))
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

    def _open_set(self, set_id: str) -> None:
        self.grid.clear(columns=True)
        self.set_status(Text("loading…", style="dim"))
        self._grid_query(self.model.open_set(set_id))
        self.supersede("stats")  # statistics still arriving for the previous set are dropped
        self._show_stats()

    def _refresh_same(self) -> None:
        """Data may have changed underneath: the page around the cursor again, and the stats if needed."""
        self._load_page("around", focus_id=self.grid.cursor_key)
        if self.model.executions_changed:
            self.model.executions_changed = False
            self._load_stats()
        else:
            self._start_check()

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
            self.notify("put the cursor on an eval version's column: N writes its next version", severity="warning")
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
    def _build_columns(self, eval_ids: tuple[str, ...]) -> None:
        table = self.grid
        table.clear(columns=True)
        self.model.column_ids = eval_ids
        for key, label, width in self.model.layout(table.size.width or self.app.size.width):
            table.add_column(label, width=width, key=key)

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

    def _cells(self, row: MatrixRow) -> list[Text | str]:
        """The row's cells for the grid's columns as laid out now (``MatrixModel.layout``)."""
        stamp = row.timestamp.replace("T", " ")
        columns = self.grid.columns
        values: dict[str, Text | str] = {
            "n": contradiction_mark(row),
            "time": cell(stamp[:16] if columns.get("time") is None or columns["time"].width >= 16 else stamp[5:16], 16),
            "trace": cell(row.trace_id, 40),
            "src": cell(row.source, 20),
            "human": rating_text(row.rating),
            "note": cell(row.note or "", 60, style="italic"),
            "input": cell(preview_text(row.input_preview), 200),
        }
        for c in row.cells:
            values[f"v:{c.eval_id}"] = matrix_cell(c)
        return [values.get(str(key), Text("")) for key in columns]

    def on_page_loaded(self, result: PageLoaded) -> None:
        page = result.page
        start = self.start_selection()  # --select: a trace, an eval version or an eval set, once the set is shown
        if start:
            self.call_after_refresh(self.select_item, start)
        if self.model.page_loaded(result):
            self._load_stats()
        column = self._cursor_column()
        if page.eval_ids != self.model.column_ids or not self.grid.columns:
            self._build_columns(page.eval_ids)
        self.grid.show_page(((r.trace_id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                            has_after=page.has_after, focus_key=page.focus_id,
                            cursor="last" if result.direction in ("before", "last") else "first")
        self._place_column(column)
        if self.model.stats is not None:
            self._show_stats()
        self.update_status()
        if not self.query_one("#search-bar", Input).has_focus and not self.stats_table.has_focus:
            self.grid.focus()  # (the hidden search bar must never keep the focus: it would eat the keys)

    def _cursor_column(self) -> str | None:
        table = self.grid
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).column_key.value)
        except Exception:  # noqa: BLE001 - no cell under the cursor during a rebuild
            return None

    def _place_column(self, previous: str | None) -> None:
        m, keys = self.model, [str(k.value) for k in self.grid.columns]
        wanted = f"v:{m.focus_eval}" if m.focus_eval else previous
        if wanted not in keys:
            wanted = f"v:{m.column_ids[0]}" if m.column_ids else "trace"
        elif m.focus_eval:
            m.focus_eval = None
        self.grid.move_cursor(column=keys.index(wanted), animate=False)

    def _want_column(self, eval_id: str) -> None:
        """Focus ``eval_id``'s column (adding it to the chosen versions if the user had hidden it)."""
        if self.model.want_column(eval_id):
            self._requery()
        elif f"v:{eval_id}" in {str(k.value) for k in self.grid.columns}:
            self._place_column(None)

    def on_move_to(self, result: MoveTo) -> None:
        if self.model.page is None:
            return
        ids = [r.trace_id for r in self.model.page.rows]
        if result.trace_id in ids:
            self.grid.move_cursor(row=ids.index(result.trace_id), animate=False)

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

    # -- status ------------------------------------------------------------------------------------------
    def set_status(self, status: Text | str = "") -> None:
        """The app calls this with no text on a refresh: keep showing the matrix's own status line."""
        shown = status or (status_line(self.model) if self.model.set_id else "")
        text = shown if isinstance(shown, Text) else Text(shown)
        key = (text.plain, tuple(text.spans), str(text.style), tuple(self.context_parts()))
        if key != self._status_key:  # the same header again would only cost a layout pass
            self._status_key = key
            super().set_status(shown)

    def update_status(self) -> None:
        self.set_status(status_line(self.model))

    # -- statistics --------------------------------------------------------------------------------------
    def _load_stats(self) -> None:
        job = self.model.stats_job()
        if job is not None:
            self._show_stats()
            self.run_query(job, on_result=self._stats_loaded, group="stats", what="statistics")

    def _stats_loaded(self, result: StatsLoaded | None) -> None:
        if result is None:
            return  # interrupted: a newer computation is on its way
        if self.model.stats_loaded(result):
            self._load_stats()
            return
        self._show_stats()
        self.update_status()
        self.run_query(self.model.extra_job(), on_result=self._extra_loaded, group="stats", what="statistics")

    def _extra_loaded(self, result: StatsExtra) -> None:
        if self.model.extra_loaded(result):
            self._show_stats()

    def _start_check(self) -> None:
        job = self.model.check_job()
        if job is not None:  # a failed check leaves the statistics as they are; the next reload checks again
            self.run_query(job, on_result=self._stats_checked, group="check", what="statistics check")

    def _stats_checked(self, result: StatsChecked) -> None:
        if self.model.stats_checked(result):
            self._load_stats()

    def _show_stats(self) -> None:
        m = self.model
        shown, titles = m.shown_stats(), m.titles()
        self.stats_table.show(shown, titles)
        if m.stats is None:
            text = Text("computing statistics… (the grid is usable meanwhile)", style="yellow")
        elif not m.stats:
            text = Text("This eval set has no eval versions yet: the grid shows its labelled traces.", style="yellow")
        else:
            text = stats_notes(shown, titles, computing=False, cached=m.stats_cached,
                               view_pending=m.view_pending, relabelled=m.relabelled)
        key = (text.plain, tuple(text.spans), str(text.style))
        if key != self._notes_key:  # an unchanged note costs no layout pass (it would delay the repaint)
            self._notes_key = key
            self.query_one("#mx-notes", Static).update(text)

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
        self.run_query(self.model.drill_job(event.eval_id, event.cell), on_result=lambda found: self._drilled(
            *found, title), group="drill", what="collecting the traces")

    # -- relabelling ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True  # label keys stay enabled where labelling is off: pressing one says why

    def on_unmount(self) -> None:
        self.model.close()
