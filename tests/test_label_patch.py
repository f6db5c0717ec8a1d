"""Label patch export: the SQL applied to the original yields identical feedback rows, twice = once."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _labels_helpers import ES, ES2, add_traces, feedback_rows, open_store

from iofold_tui.data.labels.patch import export_changes, sql_literal, write_changes
from iofold_tui.data.labels.store import LabelStore

TRICKY = "first line\nit's a \"quote\"; -- not a comment\r\n\ttab \\n literal"


@pytest.fixture
def pair(seed_db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(database to label, untouched copy of the original)."""
    add_traces(seed_db, 20)
    original = tmp_path / "original.sqlite"
    shutil.copy(seed_db, original)
    return seed_db, original


def label_session(store: LabelStore) -> None:
    store.set_label(ES2, "tx_00000", "positive", note=TRICKY)  # insert with a hostile note
    store.set_label(ES, "trace_001", "negative")  # relabel a seeded row
    store.set_label(ES, "trace_003", None)  # clear a seeded row
    store.set_label(ES, "trace_004", None)
    store.set_label(ES, "trace_004", "negative", note="again")  # cleared then labelled: new id
    store.set_label(ES2, "tx_00001", "neutral")
    store.undo()  # tx_00001 net nothing
    store.set_labels(ES2, [f"tx_{i:05d}" for i in range(2, 12)], "negative")


def apply(sql: str, db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(sql)
    conn.commit()
    conn.close()


def test_sql_patch_reproduces_rows_and_is_idempotent(pair: tuple[Path, Path]) -> None:
    db, original = pair
    with open_store(db) as store:
        label_session(store)
        sql = export_changes(store)
    assert "BEGIN" not in sql.upper().replace("BEGIN/COMMIT", "") and "COMMIT;" not in sql.upper()
    statements = [line for line in sql.splitlines() if not line.startswith("--") and "eval_sets" not in line]
    # 14 keys (tx_00001 left out), one conditional statement each, then the conflict report.
    assert len(statements) == 15 and statements[-1].startswith("SELECT 'conflict")
    assert sum(s.startswith("DELETE") for s in statements) == 1
    assert "-- changes: 14 (13 upserts, 1 deletions)" in sql
    assert f"-- source: {db.resolve()}" in sql
    apply(sql, original)
    assert feedback_rows(original) == feedback_rows(db)
    apply(sql, original)
    assert feedback_rows(original) == feedback_rows(db)


def test_patch_creates_an_eval_set_made_in_the_app(pair: tuple[Path, Path]) -> None:
    """A set created in iofold-tui is not in D1: the patch must bring it, or the labels' foreign key fails."""
    db, original = pair
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO eval_sets (id, workspace_id, name, minimum_examples) "
                 "SELECT 'set_new', workspace_id, 'made-in-tui', 3 FROM eval_sets LIMIT 1")
    conn.commit()
    conn.close()
    with open_store(db) as store:
        store.set_label("set_new", "trace_001", "positive")
        sql = export_changes(store)
    assert sql.count("INSERT INTO eval_sets") == 1
    apply(sql, original)  # foreign keys on: fails if the eval set were missing
    apply(sql, original)
    assert feedback_rows(original) == feedback_rows(db)


def test_undone_session_exports_nothing(pair: tuple[Path, Path]) -> None:
    db, _ = pair
    with open_store(db) as store:
        store.set_label(ES, "trace_002", "neutral")
        store.set_labels(ES2, ["tx_00000", "tx_00001"], "positive")
        store.undo()
        store.undo()
        empty = export_changes(store)
        assert "-- changes: 0 " in empty and "INSERT" not in empty and "DELETE" not in empty
        assert [s for s in empty.splitlines() if not s.startswith("--")] == [
            "SELECT 0 WHERE 0; -- no label changes: a no-op so the file still applies"]
        apply(empty, db)  # still valid SQL
        assert export_changes(store, fmt="jsonl") == ""


def test_since_includes_later_undo_of_an_earlier_label(pair: tuple[Path, Path]) -> None:
    db, original = pair
    with open_store(db) as store:
        store.set_label(ES2, "tx_00000", "positive")
        store.set_label(ES2, "tx_00001", "positive")
        first_patch = export_changes(store)
        cut = datetime.now(UTC)  # history stamps have microseconds; the export above took longer than 1 µs
        store.undo()  # tx_00001 removed after the cut
        store.set_label(ES2, "tx_00005", "negative")
        later = export_changes(store, since=cut, fmt="jsonl")
        keys = [(r["trace_id"], r["action"]) for r in map(json.loads, later.splitlines())]
        assert keys == [("tx_00001", "delete"), ("tx_00005", "upsert")]
        apply(first_patch, original)
        apply(export_changes(store, since=cut), original)
    assert feedback_rows(original) == feedback_rows(db)


def test_csv_and_jsonl_parse_back(pair: tuple[Path, Path]) -> None:
    db, _ = pair
    with open_store(db) as store:
        label_session(store)
        records = [json.loads(line) for line in export_changes(store, fmt="jsonl").splitlines()]
        buf = io.StringIO()
        summary = write_changes(store, buf, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert summary.count == len(rows) == len(records) == 14
    assert list(rows[0]) == [
        "eval_set_id",
        "trace_id",
        "action",
        "rating",
        "notes",
        "changed_at",
        "feedback_id",
        "annotator",
    ]
    by_trace = {r["trace_id"]: r for r in records}
    assert by_trace["tx_00000"]["notes"] == TRICKY
    assert {r["trace_id"]: r["notes"] for r in rows}["tx_00000"] == TRICKY
    assert by_trace["trace_003"] == {**by_trace["trace_003"], "action": "delete", "rating": None,
                                     "feedback_id": "fb_003"}
    live = dict(((es, t), fid) for fid, es, t, *_ in feedback_rows(db))
    assert all(
        live[(r["eval_set_id"], r["trace_id"])] == r["feedback_id"]
        for r in records
        if r["action"] == "upsert"
    )


def test_export_from_history_file_alone(pair: tuple[Path, Path]) -> None:
    db, _ = pair
    with open_store(db) as store:
        store.set_label(ES2, "tx_00000", "positive")
        history = store.history.path
    sql = export_changes(history)
    assert f"-- source: {db.resolve()}" in sql and "'tx_00000'" in sql
    with pytest.raises(ValueError, match="format"):
        export_changes(history, fmt="xml")  # type: ignore[arg-type]


def test_sql_literal() -> None:
    assert sql_literal(None) == "NULL"
    assert sql_literal("") == "''"
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("a\nb\r") == "'a' || char(10) || 'b' || char(13)"
    assert sql_literal("\x00x") == "char(0) || 'x'"
    conn = sqlite3.connect(":memory:")
    for text in (TRICKY, "\n\n", "'", "\x1b[31mred\x1b[0m", "emoji 🎉"):
        assert conn.execute(f"SELECT {sql_literal(text)}").fetchone()[0] == text


def test_header_cannot_be_broken_by_a_path(tmp_path: Path, seed_db: Path) -> None:
    odd = tmp_path / "we\nird"
    odd.mkdir()
    db = odd / "x.sqlite"
    shutil.copy(seed_db, db)
    with open_store(db) as store:
        store.set_label(ES, "trace_002", "neutral")
        sql = export_changes(store)
    assert all(line.startswith(("--", "INSERT", "UPDATE", "DELETE", "SELECT")) for line in sql.splitlines())
