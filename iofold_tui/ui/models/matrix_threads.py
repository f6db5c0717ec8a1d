"""Where the matrix model's jobs run: the grid's own connection (one job at a time) and a lower-priority
thread for the statistics, so paging wins the CPU over a statistics scan."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from iofold_tui.data.db import Database, connect, with_rowid

T = TypeVar("T")


def run_niced(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread at a lower priority (Linux nices threads one by one) and wait for it,
    so paging wins the CPU over a statistics scan. A fresh thread because worker threads are pooled and an
    unprivileged process cannot take a nice level back."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: just slower paging
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="iofold-matrix-stats", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


class GridConnection:
    """The grid's own connection (TEMP tables are per connection), used by one job at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:  # a `traces` table WITHOUT ROWID pages on its primary key
                db = self.db
                conn = connect(db.path, read_only=db.read_only, immutable=db.immutable)
                self._conn = with_rowid(conn, "traces")
            return job(self._conn)

    def interrupt(self) -> None:
        if self._conn is not None:
            self._conn.interrupt()

    def close(self) -> None:
        self.interrupt()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
