"""The trace list's searches and order, a layer of ``TracesPane`` (see ``traces_paging``): ``/`` (the query
language through the sidecar index, or a scan with progress that Esc stops), ``p`` (the preview filter as
you type) and ``o`` (an order other than time is computed per filter in the background). The search's
state is ``TraceListModel.scan``."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from iofold_tui.ui.models.traces import TIME_ORDERS, OrderResult
from iofold_tui.ui.models.traces_search import step_search
from iofold_tui.ui.panes.traces_labels import TraceLabels
from iofold_tui.ui.text import cell
from iofold_tui.ui.widgets import PickOne, Prompt


@dataclass
class StepScanProgress(Message):
    """The search worker's progress (``finished``: its matches, at most ``SEARCH_CAP``, in ``rowids``)."""

    done: int
    total: int
    found: int
    finished: bool
    rowids: list[int] | None
    complete: bool


class TraceSearch(TraceLabels):

    # -- full-text search ------------------------------------------------------------------------------
    def action_search(self) -> None:
        """/: the query language (data/search/query.py) through the sidecar index, or a scan with progress
        while the index is missing or being built; combined with the other filters and rating states."""
        def go(value: str | None) -> None:
            if value is None:
                return
            if not value:
                self.model.scan.note = ""
                self.apply_filter(step_text="", step_rowids=None)
                return
            # The filter changes when the scan is done: until then the list and its header show the
            # current filter, with the search in progress noted.
            self.model.scan.start(value)
            self.update_status()
            self.scan(value)

        self.app.push_screen(Prompt('Search: words, "phrase", prefix*, AND/OR/NOT, tool:/error:/role:…, '
                                    "re:REGEX (empty clears; p filters previews as you type)",
                                    self.iofold.state.trace_filter.step_text), go)

    @work(thread=True, exclusive=True, group="scan")
    def scan(self, needle: str) -> None:
        """A worker of its own (not ``run_query``): it reports progress and Esc cancels it."""
        worker = get_current_worker()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if done - last[0] > total / 50 or done >= total:
                last[0] = done
                self.post_message(StepScanProgress(done, total, 0, False, None, False))

        src = self.iofold.source
        with self.iofold.db.fresh() as conn:  # a private connection: the scan never blocks the list's queries
            outcome = step_search(conn, self.model.source_key(), needle, remote=src.kind == "d1-remote",
                                  progress=progress, cancelled=lambda: worker.is_cancelled)
        if outcome.error:
            self.app.call_from_thread(self.notify, outcome.error, severity="error")
        for note in outcome.notes:
            self.app.call_from_thread(self.notify, note)
        self.post_message(StepScanProgress(0, 0, len(outcome.rowids), True, outcome.rowids, outcome.complete))
        if outcome.build_index:
            self.build_search_index()

    @work(thread=True, exclusive=True, group="search-index")
    def build_search_index(self) -> None:
        """Build the sidecar search index in the background (the list stays usable; searches scan meanwhile);
        a worker of its own so that quitting cancels it."""
        import sqlite3

        from iofold_tui.data.search.index import IndexUnavailable, SearchIndex

        worker = get_current_worker()
        try:
            index = SearchIndex(self.model.source_key())
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
        scan = self.model.scan
        if not message.finished:
            line.add_class("visible")
            pct = scan.progress(message.done, message.total)
            bar = "█" * int(pct / 4) + "░" * (25 - int(pct / 4))
            line.update(Text(f" steps search {bar} {pct:5.1f}%  {message.found:,} found  (Esc stops)",
                             style="yellow"))
            return
        line.remove_class("visible")
        needle, flt = scan.finished(self.iofold.state.trace_filter, message.rowids, message.found,
                                    message.complete)
        if flt is None:  # stopped before any match: nothing to show
            self.notify(f'step search for "{cell(needle, 40).plain}" stopped after {scan.done:.0f}% '
                        "of the traces, before any match; the list is as it was")
            self.update_status()
            return
        self.iofold.state.trace_filter = flt
        self.iofold.state.search_query = needle  # what the trace view and review highlight
        self.reload()

    def action_cancel_scan(self) -> None:
        bar = self.search_bar()
        if bar is not None and bar.has_focus:  # Esc in the search bar clears it
            bar.value = ""
            bar.remove_class("visible")
            self.table.focus()
            return
        for worker in self.workers:
            if worker.group == "scan" and worker.is_running:
                worker.cancel()

    def search_query(self) -> str:
        """The full-text query the list is filtered by ('' when the rowid set came from elsewhere)."""
        from iofold_tui.ui.highlight import active_query

        return active_query(self.iofold.state)

    # -- the preview filter ----------------------------------------------------------------------------
    def search_bar(self) -> Input | None:
        found = self.query("#search-bar")
        return found.first(Input) if found else None

    async def action_preview_filter(self) -> None:
        """p: the instant filter on the input/output previews (a substring, as you type)."""
        bar = self.search_bar()
        if bar is None:  # built on first use: styling an Input is a visible part of the start-up frame
            bar = Input(placeholder="filter previews as you type (Enter keeps, Esc clears; / searches "
                        "everything)", id="search-bar")
            await self.mount(bar, before=self.table)
        bar.value = self.iofold.state.trace_filter.text
        bar.add_class("visible")
        bar.focus()

    @on(Input.Changed, "#search-bar")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != self.iofold.state.trace_filter.text:
            self.iofold.set_trace_filter(text=event.value)
            self.new_list()
            self.load_page("first")
            self.load_count()

    @on(Input.Submitted, "#search-bar")
    def _search_done(self, _: Input.Submitted) -> None:
        self.table.focus()
        bar = self.search_bar()
        if bar is not None and not self.iofold.state.trace_filter.text:
            bar.remove_class("visible")

    def apply_filter(self, **changes: object) -> None:
        self.iofold.set_trace_filter(**changes)
        self.reload()

    def action_clear_filters(self) -> None:
        bar = self.search_bar()
        if bar is not None:
            bar.remove_class("visible")
        self.model.scan.note = ""
        self.iofold.state.trace_filter = self.iofold.state.trace_filter.cleared()
        self.reload()

    # -- order -----------------------------------------------------------------------------------------
    def action_pick_order(self) -> None:
        """o: time (newest/oldest), step count, source, rating, most contradicted, search relevance."""
        from iofold_tui.data.search.order import ORDERS

        state = self.iofold.state
        keys, current = self.model.order_choices(state.trace_filter, self.search_query(),
                                                 state.eval_set_id is not None)

        def picked(key: str | None) -> None:
            if key is None:
                return
            if key in TIME_ORDERS:
                self.model.time_order(key)
                self.supersede("order")  # an order still being computed is not wanted any more
                self.apply_filter(newest_first=key == "newest")
                return
            self.start_order(key)

        self.app.push_screen(PickOne("Order by (an order other than time is computed per filter)",
                                     [(k, ORDERS[k][1]) for k in keys], current), picked)

    def start_order(self, key: str) -> None:
        self.model.start_order(key)
        self.update_status()

        def say(text: str) -> None:  # from the worker: the cost, before the computation
            self.app.call_from_thread(self.notify, text)

        self.run_query(self.model.order_job(key, self.current_filter(), self.search_query(), say),
                       on_result=self._order_ready, group="order", what="ordering")

    def _order_ready(self, result: OrderResult) -> None:
        from iofold_tui.data.search.order import CAP

        outcome = self.model.order_ready(result, self.current_filter())
        if outcome == "stale":
            return  # the filter or the order changed meanwhile: a newer computation is on its way
        if outcome == "failed" or result.ordered is None:
            if result.key != "relevance" or self.search_query():
                self.notify(f"order: {result.error}", severity="warning")
            self.update_status()
            return
        if result.ordered.total > CAP:
            self.notify(f"more than {CAP:,} traces match: the order keeps its first {CAP:,} "
                        "(narrow the filter)")
        self.supersede_list()
        self.load_page("first")
        self.load_count()
