"""The review pane's loading and showing. Queue pages, trace details and label counts are queried through
``Pane.run_query``: a newer query of the group "review-queue", "review-stats" or "review-jump" makes an older
result stale; so does the queue dropping its buffer (and a new queue drops the counts too). Details, several
of which load at once, are dropped when the queue's epoch moved. Results are fed to the model
(ui/models/review.py); each trace is rendered and wrapped for the screen in the worker, so a label key only
swaps prepared lines in."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import Any

from rich.segment import Segment
from rich.text import Text

from iofold_tui.data.errors import SourceError
from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.review_queue import (
    ORDER_TITLES,
    QueueItem,
    QueueKey,
    QueueSpec,
    label_counts,
    next_unlabelled,
    page_after,
    unlabelled_count,
)
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.catalog import EvalSet
from iofold_tui.data.traces.detail import TraceDetail, load_trace
from iofold_tui.data.traces.query import total_traces
from iofold_tui.ui import labeling
from iofold_tui.ui.highlight import active_query, highlight
from iofold_tui.ui.models.review import AHEAD, label_in, summary_key
from iofold_tui.ui.panes.review_base import ReviewPaneBase
from iofold_tui.ui.panes.review_widgets import ReviewDocument, label_line, steps_text, trace_text, wrap_lines
from iofold_tui.ui.widgets import SteadyStatic

_BUFFER_QUERIES = ("review-queue", "review-jump")  # stale once the queue drops its buffer


@dataclass(frozen=True)
class Prepared:
    """A trace ready to show: its detail, the full steps text and that text wrapped for ``width`` cells,
    and its summary as it reads for ``summary_key`` (eval set, blind mode, this set's label when loaded)."""
    detail: TraceDetail | None
    steps: Text | None
    lines: list[list[Segment]]
    width: int
    summary_key: tuple[object, ...] = ()
    summary: Text | None = None
    summary_lines: list[list[Segment]] | None = None
    error: str | None = None  # could not be read (another process holds an exclusive lock): retried


def fetch_page(app: Any, spec: QueueSpec, after: QueueKey | None) -> tuple[list[QueueItem], bool]:
    """(in a worker) The queue's next page after ``after``, and whether it is the last."""
    with contextlib.suppress(SourceError):
        labeling.label_store(app)  # open (and crash-reconcile) the store off the UI thread
    items = page_after(app.db.conn(), spec, after, AHEAD)
    return items, len(items) < AHEAD


def prepare(app: Any, trace_ids: list[str], width: int, eval_set: EvalSet | None,
            blind: bool) -> list[tuple[str, Prepared]]:
    """(in a worker) Load, render and wrap traces, so a label key only swaps prepared lines in."""
    conn, query, out = app.db.conn(), active_query(app.state), []
    for trace_id in trace_ids:
        try:
            detail = load_trace(conn, trace_id)
        except sqlite3.OperationalError as exc:  # e.g. a rollback-journal EXCLUSIVE lock held elsewhere
            out.append((trace_id, Prepared(None, None, [], width, error=str(exc))))
            continue
        prepared = Prepared(detail, None, [], width)
        if detail is not None:
            steps = highlight(steps_text(detail), query)
            prepared = replace(prepared, steps=steps, lines=wrap_lines(steps, width))
            if eval_set is not None:  # as it will read unless the label changes before it is shown
                label = label_in(detail, eval_set.id)
                summary = highlight(trace_text(detail, eval_set.id, eval_set.name, label, blind=blind), query)
                prepared = replace(prepared, summary_key=summary_key(eval_set.id, blind, label),
                                   summary=summary, summary_lines=wrap_lines(summary, width))
        out.append((trace_id, prepared))
    return out


def count_labels(app: Any, spec: QueueSpec, need_total: bool,
                 store: LabelStore | None) -> tuple[dict[str, int], int | None, int | None, bool] | None:
    """(in a worker) This set's label counts, the workspace's traces (or those left unlabelled in the filter)
    when needed, and whether another process changed labels; None while another process locks the file."""
    conn = app.db.conn()
    try:
        counts = label_counts(conn, spec.eval_set_id)
        external = store.changed_since_last_check() if store is not None else False
        total = left = None
        if spec.flt is None and (need_total or external):
            total = total_traces(conn, spec.workspace_id)
        elif spec.flt is not None and (need_total or external):
            left = unlabelled_count(conn, spec)
    except sqlite3.OperationalError:  # locked by another process: the next reload counts again
        return None
    return counts, total, left, external


class ReviewShow(ReviewPaneBase):
    """Queries, and the trace and the bar on screen."""

    # -- loading -------------------------------------------------------------------------------------
    def _reset(self, spec: QueueSpec) -> None:
        self.model.rebuild(spec)
        self._drop_stale()
        self.supersede("review-stats")  # counts of the previous eval set or filter
        self._message(Text("loading the queue…", style="dim"))
        self._fill_more()

    def _refetch(self) -> None:
        """Drop buffered queue items and details (the database changed) and fetch again from here."""
        self.model.refetch()
        self._drop_stale()  # results of queries in flight describe the old data
        self._fill_more()
        if self.current is not None:
            self._show_current()

    def _drop_stale(self) -> None:
        for group in _BUFFER_QUERIES:
            self.supersede(group)

    def _fill_more(self) -> None:
        spec = self.model.spec
        if spec is not None and self.queue.start_fill():
            self.run_query(fetch_page, self.app, spec, self.queue.frontier, on_result=self._queue_filled,
                           on_error=lambda _: self._queue_filled(([], True)), group="review-queue",
                           what="queue query")

    def _queue_filled(self, page: tuple[list[QueueItem], bool]) -> None:
        items, exhausted = page
        if self.queue.filled(items, exhausted):
            self._advance()
            start = self.start_selection()  # --select: that trace once the queue's first one is in
            if start:
                self.select_item(start)
        elif self.current is None and not self.queue.ahead and self.queue.exhausted:
            self._message(self._nothing_to_review())
        self._prefetch()

    def _request(self, trace_ids: list[str]) -> None:
        wanted = self.model.wanted(trace_ids)
        if wanted:
            epoch = self.queue.epoch
            width = self.query_one(ReviewDocument).wrap_width
            self.run_query(prepare, self.app, wanted, width, self.eval_set, self.model.blind,
                           on_result=lambda done: self._details_loaded(done, epoch),
                           on_error=lambda _: self.model.not_loaded(wanted), group=None,
                           what="reading traces")

    def _details_loaded(self, done: list[tuple[str, Prepared]], epoch: int) -> None:
        if epoch != self.queue.epoch:
            return  # the queue dropped its buffer meanwhile: this describes the old data
        for trace_id, prepared in done:
            if prepared.error is not None:  # read it again in a moment (the lock may be gone)
                self.set_timer(1.0, lambda t=trace_id: self._retry_detail(t, epoch))
            if self.model.loaded(trace_id, prepared):
                self._refresh_label()  # its label came with the detail (read in the worker)

    def _retry_detail(self, trace_id: str, epoch: int) -> None:
        if epoch == self.queue.epoch and self.model.take_retry(trace_id):
            self._request([trace_id])

    def _prefetch(self) -> None:
        self._request(self.model.upcoming_ids())

    def _load_stats(self, spec: QueueSpec, need_total: bool) -> None:
        self.run_query(count_labels, self.app, spec, need_total, self.store(), on_result=self._stats_loaded,
                       group="review-stats", what="counting labels")

    def _stats_loaded(self, found: tuple[dict[str, int], int | None, int | None, bool] | None) -> None:
        if found is None:
            return
        counts, total, left, external = found
        self.model.counted(counts, total, left)
        if external:
            self._refetch()
        self.set_status()

    def _find_unlabelled(self) -> None:
        spec, item = self.model.spec, self.current
        if spec is None:
            return
        after = (item.timestamp, item.rowid) if item is not None and item.tier >= 0 else None
        current_id, db = (item.trace_id if item else None), self.iofold.db
        self.run_query(lambda: next_unlabelled(db.conn(), spec, after, current_id),
                       on_result=self._jump_found, group="review-jump", what="finding an unlabelled trace")

    def _jump_found(self, item: QueueItem | None) -> None:
        if item is None:
            self.notify("No unlabelled trace left in this queue.")
            return
        self.queue.restart_at(item)  # continue the queue from here
        self._drop_stale()
        self._fill_more()
        self._show_current()

    # -- showing ---------------------------------------------------------------------------------------
    def _message(self, text: Text) -> None:
        self.steps_for = None
        self.query_one(ReviewDocument).show(text)
        self._update_bar()

    def _nothing_to_review(self) -> Text:
        """The empty queue, with why: the queue holds every trace of the workspace (labelled ones last), so
        it is empty only when the workspace or the trace-list filter has none."""
        text = Text("Nothing to review: ", style="bold yellow")
        flt = self.model.spec.flt if self.model.spec is not None else None
        if flt is not None and (flt.describe() or flt.trace_ids is not None):
            described = one_line("; ".join(flt.describe()), 120)
            text.append(f"the trace-list filter ({described}) matches no trace of this workspace.",
                        style="bold yellow")
            text.append("\nf reviews without the filter; T then c clears it.", style="dim")
        else:
            text.append("this workspace has no traces yet.", style="bold yellow")
            text.append("\nImport traces with iofold (or pick another workspace with w).", style="dim")
        return text

    def _advance(self) -> None:
        step = self.queue.step()
        if step == "wait":
            self._fill_more()
            self._update_bar(Text("fetching the next traces…", style="dim"))
            return
        if step == "end":
            self.pending_t0 = None
            if self.current is None:  # nothing was ever shown: say so, never "loading the queue…" forever
                self._message(self._nothing_to_review())
                return
            self.notify("End of the queue: every trace in it has been shown (o changes the order).")
            self._update_bar()
            return
        if self.queue.needs_refill():
            self.call_after_refresh(self._fill_more)  # after the paint, like the prefetch
        self._show_current()

    def _jump_to(self, item: QueueItem) -> None:
        self.queue.show(item)
        self._show_current()

    def _show_current(self) -> None:
        item = self.current
        if item is None:
            return
        self.shown_at = time.monotonic()
        self._refresh_label(render=False)
        if self.model.touch(item.trace_id) is not None:
            self._render_current()
        else:
            self.steps_for = None
            self.query_one(ReviewDocument).show(Text(f"loading {item.trace_id}…", style="dim"))
            self._update_bar()
            self._request([item.trace_id])
        # After this trace is painted: the prefetch worker's rendering would compete for the GIL with it.
        self.call_after_refresh(self._prefetch)

    def _label_for(self, trace_id: str) -> FeedbackRow | None:
        """The trace's label as the user last set it, without touching the database on this thread (another
        process may hold its lock): a queued label first, then one written this session, then the label read
        with the trace's detail in the worker."""
        queue = labeling.open_label_queue(self.app)
        es = self.model.eval_set_id
        intent = queue.pending_for(es, trace_id) if queue is not None and es is not None else None
        return self.model.label_for(trace_id, intent)

    def _refresh_label(self, render: bool = True) -> None:
        item = self.current
        self.model.label = None if item is None else self._label_for(item.trace_id)
        if render and item is not None and item.trace_id in self.model.cache:
            self._render_current()

    def _render_current(self) -> None:
        item, es, label = self.current, self.eval_set, self.model.label
        if item is None or es is None:
            return
        cached = self.model.cache.get(item.trace_id)
        prepared = cached if isinstance(cached, Prepared) else None  # the only kind the cache holds
        document = self.query_one(ReviewDocument)
        if prepared is not None and prepared.error is not None:
            self.steps_for = None
            document.show(Text(
                f"cannot read trace {one_line(item.trace_id, 60)} yet: {one_line(prepared.error, 80)} "
                "(another process holds the database's lock); retrying…", style="bold yellow"))
        elif prepared is None or prepared.detail is None:
            self.steps_for = None
            document.show(Text(
                f"trace {one_line(item.trace_id, 60)} no longer exists: it was deleted from the "
                "database (by another process?). j moves on.", style="bold red"))
        else:
            summary, summary_lines = prepared.summary, prepared.summary_lines
            if summary is None or prepared.summary_key != summary_key(es.id, self.model.blind, label):
                summary, summary_lines = highlight(trace_text(prepared.detail, es.id, es.name, label,
                                                              blind=self.model.blind),
                                                   active_query(self.iofold.state)), None
            if self.steps_for == item.trace_id:  # a re-render of the same trace keeps the scroll position
                same_width = prepared.width == document.wrap_width
                document.set_summary(summary, summary_lines if same_width else None)
            else:
                self.steps_for = item.trace_id
                # Wrapped in the worker: the view swaps the lines in and paints only those on screen.
                document.show(summary, prepared.steps, prepared.lines, prepared.width, summary_lines)
        self._update_bar()
        if self.pending_t0 is not None:
            t0, self.pending_t0 = self.pending_t0, None
            self.call_after_refresh(lambda: self.latencies.append((time.perf_counter() - t0) * 1000))

    def _update_bar(self, extra: Text | None = None) -> None:
        bar, item, model = Text(), self.current, self.model
        if item is not None:
            bar.append(f"#{self.queue.pos + 1} this session", style="bold")
            bar.append(f"  {one_line(item.trace_id, 50)}  ({model.tier_title(item)})", style="dim")
        bar.append(f"  ·  queue: {ORDER_TITLES[model.order]}")
        bar.append(f"{' + trace filter' if model.use_filter else ''}", style="cyan")
        bar.append(f"  ·  auto-advance {'on' if model.auto_advance else 'off'} (t)")
        if model.blind:
            bar.append("  ·  BLIND", style="bold magenta")
        if extra is not None:
            bar.append("  ")
            bar.append(extra)
        if item is not None:
            bar.append("\n")
            bar.append(label_line(model.label, model.drafts.get(item.trace_id)))
            queue = labeling.open_label_queue(self.app)
            es = self.eval_set
            if queue is not None and es is not None and queue.pending_for(es.id, item.trace_id):
                bar.append("  ⧗ PENDING: not written yet", style="bold yellow reverse")
                if queue.waiting_s >= 1:
                    waiting = (f" (database locked {queue.waiting_s:.0f} s, retrying; kept safe in the "
                               "label history)")
                else:
                    waiting = " (writing…)"
                bar.append(waiting, style="yellow")
        reason = self.labels_off()
        if reason:
            bar.append(f"\nlabelling disabled: {one_line(reason, 160)}", style="bold red")
        self.query_one("#review-bar", SteadyStatic).set_text(bar)
