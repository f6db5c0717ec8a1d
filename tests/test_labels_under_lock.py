"""Never lose a label under a lock (issue 13): another process holding the database's write lock.

A locker subprocess holds ``BEGIN EXCLUSIVE`` / ``BEGIN IMMEDIATE`` on WAL and rollback-journal databases
while keys are pressed: the UI keeps responding, each key acts on the trace it is shown with, the labels
show as pending, and after the release every label lands, in order. A SIGKILLed app's queued labels are
written by the next start. The writer's timings are injected so locks many times longer than one wait
(the 45 s / 120 s cases, scaled) run in seconds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _review_helpers import ES, add_unlabelled, feedback, finish, labels_written, make_app
from textual.widgets import Static

from iofold_tui.data.labels.history import LabelHistory
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.labels.writer import LabelWriter, WriterEvent, WriterTiming
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import labeling
from iofold_tui.ui.panes.review import ReviewPane
from iofold_tui.ui.screenshot import settle

FAST = WriterTiming(attempt_wait_s=0.05, backoff_start_s=0.02, backoff_max_s=0.1)

LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    conn.execute("BEGIN " + sys.argv[2])
    conn.execute("UPDATE workspaces SET name = name")  # a real write lock, also for IMMEDIATE
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
    conn.execute("COMMIT")
""")


@contextmanager
def locked(db: Path, mode: str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``BEGIN <mode>`` on ``db`` for ``seconds`` (yields once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), mode, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.wait(timeout=seconds + 30)


def _journal(db: Path, mode: str) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode
    conn.close()


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_unlabelled(seed_db, 6)
    return seed_db


def _header(app: object) -> str:
    return str(app.screen.query_one("#pane-header", Static).content)  # type: ignore[attr-defined]


def _bar(app: object) -> str:
    return str(app.screen.query_one("#review-bar", Static).content)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("journal", "lock"),
                         [("wal", "EXCLUSIVE"), ("delete", "EXCLUSIVE"), ("delete", "IMMEDIATE")])
async def test_keys_under_a_5s_lock_respond_show_pending_and_all_land_in_order(db: Path, journal: str,
                                                                                lock: str) -> None:
    _journal(db, journal)
    app = make_app(db)
    app.label_writer_timing = FAST  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, ReviewPane) and pane.current.trace_id == "ux_000"
        with locked(db, lock, 5.0):
            started = time.monotonic()
            shown = []
            for key in ("a", "x", "n"):
                shown.append(pane.current.trace_id)  # the key acts on the trace on screen
                t0 = time.monotonic()
                await pilot.press(key)
                assert time.monotonic() - t0 < 1.0, "the UI froze on a label key under the lock"
            await pilot.pause()
            assert shown == ["ux_000", "ux_001", "ux_002"]
            assert pane.current.trace_id == "ux_003"  # moved exactly once per key
            await pilot.press("k")  # back to the last labelled trace: its label shows as pending
            await pilot.pause()
            assert "PENDING" in _bar(app) and "NEUTRAL" in _bar(app)
            assert "3 labels pending" in _header(app)
            assert time.monotonic() - started < 4.5, "the test must press its keys while the lock is held"
            if journal == "wal":  # (a rollback-journal EXCLUSIVE lock blocks this test's reads too)
                assert all(feedback(db, t) is None for t in shown)  # nothing written under the lock
        await labels_written(app, pilot, timeout=20)
        assert [feedback(db, t)[1] for t in shown] == ["positive", "negative", "neutral"]
        history = LabelHistory(app.source.history_path)
        steps = [s.changes[0].trace_id for s in reversed(history.recent(10))]
        history.close()
        assert steps == shown  # written in the order pressed
        await pilot.pause()
        assert "pending" not in _header(app) and "PENDING" not in _bar(app)
    finish(app)


async def test_undo_of_a_pending_label_cancels_it_and_redo_requeues(db: Path) -> None:
    app = make_app(db)
    app.label_writer_timing = FAST  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")  # written at once (no lock)
        await labels_written(app, pilot)
        with locked(db, "EXCLUSIVE", 3.0):
            await pilot.press("x")  # ux_001: queued
            await pilot.press("u")  # cancels the queued label (never written), shows ux_001 again
            await pilot.pause()
            assert app.screen.current.trace_id == "ux_001"  # type: ignore[attr-defined]
            await pilot.press("u")  # nothing queued left: an undo of ux_000's label, queued behind
            await pilot.press("U")  # redo it, queued too
            await pilot.press("u")  # and undo again
        await labels_written(app, pilot, timeout=20)
        assert feedback(db, "ux_001") is None  # the cancelled label never reached the database
        assert feedback(db, "ux_000") is None  # undo, redo, undo: applied in order
    finish(app)


def test_writer_outlasts_locks_far_longer_than_one_wait(db: Path, tmp_path: Path) -> None:
    """The 45 s / 120 s cases scaled down: one wait is 0.05 s (the old code dropped a label after 30 s of
    waiting, i.e. one wait); a lock 40-80 waits long delays labels, never drops or reorders them."""
    _journal(db, "delete")
    store = LabelStore(db, history_path=tmp_path / "h.sqlite", max_wait_s=0.05)
    events: list[WriterEvent] = []
    writer = LabelWriter(store, events.append, FAST).start()
    try:
        with locked(db, "EXCLUSIVE", 2.0):
            for i, rating in enumerate(["positive", "negative", "neutral", "positive"]):
                store.queue_label(ES, f"ux_{i:03d}", rating)  # type: ignore[arg-type]
            writer.wake()
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and not any(e.kind == "busy" and e.waiting_s > 1.0
                                                          for e in events):
                time.sleep(0.02)
            assert len(store.queued()) == 4
        deadline = time.monotonic() + 20
        while store.queued() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.queued() == []
        landed = [feedback(db, f"ux_{i:03d}")[1] for i in range(4)]
        assert landed == ["positive", "negative", "neutral", "positive"]
        busy = [e for e in events if e.kind == "busy"]
        assert busy and max(e.waiting_s for e in busy) > 1.0 and max(e.attempts for e in busy) > 10
        assert not [e for e in events if e.kind == "failed"]
    finally:
        writer.stop()
        store.close()


def test_a_queued_label_survives_a_crash_at_every_point(db: Path, tmp_path: Path) -> None:
    """Kill between recording the intent and settling its step: the next open either has it written or
    still queued, never lost and never written twice."""
    history_path = tmp_path / "h.sqlite"
    store = LabelStore(db, history_path=history_path)
    intent = store.queue_label(ES, "ux_000", "positive")
    # Simulate a crash after the pending step was recorded and bound, before the feedback commit.
    store.history.add_pending("label", store.session, [], intent.id)
    store.history.conn.execute("DELETE FROM steps WHERE id = (SELECT max(id) FROM steps)")  # never committed
    store.close()
    reopened = LabelStore(db, history_path=history_path)
    try:
        assert [i.id for i in reopened.queued()] == [intent.id]  # requeued
        assert reopened.apply_next().outcome == "applied"
        assert feedback(db, "ux_000")[1] == "positive"
        assert reopened.queued() == [] and reopened.apply_next().outcome == "empty"
    finally:
        reopened.close()


KILLED_APP = textwrap.dedent("""
    import asyncio, os, signal, sys
    from iofold_tui.data.labels.writer import WriterTiming
    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui import labeling
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.screenshot import settle

    async def main():
        app = IofoldApp(open_source(sys.argv[1]), pane="review", eval_set="response-quality",
                        watch_interval=0)
        app.label_writer_timing = WriterTiming(0.05, 0.02, 0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            print("ready", flush=True)
            sys.stdin.readline()  # the test holds the lock now
            await pilot.press("a", "x")
            await pilot.pause()
            queue = labeling.open_label_queue(app)
            print("pending", len(queue.pending), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")


async def test_sigkill_while_pending_next_start_applies_them(db: Path) -> None:
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_APP, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    with locked(db, "EXCLUSIVE", 4.0):
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "pending 2"
        assert proc.wait(timeout=20) == -signal.SIGKILL
        assert feedback(db, "ux_000") is None
    app = make_app(db, pane="traces")  # any pane: the next start writes them
    app.label_writer_timing = FAST  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        deadline = time.monotonic() + 20
        while (feedback(db, "ux_001") is None) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert feedback(db, "ux_000")[1] == "positive" and feedback(db, "ux_001")[1] == "negative"
        await labels_written(app, pilot)
        notes = " ".join(str(n.message) for n in app._notifications)
        assert "queued by the previous session" in notes
    finish(app)


async def test_read_only_source_queues_nothing(db: Path) -> None:
    app = make_app(db, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert labeling.open_label_queue(app) is None or not labeling.open_label_queue(app).pending
        assert "labelling disabled" in _bar(app)
    finish(app)


async def test_quit_with_pending_labels_asks_and_keeps_them(db: Path) -> None:
    app = make_app(db)
    app.label_writer_timing = FAST  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        with locked(db, "EXCLUSIVE", 3.0):
            await pilot.press("a")
            await pilot.press("q")
            await pilot.pause()
            assert "not written yet" in str(app.screen.query_one("#pick-title", Static).content) \
                if app.screen.query("#pick-title") else app.screen.__class__.__name__ == "PickOne"
            await pilot.press("enter")  # the default: quit and keep them queued
            await pilot.pause()
    assert feedback(db, "ux_000") is None or feedback(db, "ux_000")[1] == "positive"
    finish(app)
    source = open_source(db)
    store = LabelStore(source.db.path, history_path=source.history_path)
    try:  # whatever the writer managed before the exit, the label is written or still queued
        assert feedback(db, "ux_000") is not None or [i.trace_id for i in store.queued()] == ["ux_000"]
    finally:
        store.close()


async def test_trace_list_row_shows_pending_then_the_written_label(db: Path) -> None:
    _journal(db, "wal")  # readers go on under a WAL writer's lock: the list stays browsable
    app = make_app(db, pane="traces")
    app.label_writer_timing = FAST  # type: ignore[assignment]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.table  # type: ignore[attr-defined]
        with locked(db, "IMMEDIATE", 3.0):
            await pilot.press("a")
            await pilot.pause()
            assert "⧗" in str(table.get_cell("ux_000", "rating"))
            assert table.cursor_key == "ux_001"
            assert "1 label pending" in _header(app)
        await labels_written(app, pilot, timeout=20)
        await settle(app, pilot)
        assert "⧗" not in str(table.get_cell("ux_000", "rating")) and feedback(db, "ux_000")[1] == "positive"
    finish(app)


def test_a_label_cancelled_while_the_writer_holds_it_is_not_written(db: Path, tmp_path: Path) -> None:
    """Undo (cancel) lands between the writer picking the intent and recording its step: nothing is written
    and the intent stays cancelled (redo can queue it again)."""
    store = LabelStore(db, history_path=tmp_path / "h.sqlite")
    try:
        intent = store.queue_label(ES, "ux_000", "positive")
        picked = store.history.next_queued()
        assert picked == intent
        assert store.cancel_queued() == intent
        store.history.next_queued = lambda: picked  # type: ignore[method-assign] - the writer already holds it
        assert store.apply_next().outcome == "cancelled"
        assert feedback(db, "ux_000") is None and store.history.top_applied() is None
        del store.history.next_queued
        assert store.restore_cancelled() is not None and store.apply_next().outcome == "applied"
        assert feedback(db, "ux_000")[1] == "positive"
    finally:
        store.close()
