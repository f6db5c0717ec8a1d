"""The live D1 source's page cache: an LRU of read results (statement + parameters -> rows), bounded by
entries and rows, dropped on a change (``clear``: the change probe, our own writes) or after its TTL; kept
past the TTL when the network is down (``stale_ok``), so what was seen stays on screen."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from iofold_tui.data.source.d1.api import Result

CACHE_TTL_S = 60.0
EXPENSIVE_ROWS_READ = 100_000  # a read that scanned this many rows is kept EXPENSIVE_TTL_FACTOR times longer
EXPENSIVE_TTL_FACTOR = 10
CACHE_ENTRIES = 512
CACHE_ROWS = 200_000


class PageCache:
    """LRU of read results, bounded by entries and rows, dropped on a change (``clear``) or after the TTL."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._items: OrderedDict[tuple[Any, ...], tuple[float, Result]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...], *, stale_ok: bool = False) -> Result | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or (not stale_ok and time.monotonic() - item[0] > self._ttl(item[1])):
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def _ttl(self, result: Result) -> float:
        """Reads that scanned many rows (the trace list's count(*), unfiltered aggregates) live longer: D1
        bills every row read, the probe and our own writes still drop them on a change, and the TTL only
        bounds how long a colleague's edit in place can go unseen."""
        rows_read = result.meta.get("rows_read") if isinstance(result.meta, dict) else None
        expensive = isinstance(rows_read, int) and rows_read >= EXPENSIVE_ROWS_READ
        return self.ttl_s * (EXPENSIVE_TTL_FACTOR if expensive else 1)

    def put(self, key: tuple[Any, ...], result: Result) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._rows -= len(old[1].rows)
            self._items[key] = (time.monotonic(), result)
            self._rows += len(result.rows)
            while self._items and (len(self._items) > CACHE_ENTRIES or self._rows > CACHE_ROWS):
                _, (_, dropped) = self._items.popitem(last=False)
                self._rows -= len(dropped.rows)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._rows = 0
