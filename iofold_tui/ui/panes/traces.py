"""The trace list: page through SQL, filter, search previews and full steps, jump to a trace.

A view over ``ui.models.traces.TraceListModel`` (the list's state and the queries behind it): the model's
jobs run through ``Pane.run_query`` — pages in the group "page", the pages read ahead in "prefetch", the
count in "count", a jump's position in "position", an order in "order" — so a newer query (or a new list:
``new_list``) makes an older result stale, and the results go back through the model's transitions.
The pane is built in layers, one concern each (see ``traces_paging``): ``traces_paging`` (the model, pages,
count, read-ahead) → ``traces_labels`` (label keys, the bulk selection, undo) → ``traces_search`` (``/``,
``p``, the order) → this module (columns, cells, status, reload, jumps, filters).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from iofold_tui.data.source import catalog
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.data.traces.query import TraceFilter, TraceRow
from iofold_tui.ui import label_keys, trace_columns
from iofold_tui.ui.panes.traces_search import TraceSearch
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.text import cell
from iofold_tui.ui.widgets import Prompt

# Previews are cut before they reach the table: measuring and cropping 200-character cells for every
# row of a page was a visible part of start-up. Wider than any preview column on a 250-column terminal.
PREVIEW_CHARS = 100


class TracesPane(TraceSearch):
    pane_title = "Traces"
    selects_on_start = True  # applied when the first page / the eval is in
    BINDINGS = [
        Binding("slash", "search", "Search", id="traces.search"),
        Binding("p", "preview_filter", "Preview filter", id="traces.preview"),
        # g: the full-text search's old key
        Binding("g", "search", "Search (as /)", id="traces.grep", show=False),
        Binding("f", "filters", "Filter", id="traces.filter"),
        Binding("F", "facets", "Facets", id="traces.facets"),
        Binding("c", "clear_filters", "Clear", id="traces.clear"),
        Binding("o", "pick_order", "Order", id="traces.order"),
        Binding("colon", "goto", "Go to id", id="traces.goto"),
        Binding("y", "copy_id", "Copy id", id="traces.copy_id"),
        Binding("C", "choose_columns", "Columns", id="traces.columns"),
        Binding("escape", "cancel_scan", "Stop search", id="traces.cancel", show=False, priority=True),
        Binding("space", "toggle_select", "Select", id="traces.select"),
        Binding("asterisk", "select_all", "Select all/none", id="traces.select_all"),
        *label_keys.label_bindings("traces", digits=False),
        *label_keys.undo_bindings("traces"),
    ]

    help_notes = (
        '/ searches everything (previews and steps): words, "phrases", prefix*, AND/OR/NOT, -word, and '
        "fields tool: error: role: user: assistant: io: input: output: id:; through the search index, or a "
        "scan with progress while it is built; re:PATTERN scans with a regular expression (progress, Esc "
        "stops). Matches are highlighted in the trace view and review. g does the same.",
        "p filters the previews instantly as you type (a plain substring, no query language).",
        "o orders the list: newest/oldest first, step count, source, rating, most contradicted, and "
        "relevance after a search; orders other than time are computed per filter in the background (the "
        "cost is said first, the list keeps its order meanwhile).",
        "F counts values (source, errors, rating, verdict, tool, error, day) over the list's filter; Enter "
        "filters.",
    )

    def compose_body(self) -> ComposeResult:
        table = RowTable(id="traces")  # the search bar is mounted above it on the first "/"
        self.column_choice = trace_columns.from_prefs(self.iofold.state.trace_columns)
        columns, self.compact_time = trace_columns.layout(self.column_choice, self.app.size.width)
        for key, label, width in columns:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static(id="progress-line")

    # -- columns ---------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Lay the chosen columns out for this width: drop the lowest priorities first, previews share the
        rest. Changing which columns show (or the time format) rebuilds the page's cells."""
        table = self.table
        width = table.size.width or self.app.size.width
        columns, compact = trace_columns.layout(self.column_choice, width)
        if [k for k, _, _ in columns] == list(table.columns) and compact == self.compact_time:
            for key, _, w in columns:
                table.set_column_width(key, w)
            return
        self.compact_time = compact
        focus = table.cursor_key
        table.clear(columns=True)
        for key, label, w in columns:
            table.add_column(label, width=w, key=key)
        page = self.model.page
        if page is not None:
            table.show_page(((r.id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                            has_after=page.has_after, focus_key=focus)

    def action_choose_columns(self) -> None:
        def done(choice: list[trace_columns.ColumnChoice] | None) -> None:
            if choice is None:
                return
            self.column_choice = choice
            self.iofold.state.trace_columns = trace_columns.to_prefs(choice)
            save = getattr(self.app, "save_prefs", None)
            if save is not None and self.iofold.state.workspaces:
                save()
            self._fit_columns()

        self.app.push_screen(trace_columns.ColumnChooser(self.column_choice), done)

    def _cells(self, row: TraceRow) -> list[Text | str]:
        """The row's cells for the columns on screen (``trace_columns`` decides which)."""
        stamp = row.timestamp.replace("T", " ")
        values: dict[str, Text | str] = {
            "sel": self._marker(row.id),
            "time": cell(stamp[5:16] if self.compact_time and stamp[:4].isdigit() else stamp[:19], 19),
            "id": cell(row.id, 80),
            "ext": cell(row.external_id, 80),
            "source": cell(row.source, 10),
            "input": cell(preview_text(row.input_preview), PREVIEW_CHARS),
            "output": cell(row.output_preview, PREVIEW_CHARS),
            "steps": Text(row.step_count_text or str(row.step_count), justify="right"),
            "err": Text("✗", style="bold red") if row.has_errors else Text(""),
            "rating": self._rating_cell(row.id, row.rating),
        }
        return [values[key] for key in self.table.columns]

    # -- loading ---------------------------------------------------------------------------------------
    def reload(self, focus_id: str | None = None) -> None:
        flt, app = self.current_filter(), self.app
        start = getattr(app, "start_select", None)  # iofold-tui DB --select TRACE_ID
        start_id = start if start and getattr(app, "start_pane", None) == "traces" else None
        plan = self.model.reload(flt, focus_id, self.table.cursor_key, start_id)
        self.supersede_list()
        if plan.recompute_order:  # the time order meanwhile
            self.call_after_refresh(self.start_order, self.model.order_key)
        if plan.focus_id:
            self.load_page("around", focus_id=plan.focus_id, candidates=plan.candidates)
        elif plan.first_now:  # the first frame has rows; every other read is a worker's
            self.on_page_loaded(self.model.first_page_now(flt))
        else:
            self.load_page("first")
        self.call_after_refresh(self.load_count)  # the count's Python work would slow this frame's paint
        self.table.focus()

    def select_item(self, trace_id: str) -> None:
        """Put the cursor on one trace (``--select``, ``:``, screenshots)."""
        self.model.jump(trace_id)
        self.supersede("prefetch")
        self.load_page("around", focus_id=trace_id)

    def action_goto(self) -> None:
        def go(value: str | None) -> None:
            if value and value.strip():
                self.select_item(value.strip())

        self.app.push_screen(Prompt("Go to trace (id or external trace_id)"), go)

    def action_copy_id(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.app.copy_to_clipboard(key)
        self.notify(f"copied {cell(key, 60).plain} via OSC 52; your terminal must allow clipboard writes")

    # -- status ----------------------------------------------------------------------------------------
    def update_status(self) -> None:
        m, flt = self.model, self.current_filter()
        status = Text()
        shown = m.rows_shown(*self.table.visible_rows())
        if shown is None:
            status.append("counting… ", style="dim")
        else:
            status.append(shown, style="bold")
            if m.total is not None and m.matching != m.total:
                status.append(f" matching (of {m.total:,} traces)")
            else:
                status.append(" traces")
        if m.at_id:
            status.append(f"  ·  at {cell(m.at_id, 40).plain}", style="bold cyan")
        parts = flt.describe()
        status.append("  ·  " + ("filters: " + " · ".join(parts) if parts else "no filters"),
                      style="cyan" if parts else "dim")
        status.append(f"  ·  {m.order_label(flt)}")
        if m.page is not None:
            status.append(f"  ·  query {m.page.query_ms:.1f} ms", style="dim")
        if m.scan.note:
            status.append(f"  ·  {m.scan.note}", style="yellow")
        if m.order_note:
            status.append(f"  ·  {m.order_note}", style="yellow")
        if m.selected:
            status.append(f"  ·  {len(m.selected):,} selected (a/x/n label them, * clears)",
                          style="bold magenta")
        self.set_status(status)

    def pending_changed(self) -> None:
        super().pending_changed()
        self.show_pending_labels()

    # -- Textual collects @on handlers from the screen class: they stay here -----------------------------
    @on(RowTable.Viewport)
    def _viewport(self) -> None:
        self.update_status()

    @on(RowTable.RowSelected)
    def _open(self, event: RowTable.RowSelected) -> None:
        if event.row_key.value:
            self.open_trace(str(event.row_key.value))

    def open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(trace_id))

    # -- filters ---------------------------------------------------------------------------------------
    def _filter_chosen(self, result: TraceFilter | None) -> None:
        if result is not None:
            self.iofold.state.trace_filter = result
            self.reload()

    def action_filters(self) -> None:
        from iofold_tui.ui.panes.trace_filters import TraceFilterScreen

        def show(sources: list[str]) -> None:
            self.app.push_screen(TraceFilterScreen(self.iofold.state.trace_filter, sources),
                                 self._filter_chosen)

        self.load_sources_then(show)

    def action_facets(self) -> None:
        """Shift+F: counts per source / errors / rating / verdict / tool / error / day; Enter filters."""
        from iofold_tui.ui.panes.facets import FacetScreen

        app = self.iofold
        facets = FacetScreen(app.db, app.source, app.state.trace_filter, counted=self.current_filter())
        self.app.push_screen(facets, self._filter_chosen)

    def load_sources_then(self, callback: Callable[[list[str]], object]) -> None:
        db, workspace_id = self.iofold.db, self.current_filter().workspace_id
        self.run_query(lambda: catalog.sources(db.conn(), workspace_id), on_result=callback, group="sources",
                       what="reading the sources")
