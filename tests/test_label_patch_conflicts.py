"""Conflict-safe label patches: a colleague's change made in D1 between our export and the apply survives.

Property (hypothesis): for random local label histories (labels, notes, clears, bulk, undo/redo) and
random concurrent edits on the "remote" copy (relabel, re-note, delete, delete + label again) made after
the history's own earlier patches were applied ("push"), applying
the patch never changes a row the remote changed, lands our final row everywhere else, reports exactly
the skipped rows in its closing SELECT (and ``check_against`` predicts the same), and twice = once.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from _labels_helpers import ES, ES2, add_traces, open_store
from conftest import build_db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.data.labels.patch import check_against, export_changes, load_net_changes

TRACES = ("trace_001", "trace_002", "tx_00000", "tx_00001")
SETS = (ES, ES2)
KEYS = [(es, t) for es in SETS for t in TRACES]
RATINGS = ("positive", "negative", "neutral")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 'export': seed labels on trace_001/002 in ES, plus one ES2 label on tx_00000."""
    db = build_db(tmp_path_factory.mktemp("tpl") / "export.sqlite")
    add_traces(db, 2)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) "
                     "VALUES ('fb_x0', ?, 'tx_00000', 'neutral', 'base note')", (ES2,))
    conn.close()
    return db


def rows(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple]:
    return {(r[1], r[2]): r for r in conn.execute(
        "SELECT id, eval_set_id, trace_id, rating, notes, created_at, updated_at FROM feedback")}


def state(row: tuple | None) -> tuple | None:
    """What the patch matches a row on: id, rating, notes, updated_at."""
    return None if row is None else (row[0], row[3], row[4], row[6])


def value(row: tuple | None) -> tuple | None:
    """The label itself: id, rating, notes."""
    return None if row is None else (row[0], row[3], row[4])


def split(patch: str) -> tuple[str, list[str]]:
    lines = patch.splitlines()
    selects = [x for x in lines if x.startswith("SELECT 'conflict")]
    return "\n".join(x for x in lines if not x.startswith("SELECT 'conflict")), selects


def apply(conn: sqlite3.Connection, patch: str) -> set[tuple[str, str]]:
    """Run the patch as D1 would and return the keys its closing SELECT lists."""
    body, selects = split(patch)
    conn.executescript(body)
    return {(r[1], r[2]) for s in selects for r in conn.execute(s)}


key_st = st.sampled_from(KEYS)
note_st = st.sampled_from([None, "n1", "line\nbreak 'q'"])
op_st = st.one_of(
    st.tuples(st.just("label"), key_st, st.sampled_from((*RATINGS, None)), note_st),
    st.tuples(st.just("note"), key_st, note_st),
    st.tuples(st.just("bulk"), st.sampled_from(SETS), st.lists(st.sampled_from(TRACES), max_size=3),
              st.sampled_from((*RATINGS, None))),
    st.tuples(st.just("undo")), st.tuples(st.just("redo")),
    st.tuples(st.just("push")),  # export a full patch and apply it to D1 now (before the colleague's edits)
)
edit_st = st.one_of(
    st.tuples(st.just("relabel"), st.sampled_from(RATINGS)),
    st.tuples(st.just("renote"), note_st),
    st.tuples(st.just("delete")),
    st.tuples(st.just("new"), st.sampled_from(RATINGS)),  # deleted, then labelled again: a new id
)


def run_ops(store, ops, push=lambda: None) -> None:
    from iofold_tui.data.labels.store_types import NoLabelError

    for op in ops:
        if op[0] == "label":
            _, (es, t), rating, note = op
            store.set_label(es, t, rating, note=note)
        elif op[0] == "note":
            _, (es, t), note = op
            with contextlib.suppress(NoLabelError):
                store.set_note(es, t, note)
        elif op[0] == "bulk":
            store.set_labels(op[1], op[2], op[3])
        elif op[0] == "undo":
            store.undo()
        elif op[0] == "push":
            push()
        else:
            store.redo()


def colleague(conn: sqlite3.Connection, edits: dict) -> None:
    """Edits as iofold makes them: every change stamps updated_at (a raw UPDATE that put back an earlier row
    exactly, timestamp included, could not be told from that row)."""
    for (es, t), edit in edits.items():
        if edit[0] == "relabel":
            conn.execute(
                "UPDATE feedback SET rating = ?, updated_at = 'later' WHERE eval_set_id = ? AND trace_id = ?",
                (edit[1], es, t),
            )
        elif edit[0] == "renote":
            conn.execute(
                "UPDATE feedback SET notes = ?, updated_at = 'later' WHERE eval_set_id = ? AND trace_id = ?",
                (edit[1], es, t),
            )
        elif edit[0] == "delete":
            conn.execute("DELETE FROM feedback WHERE eval_set_id = ? AND trace_id = ?", (es, t))
        else:
            conn.execute("DELETE FROM feedback WHERE eval_set_id = ? AND trace_id = ?", (es, t))
            conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, ?, ?, ?)",
                         (f"fb_colleague_{es}_{t}", es, t, edit[1]))
    conn.commit()


def pushed(remote: sqlite3.Connection, patch: str) -> None:
    assert apply(remote, patch) == set()  # nobody else wrote in between: no conflict


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_st, max_size=12), edits=st.dictionaries(key_st, edit_st, max_size=4))
def test_patch_never_overwrites_a_concurrent_change(template: Path, ops: list, edits: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "local.sqlite"
        shutil.copy(template, local)
        remote = sqlite3.connect(":memory:")
        with sqlite3.connect(template) as src:
            src.backup(remote)
        remote.execute("PRAGMA foreign_keys=ON")
        exported = rows(remote)
        with open_store(local) as store:
            run_ops(store, ops, push=lambda: pushed(remote, export_changes(store)))
            base = rows(remote)  # D1 as this copy last left it: the export plus what earlier patches wrote
            patch = export_changes(store)
            net = load_net_changes(store)
        final = rows(sqlite3.connect(local))

        colleague(remote, edits)
        before = rows(remote)
        predicted = {(i.change.eval_set_id, i.change.trace_id) for i in check_against(net, remote).conflicts}
        reported = apply(remote, patch)
        after = rows(remote)
        changed_there = {k for k in KEYS if state(before.get(k)) != state(base.get(k))}
        ours = {(n.eval_set_id, n.trace_id) for n in net}
        # "Insert only if absent": the export had no row, a push inserted ours, the colleague deleted it.
        # D1 cannot tell that from "the push was never applied": the label is inserted (documented).
        reinserted = {k for k in ours & changed_there if exported.get(k) is None and before.get(k) is None
                      and final.get(k) is not None}
        for key in KEYS:
            if key in changed_there - reinserted:
                assert after.get(key) == before.get(key), f"{key}: the colleague's row was overwritten"
            elif key in ours and value(final.get(key)) == value(before.get(key)):
                # D1 already holds our label (e.g. relabelled there and back here): nothing to write.
                assert after.get(key) == before.get(key), f"{key}: rewritten although D1 holds our label"
            elif key in ours:
                assert after.get(key) == final.get(key), f"{key}: our label did not land"
            else:
                assert after.get(key) == before.get(key)
        expected = {
            k for k in ours & (changed_there - reinserted) if value(before.get(k)) != value(final.get(k))
        }
        assert reported == predicted == expected
        assert apply(remote, patch) == reported  # twice = once, and the report is stable
        assert rows(remote) == after
        remote.close()


def test_a_second_patch_may_replace_what_the_first_wrote(template: Path, tmp_path: Path) -> None:
    """export → label → patch 1 applied → relabel → a full patch 2: D1 holds patch 1's row, which is ours."""
    local = tmp_path / "local.sqlite"
    shutil.copy(template, local)
    remote = sqlite3.connect(":memory:")
    with sqlite3.connect(template) as src:
        src.backup(remote)
    with open_store(local) as store:
        store.set_label(ES2, "tx_00001", "positive")
        store.set_label(ES, "trace_001", None)
        assert apply(remote, export_changes(store)) == set()
        store.set_label(ES2, "tx_00001", "negative", note="second thoughts")
        store.undo()
        store.undo()  # trace_001 back as in the export: net nil, but patch 1 deleted it in D1
        store.set_label(ES2, "tx_00001", "neutral")
        assert apply(remote, export_changes(store)) == set()
    assert state(rows(remote)[(ES2, "tx_00001")])[1] == "neutral"
    assert rows(remote)[(ES, "trace_001")] == rows(sqlite3.connect(template))[(ES, "trace_001")]  # restored
    remote.close()


def test_conflict_listed_with_both_values(template: Path, tmp_path: Path) -> None:
    from iofold_tui.data.labels.patch import describe_conflict

    local = tmp_path / "local.sqlite"
    shutil.copy(template, local)
    remote = sqlite3.connect(":memory:")
    with sqlite3.connect(template) as src:
        src.backup(remote)
    with open_store(local) as store:
        store.set_label(ES2, "tx_00000", "positive")
        net = load_net_changes(store)
    remote.execute("UPDATE feedback SET rating = 'negative' WHERE id = 'fb_x0'")
    report = check_against(net, remote)
    assert [i.verdict for i in report.items] == ["conflict"]
    line = describe_conflict(report.items[0])
    assert "positive" in line and "negative" in line and "tx_00000" in line
