"""The review pane's queue buffer (ui/models/review.py) without an app: stepping through fetched pages,
waiting for a fetch, going back, links from other panes, jumps that restart the queue, and the epoch that
makes results of earlier fetches stale."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.review_queue import ORDERS, QueueItem, QueueSpec
from iofold_tui.data.traces.detail import FeedbackEntry
from iofold_tui.ui.models.review import CACHE, REFILL_AT, ReviewModel, ReviewQueue


def item(n: int) -> QueueItem:
    return QueueItem(f"t{n:03d}", 0, f"2025-01-{n % 28 + 1:02d}", n, None)


def test_steps_through_pages_and_waits_for_the_next_fetch() -> None:
    q = ReviewQueue()
    q.reset()
    assert q.want_next and q.current is None and q.start_fill() and not q.start_fill()  # one fetch at a time
    assert q.filled([item(1), item(2)], exhausted=False) is True  # the first step was waiting for it
    assert q.step() == "moved" and q.current == item(1) and q.queue_key == item(1).key
    assert q.frontier == item(2).key and q.needs_refill()
    assert q.step() == "moved" and q.current == item(2)
    assert q.step() == "wait" and q.want_next  # nothing buffered: taken when the fetch arrives
    assert q.start_fill() and q.filled([item(3)], exhausted=True) is True
    assert q.step() == "moved" and q.current == item(3)
    assert q.step() == "end" and not q.start_fill()  # exhausted: no more fetches
    assert q.back() and q.current == item(2) and q.step() == "moved" and q.current == item(3)
    assert q.upcoming(2) == []


def test_upcoming_links_and_jumps() -> None:
    q = ReviewQueue()
    q.reset()
    q.filled([item(n) for n in range(1, 6)], exhausted=False)
    q.step()
    q.step()
    q.back()
    assert q.upcoming(3) == [item(2), item(3), item(4)]  # the one seen, then the buffered ones
    q.show(item(1))  # seen already: back to it, nothing appended
    assert q.pos == 0 and len(q.visited) == 2
    q.show(item(40))  # a link to a trace never shown
    assert q.current == item(40) and len(q.visited) == 3
    epoch = q.epoch
    q.restart_at(item(50))  # the next unlabelled trace: the queue continues after it
    assert q.current == item(50) and q.frontier == item(50).key and not q.ahead and q.epoch == epoch + 1


def test_refetch_and_reset_make_earlier_results_stale() -> None:
    q = ReviewQueue()
    q.reset()
    first = q.epoch
    q.start_fill()
    q.filled([item(n) for n in range(1, REFILL_AT + 2)], exhausted=False)
    q.step()
    assert not q.needs_refill()
    q.refetch()  # the database changed: buffered traces dropped, fetch again after the one shown
    assert q.epoch == first + 1 and not q.ahead and q.frontier == item(1).key and q.current == item(1)
    assert q.start_fill()
    q.reset()
    assert q.epoch == first + 2 and q.current is None and not q.visited and q.want_next


# -- ReviewModel: the queue plus details, labels as last set, counts ---------------------------------------
@dataclass(frozen=True)
class Loaded:
    detail: object
    error: str | None = None


@dataclass
class Intent:
    kind: str = "label"
    rating: str | None = "positive"
    note: str | None = None
    note_set: bool = False


def detail_with(rating: str, notes: str | None = None, eval_set_id: str = "es") -> SimpleNamespace:
    return SimpleNamespace(feedback=[FeedbackEntry(eval_set_id, "set", rating, notes, "2025-01-01")])


def model() -> ReviewModel:
    m = ReviewModel(eval_set_id="es")
    m.rebuild(QueueSpec("es", "ws"))
    return m


def test_label_as_last_set_prefers_queued_then_written_then_read() -> None:
    m = model()
    assert m.label_for("t1", None) is None  # nothing loaded, nothing written
    m.loaded("t1", Loaded(detail_with("negative", "why")))  # type: ignore[arg-type]
    read = m.label_for("t1", None)
    assert read is not None and (read.rating, read.notes) == ("negative", "why")
    queued = m.label_for("t1", Intent(rating="positive"))  # type: ignore[arg-type]
    assert queued is not None and (queued.rating, queued.notes) == ("positive", "why")  # the note stays
    assert m.label_for("t1", Intent(rating=None)) is None  # a queued removal
    noted = m.label_for("t1", Intent(kind="note", rating=None, note="new", note_set=True))  # type: ignore[arg-type]
    assert noted is not None and (noted.rating, noted.notes) == ("negative", "new")
    m.written("t1", None)  # removed from this pane: wins over the detail read before
    assert m.label_for("t1", None) is None
    m.refetch()  # the database changed: what this pane wrote is read again
    assert not m.known and not m.cache


def test_details_are_requested_once_kept_in_a_bounded_cache_and_retried() -> None:
    m = model()
    assert m.wanted(["a", "b"]) == ["a", "b"] and m.wanted(["a", "b", "c"]) == ["c"]  # in flight: not again
    m.not_loaded(["c"])
    assert m.wanted(["c"]) == ["c"]
    m.loaded("a", Loaded(None, error="database is locked"))  # type: ignore[arg-type]
    assert "a" in m.cache and m.take_retry("a") and "a" not in m.cache and not m.take_retry("a")
    for n in range(CACHE + 5):
        m.loaded(f"x{n}", Loaded(None))  # type: ignore[arg-type]
    assert len(m.cache) == CACHE and "x0" not in m.cache and f"x{CACHE + 4}" in m.cache
    m.queue.filled([item(1)], exhausted=True)
    m.queue.step()
    assert m.loaded(item(1).trace_id, Loaded(None)) is True  # the trace shown: its label is refreshed


def test_counts_follow_labels_and_what_is_left() -> None:
    m = model()
    assert not m.shift_counts({"positive": 1})  # nothing counted yet
    m.counted({"positive": 2, "negative": 1}, total=10, left=None)
    assert m.left == 7
    assert m.shift_counts({"positive": 1, "negative": -1}) and m.counts == {"positive": 3, "negative": 0}
    assert m.left == 7
    m.shift_counts({"negative": -5})  # never below zero
    assert m.counts == {"positive": 3, "negative": 0}
    m.counted({"positive": 1}, total=None, left=None)  # the total is kept from before
    assert m.left == 9
    m.rebuild(QueueSpec("es", "ws"))
    assert m.counts is None and m.total is None and m.left is None


def test_tier_title_reads_as_the_label_now_stands() -> None:
    m = model()
    unlabelled = QueueItem("t1", 0, "2025-01-01", 1, None)
    assert m.tier_title(unlabelled) == "unlabelled"
    m.label = FeedbackRow("", "positive", None, None, None)
    assert m.tier_title(unlabelled) == "labelled now"
    assert m.tier_title(QueueItem("t9", -1, "", 0, None)) == "jumped to"
    assert m.cycle_order() != ORDERS[0] and m.order in ORDERS
