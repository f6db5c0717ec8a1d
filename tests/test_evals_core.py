"""Headless core of the evals pane: version chains, parsing of stored JSON, code checks, diffs, exports."""

from __future__ import annotations

import difflib
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from iofold_tui.data.evals import code_text, eval_parsing
from iofold_tui.data.evals import versions as core
from iofold_tui.data.evals.code_text import diff_lines
from iofold_tui.data.evals.eval_parsing import parse_test_results, parse_trace_ids
from iofold_tui.data.evals.versions import EvalSummary, build_chains


def _s(eval_id: str, version: int, parent: str | None = None, name: str = "q") -> EvalSummary:
    return EvalSummary(eval_id, "set", name, version, parent, "draft", "m", None, None, None, "", 0)


def _order(rows: list) -> list[tuple[str, int]]:
    return [(s.id, link.depth) for s, link in rows]


# ---------------------------------------------------------------- chains

def test_chain_follows_parent_links_as_a_tree() -> None:
    rows = build_chains([_s("a", 1), _s("b", 2, "a"), _s("c", 3, "a"), _s("d", 4, "b")])
    assert _order(rows) == [("a", 0), ("b", 1), ("d", 2), ("c", 1)]
    links = {s.id: link for s, link in rows}
    assert links["c"].parent_id == "a" and not links["c"].inferred
    assert links["d"].base_id == "b"


def test_chain_without_parent_links_uses_version_order() -> None:
    rows = build_chains([_s("v3", 3), _s("v1", 1), _s("v2", 2)])
    assert _order(rows) == [("v1", 0), ("v2", 1), ("v3", 2)]
    links = {s.id: link for s, link in rows}
    assert links["v3"].inferred and links["v3"].parent_id == "v2" and links["v3"].base_id == "v2"
    assert links["v1"].parent_id is None and links["v1"].base_id is None


def test_chain_cycle_is_cut_at_lowest_version_and_said() -> None:
    rows = build_chains([_s("a", 1, "b"), _s("b", 2, "a"), _s("c", 3, "b")])
    links = {s.id: link for s, link in rows}
    assert links["a"].parent_id is None
    assert "loops" in (links["a"].note or "") and "v1 → v2 → v1" in (links["a"].note or "")
    assert _order(rows) == [("a", 0), ("b", 1), ("c", 2)]
    assert links["a"].base_id == "b"  # the stored parent still exists: diffing against it is meaningful


def test_chain_self_parent_and_missing_parent() -> None:
    rows = build_chains([_s("a", 1, "a"), _s("b", 2, "gone"), _s("x", 1, "gone", name="other")])
    links = {s.id: link for s, link in rows}
    assert links["a"].parent_id is None and "loops" in (links["a"].note or "")
    assert links["b"].parent_id == "a" and links["b"].inferred
    assert links["b"].note == "parent gone is missing; chained by version order"
    assert links["x"].parent_id is None and links["x"].note == "parent gone is missing"
    assert len(rows) == 3


def test_chain_parent_with_other_name_or_in_other_set() -> None:
    outside = {"far": core.EvalRef("far", "set_2", "elsewhere", 7)}
    rows = build_chains(
        [_s("a", 1, name="alpha"), _s("b", 2, "a", name="beta"), _s("c", 3, "far", name="beta")], outside
    )
    links = {s.id: link for s, link in rows}
    assert (
        links["b"].parent_id is None
        and links["b"].base_id == "a"
        and links["b"].note == "derived from alpha v1"
    )
    assert links["c"].base_id == "far" and "eval set set_2" in (links["c"].note or "")


def test_long_chain_and_long_cycle_do_not_recurse() -> None:
    n = 5000
    chain = [_s(f"e{i}", i, f"e{i - 1}" if i > 1 else None) for i in range(1, n + 1)]
    rows = build_chains(chain)
    assert rows[-1][1].depth == n - 1
    loop = [_s(f"e{i}", i, f"e{i % n + 1}") for i in range(1, n + 1)]  # e1 → e2 → … → e5000 → e1
    rows = build_chains(loop)
    assert sum(1 for _, link in rows if link.note) == 1
    assert len(rows) == n


# ---------------------------------------------------------------- JSON fields

def test_test_results_snake_and_camel_case() -> None:
    snake = parse_test_results(
        json.dumps(
            {
                "correct": 1,
                "total": 2,
                "details": [
                    {
                        "trace_id": "t1",
                        "expected": True,
                        "predicted": True,
                        "match": True,
                        "reason": "ok",
                        "execution_time_ms": 11,
                    },
                    {
                        "trace_id": "t2",
                        "expected": True,
                        "predicted": False,
                        "match": False,
                        "reason": "no",
                        "execution_time_ms": 3,
                        "error": "boom",
                    },
                ],
            }
        )
    )
    assert snake.shape == "snake_case" and [r.trace_id for r in snake.rows] == ["t1", "t2"]
    assert snake.rows[1].error == "boom" and snake.rows[0].time_ms == 11 and snake.mismatches == 1
    assert snake.problems == []
    camel = parse_test_results(
        json.dumps(
            {
                "details": [
                    {
                        "traceId": "t9",
                        "expected": "positive",
                        "predicted": "fail",
                        "reason": "r",
                        "executionTimeMs": 7.5,
                    }
                ]
            }
        )
    )
    assert camel.shape == "camelCase"
    row = camel.rows[0]
    assert (row.trace_id, row.expected, row.predicted, row.match, row.time_ms) == (
        "t9",
        True,
        False,
        False,
        7.5,
    )


def test_test_results_bad_shapes_are_problems_not_crashes() -> None:
    assert "not valid JSON" in parse_test_results("{oops").problems[0]
    assert "JSON list" not in parse_test_results("[1, 2]").problems[0]  # a bare list is taken as the details
    assert "expected an object" in parse_test_results("42").problems[0]
    assert parse_test_results(json.dumps({"details": "x"})).problems == [
        "test_results.details is not an array"
    ]
    mixed = parse_test_results(json.dumps({"correct": 5, "details": [
        "junk", {"trace_id": "a", "expected": "maybe", "predicted": None}, {"traceId": "b", "match": 1}]}))
    assert mixed.shape == "mixed"
    assert mixed.rows[0].match is None and mixed.rows[0].expected_text == "maybe"
    assert any("1 detail rows are not objects" in p for p in mixed.problems)
    assert parse_test_results(None).rows == [] and parse_test_results("").problems == []


def test_test_results_summary_disagreeing_with_rows_is_said() -> None:
    out = parse_test_results(json.dumps({"correct": 3, "details": [{"trace_id": "a", "match": True}]}))
    assert out.problems == ["test_results says 3 correct but its rows show 1"]


def test_test_results_rows_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_parsing, "MAX_TEST_ROWS", 10)
    out = parse_test_results(
        json.dumps({"details": [{"trace_id": str(i), "match": True} for i in range(25)]})
    )
    assert len(out.rows) == 10 and out.total_rows == 25
    assert "first 10 of 25" in out.problems[0]


def test_training_trace_ids() -> None:
    assert parse_trace_ids('["a", "b", 3]') == (["a", "b", "3"], None)
    assert parse_trace_ids(None) == ([], None)
    ids, problem = parse_trace_ids("[\"a\", {\"x\": 1}, null]")
    assert ids == ["a"] and problem == "training_trace_ids: 2 entries are not ids (skipped)"
    assert "not valid JSON" in (parse_trace_ids("a,b")[1] or "")
    assert "expected an array" in (parse_trace_ids('{"a": 1}')[1] or "")


# ---------------------------------------------------------------- code checks

def test_check_code() -> None:
    ok = eval_parsing.check_code("def q(trace):\n    return True, 'ok'\n", "q")
    assert ok.ok and ok.entry == "q" and ok.note is None
    other = eval_parsing.check_code("def helper(t):\n    return True, ''\n", "q")
    assert other.entry == "helper" and "no top-level def q()" in (other.note or "")
    bad = eval_parsing.check_code("def q(trace)\n    return", "q")
    assert not bad.ok and (bad.note or "").startswith("not valid Python: line 1")
    assert eval_parsing.check_code("   \n", "q").note == "code is empty"
    nul = eval_parsing.check_code("x = 1\x00", "q")
    assert not nul.ok and "not valid Python" in (nul.note or "")
    assert eval_parsing.check_code("x = 1\n", "q").note == "no top-level function to call"


def test_huge_code_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    big = "def q(trace):\n" + "    x = 1\n" * 10_000 + "    return True, ''\n"
    assert eval_parsing.check_code(big, "q").entry == "q"
    monkeypatch.setattr(eval_parsing, "AST_LIMIT", 1000)
    assert "not syntax-checked" in (eval_parsing.check_code(big, "q").note or "")


# ---------------------------------------------------------------- diffs

OLD = "import re\n\ndef q(t):\n    a = 1\n    b = 2\n    return a < 40, 'x'\n"
NEW = "import re\n\ndef q(t):\n    a = 1\n    b = 3\n    c = 4\n    return a < 60, 'x'\n"


def test_unified_diff_matches_difflib() -> None:
    diff = diff_lines(OLD, NEW, 1)
    expected = [
        line for line in difflib.unified_diff(OLD.split("\n")[:-1], NEW.split("\n")[:-1], n=1, lineterm="")
    ][2:]
    shown = [
        d.text if d.kind == "hunk" else {"equal": " ", "add": "+", "del": "-"}[d.kind] + d.text
        for d in diff.unified
    ]
    assert shown == expected
    assert (diff.added, diff.removed) == (3, 2) and not diff.identical
    first_del = next(d for d in diff.unified if d.kind == "del")
    assert (first_del.old_no, first_del.new_no, first_del.text) == (5, None, "    b = 2")


def test_side_by_side_pairs_replacements() -> None:
    rows = [r for r in diff_lines(OLD, NEW, 0).side if r.kind != "hunk"]
    assert [(r.kind, r.old_no, r.new_no) for r in rows] == [
        ("replace", 5, 5),
        ("replace", 6, 6),
        ("add", None, 7),
    ]
    assert rows[0].old_text == "    b = 2" and rows[0].new_text == "    b = 3"


def test_diff_identical_empty_and_full_context() -> None:
    assert diff_lines(OLD, OLD).identical and diff_lines(OLD, OLD).unified == []
    from_empty = diff_lines("", "a\nb\n")
    assert [d.kind for d in from_empty.unified] == ["hunk", "add", "add"]
    full = diff_lines(OLD, NEW, None)
    assert sum(1 for d in full.unified if d.kind == "equal") == 4  # every unchanged line kept


def test_eval_diff_covers_prompt_and_instructions(seed_conn: sqlite3.Connection) -> None:
    old = core.load_eval(seed_conn, "eval_response_quality_v1")
    assert old is not None
    new = core.EvalDetail(**{**old.__dict__, "generation_prompt": old.generation_prompt + "\nBe strict.",
                             "custom_instructions": ""})
    fields = code_text.eval_diff(old, new)
    assert [f.field for f in fields] == ["code", "generation_prompt", "custom_instructions"]
    assert fields[0].identical and fields[1].added == 1 and fields[2].removed == 1
    text = code_text.unified_text(old, new)
    assert "+Be strict." in text and ".custom_instructions" in text


# ---------------------------------------------------------------- database

def _insert_eval(conn: sqlite3.Connection, eval_id: str, version: int, **values: object) -> None:
    row = {
        "id": eval_id,
        "eval_set_id": "set_response_quality",
        "name": "response_quality",
        "version": version,
        "code": "def response_quality(trace):\n    return True, 'ok'\n",
        "model_used": "m",
        **values,
    }
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO evals ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


def test_list_and_load_on_bad_data(seed_conn: sqlite3.Connection) -> None:
    _insert_eval(seed_conn, "ev_v2", 2, parent_eval_id="eval_response_quality_v1", code="def broken(:\n",
                 test_results="{not json", training_trace_ids="[\"trace_001\", \"ghost\"]")
    _insert_eval(seed_conn, "ev_v3", 3, parent_eval_id="nowhere", code="", test_results=json.dumps(
        {"details": [{"traceId": "trace_002", "expected": True, "predicted": False, "match": False}]}))
    listed = core.list_evals(seed_conn, "set_response_quality")
    assert [(s.id, link.depth) for s, link in listed.rows] == [
        ("eval_response_quality_v1", 0), ("ev_v2", 1), ("ev_v3", 2)]
    assert listed.find("ev_v3")[1].note == "parent nowhere is missing; chained by version order"
    assert [s.version for s in listed.lineage("ev_v3")] == [3, 2, 1]
    v2 = core.load_eval(seed_conn, "ev_v2")
    assert v2 is not None and not v2.check.ok
    assert any("not valid JSON" in p for p in v2.problems)
    traces = core.training_traces(seed_conn, v2.training_ids, "set_response_quality")
    assert [(t.id, t.exists, t.rating) for t in traces] == [
        ("trace_001", True, "positive"),
        ("ghost", False, None),
    ]
    v3 = core.load_eval(seed_conn, "ev_v3")
    assert v3 is not None and v3.check.note == "code is empty" and v3.test_results.shape == "camelCase"
    assert core.load_eval(seed_conn, "nope") is None


def test_list_truncates_and_reports(seed_conn: sqlite3.Connection) -> None:
    for v in range(2, 12):
        _insert_eval(seed_conn, f"ev_{v}", v)
    listed = core.list_evals(seed_conn, "set_response_quality", limit=5)
    assert len(listed.rows) == 5 and listed.truncated


def test_list_without_eval_set_column(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "odd.sqlite")
    conn.execute("CREATE TABLE evals (id TEXT, agent_id TEXT, name TEXT, code TEXT)")
    listed = core.list_evals(conn, "x")
    assert listed.rows == [] and listed.problem == "evals has no eval_set_id: this pane reads the v1.0 schema"


def test_recomputed_counts_are_scoped_to_the_eval_set(seed_conn: sqlite3.Connection) -> None:
    # A second set labels trace_001 negative: the unscoped view would call the pass a contradiction.
    seed_conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('set_b', 'ws_demo', 'other')")
    seed_conn.execute(
        "INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES ('fb_x', 'set_b', 'trace_001', "
        "'negative')"
    )
    seed_conn.execute("UPDATE eval_executions SET error = 'Timeout', result = 0 WHERE id = 'exec_002'")
    seed_conn.execute("UPDATE evals SET contradiction_count = 2")
    listed = core.list_evals(seed_conn, "set_response_quality")
    counts = core.counts(seed_conn, listed)["eval_response_quality_v1"]
    assert (counts.execution_count, counts.contradictions, counts.errors) == (5, 0, 1)
    view = seed_conn.execute(
        "SELECT SUM(is_contradiction) FROM eval_comparison WHERE eval_id = 'eval_response_quality_v1'"
    )
    assert view.fetchone()[0] == 2  # what the stored counter copied: the defects the pane points out


def test_export_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = code_text.default_export_name("../../etc/pass wd", 3)
    assert name == "etc_pass_wd_v3.py"
    code = "x = '\\n'\r\ny = 2\n"
    path = code_text.export_code(code, Path(name))
    assert path == tmp_path / name and path.read_bytes() == code.encode()
    with pytest.raises(FileExistsError):
        code_text.export_code("other", Path(name))
    code_text.export_code("other", Path(name), overwrite=True)
    assert path.read_text() == "other"


def test_viewer_command(tmp_path: Path) -> None:
    viewer = code_text.viewer_command
    assert viewer({"PAGER": f"{sys.executable} -u", "EDITOR": "vi"}) == [sys.executable, "-u"]
    assert viewer({"PAGER": "no-such-pager-xyz", "EDITOR": sys.executable}) == [sys.executable]
    assert code_text.viewer_command({"PAGER": "'unbalanced", "EDITOR": ""}) in (["less"], ["more"], None)


def test_terminal_safe_and_bands() -> None:
    assert code_text.terminal_safe("a\tb\n") == ("a\tb\n", False)
    text, changed = code_text.terminal_safe("x = '\x1b[2J'\n")
    assert changed and "\x1b" not in text and "␛" in text
    assert [core.accuracy_band(v) for v in (None, 0.59, 0.6, 0.79, 0.8, 1.0)] == [
        "none",
        "low",
        "mid",
        "mid",
        "high",
        "high",
    ]
