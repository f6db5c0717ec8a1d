"""The review pane's queue buffer, without widgets or I/O: the traces shown this session (``visited`` and
the position in it), the traces fetched ahead, the keyset position the next fetch starts after, and
whether more can come. The pane fetches pages in workers and feeds them in (``filled``); ``epoch`` moves
whenever buffered data is dropped, so results of workers started before (queue pages, details, counts,
jumps) are recognised as describing the old data and ignored."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from iofold_tui.data.labels.review_queue import QueueItem, QueueKey

REFILL_AT = 8  # fetch the next page when fewer items than this are buffered


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
