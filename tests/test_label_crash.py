"""kill -9 a labelling process at any moment: every label whose call returned is in the database, and
the history agrees with the database (undo still works)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _labels_helpers import ES2, add_traces, open_store

from iofold_tui.data.labels.history import APPLIED, UNDONE, LabelHistory
from iofold_tui.data.labels.patch import net_changes

REPO = Path(__file__).resolve().parent.parent
RATINGS = ("positive", "negative", "neutral")

# Labels traces in a loop and prints each id once set_label returned. A "die_*" mode makes the process
# exit hard (os._exit, no cleanup, like SIGKILL) at one precise point of the write protocol.
SCRIPT = r"""
import os, sys
from pathlib import Path
from iofold_tui.data.labels import store as labels
from iofold_tui.data.labels.history import LabelHistory

db, history, mode, start, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ratings = ("positive", "negative", "neutral")
store = labels.LabelStore(Path(db), history_path=Path(history))
if mode.startswith("die_"):
    store.set_label("set_extra", f"tx_{start:05d}", "positive")  # one label that completes normally
    print(f"tx_{start:05d}", flush=True)
    point, action = mode[4:].rsplit("_", 1)
    if point == "after_commit":  # the feedback COMMIT succeeded; the history never hears of it
        real = LabelHistory.set_status
        def set_status(self, step_id, status, **kwargs):
            if status in ("applied", "undone"):
                os._exit(9)
            real(self, step_id, status, **kwargs)
        LabelHistory.set_status = set_status
    else:  # history written (pending/undoing), feedback transaction never commits
        real_apply = labels.apply_writes
        def apply_then_die(conn, writes):
            real_apply(conn, writes)
            os._exit(9)  # the rows are written in the open transaction; COMMIT never runs
        labels.apply_writes = apply_then_die
    if action == "label":
        store.set_label("set_extra", f"tx_{start + 1:05d}", "negative")
    else:
        store.undo()
    print("survived", flush=True)
    sys.exit(0)
for i in range(start, start + count):
    tid = f"tx_{i:05d}"
    store.set_label("set_extra", tid, ratings[i % 3], seconds_spent=0.1)
    print(tid, flush=True)
"""


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_traces(seed_db, 3000)
    return seed_db


def history_path(db: Path) -> Path:
    return db.with_name(db.name + ".labels.sqlite")


def run(db: Path, mode: str, start: int, count: int = 1000, kill_after: int | None = None) -> list[str]:
    """Run the script; with ``kill_after``, SIGKILL it once that many labels were reported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db), str(history_path(db)), mode, str(start),
                             str(count)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    printed: list[str] = []
    for line in proc.stdout:
        printed.append(line.strip())
        if kill_after is not None and len(printed) == kill_after:
            proc.send_signal(signal.SIGKILL)
            break
    rest, err = proc.communicate(timeout=60)
    printed.extend(rest.split())  # lines already in the pipe were reported, so they count too
    if kill_after is not None:
        assert proc.returncode == -signal.SIGKILL, err
    elif mode.startswith("die_"):  # died at its point, not of an error (a patched name gone, a new argument)
        assert proc.returncode == 9, err
    return printed


def db_ratings(db: Path) -> dict[str, str]:
    with open_store(db, read_only_reason="test reader") as store:
        rows = store._conn.execute("SELECT trace_id, rating FROM feedback WHERE eval_set_id = ?", (ES2,))
        return {t: r for t, r in rows}


def assert_history_matches_db(db: Path) -> None:
    """After reconciliation: nothing in flight, and the history's net state equals every feedback row."""
    with open_store(db) as store:
        assert store.history.in_flight() == []
        live = {(es, t): row for (es, t), row in (
            ((r[0], r[1]), r[2:]) for r in store._conn.execute(
                "SELECT eval_set_id, trace_id, id, rating, notes, created_at, updated_at FROM feedback"))}
    history = LabelHistory(history_path(db))
    try:
        for net in net_changes(history):
            here = live.get((net.eval_set_id, net.trace_id))
            final = net.final
            assert here == (None if final is None else (final.id, final.rating, final.notes, final.created_at,
                                                        final.updated_at))
    finally:
        history.close()


@pytest.mark.parametrize("kill_points", [(3, 41, 157)])
def test_sigkill_mid_session_loses_nothing(db: Path, kill_points: tuple[int, ...]) -> None:
    for round_no, kill_after in enumerate(kill_points):
        start = round_no * 1000
        printed = run(db, "loop", start, kill_after=kill_after)
        assert len(printed) >= kill_after
        ratings = db_ratings(db)
        for tid in printed:
            assert ratings.get(tid) == RATINGS[int(tid[3:]) % 3], tid
        in_round = [t for t in ratings if start <= int(t[3:]) < start + 1000]
        assert len(in_round) - len(printed) in (0, 1)  # at most the label in flight got committed too
        assert_history_matches_db(db)
    with open_store(db) as store:  # undo still works after all the kills
        last = max(t for t in db_ratings(db))
        step = store.undo()
        assert step is not None and step.changes[0].trace_id == last
    assert last not in db_ratings(db)


def test_crash_after_commit_keeps_the_label(db: Path) -> None:
    assert run(db, "die_after_commit_label", 10, kill_after=None) == ["tx_00010"]
    assert db_ratings(db) == {"tx_00010": "positive", "tx_00011": "negative"}
    assert_history_matches_db(db)
    with open_store(db) as store:
        assert store.undo().changes[0].trace_id == "tx_00011"  # reconciled as applied


def test_crash_before_commit_drops_the_step(db: Path) -> None:
    assert run(db, "die_before_commit_label", 10) == ["tx_00010"]
    assert db_ratings(db) == {"tx_00010": "positive"}
    assert_history_matches_db(db)
    with open_store(db) as store:
        assert len(store.recent_steps()) == 1
        assert store.undo().changes[0].trace_id == "tx_00010"


def test_crash_during_undo_either_way(db: Path) -> None:
    run(db, "die_after_commit_undo", 20)
    assert db_ratings(db) == {}
    with open_store(db) as store:
        assert store.peek_redo().status == UNDONE
        store.redo()
    assert db_ratings(db) == {"tx_00020": "positive"}
    run(db, "die_before_commit_undo", 30)  # labels tx_00030, then dies inside its undo
    assert db_ratings(db) == {"tx_00020": "positive", "tx_00030": "positive"}
    with open_store(db) as store:
        assert store.peek_undo().status == APPLIED
        assert store.undo().changes[0].trace_id == "tx_00030"
    assert_history_matches_db(db)
