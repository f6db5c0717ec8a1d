"""Feeding a D1 export to SQLite fast: consecutive one-row INSERTs batched into one statement, split
on a worker thread while the caller's thread runs SQLite."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, NamedTuple, cast

from iofold_tui.data.db import quote_ident
from iofold_tui.data.source.export.statements import Statement, iter_statements

Progress = Callable[[int, int], None]
BATCH_ROWS = 50  # rows per combined INSERT (more is slower: SQLite's program for it grows)
BATCH_BYTES = 1 << 20
PIPE_ITEMS, PIPE_BYTES, PIPE_DEPTH = 64, 256 << 10, 4  # handed over from the splitting thread at a time


class RowBatch(NamedTuple):
    """Consecutive one-row ``INSERT INTO "t" VALUES(...);`` lines sent to SQLite as one statement."""

    table: str
    sql: str
    rows: list[Statement]


def _combine(rows: list[Statement], head: str) -> Statement | RowBatch:
    if len(rows) == 1:
        return rows[0]
    cut = len(head) - 1  # keep each row's "(...)"
    return RowBatch(rows[0].name or "?", head[:cut] + ",".join([r.sql[cut:-1] for r in rows]) + ";", rows)


def group_rows(statements: Iterable[Statement]) -> Iterator[Statement | RowBatch]:
    """Batch consecutive wrangler-style INSERT lines of one table; other statements pass through.

    One SQLite call per ~50 rows instead of one per row is what keeps pace with the sqlite3 CLI.
    """
    rows: list[Statement] = []
    head = ""
    size = 0
    for stmt in statements:
        if stmt.kind == "insert":
            sql = stmt.sql
            if rows and size < BATCH_BYTES and len(rows) < BATCH_ROWS and sql.startswith(head) \
                    and sql.endswith(");"):
                rows.append(stmt)
                size += len(sql)
                continue
            if rows:
                yield _combine(rows, head)
                rows = []
            name = stmt.name
            if name and '"' not in name:
                head = f"INSERT INTO {quote_ident(name)} VALUES("
                if sql.startswith(head) and sql.endswith(");"):
                    rows, size = [stmt], len(sql)
                    continue
        elif rows:
            yield _combine(rows, head)
            rows = []
        yield stmt
    if rows:
        yield _combine(rows, head)


class SplitPipeline:
    """Split on a worker thread while the caller's thread runs SQLite.

    sqlite3 releases the GIL while it parses and steps, so splitting the next rows overlaps with
    inserting the current ones. The queue is bounded: memory stays a few batches deep. Progress is
    reported from the caller's thread, never from the worker.
    """

    _END = object()

    def __init__(self, fh: IO[bytes], total: int, progress: Progress | None) -> None:
        self.fh, self.total, self.progress = fh, total, progress
        self.queue: queue.Queue[object] = queue.Queue(maxsize=PIPE_DEPTH)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="d1export-split", daemon=True)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            batch: list[Statement | RowBatch] = []
            size = 0
            for item in group_rows(iter_statements(self.fh)):
                # Hand the GIL back now and then: the SQLite thread, whose work does not hold it,
                # would otherwise wait a whole switch interval (5 ms) each time it needs it.
                time.sleep(0)
                batch.append(item)
                size += len(item.sql)
                if len(batch) >= PIPE_ITEMS or size >= PIPE_BYTES:
                    if not self._put((batch, self.fh.tell())):
                        return
                    batch, size = [], 0
            if self._put((batch, self.total)):
                self._put(self._END)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._put(exc)

    def __iter__(self) -> Iterator[Statement | RowBatch]:
        self.thread.start()
        step = max(self.total // 200, 1 << 20)
        mark = step
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            batch, done = cast("tuple[list[Statement | RowBatch], int]", item)
            if self.progress and (done >= mark or done == self.total):
                self.progress(done, self.total)
                mark = done + step
            yield from batch

    def close(self) -> None:
        """Stop the worker (also when the caller gave up half-way) before the file is closed."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
