"""The review pane's queue buffer (ui/models/review.py) without an app: stepping through fetched pages,
waiting for a fetch, going back, links from other panes, jumps that restart the queue, and the epoch that
makes results of earlier fetches stale."""

from __future__ import annotations

from iofold_tui.data.labels.review_queue import QueueItem
from iofold_tui.ui.models.review import REFILL_AT, ReviewQueue


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
