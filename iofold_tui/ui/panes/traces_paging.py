"""The trace list's base: its model (``TraceListModel``), its table and the queries that fill it — a page read
at an edge (or found among those read ahead), the count, a jump's position, the neighbouring pages read
ahead after each paint.

The pane is a chain of classes, one concern each: ``TracePaging`` (here) → ``TraceLabels`` (label keys,
selection) → ``TraceSearch`` (``/``, ``p``, the order) → ``TracesPane`` (columns, status, filters). A chain
rather than self-typed mixins: each class only calls what it or a class below defines (``_cells`` and
``update_status`` are the view's, declared here), so the strict type check holds without a protocol.
"""

from __future__ import annotations

import functools
from pathlib import Path

from rich.text import Text
from textual import on

from iofold_tui.data.traces.query import TraceFilter, TracePage, TraceRow
from iofold_tui.ui.models.traces import (
    Counted,
    JumpMissed,
    Key,
    PageDirection,
    PageLoaded,
    Positioned,
    TraceListModel,
)
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.text import cell

LIST_GROUPS = ("page", "count", "prefetch", "position")  # queries that describe one list (filter, order)


class TracePaging(Pane):
    @functools.cached_property
    def model(self) -> TraceListModel:
        src = self.iofold.source

        def index_key() -> Path:  # the search index module loads on the first search
            from iofold_tui.data.search.index import source_key

            return source_key(src.kind, src.origin, src.db.path)

        return TraceListModel(self.iofold.db, index_key)

    # the model's state, as the tests read it
    @property
    def page(self) -> TracePage | None:
        return self.model.page

    @property
    def selected(self) -> set[str]:
        return self.model.selected

    @property
    def table(self) -> RowTable:
        return self.query_one("#traces", RowTable)

    def current_filter(self) -> TraceFilter:
        return self.iofold.state.scoped_filter()

    def _cells(self, row: TraceRow) -> list[Text | str]:
        """The row's cells for the columns on screen (the view's)."""
        raise NotImplementedError

    def update_status(self) -> None:
        """The header's status line (the view's)."""
        raise NotImplementedError


    def supersede_list(self) -> None:
        """Results of the list's queries already running describe the list before: dropped on arrival."""
        for group in LIST_GROUPS:
            self.supersede(group)

    def new_list(self) -> None:
        """Another list (the filter or the order changed): nothing counted or read ahead for it yet."""
        self.model.new_list()
        self.supersede_list()

    @on(RowTable.Boundary)
    def _boundary(self, event: RowTable.Boundary) -> None:
        if self.model.at_edge(event.direction, event.edge):  # else asked of a page no longer shown
            self.load_page(event.direction)

    def load_page(self, direction: PageDirection, focus_id: str | None = None,
                  candidates: tuple[str, ...] = ()) -> None:
        """The keyset position is taken here (UI thread), the page read in a worker."""
        request = self.model.page_request(direction, self.current_filter(), focus_id, candidates)
        if isinstance(request, PageLoaded):  # read while the user looked at this page: no query on the key
            self.supersede("page")
            self.on_page_loaded(request)
            return
        self.run_query(request, on_result=self._page_read, group="page", what="reading traces")

    def _page_read(self, result: PageLoaded | JumpMissed) -> None:
        if isinstance(result, JumpMissed):
            shown = cell(result.trace_id, 60).plain
            self.notify(f"trace {shown} is not in the list with the current filters (c clears them)"
                        if result.exists else f"no trace with id {shown}", severity="warning")
            if result.first is not None:
                self.on_page_loaded(PageLoaded(result.first, "first"))
            return
        self.on_page_loaded(result)
        if result.direction == "around" and result.page.rows:  # "rows k–m of N" in the header
            self.run_query(self.model.position_job(result.page, self.current_filter()),
                           on_result=self._positioned, group="position", what="counting the position")

    def on_page_loaded(self, result: PageLoaded) -> None:
        """Show a page (the bench times the frame after this)."""
        keys = self.model.page_loaded(result)
        page = result.page
        self.table.show_page(((r.id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                             has_after=page.has_after, focus_key=page.focus_id,
                             cursor="last" if result.direction in ("before", "last") else "first")
        self.update_status()
        self.supersede("prefetch")  # neighbours of the page before are of no use now
        if keys:  # after this page is painted: its reads would compete with the paint for the GIL
            self.call_after_refresh(self._prefetch, page, keys, self.current_filter())

    def _prefetch(self, page: TracePage, keys: list[tuple[str, Key]], flt: TraceFilter) -> None:
        if self.model.page is not page or self.current_filter() != flt:
            return  # another page or list came meanwhile: it reads its own neighbours
        self.run_query(self.model.prefetch_job(keys, flt), on_result=self.model.prefetch_arrived,
                       group="prefetch", what="reading ahead")

    def _positioned(self, result: Positioned) -> None:
        if self.model.positioned(result):
            self.update_status()

    def load_count(self) -> None:
        self.run_query(self.model.count_job(self.current_filter()), on_result=self._counted, group="count",
                       what="counting traces")

    def _counted(self, result: Counted) -> None:
        self.model.counted(result)
        self.update_status()
