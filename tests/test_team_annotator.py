"""Issue 18, who labelled what: every label iofold-tui writes records its annotator in the label history
(a nullable column the sidecar adds to itself), export-labels carries it, imports record whose labels they
are, agreement --history compares the annotators of one database, and the review header names the
annotator."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from iofold_tui.cli import main
from iofold_tui.data.labels.history import LabelHistory
from iofold_tui.data.labels.patch import export_changes
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.panes.review_widgets import progress_text
from tests._labels_helpers import ES2, add_traces
from tests.conftest import build_db

P, N = "positive", "negative"


def _store(db: Path) -> LabelStore:
    opened = open_source(db)
    return LabelStore(opened.db.path, history_path=opened.history_path)


def _annotators(db: Path) -> list[tuple[str, str | None]]:
    history = LabelHistory(open_source(db).history_path)
    try:
        return [(r[0], r[1]) for r in history.conn.execute("SELECT kind, annotator FROM steps ORDER BY id")]
    finally:
        history.close()


def test_every_label_records_its_annotator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = build_db(tmp_path / "a.sqlite")
    ids = add_traces(db, 4)
    monkeypatch.setenv("IOFOLD_TUI_ANNOTATOR", "alice")
    store = _store(db)
    try:
        assert store.annotator == "alice"
        store.set_label(ES2, ids[0], P)
        store.set_labels(ES2, ids[1:3], N)
        store.queue_label(ES2, ids[3], P)  # the write-ahead path (label keys) records it too
        while store.apply_next().outcome != "empty":
            pass
        assert "alice" in str(progress_text({"positive": 1}, 5, store.session_stats(), None))
    finally:
        store.close()
    assert _annotators(db) == [("label", "alice"), ("bulk", "alice"), ("label", "alice")]
    store = _store(db)
    try:
        text = export_changes(store, fmt="csv", record=False)
        jsonl = export_changes(store, fmt="jsonl", record=False)
    finally:
        store.close()
    assert {r["annotator"] for r in csv.DictReader(io.StringIO(text))} == {"alice"}
    assert {json.loads(line)["annotator"] for line in jsonl.splitlines()} == {"alice"}


def test_an_older_history_gains_the_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = build_db(tmp_path / "a.sqlite")
    ids = add_traces(db, 2)
    history_path = open_source(db).history_path
    store = _store(db)
    try:
        store.set_label(ES2, ids[0], P)
    finally:
        store.close()
    # A sidecar made before issue 18: no annotator column.
    conn = sqlite3.connect(history_path)
    conn.execute("ALTER TABLE steps DROP COLUMN annotator")
    conn.commit()
    conn.close()
    monkeypatch.setenv("IOFOLD_TUI_ANNOTATOR", "bob")
    store = _store(db)
    try:
        store.set_label(ES2, ids[1], N)
        assert store.undo() is not None and store.redo() is not None  # the old step and the new both travel
    finally:
        store.close()
    assert _annotators(db) == [("label", None), ("label", "bob")]


def test_import_records_whose_labels_they_are_and_history_agreement(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = build_db(tmp_path / "a.sqlite")
    ids = add_traces(db, 6)
    monkeypatch.setenv("IOFOLD_TUI_ANNOTATOR", "alice")
    store = _store(db)
    try:
        for t in ids[:4]:
            store.set_label(ES2, t, P)
    finally:
        store.close()
    theirs = tmp_path / "bob.csv"
    theirs.write_text("eval_set_id,trace_id,rating,annotator\n" + "".join(
        f"{ES2},{t},{N if i == 0 else P},bob\n" for i, t in enumerate(ids[:5])))
    result = CliRunner().invoke(main, ["import-labels", str(db), str(theirs), "--apply", "--prefer",
                                       "theirs"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _annotators(db)[-1] == ("import", "bob")
    result = CliRunner().invoke(main, ["agreement", str(db), "--history", "--eval-set", ES2, "--json",
                                       "--no-versions"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [a["name"] for a in data["annotators"]]
    assert names == ["a.sqlite", "alice", "bob"]
    pair = next(p for p in data["eval_sets"][0]["pairs"] if (p["a"], p["b"]) == ("alice", "bob"))
    # The history knows the labels each person wrote: alice positive on ids[0..3]; bob's import wrote only
    # what changed (negative on ids[0], his new ids[4]); his "same" rows changed nothing and are not his.
    assert (pair["overlap"], pair["agree"]) == (1, 0)


def test_annotator_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOFOLD_TUI_ANNOTATOR", raising=False)
    result = CliRunner().invoke(main, ["annotator", "Dana"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.strip() == "Dana (from settings)"
    result = CliRunner().invoke(main, ["annotator", "   "], catch_exceptions=False)
    assert result.exit_code == 2
