"""The label writer thread: applies queued label intents in order, retrying with backoff while another
process holds the database's write lock. Never loses an intent: it stays in the sidecar until written.

The UI records an intent (``LabelStore.queue_label``, milliseconds) and calls ``wake()``; this thread does
every wait. ``on_event`` is called from this thread for each outcome (the UI hands it to its own thread).
The timings are parameters so tests can simulate a 45 s or 120 s lock in a fraction of that.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.labels.store_types import Applied


@dataclass(frozen=True)
class WriterTiming:
    attempt_wait_s: float = 0.25  # how long one attempt waits for the lock (the store is held meanwhile)
    backoff_start_s: float = 0.1  # pause after the first busy attempt, doubled each time...
    backoff_max_s: float = 2.0  # ...up to this


@dataclass(frozen=True)
class WriterEvent:
    """One outcome: ``applied`` / ``busy`` / ``failed`` (see ``Applied``), or ``idle`` when the queue ran dry.
    ``waiting_s``: how long the oldest intent has been waiting for the lock (busy)."""

    kind: str
    applied: Applied | None = None
    waiting_s: float = 0.0
    attempts: int = 0


class LabelWriter:
    def __init__(self, store: LabelStore, on_event: Callable[[WriterEvent], None],
                 timing: WriterTiming | None = None) -> None:
        self.store = store
        self.on_event = on_event
        self.timing = timing or WriterTiming()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iofold-label-writer", daemon=True)

    def start(self) -> LabelWriter:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = self.timing.backoff_start_s
        busy_since: float | None = None
        attempts = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                done = self.store.apply_next(self.timing.attempt_wait_s)
            except Exception as exc:  # the store closed under us, or worse: report, keep the intent
                # closed: the app is gone
                if self._stop.is_set() or isinstance(exc, sqlite3.ProgrammingError):
                    return
                self._emit(WriterEvent("busy", Applied("busy", error=str(exc)), 0.0, attempts))
                self._stop.wait(self.timing.backoff_max_s)
                continue
            if done.outcome == "empty":
                if busy_since is not None:
                    busy_since, attempts, backoff = None, 0, self.timing.backoff_start_s
                self._emit(WriterEvent("idle"))
                self._wake.wait(1.0)
                continue
            if done.outcome == "busy":
                now = time.monotonic()
                busy_since = busy_since if busy_since is not None else now - self.timing.attempt_wait_s
                attempts += 1
                self._emit(WriterEvent("busy", done, now - busy_since, attempts))
                self._stop.wait(backoff)  # a new key does not cut the backoff short: the lock decides
                backoff = min(backoff * 2, self.timing.backoff_max_s)
                continue
            busy_since, attempts, backoff = None, 0, self.timing.backoff_start_s
            self._emit(WriterEvent(done.outcome, done))

    def _emit(self, event: WriterEvent) -> None:
        with contextlib.suppress(Exception):  # the app is going away; the intents are safe in the sidecar
            self.on_event(event)
