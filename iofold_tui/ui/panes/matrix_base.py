"""What the matrix pane's parts share: the model, the grid and the statistics table, the model's jobs run
in workers and their results shown (pages, statistics, the status line). ``MatrixFilters`` and
``MatrixRelabel`` build on it and ``MatrixPane`` on both, so each part is typed against what it really
uses (no self-annotated mixins).

The model's jobs run through ``Pane.run_query`` — grid queries in the group "grid" (a newer page, jump or
requery makes an older result stale), statistics in "stats" — and their results go back through the
model's transitions. Widgets are touched only on the UI thread.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable

from rich.text import Text
from textual.widgets import Input, Static

from iofold_tui.data.matrix.grid import MatrixRow
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.ui.models.matrix import SORTS, MatrixModel
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
from iofold_tui.ui.panes.matrix_widgets import (
    FILTER_TITLES,
    StatsTable,
    contradiction_mark,
    matrix_cell,
    stats_notes,
)
from iofold_tui.ui.row_table import ColumnKey, RowTable
from iofold_tui.ui.text import cell, rating_text


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
        if rows:
            status.append(f"  ·  {rows} row{'s' if rows != 1 else ''} on this page")
        else:
            status.append("  ·  no rows match", style="bold yellow")
        if m.page.has_after:
            status.append(" (more below)", style="dim")
        status.append(f"  ·  query {m.page.query_ms:.1f} ms", style="dim")
    if m.stats is None:
        status.append("  ·  statistics: computing…", style="yellow")
    elif m.relabelled:
        status.append("  ·  stats updated incrementally", style="cyan")
    elif m.stats_ms is not None:
        took = "cached" if m.stats_cached else f"{m.stats_ms / 1000:.1f} s"
        status.append(f"  ·  stats {took}", style="dim")
    return status


class MatrixPaneBase(Pane):
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

    # -- opening a set ------------------------------------------------------------------------------------
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

    # -- the grid ----------------------------------------------------------------------------------------
    def _build_columns(self, eval_ids: tuple[str, ...]) -> None:
        table = self.grid
        table.clear(columns=True)
        self.model.column_ids = eval_ids
        for key, label, width in self.model.layout(table.size.width or self.app.size.width):
            table.add_column(label, width=width, key=key)


    def _cells(self, row: MatrixRow) -> list[Text | str]:
        """The row's cells for the grid's columns as laid out now (``MatrixModel.layout``)."""
        stamp = row.timestamp.replace("T", " ")
        columns = self.grid.columns
        time = columns.get(ColumnKey("time"))
        values: dict[str, Text | str] = {
            "n": contradiction_mark(row),
            "time": cell(stamp[:16] if time is None or time.width >= 16 else stamp[5:16], 16),
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
        # --select: a trace, an eval version or an eval set, once the set is shown
        start = self.start_selection()
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
        except Exception:  # no cell under the cursor during a rebuild
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
            text = Text("This eval set has no eval versions yet: the grid shows its labelled traces.",
                        style="yellow")
        else:
            text = stats_notes(shown, titles, computing=False, cached=m.stats_cached,
                               view_pending=m.view_pending, relabelled=m.relabelled)
        key = (text.plain, tuple(text.spans), str(text.style))
        if key != self._notes_key:  # an unchanged note costs no layout pass (it would delay the repaint)
            self._notes_key = key
            self.query_one("#mx-notes", Static).update(text)

    # -- a located eval version ----------------------------------------------------------------------------
    def _eval_located(self, result: EvalLocated) -> None:
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
