"""Review mode: one trace at a time, one key per label, each label recorded durably before the next trace shows.

The queue is paged through SQL (``data.review_queue``): a small buffer of upcoming items is fetched in a
worker and refilled before it runs dry, and the next traces' details are prefetched, so a label key records
its intent in the label history (milliseconds; ``ui.labeling.LabelQueue``) and renders an already-loaded
trace; the writer thread commits it to the database, and while another process holds the lock the label
shows as PENDING instead of freezing the screen, so every key acts on the trace it was pressed on. ``k`` walks back through
the traces seen this session (not the queue order: a labelled trace leaves the "unlabelled" tier).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Literal

from rich.segment import Segment
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import DescendantBlur
from textual.message import Message
from textual.widgets import TextArea

from iofold_tui.data.errors import SourceError
from iofold_tui.data.evals.versions import EvalSummary
from iofold_tui.data.labels.review_queue import (
    ORDER_TITLES,
    ORDERS,
    QueueItem,
    QueueKey,
    QueueSpec,
    label_counts,
    next_unlabelled,
    page_after,
    unlabelled_count,
)
from iofold_tui.data.labels.store import UNCHANGED, Applied, FeedbackRow, LabelStore, Step
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.catalog import EvalSet
from iofold_tui.data.traces.detail import TraceDetail, load_trace
from iofold_tui.data.traces.query import total_traces
from iofold_tui.ui import labeling
from iofold_tui.ui.highlight import active_query, highlight
from iofold_tui.ui.models.review import ReviewQueue
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.review_widgets import (
    ReviewDocument,
    label_line,
    progress_text,
    steps_text,
    trace_text,
    wrap_lines,
)
from iofold_tui.ui.widgets import SteadyStatic

AHEAD = 30  # queue items fetched per page
PREFETCH = 2  # upcoming traces whose details are loaded in advance
CACHE = 16  # trace details kept in memory
_TIER_TITLES = {"unlabelled": "unlabelled", "labelled": "labelled", "contradicted": "contradicted by an eval",
                "labelled_plain": "labelled"}
_WRITE_ACTIONS = {"label", "edit_note", "undo", "redo"}
_MOVE_GROUP = Binding.Group("Next/Prev", compact=True)


@dataclass
class QueueFilled(Message):
    items: list[QueueItem]
    epoch: int  # ReviewQueue.epoch when the fetch started: stale once it moved
    exhausted: bool
    error: str | None = None


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


def _summary_key(eval_set_id: str, blind: bool, label: FeedbackRow | None) -> tuple[object, ...]:
    return (eval_set_id, blind, None if label is None else (label.rating, label.notes, label.updated_at))


def _label_in(detail: TraceDetail, eval_set_id: str) -> FeedbackRow | None:
    for fb in detail.feedback:
        if fb.eval_set_id == eval_set_id:
            return FeedbackRow("", fb.rating, fb.notes, fb.updated_at, fb.updated_at)
    return None


@dataclass
class DetailLoaded(Message):
    trace_id: str
    prepared: Prepared
    epoch: int


@dataclass
class StatsLoaded(Message):
    counts: dict[str, int]
    total: int | None
    left: int | None
    external: bool
    epoch: int


@dataclass
class JumpFound(Message):
    item: QueueItem | None
    epoch: int


class ReviewPane(Pane):
    pane_title = "Review"
    selects_on_start = True  # applied once the queue's first trace is in
    AUTO_FOCUS = ""  # nothing focused: the pane's keys work at once (None would mean the app default)
    BINDINGS = [
        *labeling.label_bindings("review"),
        Binding("s", "skip", "Skip", id="review.skip"),
        Binding("j,down", "next", "Next", id="review.next", group=_MOVE_GROUP),
        Binding("k,up", "previous", "Prev", id="review.previous", group=_MOVE_GROUP),
        Binding("right_square_bracket", "next_unlabelled", "Unlabelled", id="review.next_unlabelled"),
        Binding("e", "edit_note", "Note", id="review.note"),
        *labeling.undo_bindings("review"),
        Binding("b", "toggle_blind", "Blind", id="review.blind"),
        Binding("t", "toggle_auto", "Auto", id="review.auto_advance", show=False),  # the bar shows its state
        Binding("o", "cycle_order", "Order", id="review.order"),
        Binding("f", "toggle_filter", "Filter", id="review.filter"),
        Binding("c", "new_eval_set", "New set", id="review.new_eval_set"),
        Binding("enter", "open_trace", "Full trace", id="review.open", show=False),  # said in the steps line
        Binding("ctrl+r", "try_eval", "Try eval", id="review.try", show=False),  # ? lists it
        Binding("pageup", "scroll('up')", "Scroll up", id="review.scroll_up", show=False),
        Binding("pagedown,space", "scroll('down')", "Scroll down", id="review.scroll_down", show=False),
        Binding("home", "scroll('home')", "Top", id="review.scroll_home", show=False),
        Binding("end", "scroll('end')", "Bottom", id="review.scroll_end", show=False),
        Binding("question_mark", "help", "Help", id="review.help"),
        Binding("escape", "leave_note", "Done (note)", id="review.leave_note"),
    ]
    DEFAULT_CSS = """
    ReviewPane #review-bar { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    ReviewPane #review-note { height: 8; display: none; border: tall $warning; }
    ReviewPane #review-note.editing { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.context: tuple[object, ...] | None = None
        self.spec: QueueSpec | None = None
        self.eval_set: EvalSet | None = None
        self.queue = ReviewQueue()  # what was shown, what is fetched ahead (ui/models/review.py)
        self.cache: OrderedDict[str, Prepared] = OrderedDict()
        self.requested: set[str] = set()
        self.label: FeedbackRow | None = None  # the current trace's label in this eval set
        self.drafts: dict[str, str] = {}  # notes typed on unlabelled traces: saved with the label
        self.known: dict[str, FeedbackRow | None] = {}  # labels written from this pane since the last refetch
        self.editing_for: str | None = None
        self.counts: dict[str, int] | None = None
        self.total: int | None = None
        self.left: int | None = None
        self.blind = False
        self.auto_advance = True
        self.order = ORDERS[0]
        self.use_filter = False
        self.shown_at = time.monotonic()
        self.pending_t0: float | None = None
        # ms: label key -> committed -> next trace rendered, stamped once the screen is next idle (a rough
        # in-app figure; bench/review_probe.py times the frame the terminal receives)
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.commit_ms: deque[float] = deque(maxlen=10_000)  # ms: label key -> committed (both files)
        self._resumed = False
        self.steps_for: str | None = None  # the trace whose steps the steps widget holds

    def compose_body(self) -> ComposeResult:
        yield SteadyStatic(id="review-bar")
        yield ReviewDocument(id="review-body")
        yield TextArea(id="review-note", soft_wrap=True, show_line_numbers=False)

    # -- state helpers -------------------------------------------------------------------------------
    @property
    def current(self) -> QueueItem | None:
        return self.queue.current

    def store(self) -> LabelStore | None:
        try:
            return labeling.label_store(self.app)
        except SourceError:
            return None

    def labels_off(self) -> str | None:
        return labeling.disabled_reason(self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_note":
            return self.editing_for is not None
        if action in _WRITE_ACTIONS and (self.labels_off() or self.eval_set is None):
            return None  # shown greyed out; the reason is on screen
        return True

    def set_status(self, status: Text | str = "") -> None:
        if not status and self.eval_set is not None:
            stats = None
            store = self.store()
            if store is not None:
                stats = store.session_stats()
            status = (progress_text(self.counts, self.eval_set.minimum_examples, stats, self.left)
                      if self.counts is not None else Text("counting labels…", style="dim"))
        super().set_status(status)

    # -- loading -------------------------------------------------------------------------------------
    def on_screen_resume(self) -> None:
        self._resumed = self.stale
        super().on_screen_resume()

    def reload(self) -> None:
        state = self.iofold.state
        if state.review_queue_pending:  # a queue handed over by another pane
            state.review_queue_pending = False
            self.use_filter = True
        self.eval_set = state.eval_set
        if self.eval_set is None:
            self.context = None
            self._message(Text("No eval set in this workspace: press c to create one, v to pick another.",
                               style="bold yellow"))
            self.refresh_bindings()
            return
        flt = state.scoped_filter() if self.use_filter else None
        context = (self.eval_set.id, self.order, flt, state.trace_filter.newest_first)
        if context != self.context:
            self.context = context
            self._reset(QueueSpec(self.eval_set.id, self.eval_set.workspace_id, self.order, flt,
                                  state.trace_filter.newest_first))
        else:
            if self._resumed:  # other panes may have labelled traces that are still buffered
                self._refetch()
            self._refresh_label()
        self._resumed = False
        assert self.spec is not None
        self._load_stats(self.queue.epoch, self.spec, self.total is None)
        self.refresh_bindings()

    def _reset(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.queue.reset()
        self.cache.clear()
        self.requested.clear()
        self.counts = self.total = self.left = None
        self._message(Text("loading the queue…", style="dim"))
        self._fill_more()

    def _refetch(self) -> None:
        """Drop buffered queue items and details (the database changed) and fetch again from here."""
        self.queue.refetch()  # results of fetches in flight describe the old data
        self.cache.clear()
        self.known.clear()
        self.requested.clear()
        self._fill_more()
        if self.current is not None:
            self._show_current()

    def _fill_more(self) -> None:
        if self.spec is not None and self.queue.start_fill():
            self._fill(self.queue.epoch, self.spec, self.queue.frontier)

    @work(thread=True, group="review-queue")
    def _fill(self, generation: int, spec: QueueSpec, after: QueueKey | None) -> None:
        with contextlib.suppress(SourceError):
            labeling.label_store(self.app)  # open (and crash-reconcile) the store off the UI thread
        try:
            items = page_after(self.iofold.db.conn(), spec, after, AHEAD)
        except sqlite3.OperationalError as exc:
            self.post_message(QueueFilled([], generation, True, one_line(str(exc), 160)))
            return
        self.post_message(QueueFilled(items, generation, len(items) < AHEAD))

    def on_queue_filled(self, message: QueueFilled) -> None:
        if message.epoch != self.queue.epoch:
            return
        if message.error:
            self.notify(f"queue query failed: {message.error}", severity="error")
        if self.queue.filled(message.items, message.exhausted):
            self._advance()
            start = self.start_selection()  # --select: that trace once the queue's first one is in
            if start:
                self.select_item(start)
        elif self.current is None and not self.queue.ahead and self.queue.exhausted:
            self._message(self._nothing_to_review())
        self._prefetch()

    @work(thread=True, group="review-detail")
    def _load_details(self, trace_ids: list[str], generation: int, width: int, eval_set: EvalSet | None,
                      blind: bool) -> None:
        """Load, render and wrap upcoming traces here, so a label key only swaps prepared lines in."""
        conn = self.iofold.db.conn()
        for trace_id in trace_ids:
            try:
                detail = load_trace(conn, trace_id)
            except sqlite3.OperationalError as exc:  # e.g. a rollback-journal EXCLUSIVE lock held elsewhere
                self.post_message(DetailLoaded(trace_id, Prepared(None, None, [], width, error=str(exc)), generation))
                continue
            prepared = Prepared(detail, None, [], width)
            if detail is not None:
                steps = highlight(steps_text(detail), active_query(self.iofold.state))
                prepared = replace(prepared, steps=steps, lines=wrap_lines(steps, width))
                if eval_set is not None:  # as it will read unless the label changes before it is shown
                    label = _label_in(detail, eval_set.id)
                    summary = highlight(trace_text(detail, eval_set.id, eval_set.name, label, blind=blind),
                                        active_query(self.iofold.state))
                    prepared = replace(prepared, summary_key=_summary_key(eval_set.id, blind, label),
                                       summary=summary, summary_lines=wrap_lines(summary, width))
            self.post_message(DetailLoaded(trace_id, prepared, generation))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.epoch != self.queue.epoch:
            return
        self.requested.discard(message.trace_id)
        self.cache[message.trace_id] = message.prepared
        if message.prepared.error is not None:  # read it again in a moment (the lock may be gone)
            self.set_timer(1.0, lambda: self._retry_detail(message.trace_id, message.epoch))
        while len(self.cache) > CACHE:
            self.cache.popitem(last=False)
        if self.current is not None and self.current.trace_id == message.trace_id:
            self._refresh_label()  # its label came with the detail (read in the worker)

    def _retry_detail(self, trace_id: str, generation: int) -> None:
        prepared = self.cache.get(trace_id)
        if generation == self.queue.epoch and prepared is not None and prepared.error is not None:
            del self.cache[trace_id]
            self._request([trace_id])

    def _request(self, trace_ids: list[str]) -> None:
        wanted = [t for t in trace_ids if t not in self.cache and t not in self.requested]
        if wanted:
            self.requested.update(wanted)
            self._load_details(wanted, self.queue.epoch, self.query_one(ReviewDocument).wrap_width, self.eval_set,
                              self.blind)

    def _prefetch(self) -> None:
        self._request([item.trace_id for item in self.queue.upcoming(PREFETCH)])

    @work(thread=True, exclusive=True, group="review-stats")
    def _load_stats(self, generation: int, spec: QueueSpec, need_total: bool) -> None:
        conn = self.iofold.db.conn()
        store = self.store()
        try:
            counts = label_counts(conn, spec.eval_set_id)
            external = store.changed_since_last_check() if store is not None else False
            total = left = None
            if spec.flt is None and (need_total or external):
                total = total_traces(conn, spec.workspace_id)
            elif spec.flt is not None and (need_total or external):
                left = unlabelled_count(conn, spec)
        except sqlite3.OperationalError:  # locked by another process: the next reload counts again
            return
        self.post_message(StatsLoaded(counts, total, left, external, generation))

    def on_stats_loaded(self, message: StatsLoaded) -> None:
        if message.epoch != self.queue.epoch:
            return
        self.counts = message.counts
        if message.total is not None:
            self.total = message.total
        if self.total is not None:
            self.left = max(0, self.total - sum(self.counts.values()))
        elif message.left is not None:
            self.left = message.left
        if message.external:
            self._refetch()
        self.set_status()

    # -- showing ---------------------------------------------------------------------------------------
    def _message(self, text: Text) -> None:
        self.steps_for = None
        self.query_one(ReviewDocument).show(text)
        self._update_bar()

    def _nothing_to_review(self) -> Text:
        """The empty queue, with why: the queue holds every trace of the workspace (labelled ones last), so
        it is empty only when the workspace or the trace-list filter has none."""
        text = Text("Nothing to review: ", style="bold yellow")
        flt = self.spec.flt if self.spec is not None else None
        if flt is not None and (flt.describe() or flt.trace_ids is not None):
            text.append(f"the trace-list filter ({one_line('; '.join(flt.describe()), 120)}) matches no trace "
                        "of this workspace.", style="bold yellow")
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

    def _show_current(self) -> None:
        item = self.current
        if item is None:
            return
        self.shown_at = time.monotonic()
        self._refresh_label(render=False)
        if item.trace_id in self.cache:
            self.cache.move_to_end(item.trace_id)
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
        if self.eval_set is None:
            return None
        queue = labeling.open_label_queue(self.app)
        intent = queue.pending_for(self.eval_set.id, trace_id) if queue is not None else None
        known = self.known.get(trace_id, UNCHANGED)
        base = known if not isinstance(known, type(UNCHANGED)) else None
        if isinstance(known, type(UNCHANGED)):
            prepared = self.cache.get(trace_id)
            base = _label_in(prepared.detail, self.eval_set.id) if prepared and prepared.detail else None
        if intent is None:
            return base  # type: ignore[return-value]
        notes = base.notes if base is not None else None  # type: ignore[union-attr]
        if intent.note_set:
            notes = intent.note
        if intent.kind == "note":
            return None if base is None else replace(base, notes=notes)  # type: ignore[type-var]
        return None if intent.rating is None else FeedbackRow("", intent.rating, notes, None, None)

    def _refresh_label(self, render: bool = True) -> None:
        item = self.current
        self.label = None if item is None else self._label_for(item.trace_id)
        if render and item is not None and item.trace_id in self.cache:
            self._render_current()

    def _render_current(self) -> None:
        item = self.current
        if item is None or self.eval_set is None:
            return
        prepared = self.cache.get(item.trace_id)
        document = self.query_one(ReviewDocument)
        if prepared is not None and prepared.error is not None:
            self.steps_for = None
            document.show(Text(f"cannot read trace {one_line(item.trace_id, 60)} yet: {one_line(prepared.error, 80)} "
                               "(another process holds the database's lock); retrying…", style="bold yellow"))
        elif prepared is None or prepared.detail is None:
            self.steps_for = None
            document.show(Text(f"trace {one_line(item.trace_id, 60)} no longer exists: it was deleted from the "
                               "database (by another process?). j moves on.", style="bold red"))
        else:
            summary, summary_lines = prepared.summary, prepared.summary_lines
            if summary is None or prepared.summary_key != _summary_key(self.eval_set.id, self.blind, self.label):
                summary, summary_lines = highlight(trace_text(prepared.detail, self.eval_set.id, self.eval_set.name,
                                                              self.label, blind=self.blind),
                                                   active_query(self.iofold.state)), None
            if self.steps_for == item.trace_id:  # a re-render of the same trace keeps the scroll position
                document.set_summary(summary, summary_lines if prepared.width == document.wrap_width else None)
            else:
                self.steps_for = item.trace_id
                # Wrapped in the worker: the view swaps the lines in and paints only those on screen.
                document.show(summary, prepared.steps, prepared.lines, prepared.width, summary_lines)
        self._update_bar()
        if self.pending_t0 is not None:
            t0, self.pending_t0 = self.pending_t0, None
            self.call_after_refresh(lambda: self.latencies.append((time.perf_counter() - t0) * 1000))

    def _update_bar(self, extra: Text | None = None) -> None:
        bar = Text()
        item = self.current
        if item is not None:
            tiers = self.spec.tiers() if self.spec else ()
            tier = _TIER_TITLES.get(tiers[item.tier], "") if 0 <= item.tier < len(tiers) else "jumped to"
            if tier == "unlabelled" and self.label is not None:  # the queue tier it came from is history now
                tier = "labelled now"
            elif tier in ("labelled", "contradicted by an eval") and self.label is None:
                tier = "label removed"
            bar.append(f"#{self.queue.pos + 1} this session", style="bold")
            bar.append(f"  {one_line(item.trace_id, 50)}  ({tier})", style="dim")
        bar.append(f"  ·  queue: {ORDER_TITLES[self.order]}")
        bar.append(f"{' + trace filter' if self.use_filter else ''}", style="cyan")
        bar.append(f"  ·  auto-advance {'on' if self.auto_advance else 'off'} (t)")
        if self.blind:
            bar.append("  ·  BLIND", style="bold magenta")
        if extra is not None:
            bar.append("  ")
            bar.append(extra)
        if item is not None:
            bar.append("\n")
            bar.append(label_line(self.label, self.drafts.get(item.trace_id)))
            queue = labeling.open_label_queue(self.app)
            if queue is not None and self.eval_set is not None and queue.pending_for(self.eval_set.id, item.trace_id):
                bar.append("  ⧗ PENDING: not written yet", style="bold yellow reverse")
                bar.append(f" (database locked {queue.waiting_s:.0f} s, retrying; kept safe in the label history)"
                           if queue.waiting_s >= 1 else " (writing…)", style="yellow")
        reason = self.labels_off()
        if reason:
            bar.append(f"\nlabelling disabled: {one_line(reason, 160)}", style="bold red")
        self.query_one("#review-bar", SteadyStatic).set_text(bar)

    def select_item(self, trace_id: str) -> None:
        """Show one trace (screenshots, links from other panes)."""
        self._jump_to(QueueItem(trace_id, -1, "", 0, None))

    def _jump_to(self, item: QueueItem) -> None:
        self.queue.show(item)
        self._show_current()

    # -- labelling -----------------------------------------------------------------------------------
    def action_label(self, rating: str) -> None:
        """The label is queued (recorded in the sidecar, milliseconds) and written by the writer thread: the
        key never waits for the database lock, so the next key acts on the trace it is shown with."""
        t0 = time.perf_counter()
        self.iofold.hold_gc()
        item, es = self.current, self.eval_set
        reason = self.labels_off()
        if reason or es is None or item is None:
            self.notify(f"labelling disabled: {reason}" if reason else "no trace to label", severity="warning")
            return
        draft = self.drafts.get(item.trace_id)
        try:
            labeling.label_queue(self.app).label(es.id, item.trace_id, rating,
                                                 note=UNCHANGED if draft is None else draft,
                                                 seconds=time.monotonic() - self.shown_at)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.commit_ms.append((time.perf_counter() - t0) * 1000)  # key -> recorded durably (sidecar)
        self.drafts.pop(item.trace_id, None)
        self.label = self._label_for(item.trace_id)
        self.pending_t0 = t0
        if self.auto_advance:
            self._advance()
        else:
            self._render_current()

    def _apply_deltas(self, changes: list, reverse: bool = False) -> None:
        if self.counts is None or self.eval_set is None:
            return
        mine = [c for c in changes if c.eval_set_id == self.eval_set.id]
        for rating, delta in labeling.rating_deltas(mine, reverse=reverse).items():
            self.counts[rating] = max(0, self.counts.get(rating, 0) + delta)
        if self.total is not None:
            self.left = max(0, self.total - sum(self.counts.values()))
        self.set_status()

    def action_undo(self) -> None:
        self._travel_key(undo=True)

    def action_redo(self) -> None:
        self._travel_key(undo=False)

    def _travel_key(self, *, undo: bool) -> None:
        """u/U: a label still queued is cancelled (U queues it again); otherwise the undo/redo is queued behind
        the labels before it and reported when written (``on_label_applied``)."""
        try:
            what, intent = labeling.label_queue(self.app).travel(undo=undo)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        if what in ("cancelled", "restored") and intent is not None and intent.trace_id:
            self._jump_to(QueueItem(intent.trace_id, -1, "", 0, None))  # show what was cancelled

    def on_label_applied(self, applied: Applied) -> None:
        """A queued label / note / undo / redo reached the database (or failed): counts, labels, the bar."""
        if self.eval_set is None or applied.intent is None or not self.is_mounted:
            return
        result, intent = applied.result, applied.intent
        if applied.outcome == "applied" and intent.kind in ("undo", "redo"):
            undo = intent.kind == "undo"
            if result is not None:
                for c in result.changes:  # type: ignore[attr-defined]
                    if c.eval_set_id == self.eval_set.id:
                        self.known[c.trace_id] = c.old if undo else c.new
                self._after_travel(result, undo=undo)  # type: ignore[arg-type]
                return
        elif applied.outcome == "applied" and result is not None:
            change = result
            if change.eval_set_id == self.eval_set.id:  # type: ignore[attr-defined]
                self.known[change.trace_id] = change.new  # type: ignore[attr-defined]
                if change.changed:  # type: ignore[attr-defined]
                    self._apply_deltas([change])
        if self.current is not None and self.current.trace_id in (intent.trace_id, None):
            self._refresh_label()
        else:
            self._update_bar()

    def pending_changed(self) -> None:
        super().pending_changed()
        if self.current is not None:
            self._update_bar()

    def _after_travel(self, step: Step | None, *, undo: bool) -> None:
        if step is None or self.eval_set is None:
            return
        self._apply_deltas(list(step.changes), reverse=undo)
        touched = {c.trace_id for c in step.changes if c.eval_set_id == self.eval_set.id}
        if len(touched) == 1:
            self._jump_to(QueueItem(next(iter(touched)), -1, "", 0, None))  # show what was reverted
        else:
            self._refresh_label()

    # -- notes ---------------------------------------------------------------------------------------
    def action_edit_note(self) -> None:
        item = self.current
        if item is None or self.editing_for is not None:
            return
        area = self.query_one("#review-note", TextArea)
        area.text = self.drafts.get(item.trace_id, self.label.notes if self.label and self.label.notes else "")
        area.border_title = "note (Esc saves and leaves; Enter is a new line)"
        area.add_class("editing")
        self.editing_for = item.trace_id
        self.refresh_bindings()

        def focus() -> None:  # after the refresh that displays it: a hidden widget cannot take focus
            area.focus()
            area.move_cursor(area.document.end)

        self.call_after_refresh(focus)

    def action_leave_note(self) -> None:
        self._finish_note()

    @on(DescendantBlur, "#review-note")
    def _note_blurred(self) -> None:
        self._finish_note()  # clicking away must not lose the text either

    def _finish_note(self) -> None:
        trace_id, self.editing_for = self.editing_for, None
        if trace_id is None or self.eval_set is None:
            return
        area = self.query_one("#review-note", TextArea)
        text = area.text if area.text.strip() else ""
        area.remove_class("editing")
        self.set_focus(None)
        self.refresh_bindings()
        label = self._label_for(trace_id)
        if (text or None) == (label.notes if label else None):
            self.drafts.pop(trace_id, None)
        elif label is None:
            self.drafts[trace_id] = text
            self.notify("Note kept: it is saved with this trace's label.")
        else:
            try:
                labeling.label_queue(self.app).note(self.eval_set.id, trace_id, text or None)
            except labeling.LabelActionError as exc:
                self.drafts[trace_id] = text  # keep the text; it is retried with the next label
                self.notify(f"note not saved: {exc}", severity="error")
            else:
                self.drafts.pop(trace_id, None)
                if self.current is not None and self.current.trace_id == trace_id:
                    self.label = self._label_for(trace_id)
        self._update_bar()

    # -- navigation and toggles ---------------------------------------------------------------------
    def action_next(self) -> None:
        self._advance()

    def action_skip(self) -> None:
        self._advance()

    def action_previous(self) -> None:
        if self.queue.back():
            self._show_current()
        else:
            self.notify("This is the first trace of this session.")

    def action_next_unlabelled(self) -> None:
        if self.spec is None:
            return
        item = self.current
        after = (item.timestamp, item.rowid) if item is not None and item.tier >= 0 else None
        self._find_unlabelled(self.queue.epoch, self.spec, after, item.trace_id if item else None)

    @work(thread=True, exclusive=True, group="review-jump", exit_on_error=False)
    def _find_unlabelled(self, generation: int, spec: QueueSpec, after: tuple[str, int] | None,
                         exclude: str | None) -> None:
        self.post_message(JumpFound(next_unlabelled(self.iofold.db.conn(), spec, after, exclude), generation))

    def on_jump_found(self, message: JumpFound) -> None:
        if message.epoch != self.queue.epoch:
            return
        if message.item is None:
            self.notify("No unlabelled trace left in this queue.")
            return
        self.queue.restart_at(message.item)  # continue the queue from here
        self._fill_more()
        self._show_current()

    def action_toggle_blind(self) -> None:
        self.blind = not self.blind
        self._render_current()
        self.notify(f"blind mode {'on: eval verdicts hidden until you label' if self.blind else 'off'}")

    def action_toggle_auto(self) -> None:
        self.auto_advance = not self.auto_advance
        self._update_bar()

    def action_cycle_order(self) -> None:
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        self.notify(f"queue: {ORDER_TITLES[self.order]}")
        self.reload()

    def action_toggle_filter(self) -> None:
        self.use_filter = not self.use_filter
        parts = self.iofold.state.trace_filter.describe()
        if self.use_filter and not parts:
            self.notify("the trace list has no filter yet (T, then f or /)", severity="warning")
        self.reload()

    def action_scroll(self, where: Literal["up", "down", "home", "end"]) -> None:
        body = self.query_one(ReviewDocument)
        {"up": body.scroll_page_up, "down": body.scroll_page_down,
         "home": body.scroll_home, "end": body.scroll_end}[where](animate=False)

    def action_open_trace(self) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        if self.current is not None:
            self.app.push_screen(TraceDetailScreen(self.current.trace_id))

    def action_try_eval(self) -> None:
        """A version of this eval set (the newest, a draft just written, preselected) run on the trace on
        screen in the local sandbox: verdict, reason, stdout, time; nothing stored (``ui/try_trace.py``)."""
        from iofold_tui.data.evals.versions import list_evals

        item, es = self.current, self.eval_set
        if item is None or es is None:
            self.notify("no trace on screen to try an eval on", severity="warning")
            return
        trace_id, db = item.trace_id, self.iofold.db

        def versions() -> list[EvalSummary]:
            with db.fresh() as conn:
                found = list_evals(conn, es.id)
            return sorted((summary for summary, _ in found.rows), key=lambda s: (s.version, s.created_at),
                          reverse=True)

        self.run_query(versions, on_result=lambda found: self._pick_version(found, trace_id), group="try",
                       what="listing the eval versions")

    def _pick_version(self, found: list[EvalSummary], trace_id: str) -> None:
        from iofold_tui.ui.try_trace import TryTraceScreen
        from iofold_tui.ui.widgets import PickOne

        if not found:
            self.notify("this eval set has no eval versions to try (E, then n writes one)", severity="warning")
            return
        if len(found) == 1:
            self.app.push_screen(TryTraceScreen(found[0].id, trace_id))
            return
        options = [(s.id, f"{s.name} v{s.version} · {s.status or '?'} · {s.id}") for s in found]
        self.app.push_screen(PickOne(f"Try which version on {one_line(trace_id, 40)}? (nothing is stored)",
                                     options, found[0].id),
                             lambda eval_id: self.app.push_screen(TryTraceScreen(eval_id, trace_id))
                             if eval_id else None)

    def action_new_eval_set(self) -> None:
        from iofold_tui.ui.eval_set_form import EvalSetForm

        app = self.iofold
        workspace = app.state.workspace_id or (self.eval_set.workspace_id if self.eval_set else None)
        name = app.state.workspace.name if app.state.workspace else (workspace or "")

        def created(eval_set_id: str | None) -> None:
            if eval_set_id:
                app.state.eval_set_id = eval_set_id
                app.load_catalog()  # picks the new set up and refreshes the panes
                self.notify("eval set created; label away")

        if app.source.read_only_reason:
            self.notify(f"cannot create an eval set: {app.source.read_only_reason}", severity="warning")
            return
        app.push_screen(EvalSetForm(workspace, name), created)

    def action_help(self) -> None:
        from iofold_tui.ui.key_help import show_key_help

        show_key_help(self.app, "Review mode keys", [
            "Labels are saved at once; while another process locks the database they show as pending and "
            "are written when it lets go (quitting asks). Undo/redo survive restarts.",
            "Blind mode hides eval verdicts and other sets' labels until the trace has a label in this eval set."])
