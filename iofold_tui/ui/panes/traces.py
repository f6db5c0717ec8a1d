"""The trace list: page through SQL, filter, search previews and full steps, jump to a trace."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from iofold_tui.data.source import catalog
from iofold_tui.data.text import plural
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.data.traces.query import (
    TraceFilter,
    TracePage,
    TraceQuery,
    TraceRow,
    total_traces,
)
from iofold_tui.ui import label_keys, trace_columns
from iofold_tui.ui.paged_table import Direction
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.text import cell, rating_text
from iofold_tui.ui.widgets import Confirm, PickOne, Prompt

if TYPE_CHECKING:
    from iofold_tui.data.labels.store import Step
    from iofold_tui.data.search.order import Ordered, OrderedQuery

PAGE_SIZE = 100
# A jump lands in a part of the file nothing has read yet: a page there costs a few random reads per row
# (previews sit after the large steps column), so it reads one screenful; the pages on either side come
# from the read-ahead as usual.
JUMP_PAGE_SIZE = 50
# Previews are cut before they reach the table: measuring and cropping 200-character cells for every
# row of a page was a visible part of start-up. Wider than any preview column on a 250-column terminal.
PREVIEW_CHARS = 100
SELECT_CHUNK = 2_000  # ids resolved per keyset page when selecting everything that matches
BULK_LIMIT = 100_000  # one undo step of at most this many labels; narrow the filter beyond
REGEX_PREFIX = "re:"  # "/" then re:PATTERN scans with a regular expression
SEARCH_CAP = 200_000  # matches of a full-text search the list filters to (the rest: narrow the query)


class PageLoaded(Message):
    def __init__(self, page: TracePage, direction: Direction | Literal["around", "same"], generation: int) -> None:
        super().__init__()
        self.page = page
        self.direction = direction
        self.generation = generation


class CountLoaded(Message):
    def __init__(self, matching: int, total: int, generation: int) -> None:
        super().__init__()
        self.matching = matching
        self.total = total
        self.generation = generation


class StepScanProgress(Message):
    def __init__(self, done: int, total: int, found: int, finished: bool, rowids: list[int] | None, complete: bool) -> None:
        super().__init__()
        self.done, self.total, self.found = done, total, found
        self.finished, self.rowids, self.complete = finished, rowids, complete


class SelectionResolved(Message):
    def __init__(self, ids: list[str] | None, matching: int) -> None:
        super().__init__()
        self.ids, self.matching = ids, matching  # ids None: more than BULK_LIMIT matched


class OrderReady(Message):
    def __init__(self, key: str, ordered: Ordered | None, flt: TraceFilter, error: str) -> None:
        super().__init__()
        self.key, self.ordered, self.flt, self.error = key, ordered, flt, error


def _labeling():  # noqa: ANN202 - the module; the label store and its history load on first use
    from iofold_tui.ui import labeling

    return labeling


class BulkDone(Message):
    def __init__(self, step: Step | None, rating: str, error: str | None) -> None:
        super().__init__()
        self.step, self.rating, self.error = step, rating, error


class TracesPane(Pane):
    pane_title = "Traces"
    selects_on_start = True  # applied when the first page / the eval is in
    BINDINGS = [
        Binding("slash", "search", "Search", id="traces.search"),
        Binding("p", "preview_filter", "Preview filter", id="traces.preview"),
        Binding("g", "search", "Search (as /)", id="traces.grep", show=False),  # the full-text search's old key
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
        '/ searches everything (previews and steps): words, "phrases", prefix*, AND/OR/NOT, -word, and fields '
        "tool: error: role: user: assistant: io: input: output: id:; through the search index, or a scan with "
        "progress while it is built; re:PATTERN scans with a regular expression (progress, Esc stops). Matches "
        "are highlighted in the trace view and review. g does the same.",
        "p filters the previews instantly as you type (a plain substring, no query language).",
        "o orders the list: newest/oldest first, step count, source, rating, most contradicted, and relevance "
        "after a search; orders other than time are computed per filter in the background (the cost is said "
        "first, the list keeps its order meanwhile).",
        "F counts values (source, errors, rating, verdict, tool, error, day) over the list's filter; Enter filters.",
    )

    def __init__(self) -> None:
        super().__init__()
        self.page: TracePage | None = None
        self.first_index: int | None = 0  # index of the page's first row among the matches, when known
        self.matching: int | None = None
        self.total: int | None = None
        self.generation = 0  # bumps when the filter changes; late results of old filters are dropped
        self.scan_note = ""
        self.order_note = ""  # an order being computed
        self._last_filter: TraceFilter | None = None
        self._shown_once = False
        # (direction, edge key) -> (generation, page) read ahead in the background; at most two pages.
        self.prefetched: dict[tuple[str, tuple[str, int]], tuple[int, TracePage]] = {}
        self.selected: set[str] = set()  # trace ids for bulk labelling; survive paging and filters
        self.jump_target: str | None = None  # the id the last ":" jump (or --select) asked for
        self.at_id: str | None = None
        # An order other than time (data/search/order.py): the matching rowids in that order, computed in a
        # worker for one filter; None while the list walks the timestamp index.
        self.ordered: Ordered | None = None
        self.ordered_for: TraceFilter | None = None
        self.order_key = "newest"

    def compose_body(self) -> ComposeResult:
        table = RowTable(id="traces")  # the search bar is mounted above it on the first "/"
        self.column_choice = trace_columns.from_prefs(self.iofold.state.trace_columns)
        columns, self.compact_time = trace_columns.layout(self.column_choice, self.app.size.width)
        for key, label, width in columns:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static(id="progress-line")

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
        if self.page is not None:
            table.show_page(((r.id, self._cells(r)) for r in self.page.rows), has_before=self.page.has_before,
                            has_after=self.page.has_after, focus_key=focus)

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

    def action_copy_id(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.app.copy_to_clipboard(key)
        self.notify(f"copied {cell(key, 60).plain} via OSC 52; your terminal must allow clipboard writes")

    def select_item(self, trace_id: str) -> None:
        """Put the cursor on one trace (``--select``, screenshots)."""
        self.generation += 1
        self.jump_target = trace_id
        self.load_page("around", focus_id=trace_id)

    @property
    def table(self) -> RowTable:
        return self.query_one("#traces", RowTable)

    def current_filter(self) -> TraceFilter:
        return self.iofold.state.scoped_filter()

    def _query(self, conn: object, flt: TraceFilter) -> TraceQuery | OrderedQuery:
        """The list's pages: the timestamp walk, or the precomputed order when one is on screen."""
        ordered = self.ordered
        if ordered is not None and flt == self.ordered_for:
            from iofold_tui.data.search.order import OrderedQuery

            return OrderedQuery(conn, ordered.rowids, flt.eval_set_id)  # type: ignore[arg-type]
        return TraceQuery(conn, flt)  # type: ignore[arg-type]

    # -- loading ---------------------------------------------------------------------------------------
    def reload(self, focus_id: str | None = None) -> None:
        flt = self.current_filter()
        candidates: tuple[str, ...] = ()
        if focus_id is None and flt == self._last_filter and self.page is not None:
            focus_id = self.table.cursor_key  # same filter (data changed underneath): stay put
            ids = [r.id for r in self.page.rows]
            if focus_id in ids:  # if another process deleted it: the next row still there, else the one before
                at = ids.index(focus_id)
                candidates = tuple(ids[at + 1:at + 11] + ids[max(0, at - 10):at][::-1])
        self._last_filter = flt
        if self.order_key not in ("newest", "oldest") and flt != self.ordered_for:
            self.ordered = self.ordered_for = None  # the time order meanwhile; the order is recomputed below
            self.call_after_refresh(self._start_order, self.order_key)
        self.generation += 1
        self.matching = None
        self.page = None
        start = getattr(self.app, "start_select", None)
        if not self._shown_once and start and getattr(self.app, "start_pane", None) == "traces":
            focus_id = self.jump_target = start  # iofold-tui DB --select TRACE_ID
        if focus_id:
            self.load_page("around", focus_id=focus_id, candidates=candidates)
        elif not self._shown_once and not flt.describe() and flt.workspace_id is None:
            # The pane's very first page, unfiltered: 100 rows read down the timestamp index (~1.5 ms on
            # 1M traces, independent of the size) here rather than in a worker, so the first frame has
            # rows; through a worker they came two full frames (~150 ms) later. Every other read is a worker's.
            self.on_page_loaded(PageLoaded(TraceQuery(self.iofold.db.conn(), flt).first_page(PAGE_SIZE),
                                           "first", self.generation))
        else:
            self.load_page("first")
        self._shown_once = True
        self.call_after_refresh(self.load_count)  # the count's Python work would slow this frame's paint
        self.table.focus()

    def load_page(self, direction: Direction | Literal["around"], focus_id: str | None = None,
                  candidates: tuple[str, ...] = ()) -> None:
        """Compute the cursor key here (UI thread), query in a worker."""
        key = None
        if direction == "after" and self.page and self.page.rows:
            key = self.page.rows[-1].key
        elif direction == "before" and self.page and self.page.rows:
            key = self.page.rows[0].key
        elif direction in ("after", "before"):
            direction = "first"
        ready = self.prefetched.get((direction, key)) if key is not None else None
        if ready is not None and ready[0] == self.generation:
            # The neighbour page was read while the user looked at this one: no query on the key press.
            self.post_message(PageLoaded(ready[1], direction, self.generation))
            return
        self._fetch(direction, key, focus_id, self.generation, self.current_filter(), candidates)

    # A read that fails (another process holds a rollback-journal EXCLUSIVE lock beyond the busy timeout)
    # must not end the app: the next key or refresh reads again.
    @work(thread=True, group="prefetch", exit_on_error=False)
    def _prefetch(self, keys: list[tuple[str, tuple[str, int]]], generation: int, flt: TraceFilter) -> None:
        """Read the pages before and after the visible one (a 6 GB file is mostly cold on disk: a page
        costs ~100 random reads), so crossing a page edge shows rows without waiting for the disk."""
        query = self._query(self.iofold.db.conn(), flt)
        found = {}
        for direction, key in keys:
            fetch = query.page_after if direction == "after" else query.page_before
            found[(direction, key)] = (generation, fetch(key, PAGE_SIZE))
        self.app.call_from_thread(self._store_prefetched, found, generation)

    def _store_prefetched(self, found: dict, generation: int) -> None:  # type: ignore[type-arg]
        if generation == self.generation:
            self.prefetched = found

    @work(thread=True, exclusive=True, group="page", exit_on_error=False)
    def _fetch(self, direction: Direction | Literal["around"], key: tuple[str, int] | None, focus_id: str | None,
               generation: int, flt: TraceFilter, candidates: tuple[str, ...] = ()) -> None:
        query = self._query(self.iofold.db.conn(), flt)
        page: TracePage | None = None
        if direction == "around" and focus_id:
            page = query.around(focus_id, JUMP_PAGE_SIZE)
            for other in candidates:  # the row under the cursor was deleted underneath: its neighbour
                if page is not None:
                    break
                page = query.around(other, JUMP_PAGE_SIZE)
            if page is None and candidates:
                page = query.first_page(PAGE_SIZE)
            if page is None:
                shown = cell(focus_id, 60).plain
                self.app.call_from_thread(self.notify, f"trace {shown} is not in the list with the current filters "
                                          "(c clears them)" if query.exists(focus_id) else f"no trace with id {shown}",
                                          severity="warning")
                if self.page is None:  # nothing on screen yet (--select of a missing id): the first page
                    self.post_message(PageLoaded(query.first_page(PAGE_SIZE), "first", generation))
                return
            self.post_message(PageLoaded(page, direction, generation))
            if page.rows:  # where the page sits in the list: "rows k–m of N" in the header
                position = query.position(page.rows[0].key)
                self.app.call_from_thread(self._jump_position, position, page, generation)
            return
        elif direction == "last":
            page = query.last_page(PAGE_SIZE)
        elif direction == "after" and key:
            page = query.page_after(key, PAGE_SIZE)
        elif direction == "before" and key:
            page = query.page_before(key, PAGE_SIZE)
        else:
            page = query.first_page(PAGE_SIZE)
        self.post_message(PageLoaded(page, direction, generation))

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def load_count(self) -> None:
        generation = self.generation
        conn = self.iofold.db.conn()
        flt = self.current_filter()
        total = total_traces(conn, flt.workspace_id)
        query = self._query(conn, flt)
        plain = flt == flt.cleared() and flt.step_rowids is None and isinstance(query, TraceQuery)
        matching = total if plain else query.count()
        self.post_message(CountLoaded(matching, total, generation))

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return
        page, previous = message.page, self.page
        if message.direction == "first":
            self.first_index = 0
        elif message.direction == "after" and previous is not None and self.first_index is not None:
            self.first_index += len(previous.rows)
        elif message.direction == "before" and self.first_index is not None:
            self.first_index = max(0, self.first_index - len(page.rows))
        elif message.direction == "last":
            self.first_index = None if self.matching is None else max(0, self.matching - len(page.rows))
        elif message.direction == "around":
            self.first_index = None
        self.page = page
        # "at <id>" in the header while the page a jump (:, --select) asked for is on screen
        self.at_id = page.focus_id if message.direction == "around" and page.focus_id == self.jump_target else None
        self.table.show_page(((r.id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                             has_after=page.has_after, focus_key=page.focus_id,
                             cursor="last" if message.direction in ("before", "last") else "first")
        self.update_status()
        self.prefetched = {}
        keys = []
        if page.rows and page.has_after:
            keys.append(("after", page.rows[-1].key))
        if page.rows and page.has_before:
            keys.append(("before", page.rows[0].key))
        if keys:  # after this page is painted: its reads would compete with the paint for the GIL
            self.call_after_refresh(self._prefetch, keys, self.generation, self.current_filter())

    def _jump_position(self, position: int, page: TracePage, generation: int) -> None:
        if generation == self.generation and self.page is page:
            self.first_index = position
            self.update_status()

    @on(RowTable.Viewport)
    def _viewport(self) -> None:
        self.update_status()

    def on_count_loaded(self, message: CountLoaded) -> None:
        if message.generation != self.generation:
            return
        self.matching, self.total = message.matching, message.total
        if self.first_index is None and self.page and not self.page.has_after:
            self.first_index = max(0, self.matching - len(self.page.rows))
        self.update_status()

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

    def update_status(self) -> None:
        flt = self.current_filter()
        status = Text()
        top, visible = self.table.visible_rows()
        if self.matching is None:
            status.append("counting… ", style="dim")
        else:
            if not self.matching:
                shown = "no rows"
            elif not visible:
                shown = "—"
            elif self.first_index is not None:
                shown = f"rows {self.first_index + top + 1:,}–{self.first_index + top + visible:,}"
            else:
                shown = "rows ?"  # a jump's position is being counted
            status.append(f"{shown} of {self.matching:,}", style="bold")
            if self.total is not None and self.matching != self.total:
                status.append(f" matching (of {self.total:,} traces)")
            else:
                status.append(" traces")
        if self.at_id:
            status.append(f"  ·  at {cell(self.at_id, 40).plain}", style="bold cyan")
        parts = flt.describe()
        status.append("  ·  " + ("filters: " + " · ".join(parts) if parts else "no filters"), style="cyan" if parts else "dim")
        status.append(f"  ·  {self._order_label(flt)}")
        if self.page is not None:
            status.append(f"  ·  query {self.page.query_ms:.1f} ms", style="dim")
        if self.scan_note:
            status.append(f"  ·  {self.scan_note}", style="yellow")
        if self.order_note:
            status.append(f"  ·  {self.order_note}", style="yellow")
        if self.selected:
            status.append(f"  ·  {len(self.selected):,} selected (a/x/n label them, * clears)", style="bold magenta")
        self.set_status(status)

    # -- paging ----------------------------------------------------------------------------------------
    @on(RowTable.Boundary)
    def _boundary(self, event: RowTable.Boundary) -> None:
        self.load_page(event.direction)

    @on(RowTable.RowSelected)
    def _open(self, event: RowTable.RowSelected) -> None:
        if event.row_key.value:
            self.open_trace(str(event.row_key.value))

    def open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(trace_id))

    # -- filters ---------------------------------------------------------------------------------------
    def apply_filter(self, **changes: object) -> None:
        self.iofold.set_trace_filter(**changes)
        self.reload()

    def _search_bar(self) -> Input | None:
        found = self.query("#search-bar")
        return found.first(Input) if found else None

    async def action_preview_filter(self) -> None:
        """p: the instant filter on the input/output previews (a substring, as you type)."""
        bar = self._search_bar()
        if bar is None:  # built on first use: styling an Input is a visible part of the start-up frame
            bar = Input(placeholder="filter previews as you type (Enter keeps, Esc clears; / searches everything)",
                        id="search-bar")
            await self.mount(bar, before=self.table)
        bar.value = self.iofold.state.trace_filter.text
        bar.add_class("visible")
        bar.focus()

    @on(Input.Changed, "#search-bar")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != self.iofold.state.trace_filter.text:
            self.iofold.set_trace_filter(text=event.value)
            self.generation += 1
            self.matching = None
            self.load_page("first")
            self.load_count()

    @on(Input.Submitted, "#search-bar")
    def _search_done(self, _: Input.Submitted) -> None:
        self.table.focus()
        bar = self._search_bar()
        if bar is not None and not self.iofold.state.trace_filter.text:
            bar.remove_class("visible")


    def action_clear_filters(self) -> None:
        bar = self._search_bar()
        if bar is not None:
            bar.remove_class("visible")
        self.scan_note = ""
        self.iofold.state.trace_filter = self.iofold.state.trace_filter.cleared()
        self.reload()

    # -- order ---------------------------------------------------------------------------------------
    def _order_label(self, flt: TraceFilter) -> str:
        from iofold_tui.data.search.order import ORDERS

        if self.ordered is not None and flt == self.ordered_for:
            label = ORDERS[self.ordered.key][0]
            return f"{label} ({self.ordered.note})" if self.ordered.note else label
        return f"{'newest' if flt.newest_first else 'oldest'} first"

    def action_pick_order(self) -> None:
        """o: time (newest/oldest), step count, source, rating, most contradicted, search relevance."""
        from iofold_tui.data.search.order import ORDERS, TIME_ORDERS

        flt = self.iofold.state.trace_filter
        query = self.search_query()
        keys = [k for k in ORDERS if k != "relevance" or (query and not query.startswith(REGEX_PREFIX))]
        if self.iofold.state.eval_set_id is None:
            keys = [k for k in keys if k not in ("rating", "contradicted")]
        current = self.order_key if self.order_key not in TIME_ORDERS else ("newest" if flt.newest_first else "oldest")

        def picked(key: str | None) -> None:
            if key is None:
                return
            if key in TIME_ORDERS:
                self.order_key, self.ordered, self.ordered_for, self.order_note = key, None, None, ""
                for worker in self.workers:
                    if worker.group == "order":
                        worker.cancel()
                self.apply_filter(newest_first=key == "newest")
                return
            self.order_key = key
            self._start_order(key)

        self.app.push_screen(PickOne("Order by (an order other than time is computed per filter)",
                                     [(k, ORDERS[k][1]) for k in keys], current), picked)

    def _start_order(self, key: str) -> None:
        from iofold_tui.data.search.order import ORDERS

        self.order_note = f"ordering by {ORDERS[key][0].removeprefix('by ')}…"
        self.update_status()
        self._compute_order(key, self.current_filter(), self.search_query())

    @work(thread=True, exclusive=True, group="order", exit_on_error=False)
    def _compute_order(self, key: str, flt: TraceFilter, query: str) -> None:
        """The cost said first (a notice), then the order computed; the current order stays meanwhile."""
        import sqlite3

        from iofold_tui.data.search import order
        from iofold_tui.data.search.index import source_key

        src = self.iofold.source
        try:
            with self.iofold.db.fresh() as conn:
                cost = order.order_cost(conn, key, flt.eval_set_id, flt)
                self.app.call_from_thread(self.notify, f"{order.ORDERS[key][1]}: {cost}; the list keeps its order "
                                          "until it is ready")
                result = order.ordered_rowids(conn, flt, key, source_key=source_key(src.kind, src.origin, src.db.path),
                                              db_path=self.iofold.db.path, query=query)
        except (ValueError, sqlite3.DatabaseError) as exc:
            self.post_message(OrderReady(key, None, flt, str(exc)))
            return
        self.post_message(OrderReady(key, result, flt, ""))

    def on_order_ready(self, message: OrderReady) -> None:
        from iofold_tui.data.search.order import CAP

        if message.flt != self.current_filter() or message.key != self.order_key:
            return  # the filter or the order changed meanwhile: a newer computation is on its way
        self.order_note = ""
        if message.ordered is None:
            if message.key != "relevance" or self.search_query():
                self.notify(f"order: {message.error}", severity="warning")
            self.order_key = "newest" if message.flt.newest_first else "oldest"
            self.update_status()
            return
        self.ordered, self.ordered_for = message.ordered, message.flt
        if message.ordered.total > CAP:
            self.notify(f"more than {CAP:,} traces match: the order keeps its first {CAP:,} (narrow the filter)")
        self.generation += 1
        self.matching = None
        self.jump_target = self.at_id = None
        self.load_page("first")
        self.load_count()

    def search_query(self) -> str:
        """The full-text query the list is filtered by ('' when the rowid set came from elsewhere)."""
        from iofold_tui.ui.highlight import active_query

        return active_query(self.iofold.state)

    def action_goto(self) -> None:
        def go(value: str | None) -> None:
            if value and value.strip():
                self.generation += 1
                self.jump_target = value.strip()
                self.load_page("around", focus_id=value.strip())

        self.app.push_screen(Prompt("Go to trace (id or external trace_id)"), go)

    def action_filters(self) -> None:
        from iofold_tui.ui.panes.trace_filters import TraceFilterScreen

        def done(result: TraceFilter | None) -> None:
            if result is not None:
                self.iofold.state.trace_filter = result
                self.reload()

        self.load_sources_then(lambda sources: self.app.push_screen(
            TraceFilterScreen(self.iofold.state.trace_filter, sources), done))

    def action_facets(self) -> None:
        """Shift+F: counts per source / errors / rating / verdict / tool / error / day; Enter filters."""
        from iofold_tui.ui.panes.facets import FacetScreen

        def done(result: TraceFilter | None) -> None:
            if result is not None:
                self.iofold.state.trace_filter = result
                self.reload()

        self.app.push_screen(FacetScreen(self.iofold.db, self.iofold.source, self.iofold.state.trace_filter,
                                         counted=self.current_filter()), done)

    @work(thread=True, group="sources")
    def load_sources_then(self, callback: object) -> None:
        sources = catalog.sources(self.iofold.db.conn(), self.current_filter().workspace_id)
        self.app.call_from_thread(callback, sources)  # type: ignore[arg-type]

    # -- full-text search ------------------------------------------------------------------------------
    def action_search(self) -> None:
        """/: the query language (data/search/query.py) through the sidecar index, or a scan with progress
        while the index is missing or being built; combined with the other filters and rating states."""
        def go(value: str | None) -> None:
            if value is None:
                return
            if not value:
                self.scan_note = ""
                self.apply_filter(step_text="", step_rowids=None)
                return
            # The filter changes when the scan is done: until then the list and its header show the
            # current filter, with the search in progress noted.
            self.scan_needle, self.scan_done = value, 0.0
            self.scan_note = f'searching steps for "{value}"… (Esc stops)'
            self.update_status()
            self.scan(value)

        self.app.push_screen(Prompt('Search: words, "phrase", prefix*, AND/OR/NOT, tool:/error:/role:…, re:REGEX '
                                    "(empty clears; p filters previews as you type)",
                                    self.iofold.state.trace_filter.step_text), go)

    @work(thread=True, exclusive=True, group="scan")
    def scan(self, needle: str) -> None:
        """Full-text search (data/search): the sidecar index when built, else a scan with progress."""
        from iofold_tui.data.search.index import run_search, source_key
        from iofold_tui.data.search.query import SearchSyntaxError

        worker = get_current_worker()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if done - last[0] > total / 50 or done >= total:
                last[0] = done
                self.post_message(StepScanProgress(done, total, 0, False, None, False))

        src = self.iofold.source
        # A private connection so the scan never blocks the list's own queries.
        with self.iofold.db.fresh() as conn:
            try:
                # "re:PATTERN": regex mode (a Python regular expression, case-insensitive), always a scan
                regex = needle.startswith(REGEX_PREFIX)
                result = run_search(conn, source_key(src.kind, src.origin, src.db.path),
                                    needle.removeprefix(REGEX_PREFIX) if regex else needle, limit=SEARCH_CAP,
                                    regex=regex, progress=progress, cancelled=lambda: worker.is_cancelled,
                                    want_all=True)
            except SearchSyntaxError as exc:
                self.app.call_from_thread(self.notify, f"search: {exc}", severity="error")
                self.post_message(StepScanProgress(0, 0, 0, True, [], False))
                return
        rowids = (result.all_rowids or [])[:SEARCH_CAP]
        if result.note:
            self.app.call_from_thread(self.notify, result.note)
        if len(result.all_rowids or []) > SEARCH_CAP:
            self.app.call_from_thread(self.notify, f"{len(result.all_rowids or []):,} matches: the list keeps the newest "
                                      f"{SEARCH_CAP:,} (narrow the query for the rest)")
        self.post_message(StepScanProgress(0, 0, len(rowids), True, rowids, result.complete and result.total <= SEARCH_CAP))
        if not result.used_index and ("no search index" in (result.note or "") or "unusable" in (result.note or "")) \
                and src.kind != "d1-remote":  # a live D1: the scan runs there; an index would copy every step
            self.build_search_index()

    @work(thread=True, exclusive=True, group="search-index")
    def build_search_index(self) -> None:
        """Build the sidecar search index in the background (the list stays usable; searches scan meanwhile)."""
        import sqlite3

        from iofold_tui.data.search.index import IndexUnavailable, SearchIndex, source_key

        worker = get_current_worker()
        src = self.iofold.source
        try:
            index = SearchIndex(source_key(src.kind, src.origin, src.db.path))
            try:
                index.conn(create=True)
            except IndexUnavailable:  # corrupt or an older format: it is only a cache
                index.remove()
            with self.iofold.db.fresh() as conn:
                report = index.sync(conn, cancelled=lambda: worker.is_cancelled)
            index.close()
        except (IndexUnavailable, sqlite3.DatabaseError) as exc:
            self.app.call_from_thread(self.notify, f"search index not built: {exc}")
            return
        if report.complete:
            self.app.call_from_thread(self.notify, report.summary())

    def on_step_scan_progress(self, message: StepScanProgress) -> None:
        line = self.query_one("#progress-line", Static)
        if not message.finished:
            line.add_class("visible")
            pct = 100 * message.done / max(message.total, 1)
            self.scan_done = pct
            bar = "█" * int(pct / 4) + "░" * (25 - int(pct / 4))
            line.update(Text(f" steps search {bar} {pct:5.1f}%  {message.found:,} found  (Esc stops)", style="yellow"))
            return
        line.remove_class("visible")
        flt = self.iofold.state.trace_filter
        needle = getattr(self, "scan_needle", flt.step_text)
        if not message.complete and not message.found:  # stopped before any match: nothing to show
            self.scan_note = ""
            self.notify(f'step search for "{cell(needle, 40).plain}" stopped after {self.scan_done:.0f}% '
                        "of the traces, before any match; the list is as it was")
            self.update_status()
            return
        self.scan_note = "" if message.complete else (
            f"step search stopped after {self.scan_done:.0f}%: {plural(message.found, 'match', 'matches')} so far")
        self.iofold.state.trace_filter = replace(flt, step_text=needle, step_rowids=tuple(message.rowids or ()))
        self.iofold.state.search_query = needle  # what the trace view and review highlight
        self.reload()

    def action_cancel_scan(self) -> None:
        bar = self._search_bar()
        if bar is not None and bar.has_focus:  # Esc in the search bar clears it
            bar.value = ""
            bar.remove_class("visible")
            self.table.focus()
            return
        for worker in self.workers:
            if worker.group == "scan" and worker.is_running:
                worker.cancel()

    # -- labelling and bulk selection (one LabelStore per app: ui/labeling.py) --------------------------
    def _rating_cell(self, trace_id: str, stored: str | None) -> Text:
        """The row's label; a label still queued (another process holds the lock) shows as ⧗ pending."""
        eval_set = self.iofold.state.eval_set
        queue = _labeling().open_label_queue(self.app) if eval_set is not None else None
        intent = queue.pending_for(eval_set.id, trace_id) if queue is not None else None  # type: ignore[union-attr]
        if intent is None or intent.kind != "label":
            return rating_text(stored)
        # "⧗ pos": fits the 5-cell column; the header says why it is pending
        return Text(f"⧗ {(intent.rating or 'none')[:3]}", style="bold yellow reverse")

    def on_label_applied(self, applied: object) -> None:
        """A queued label was written (ui.labeling.LabelQueue): the visible rows show the database again."""
        if self.app.screen is not self:
            self.stale = True  # reloaded when shown again
        elif self.is_mounted and self.page is not None:
            self.reload()  # same filter: the page around the cursor

    def pending_changed(self) -> None:
        super().pending_changed()
        if self.page is not None:
            for row in self.page.rows:
                if row.id in self.table.rows:
                    self.table.update_cell(row.id, "rating", self._rating_cell(row.id, row.rating))

    def _marker(self, trace_id: str) -> Text:
        return Text("●", style="bold magenta") if trace_id in self.selected else Text(" ")

    def action_toggle_select(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.selected.symmetric_difference_update({key})
        self.table.update_cell(key, "sel", self._marker(key))
        self.table.action_cursor_down()
        self.update_status()

    def action_select_all(self) -> None:
        if self.selected:
            self._set_selection(set())
            return
        self.notify("selecting every trace that matches the filter…")
        self._resolve_selection(self.current_filter())

    @work(thread=True, exclusive=True, group="select")
    def _resolve_selection(self, flt: TraceFilter) -> None:
        worker = get_current_worker()
        ids: list[str] = []
        with self.iofold.db.fresh() as conn:  # keyset pages, so memory holds ids only
            query = self._query(conn, flt)
            page = query.first_page(SELECT_CHUNK)
            while True:
                ids.extend(r.id for r in page.rows)
                if len(ids) > BULK_LIMIT:
                    self.post_message(SelectionResolved(None, len(ids)))
                    return
                if not page.has_after or not page.rows or worker.is_cancelled:
                    break
                page = query.page_after(page.rows[-1].key, SELECT_CHUNK)
        self.post_message(SelectionResolved(ids, len(ids)))

    def on_selection_resolved(self, message: SelectionResolved) -> None:
        if message.ids is None:
            self.notify(f"more than {BULK_LIMIT:,} traces match: narrow the filter to label them in one step",
                        severity="warning")
            return
        self._set_selection(set(message.ids))

    def _set_selection(self, ids: set[str]) -> None:
        self.selected = ids
        for row_key in list(self.table.rows):
            self.table.update_cell(row_key, "sel", self._marker(str(row_key.value)))
        self.update_status()

    def action_label(self, rating: str) -> None:
        app, eval_set = self.iofold, self.iofold.state.eval_set
        reason = _labeling().disabled_reason(app)
        if reason or eval_set is None:
            self.notify(f"labelling disabled: {reason}" if reason else "pick an eval set first (v)", severity="warning")
            return
        if not self.selected:
            key = self.table.cursor_key
            if key is None:
                return
            try:  # queued: written by the writer thread, never waiting for the lock here
                _labeling().label_queue(app).label(eval_set.id, key, rating)
            except _labeling().LabelActionError as exc:
                self.notify(str(exc), severity="error")
                return
            self.table.update_cell(key, "rating", self._rating_cell(key, None))
            self.table.action_cursor_down()
            return
        ids = sorted(self.selected)
        question = Text(f"Label {plural(len(ids), 'selected trace')} {rating} in eval set ")
        question.append(cell(eval_set.name, 40, style="bold"))
        question.append("?\nOne undo step (u) reverts all of them.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._apply_bulk(eval_set.id, ids, rating)

        self.app.push_screen(Confirm(question), confirmed)

    @work(thread=True, exclusive=True, group="bulk")
    def _apply_bulk(self, eval_set_id: str, ids: list[str], rating: str) -> None:
        try:
            step = _labeling().write_bulk(_labeling().label_store(self.app), eval_set_id, ids, rating)
        except _labeling().LabelActionError as exc:
            self.post_message(BulkDone(None, rating, str(exc)))
            return
        self.post_message(BulkDone(step, rating, None))

    def on_bulk_done(self, message: BulkDone) -> None:
        if message.error:
            self.notify(message.error, severity="error")
            return
        changed = len(message.step.changes) if message.step else 0
        self.notify(f"{plural(changed, 'label')} set to {message.rating} as one step (u undoes it)")
        self._set_selection(set())
        self.reload()

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
        try:
            what, _ = _labeling().label_queue(self.app).travel(undo=undo)
        except _labeling().LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        if what == "cancelled":
            self.pending_changed()
