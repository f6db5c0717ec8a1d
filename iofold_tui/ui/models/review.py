"""Review mode without widgets or I/O. ``ReviewQueue``: the traces shown this session (``visited`` and the
position in it), the traces fetched ahead, the keyset position the next fetch starts after, and whether more
can come; ``epoch`` moves whenever buffered data is dropped, so results of queries started before (queue
pages, details, counts, jumps) are recognised as describing the old data and ignored. ``ReviewModel``: the
queue plus the prepared details, the labels as the user last set them, the counts and the toggles. The pane
runs the queries in workers (``Pane.run_query``) and feeds their results in."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.review_queue import ORDERS, Order, QueueItem, QueueKey, QueueSpec
from iofold_tui.data.traces.detail import TraceDetail

REFILL_AT = 8  # fetch the next page when fewer items than this are buffered
AHEAD = 30  # queue items fetched per page
PREFETCH = 2  # upcoming traces whose details are loaded in advance
CACHE = 16  # trace details kept in memory
TIER_TITLES = {"unlabelled": "unlabelled", "labelled": "labelled", "contradicted": "contradicted by an eval",
               "labelled_plain": "labelled"}


@dataclass
class ReviewQueue:
    visited: list[QueueItem] = field(default_factory=list)  # this session's traces, in the order shown
    pos: int = -1
    ahead: deque[QueueItem] = field(default_factory=deque)
    queue_key: QueueKey | None = None  # last queue position handed out
    frontier: QueueKey | None = None  # last position fetched into `ahead`
    exhausted: bool = False
    fetching: bool = False
    want_next: bool = False  # a step forward waits for the fetch in flight
    epoch: int = 0

    @property
    def current(self) -> QueueItem | None:
        return self.visited[self.pos] if 0 <= self.pos < len(self.visited) else None

    def reset(self) -> None:
        """A new queue (eval set, order or filter changed): nothing shown yet, show its first trace."""
        self.epoch += 1
        self.visited, self.pos = [], -1
        self.ahead.clear()
        self.queue_key = self.frontier = None
        self.exhausted = self.fetching = False
        self.want_next = True

    def refetch(self) -> None:
        """Drop what was fetched ahead (the database changed) and fetch again from the trace shown."""
        self.epoch += 1
        self.ahead.clear()
        self.frontier = self.queue_key
        self.exhausted = self.fetching = False

    def start_fill(self) -> bool:
        """True: fetch the page after ``frontier`` now (none is in flight and more can come)."""
        if self.fetching or self.exhausted:
            return False
        self.fetching = True
        return True

    def filled(self, items: list[QueueItem], exhausted: bool) -> bool:
        """A fetched page arrived; True when a step forward was waiting for it (take it now)."""
        self.fetching = False
        self.ahead.extend(items)
        if items:
            self.frontier = items[-1].key
        self.exhausted = exhausted
        waiting, self.want_next = self.want_next, False
        return waiting

    def step(self) -> Literal["moved", "wait", "end"]:
        """Forward: the next trace already seen, else the next fetched ("moved"); "wait": fetch more first
        (the step is taken when it arrives); "end": the queue has nothing more."""
        if self.pos < len(self.visited) - 1:
            self.pos += 1
        elif self.ahead:
            item = self.ahead.popleft()
            self.visited.append(item)
            self.pos = len(self.visited) - 1
            self.queue_key = item.key
        elif not self.exhausted:
            self.want_next = True
            return "wait"
        else:
            return "end"
        return "moved"

    def needs_refill(self) -> bool:
        return len(self.ahead) < REFILL_AT

    def back(self) -> bool:
        if self.pos > 0:
            self.pos -= 1
            return True
        return False

    def show(self, item: QueueItem) -> None:
        """Show ``item`` (a link from another pane): where it was seen this session, else appended."""
        for index in range(len(self.visited) - 1, -1, -1):
            if self.visited[index].trace_id == item.trace_id:
                self.pos = index
                return
        self.visited.append(item)
        self.pos = len(self.visited) - 1

    def restart_at(self, item: QueueItem) -> None:
        """Show ``item`` and continue the queue after it (a jump to the next unlabelled trace)."""
        self.visited.append(item)
        self.pos = len(self.visited) - 1
        self.queue_key = item.key
        self.refetch()

    def upcoming(self, n: int) -> list[QueueItem]:
        """The next ``n`` traces a step forward would show (their details are loaded ahead)."""
        items = self.visited[self.pos + 1:self.pos + 1 + n]
        return items + list(self.ahead)[:n - len(items)]


class Loaded(Protocol):
    """A trace's detail as the pane prepared it (ui/panes/review_show.Prepared): read, or failed to read."""

    @property
    def detail(self) -> TraceDetail | None: ...
    @property
    def error(self) -> str | None: ...


class PendingIntent(Protocol):
    """A label or note still queued for the writer (``data.labels.history.Intent``, a frozen dataclass:
    hence read-only members)."""

    @property
    def kind(self) -> str: ...
    @property
    def rating(self) -> str | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def note_set(self) -> bool: ...


def label_in(detail: TraceDetail, eval_set_id: str) -> FeedbackRow | None:
    """This eval set's label as read with the trace's detail."""
    for fb in detail.feedback:
        if fb.eval_set_id == eval_set_id:
            return FeedbackRow("", fb.rating, fb.notes, fb.updated_at, fb.updated_at)
    return None


def summary_key(eval_set_id: str, blind: bool, label: FeedbackRow | None) -> tuple[object, ...]:
    """What a trace's summary depends on besides the trace: a prepared summary with another key is stale."""
    return (eval_set_id, blind, None if label is None else (label.rating, label.notes, label.updated_at))


@dataclass
class ReviewModel:
    """Review mode's state without widgets or I/O: the queue (``ReviewQueue``), the traces' prepared details
    (an LRU of ``CACHE``, and those requested from workers), the current trace's label as the user last set
    it, notes typed before a label, the label counts and what is left, and the mode's toggles. The pane
    runs the queries (``Pane.run_query``) and feeds their results in."""

    queue: ReviewQueue = field(default_factory=ReviewQueue)
    eval_set_id: str | None = None
    context: tuple[object, ...] | None = None  # what the queue was built for (set, order, filter)
    spec: QueueSpec | None = None
    cache: OrderedDict[str, Loaded] = field(default_factory=OrderedDict)
    requested: set[str] = field(default_factory=set)
    label: FeedbackRow | None = None  # the current trace's label in this eval set
    # notes typed on unlabelled traces: saved with the label
    drafts: dict[str, str] = field(default_factory=dict)
    # labels written since the last refetch
    known: dict[str, FeedbackRow | None] = field(default_factory=dict)
    counts: dict[str, int] | None = None
    total: int | None = None
    left: int | None = None
    blind: bool = False
    auto_advance: bool = True
    order: Order = ORDERS[0]
    use_filter: bool = False

    @property
    def current(self) -> QueueItem | None:
        return self.queue.current

    def rebuild(self, spec: QueueSpec) -> None:
        """A new queue (eval set, order or filter changed): nothing buffered, nothing counted."""
        self.spec = spec
        self.queue.reset()
        self.cache.clear()
        self.requested.clear()
        self.counts = self.total = self.left = None

    def refetch(self) -> None:
        """The database changed: buffered queue items, details and labels written here are dropped."""
        self.queue.refetch()
        self.cache.clear()
        self.known.clear()
        self.requested.clear()

    def cycle_order(self) -> Order:
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        return self.order

    # -- details -------------------------------------------------------------------------------------
    def wanted(self, trace_ids: list[str]) -> list[str]:
        """Those of ``trace_ids`` neither loaded nor on their way; they count as requested from now on."""
        wanted = [t for t in trace_ids if t not in self.cache and t not in self.requested]
        self.requested.update(wanted)
        return wanted

    def upcoming_ids(self) -> list[str]:
        return [item.trace_id for item in self.queue.upcoming(PREFETCH)]

    def loaded(self, trace_id: str, prepared: Loaded) -> bool:
        """A detail arrived; True when it is the trace shown (its label came with it)."""
        self.requested.discard(trace_id)
        self.cache[trace_id] = prepared
        while len(self.cache) > CACHE:
            self.cache.popitem(last=False)
        return self.current is not None and self.current.trace_id == trace_id

    def not_loaded(self, trace_ids: list[str]) -> None:
        """Loading these failed as a whole: they can be requested again."""
        self.requested.difference_update(trace_ids)

    def take_retry(self, trace_id: str) -> bool:
        """A detail that could not be read (a lock) is dropped to be read again: True if it still failed."""
        prepared = self.cache.get(trace_id)
        if prepared is None or prepared.error is None:
            return False
        del self.cache[trace_id]
        return True

    def touch(self, trace_id: str) -> Loaded | None:
        """The prepared detail of ``trace_id`` (most recently used now), or None."""
        prepared = self.cache.get(trace_id)
        if prepared is not None:
            self.cache.move_to_end(trace_id)
        return prepared

    # -- labels and counts ---------------------------------------------------------------------------
    def label_for(self, trace_id: str, intent: PendingIntent | None) -> FeedbackRow | None:
        """The trace's label as the user last set it, without the database: a queued ``intent`` first, then a
        label written this session, then the label read with the trace's detail."""
        if self.eval_set_id is None:
            return None
        if trace_id in self.known:
            base = self.known[trace_id]
        else:
            prepared = self.cache.get(trace_id)
            base = label_in(prepared.detail, self.eval_set_id) if prepared and prepared.detail else None
        if intent is None:
            return base
        notes = base.notes if base is not None else None
        if intent.note_set:
            notes = intent.note
        if intent.kind == "note":
            return None if base is None else replace(base, notes=notes)
        return None if intent.rating is None else FeedbackRow("", intent.rating, notes, None, None)

    def written(self, trace_id: str, label: FeedbackRow | None) -> None:
        """A label of this set reached the database from this pane."""
        self.known[trace_id] = label

    def counted(self, counts: dict[str, int], total: int | None, left: int | None) -> None:
        """Label counts arrived (``total``: traces in the workspace; ``left``: unlabelled in the filter)."""
        self.counts = counts
        if total is not None:
            self.total = total
        if self.total is not None:
            self.left = max(0, self.total - sum(self.counts.values()))
        elif left is not None:
            self.left = left

    def shift_counts(self, deltas: dict[str, int]) -> bool:
        """Per-rating count changes of labels written (or undone); False while nothing is counted yet."""
        if self.counts is None:
            return False
        for rating, delta in deltas.items():
            self.counts[rating] = max(0, self.counts.get(rating, 0) + delta)
        if self.total is not None:
            self.left = max(0, self.total - sum(self.counts.values()))
        return True

    def tier_title(self, item: QueueItem) -> str:
        """Which part of the queue the trace came from, as it reads now (a label moves it)."""
        tiers = self.spec.tiers() if self.spec else ()
        tier = TIER_TITLES.get(tiers[item.tier], "") if 0 <= item.tier < len(tiers) else "jumped to"
        if tier == "unlabelled" and self.label is not None:  # the queue tier it came from is history now
            return "labelled now"
        if tier in ("labelled", "contradicted by an eval") and self.label is None:
            return "label removed"
        return tier
