"""import-labels (issue 18): round trip export csv -> import into another copy -> export gives the same
labels; bad files reported per line with nothing applied; new / same / conflict; --prefer; one undoable
step; patches and other copies as the origin."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.cli import main
from iofold_tui.data.labels.importing import apply_import, plan_import
from iofold_tui.data.labels.label_file import decode_literal, read_label_file
from iofold_tui.data.labels.patch import export_changes, sql_literal
from iofold_tui.data.source.loader import open_source
from tests._labels_helpers import ES2, add_traces, feedback_rows
from tests.conftest import build_db

P, N, U = "positive", "negative", "neutral"


def copy_db(path: Path, n: int = 20) -> tuple[Path, list[str]]:
    build_db(path)
    return path, add_traces(path, n)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def labels(db: Path, es: str = ES2) -> dict[str, tuple[str, str | None]]:
    return {r[2]: (r[3], r[4] or None) for r in feedback_rows(db) if r[1] == es}


def export(db: Path, fmt: str = "csv") -> str:
    opened = open_source(db)
    store = open_store_for(opened)
    try:
        return export_changes(store, fmt=fmt, record=False)  # type: ignore[arg-type]
    finally:
        store.close()


def open_store_for(opened):
    from iofold_tui.data.labels.store import LabelStore

    return LabelStore(opened.db.path, history_path=opened.history_path)


def label_some(db: Path, ids: list[str]) -> None:
    opened = open_source(db)
    store = open_store_for(opened)
    try:
        for i, t in enumerate(ids[:6]):
            note = f'note {i}, "quoted"\nsecond\rline' if i % 3 else None
            store.set_label(ES2, t, P if i % 2 else N, note=note)
        store.set_labels(ES2, ids[6:10], U)
    finally:
        store.close()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "sql"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    a, ids = copy_db(tmp_path / "alice.sqlite")
    b, _ = copy_db(tmp_path / "bob.sqlite")
    label_some(a, ids)
    out = tmp_path / f"alice.{'sql' if fmt == 'sql' else fmt}"
    out.write_text(export(a, fmt))
    result = invoke("import-labels", str(b), str(out), "--apply")
    assert result.exit_code == 0, result.output
    assert labels(b) == labels(a)
    # bob's export of the imported labels says the same as alice's
    assert _records(export(b, "csv")) == _records(export(a, "csv"))
    again = invoke("import-labels", str(b), str(out), "--json")
    data = json.loads(again.output)
    assert (data["new"], data["same"], data["conflict"]) == (0, 10, 0)


def _records(text: str) -> list[tuple]:
    return sorted((r["eval_set_id"], r["trace_id"], r["action"], r["rating"], r["notes"])
                  for r in csv.DictReader(io.StringIO(text)))


def test_from_another_copy_and_undo(tmp_path: Path) -> None:
    a, ids = copy_db(tmp_path / "alice.sqlite")
    b, _ = copy_db(tmp_path / "bob.sqlite")
    label_some(a, ids)
    before = feedback_rows(b)
    result = invoke("import-labels", str(b), "--from", str(a), "--eval-set", "extra", "--apply")
    assert result.exit_code == 0, result.output
    assert labels(b) == labels(a)
    store = open_store_for(open_source(b))
    try:
        step = store.peek_undo()
        assert step is not None and step.kind == "import" and len(step.changes) == 10
        store.undo()
    finally:
        store.close()
    assert feedback_rows(b) == before  # one step undoes the whole import


def _write_csv(path: Path, rows: list[list[str]], header: str = "eval_set_id,trace_id,rating,notes") -> Path:
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def test_conflicts_and_prefer(tmp_path: Path) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    store = open_store_for(open_source(b))
    try:
        store.set_label(ES2, ids[0], P, note="mine")
        store.set_label(ES2, ids[1], N)
        store.set_label(ES2, ids[2], N)
    finally:
        store.close()
    theirs = _write_csv(tmp_path / "t.csv", [[ES2, ids[0], P, "theirs"], [ES2, ids[1], N, ""],
                                             [ES2, ids[2], P, ""], [ES2, ids[3], U, "x"]])
    plan = plan_import(open_source(b, read_only=True), theirs)
    assert [i.status for i in plan.items] == ["conflict", "same", "conflict", "new"]
    opened = open_source(b)
    store = open_store_for(opened)
    try:
        result = apply_import(store, plan)  # no rule: the conflicts stay
        assert (result.new, result.theirs, len(result.conflicts_left)) == (1, 0, 2)
        assert labels(b)[ids[0]] == (P, "mine") and labels(b)[ids[3]] == (U, "x")
        plan = plan_import(opened, theirs)
        result = apply_import(store, plan, "mine")
        assert result.written == 0 and result.kept_mine == 2
        result = apply_import(store, plan_import(opened, theirs), "theirs")
        assert result.theirs == 2 and not result.conflicts_left
    finally:
        store.close()
    assert labels(b)[ids[0]] == (P, "theirs") and labels(b)[ids[2]] == (P, None)


def test_label_changed_after_preview_is_left_out(tmp_path: Path) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    theirs = _write_csv(tmp_path / "t.csv", [[ES2, ids[0], P, ""], [ES2, ids[1], P, ""]])
    opened = open_source(b)
    plan = plan_import(opened, theirs)
    store = open_store_for(opened)
    try:
        store.set_label(ES2, ids[0], N)  # a colleague's key press between preview and apply
        result = apply_import(store, plan)
    finally:
        store.close()
    assert result.written == 1 and result.changed_meanwhile == 1
    assert labels(b)[ids[0]] == (N, None)


@pytest.mark.parametrize(("content", "line", "needle"), [
    ("trace,rating\nx,positive\n", 1, "missing column"),
    ("eval_set_id,trace_id,rating,colour\n", 1, "unknown column"),
    ("eval_set_id,trace_id,rating\n{es},{t0},great\n", 2, "invalid rating"),
    ("eval_set_id,trace_id,rating\n{es},{t0},positive\n{es},{t0},negative\n", 3, "duplicate row"),
    ("eval_set_id,trace_id,rating\nnosuchset,{t0},positive\n", 2, "eval set nosuchset is not in"),
    ("eval_set_id,trace_id,rating\n{es},nosuchtrace,positive\n", 2, "trace nosuchtrace is not in"),
    ("eval_set_id,trace_id,rating\n{es},{t0},positive,extra\n", 2, "fields"),
    ('{{"eval_set_id": "{es}", "trace_id": "{t0}", "rating": "positive"}}\n[1]\n', 2, "not a JSON object"),
    ('{{"eval_set_id": "{es}", "trace_id": "{t0}"}}\n', 1, "missing key"),
])
def test_bad_files_reported_per_line_nothing_applied(tmp_path: Path, content: str, line: int,
                                                     needle: str) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    good = f"{ES2},{ids[5]},positive\n"
    body = content.format(es=ES2, t0=ids[0])
    suffix = ".jsonl" if body.startswith("{") else ".csv"
    if suffix == ".csv" and body.count("\n") > 1:
        body += good  # a valid row too: it must not be applied either
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(body)
    before = feedback_rows(b)
    result = invoke("import-labels", str(b), str(bad), "--apply")
    assert result.exit_code == 2
    assert f"{bad}:{line}: " in result.stderr if line else str(bad) in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert feedback_rows(b) == before


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    bad = _write_csv(tmp_path / "bad.csv", [[ES2, ids[0], "great", ""], [ES2, ids[1], P, ""],
                                           [ES2, "zz", P, ""], [ES2, ids[1], N, ""]])
    parsed = read_label_file(bad)
    assert [(e.line, e.message.split(" ")[0]) for e in parsed.errors] == [(2, "invalid"), (5, "duplicate")]
    plan = plan_import(open_source(b, read_only=True), bad)
    assert sorted(e.line for e in plan.errors) == [2, 4, 5]


@pytest.mark.parametrize("value", ["plain", "it's", "a\nb", "tab\there", "", "x || y", "char(10)", "é ☃ 𝄞",
                                   "'"])
def test_patch_literals_decode_exactly(value: str) -> None:
    assert decode_literal(sql_literal(value)) == value


def test_usage_errors(tmp_path: Path) -> None:
    b, _ = copy_db(tmp_path / "bob.sqlite")
    for args in ([str(b)], [str(b), "x.csv", "--prefer", "mine"], [str(b), str(tmp_path / "nope.csv")]):
        result = invoke("import-labels", *args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_preview_writes_nothing(tmp_path: Path) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    theirs = _write_csv(tmp_path / "t.csv", [[ES2, ids[0], P, ""]])
    before = feedback_rows(b)
    result = invoke("import-labels", str(b), str(theirs))
    assert result.exit_code == 0 and "1 new" in result.output
    assert feedback_rows(b) == before
    conn = sqlite3.connect(b)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '%imp%'").fetchone()[0] == 0
    conn.close()


# ---------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(_text)
def test_patch_literal_round_trip_property(value: str) -> None:
    assert decode_literal(sql_literal(value)) == value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
                          st.sampled_from([P, N, U, None]), st.one_of(st.none(), _text)),
                min_size=1, max_size=8, unique_by=lambda r: r[0]))
def test_every_export_format_reads_back_exactly(tmp_path: Path, rows: list) -> None:
    """What export-labels writes (csv, jsonl, sql patch), label_file reads back: same keys, ratings and notes
    (a CSV has no way to tell an empty note from none: both read as none)."""
    from iofold_tui.data.labels.history import FeedbackRow
    from iofold_tui.data.labels.patch import NetChange, _record, statements

    nets = [NetChange(ES2, tid, None if rating is None else FeedbackRow(f"fb_{i}", rating, notes, "t", "t"),
                      f"fb_{i}", "2026-01-01", (None, ("x", "positive", None, None)))
            for i, (tid, rating, notes) in enumerate(rows)]
    expected = sorted((n.trace_id, n.final.rating if n.final else None,
                       (n.final.notes or None) if n.final else None) for n in nets)
    for fmt in ("csv", "jsonl", "patch"):
        path = tmp_path / f"x.{fmt}"
        if fmt == "csv":
            buf = io.StringIO()
            # the line terminator patch.py writes
            writer = csv.DictWriter(buf, fieldnames=list(_record(nets[0])), lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(_record(n) for n in nets)
            path.write_text(buf.getvalue(), encoding="utf-8", newline="")
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(_record(n), ensure_ascii=False) + "\n" for n in nets),
                            encoding="utf-8")
        else:
            text = "".join(s + "\n" for n in nets for s in statements(n))
            path.write_text("-- iofold-tui label patch\n" + text, encoding="utf-8")
        parsed = read_label_file(path, fmt)
        assert parsed.ok, (fmt, parsed.errors)
        got = sorted((r.trace_id, r.rating, r.notes or None) for r in parsed.rows)
        assert got == expected, fmt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    for suffix in (".csv", ".jsonl", ".sql"):
        path = tmp_path / f"f{suffix}"
        path.write_bytes(data)
        parsed = read_label_file(path)
        assert parsed.ok or all(e.message for e in parsed.errors)


def test_a_d1_export_file_is_read_as_another_copy(tmp_path: Path) -> None:
    """FILE may be a `wrangler d1 export` .sql of another copy (not a label patch): read through its cached
    working copy, the .sql itself untouched."""
    a, ids = copy_db(tmp_path / "alice.sqlite")
    b, _ = copy_db(tmp_path / "bob.sqlite")
    label_some(a, ids)
    dump = tmp_path / "alice.sql"
    conn = sqlite3.connect(a)
    dump.write_text("PRAGMA defer_foreign_keys=TRUE;\n" + "\n".join(
        line for line in conn.iterdump() if line not in ("BEGIN TRANSACTION;", "COMMIT;")) + "\n")
    conn.close()
    before = dump.read_bytes()
    result = invoke("import-labels", str(b), str(dump), "--eval-set", ES2, "--apply")
    assert result.exit_code == 0, result.output
    assert labels(b) == labels(a)
    assert dump.read_bytes() == before


def test_their_deletion_is_a_conflict_until_preferred(tmp_path: Path) -> None:
    b, ids = copy_db(tmp_path / "bob.sqlite")
    store = open_store_for(open_source(b))
    try:
        store.set_label(ES2, ids[0], P, note="keep?")
    finally:
        store.close()
    theirs = tmp_path / "t.csv"
    theirs.write_text(f"eval_set_id,trace_id,action,rating\n{ES2},{ids[0]},delete,\n{ES2},{ids[1]},delete,\n")
    plan = plan_import(open_source(b, read_only=True), theirs)
    assert [i.status for i in plan.items] == ["conflict", "same"]
    result = invoke("import-labels", str(b), str(theirs), "--apply")
    assert result.exit_code == 0 and labels(b)[ids[0]] == (P, "keep?")
    result = invoke("import-labels", str(b), str(theirs), "--apply", "--prefer", "theirs")
    assert result.exit_code == 0, result.output
    assert ids[0] not in labels(b)
    from iofold_tui.data.labels.conflict_queue import load_conflicts

    assert load_conflicts(open_source(b).db.path) == []  # resolved by the rule: off the queue
