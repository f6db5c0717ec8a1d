"""LabelStore: upsert, relabel, clear, notes, bulk, undo/redo (also across restarts), read-only, locking."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from _labels_helpers import ES, ES2, Clock, add_traces, feedback_rows, open_store

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.labels.history import APPLIED, DISCARDED, UNDONE, FeedbackRow
from iofold_tui.data.labels.store_types import LabelWriteError, NoLabelError, UndoConflictError

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_traces(seed_db, 1200)
    return seed_db


def row(db: Path, es: str, trace: str) -> tuple | None:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, rating, notes, created_at, updated_at FROM feedback "
                            "WHERE eval_set_id = ? AND trace_id = ?", (es, trace)).fetchone()
    finally:
        conn.close()


def test_first_label_inserts_iofold_style_row(db: Path) -> None:
    clock = Clock()
    with open_store(db, clock=clock) as store:
        change = store.set_label(ES2, "tx_00000", "positive", seconds_spent=3.5)
    assert change.old is None and change.step_id is not None
    fid, rating, notes, created, updated = row(db, ES2, "tx_00000")
    assert re.fullmatch(r"fb_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", fid)
    assert (rating, notes) == ("positive", None)
    assert created == updated == "2026-01-02 03:04:05" and STAMP.match(created)


def test_relabel_updates_updated_at_keeps_id_and_created_at(db: Path) -> None:
    clock = Clock()
    with open_store(db, clock=clock) as store:
        first = store.set_label(ES2, "tx_00001", "positive", note="ok")
        clock.tick(90)
        second = store.set_label(ES2, "tx_00001", "negative")
    assert second.old == first.new
    fid, rating, notes, created, updated = row(db, ES2, "tx_00001")
    assert fid == first.new.id and rating == "negative" and notes == "ok"  # note kept (UNCHANGED)
    assert created == "2026-01-02 03:04:05" and updated == "2026-01-02 03:05:35"


def test_same_label_again_writes_nothing(db: Path) -> None:
    with open_store(db) as store:
        store.set_label(ES, "trace_001", "positive", note="x")
        steps = len(store.recent_steps())
        again = store.set_label(ES, "trace_001", "positive")
        assert again.step_id is None and not again.changed
        assert len(store.recent_steps()) == steps


def test_clear_deletes_and_undo_reinserts_exact_row(db: Path) -> None:
    original = row(db, ES, "trace_003")
    with open_store(db, clock=Clock()) as store:
        change = store.set_label(ES, "trace_003", None)
        assert change.new is None and change.old == FeedbackRow(*original)
        assert row(db, ES, "trace_003") is None
        assert store.set_label(ES, "trace_003", None).step_id is None  # clearing nothing is a no-op
        step = store.undo()
    assert step is not None and step.status == UNDONE
    assert row(db, ES, "trace_003") == original  # same id, created_at, updated_at


def test_notes(db: Path) -> None:
    with open_store(db) as store:
        with pytest.raises(NoLabelError):
            store.set_note(ES2, "tx_00002", "no label yet")
        store.set_label(ES2, "tx_00002", "neutral")
        change = store.set_note(ES2, "tx_00002", "line 1\nit's \"quoted\"")
        assert change.old.notes is None and change.new.notes == "line 1\nit's \"quoted\""
        assert store.peek_undo().kind == "note"
        store.set_note(ES2, "tx_00002", "")  # empty clears, like iofold's `notes || null`
        assert row(db, ES2, "tx_00002")[2] is None
        store.undo()
    assert row(db, ES2, "tx_00002")[1:3] == ("neutral", "line 1\nit's \"quoted\"")


def test_undo_redo_chain_and_new_change_clears_redo(db: Path) -> None:
    before = feedback_rows(db)
    clock = Clock()
    with open_store(db, clock=clock) as store:
        store.set_label(ES, "trace_001", "negative")  # relabel a seeded row
        clock.tick()
        store.set_label(ES2, "tx_00003", "positive")
        clock.tick()
        store.set_label(ES2, "tx_00003", "neutral", note="meh")
        after = feedback_rows(db)
        assert [store.undo() is not None for _ in range(4)] == [True, True, True, False]
        assert feedback_rows(db) == before
        assert [store.redo() is not None for _ in range(4)] == [True, True, True, False]
        assert feedback_rows(db) == after
        store.undo()
        store.undo()
        assert store.can_redo()
        store.set_label(ES2, "tx_00004", "negative")  # a new change clears the redo stack
        assert not store.can_redo() and store.redo() is None
        assert store.history.count(DISCARDED) == 2
        assert row(db, ES2, "tx_00003") is None and row(db, ES, "trace_001")[1] == "negative"


def test_bulk_is_one_step_and_undoes_at_once(db: Path) -> None:
    ids = [f"tx_{i:05d}" for i in range(1200)] + ["trace_001", "trace_003"]
    with open_store(db) as store:
        store.set_label(ES2, "tx_00007", "positive")  # already positive: not part of the bulk step
        before = feedback_rows(db)
        step = store.set_labels(ES2, ids + ids[:5], "positive")  # duplicates ignored; > one 500-id chunk
        assert step is not None and step.kind == "bulk" and len(step.changes) == 1201
        assert store.set_labels(ES2, ids, "positive") is None  # nothing left to change
        assert len(feedback_rows(db)) == len(before) + 1201
        assert store.peek_undo().id == step.id
        store.undo()
        assert feedback_rows(db) == before
        store.redo()
        cleared = store.set_labels(ES2, ids, None)
        assert len(cleared.changes) == 1202
    assert [r for r in feedback_rows(db) if r[1] == ES2] == []


def test_undo_and_redo_survive_a_restart(db: Path) -> None:
    with open_store(db) as store:
        store.set_label(ES2, "tx_00010", "positive")
        store.set_label(ES2, "tx_00011", "negative")
    with open_store(db) as store:
        assert store.undo().changes[0].trace_id == "tx_00011"
    assert row(db, ES2, "tx_00011") is None
    with open_store(db) as store:
        assert store.redo().changes[0].trace_id == "tx_00011"
        assert store.undo() and store.undo()
        assert store.undo() is None
    assert row(db, ES2, "tx_00010") is None and row(db, ES2, "tx_00011") is None


def test_undo_refuses_when_row_changed_elsewhere(db: Path) -> None:
    with open_store(db) as store:
        store.set_label(ES2, "tx_00020", "positive")
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE feedback SET rating = 'negative' WHERE trace_id = 'tx_00020'")
        conn.close()
        with pytest.raises(UndoConflictError, match="changed outside iofold-tui") as err:
            store.undo()
        assert err.value.conflicts == [(ES2, "tx_00020")]
        assert row(db, ES2, "tx_00020")[1] == "negative"  # untouched
        assert store.peek_undo().status == APPLIED
        store.undo(force=True)
    assert row(db, ES2, "tx_00020") is None


def test_read_only_raises_with_reason_and_reads_still_work(db: Path) -> None:
    before = feedback_rows(db)
    with open_store(db, read_only_reason="opened with --read-only") as store:
        assert store.read_only
        for write in (lambda: store.set_label(ES, "trace_001", "negative"),
                      lambda: store.set_labels(ES, ["trace_001"], None), store.undo, store.redo):
            with pytest.raises(ReadOnlyError, match="opened with --read-only"):
                write()
        assert store.get(ES, "trace_001").rating == "positive"
        assert store.changed_since_last_check() is False
    assert feedback_rows(db) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_file_is_read_only(db: Path) -> None:
    db.chmod(0o444)
    with open_store(db) as store, pytest.raises(ReadOnlyError, match="permissions"):
        store.set_label(ES, "trace_001", "negative")


def test_later_schema_is_read_only_with_reason(tmp_path: Path) -> None:
    db = tmp_path / "gen2.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE feedback (id TEXT PRIMARY KEY, trace_id TEXT, rating TEXT)")
    conn.close()
    with open_store(db) as store, pytest.raises(ReadOnlyError, match="eval_set_id"):
        store.set_label("x", "y", "positive")


def test_missing_trace_fails_cleanly_without_history(db: Path) -> None:
    with open_store(db) as store:
        with pytest.raises(LabelWriteError, match="does the trace"):
            store.set_label(ES, "no_such_trace", "positive")
        assert store.recent_steps() == [] and not store.can_undo()
        with pytest.raises(ValueError, match="rating must be"):
            store.set_label(ES, "trace_001", "good")  # type: ignore[arg-type]


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_label_waits_for_another_writer(db: Path, journal: str) -> None:
    sqlite3.connect(db).execute(f"PRAGMA journal_mode={journal}").fetchall()
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE eval_sets SET description = 'busy' WHERE id = ?", (ES,))
        held.set()
        release.wait(0.5)  # keep the write lock ~0.5 s, like a wrangler dev request
        conn.execute("COMMIT")
        conn.close()

    with open_store(db, busy_timeout_s=0.05, max_wait_s=10) as store:
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert held.wait(5)
        started = time.monotonic()
        change = store.set_label(ES2, "tx_00030", "positive")  # retries with backoff past the lock
        waited = time.monotonic() - started
        thread.join()
    assert change.step_id is not None and row(db, ES2, "tx_00030")[1] == "positive"
    assert waited >= 0.3


def test_lock_held_too_long_gives_clear_error(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        with open_store(db, busy_timeout_s=0.02, max_wait_s=0.2) as store:
            with pytest.raises(LabelWriteError, match=r"locked for over 0\.2 s"):
                store.set_label(ES2, "tx_00031", "positive")
            assert not store.can_undo()
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    with open_store(db) as store:  # nothing half-written: the history holds no step
        assert store.recent_steps() == []


def test_data_version_detects_other_writers_only(db: Path) -> None:
    with open_store(db) as store:
        assert store.changed_since_last_check() is False
        store.set_label(ES2, "tx_00040", "positive")
        assert store.changed_since_last_check() is False  # our own commit is not "underneath"
        other = sqlite3.connect(db)
        with other:
            other.execute("UPDATE feedback SET notes = 'x' WHERE trace_id = 'trace_002'")
        other.close()
        assert store.changed_since_last_check() is True
        assert store.changed_since_last_check() is False


def test_session_stats(db: Path) -> None:
    clock = Clock()
    with open_store(db, clock=clock) as store:
        empty = store.session_stats()
        assert empty.labels == 0 and empty.median_seconds is None
        for i, secs in enumerate([2.0, 9.0, 4.0]):
            clock.tick(600)
            store.set_label(ES2, f"tx_{i:05d}", "positive", seconds_spent=secs)
        store.set_labels(ES2, ["tx_00100", "tx_00101"], "negative")  # bulk is not review pace
        stats = store.session_stats()
    assert stats.labels == 3 and stats.median_seconds == 4.0
    assert stats.elapsed_s == 1800 and stats.labels_per_hour == pytest.approx(6.0)
