"""Pilot tests of the evals pane, driven with real keys: list → code → diff → jumps, and bad input."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
from conftest import build_db
from textual.widgets import DataTable, Input

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes import evals_widgets
from iofold_tui.ui.panes.evals import EvalsPane
from iofold_tui.ui.panes.evals_widgets import DISAGREE, CodeView, DiffView
from iofold_tui.ui.panes.trace_detail import TraceDetailScreen
from iofold_tui.ui.screenshot import settle, take_screenshot
from iofold_tui.ui.widgets import Confirm, PickOne, Prompt

V1 = "eval_response_quality_v1"
HUGE_LINES = 10_000


def _add(
    conn: sqlite3.Connection, eval_id: str, version: int, name: str, code: str, **values: object
) -> None:
    row = {"id": eval_id, "eval_set_id": "set_response_quality", "name": name, "version": version,
           "code": code, "model_used": "gpt-4o", **values}
    placeholders = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO evals ({', '.join(row)}) VALUES ({placeholders})", list(row.values()))


@pytest.fixture
def evals_db(tmp_path: Path) -> Path:
    path = build_db(tmp_path / "evals.sqlite")
    with sqlite3.connect(path) as conn:
        v1 = conn.execute("SELECT code FROM evals WHERE id = ?", (V1,)).fetchone()[0]
        v2 = v1.replace("< 40", "< 60").replace(
            "    if not tools_used:",
            "    if len(tools_used) > 3:\n        return False, \"Too many tools\"\n    if not tools_used:",
        )
        details = [
            {"traceId": "trace_003", "expected": False, "predicted": True, "match": False,
             "reason": "missed hedge", "executionTimeMs": 4},
            {"traceId": "trace_001", "expected": True, "predicted": True, "match": True},
        ]
        _add(conn, "ev_v2", 2, "response_quality", v2, parent_eval_id=V1, execution_count=99,
             generation_prompt="Write a stricter eval.", test_results=json.dumps({"details": details}),
             training_trace_ids=json.dumps(["trace_001", "ghost_trace"]))
        _add(conn, "ev_broken", 3, "broken_eval", "def broken_eval(trace:\n    return", test_results="{nope",
             training_trace_ids="trace_001,trace_002")
        _add(conn, "ev_loop_a", 4, "loop", "def loop(t):\n    return True, 'a'\n", parent_eval_id="ev_loop_b")
        _add(conn, "ev_loop_b", 5, "loop", "def loop(t):\n    return True, 'b'\n", parent_eval_id="ev_loop_a")
        huge_body = "".join(f"    x{i} = {i}  # line\n" for i in range(HUGE_LINES))
        huge = "def huge(trace):\n" + huge_body + "    return True, ''\n"
        _add(conn, "ev_huge", 6, "zz_huge", huge, parent_eval_id="deleted_parent")
        _add(conn, "ev_empty", 7, "empty", "")
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('set_b', 'ws_demo', 'zz-other')")
        conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) "
                     "VALUES ('ev_other', 'set_b', 'other', 1, "
                     "'def other(t):\n    return False, \"\"\n', 'm')")
    return path


def _app(path: Path) -> IofoldApp:
    return IofoldApp(open_source(path), pane="evals", watch_interval=0)


def _pane(app: IofoldApp) -> EvalsPane:
    assert isinstance(app.screen, EvalsPane)
    return app.screen


def _keys(app: IofoldApp) -> list[str]:
    return [str(k.value) for k in _pane(app).query_one("#evals-table", DataTable).rows]


async def _goto(app: IofoldApp, pilot: object, eval_id: str) -> None:
    """Move the list cursor with real keys until ``eval_id`` is selected."""
    pane = _pane(app)
    pane.query_one("#evals-table", DataTable).focus()
    keys = _keys(app)
    distance = keys.index(eval_id) - keys.index(pane.selected_id or keys[0])
    await pilot.press(*(["down"] * distance if distance > 0 else ["up"] * -distance))  # type: ignore[attr-defined]
    await settle(app, pilot)
    assert pane.selected_id == eval_id


def _text(widget: object) -> str:
    return str(widget.render())  # type: ignore[attr-defined]


def _lines(view: CodeView | DiffView) -> list[str]:
    return [view.render_line(y).text for y in range(view.size.height)]


async def test_list_code_search_copy(evals_db: Path) -> None:
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        assert _keys(app) == ["ev_broken", "ev_empty", "ev_loop_a", "ev_loop_b", V1, "ev_v2", "ev_huge"]
        assert pane.selected_id == "ev_broken"
        await _goto(app, pilot, V1)
        await pilot.press("enter")
        await settle(app, pilot)
        view = pane.query_one(CodeView)
        assert view.has_focus and pane.active_tab == "code"
        assert any("def response_quality(trace: dict)" in line for line in _lines(view))
        assert view.hl is not None and view.hl.lines, "visible lines get highlighted"
        await pilot.press("slash", *"HEDGE", "enter")
        await settle(app, pilot)
        stored = app.db.query_one("SELECT code FROM evals WHERE id = ?", (V1,))[0]
        expected = [i for i, line in enumerate(stored.split("\n")) if "hedge" in line.lower()]
        assert view.matches == expected and len(expected) == 4 and view.current == 0
        first = view.matches[0]
        await pilot.press("n")
        assert view.matches[view.current] != first
        await pilot.press("N")
        assert view.matches[view.current] == first
        assert '"HEDGE": 1/4 matches (n/N)' in _text(pane.query_one("#pane-header"))
        await pilot.press("y")
        assert app.clipboard == stored
        await pilot.press("n", "n")
        top = view.scroll_y
        assert top > 0
        app.refresh_panes()  # what the app does when the database changes underneath
        await settle(app, pilot)
        assert pane.selected_id == V1 and len(view.matches) == 4
        assert view.scroll_y > 0 and abs(view.scroll_y - top) <= 1  # kept (±1: the note line may reflow)


async def test_counts_disagreement_and_details(evals_db: Path) -> None:
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        table = pane.query_one("#evals-table", DataTable)
        stored = table.get_cell("ev_v2", "exec")
        assert stored.plain == "99" and stored.style == DISAGREE  # stored 99, recomputed 0
        assert table.get_cell("ev_v2", "exec*").plain == "0"
        assert table.get_cell(V1, "exec").style == ""  # seed's stored counters are right
        assert "with stored counters that disagree" in _text(pane.query_one("#pane-header"))
        await _goto(app, pilot, "ev_v2")
        await pilot.press("i")
        await settle(app, pilot)
        details = _text(pane.query_one("#details"))
        assert "version chain: v2 ← v1" in details and "Write a stricter eval." in details
        assert "recomputed          0" in details


async def test_diff_unified_side_by_side_and_other_base(evals_db: Path) -> None:
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        await _goto(app, pilot, "ev_v2")
        await pilot.press("d")
        await settle(app, pilot)
        diff = pane.query_one(DiffView)
        assert pane.diff_key == (V1, "ev_v2", False)
        kinds = {(r.kind, r.text.strip()) for r in diff.rows}
        assert ("add", 'return False, "Too many tools"') in kinds
        assert ("title", "── generation prompt: +1 −1") in kinds
        assert "response_quality v1 → response_quality v2" in _text(pane.query_one("#diff-title"))
        assert any(line.lstrip().startswith(("+", "│")) or " + " in line for line in _lines(diff))
        await pilot.press("u")
        await settle(app, pilot)
        assert diff.side_by_side and any(r.kind == "replace" for r in diff.rows)
        assert any("│" in line for line in _lines(diff))
        await pilot.press("b")
        await settle(app, pilot)
        assert isinstance(app.screen, PickOne)
        await pilot.press("up", "enter")  # the option above the parent (v1) in list order: loop v5
        await settle(app, pilot)
        assert pane.base_override == "ev_loop_b" and pane.diff_key == ("ev_loop_b", "ev_v2", False)
        await pilot.press("f")
        await settle(app, pilot)
        assert pane.diff_key == ("ev_loop_b", "ev_v2", True)
        await pilot.press("y")
        assert app.clipboard.startswith("--- loop_v5\n+++ response_quality_v2\n")


async def test_jumps_to_traces_executions_and_matrix(evals_db: Path) -> None:
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        await _goto(app, pilot, "ev_v2")
        await pilot.press("t")
        await settle(app, pilot)
        tests = pane.query_one("#tests-table", DataTable)
        assert tests.has_focus and tests.row_count == 2
        assert tests.get_cell_at((0, 3)).plain == "✗"  # the mismatch is marked
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen) and app.screen.trace_id == "trace_003"
        await pilot.press("escape")
        await pilot.press("l", "down", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen) and app.screen.trace_id == "ghost_trace"
        await pilot.press("escape")
        await settle(app, pilot)
        assert "1 not in the database" in _text(pane.query_one("#training-summary"))
        await _goto(app, pilot, V1)
        switches: list[tuple[str, object]] = []
        switch = app.switch_mode

        def spy(mode: str) -> object:  # the matrix consumes pending_matrix_eval: record it at the switch
            switches.append((mode, app.state.pending_matrix_eval))
            return switch(mode)

        app.switch_mode = spy  # type: ignore[method-assign]
        await pilot.press("m")
        await settle(app, pilot)
        if app.pane_spec("matrix"):
            assert switches == [("matrix", V1)] and app.current_mode == "matrix"
            await pilot.press("E")
            await settle(app, pilot)
        else:
            assert switches == [] and app.state.pending_matrix_eval == V1
        await pilot.press("e")
        await settle(app, pilot)
        assert app.current_mode == "traces"
        assert app.state.trace_filter.executed_by_eval == V1
        await settle(app, pilot)
        ran = {r[0] for r in app.db.query("SELECT trace_id FROM eval_executions WHERE eval_id = ?", (V1,))}
        shown = {str(k.value) for k in app.screen.query_one("#traces").rows}
        assert shown == ran and ran


async def test_bad_input_is_shown_not_crashed(evals_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evals_widgets, "HIGHLIGHT_MAX_LINES", 400)
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        note = _text(pane.query_one("#eval-note"))
        assert "not valid Python: line 1" in note and "test_results is not valid JSON" in note
        assert "training_trace_ids is not valid JSON" in note
        view = pane.query_one(CodeView)
        assert "def broken_eval(trace:" in view.render_line(0).text
        table = pane.query_one("#evals-table", DataTable)
        assert table.get_cell("ev_loop_a", "eval").plain.startswith("⚠ loop v4")
        await _goto(app, pilot, "ev_loop_a")
        assert "parent chain loops (v4 → v5 → v4)" in _text(pane.query_one("#eval-note"))
        await _goto(app, pilot, "ev_empty")
        assert "code is empty" in _text(pane.query_one("#eval-note"))
        assert view.render_line(0).text.strip() == "(empty code)"
        await _goto(app, pilot, "ev_huge")
        await pilot.press("c", "end")
        await settle(app, pilot)
        assert view.line_count == HUGE_LINES + 2
        assert view.hl is not None and view.hl.capped and len(view.hl.lines) == 400
        assert "highlighted up to line 400" in _text(pane.query_one("#eval-note"))
        assert "parent deleted_parent is missing" in _text(pane.query_one("#eval-note"))
        bottom = _lines(view)
        assert any("return True, ''" in line for line in bottom), "the end of a 10k-line eval is reachable"
        await pilot.press("slash", *"x9999 ", "enter")
        await settle(app, pilot)
        assert view.matches == [HUGE_LINES]


async def test_export_and_open(evals_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = _app(evals_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await _goto(app, pilot, V1)
        code = app.db.query_one("SELECT code FROM evals WHERE id = ?", (V1,))[0]
        await pilot.press("x")
        assert isinstance(app.screen, Prompt)
        assert app.screen.query_one(Input).value == "response_quality_v1.py"
        await pilot.press("enter")
        target = tmp_path / "response_quality_v1.py"
        assert target.read_text() == code
        target.write_text("stale")
        await pilot.press("x", "enter")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        assert target.read_text() == code
        # o: headless Textual cannot suspend; the user is told where the file is
        monkeypatch.setenv("PAGER", sys.executable)
        await pilot.press("o")
        await settle(app, pilot)
        assert any("cannot open" in str(n.message) for n in app._notifications)
        copy = tmp_path / "seen.py"
        script = tmp_path / "pager.py"
        script.write_text(f"import shutil, sys\nshutil.copy(sys.argv[1], {str(copy)!r})\n")
        monkeypatch.setenv("PAGER", f"{sys.executable} {script}")
        monkeypatch.setattr(app, "suspend", nullcontext)
        await pilot.press("o")
        assert copy.read_text() == code


async def test_select_item_switches_set_and_honours_diff_with(evals_db: Path) -> None:
    app = _app(evals_db)
    app.state.screenshot_diff_with = "ev_v2"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = _pane(app)
        pane.select_item(V1)
        await settle(app, pilot)
        assert pane.active_tab == "diff" and pane.diff_key == ("ev_v2", V1, False)
        app.state.screenshot_diff_with = None
        pane.select_item("ev_other")
        await settle(app, pilot)
        assert app.state.eval_set_id == "set_b" and pane.selected_id == "ev_other"
        hl = pane.query_one(CodeView).hl
        assert hl is not None and hl.plain[0] == "def other(t):"
        pane.select_item("no_such_eval")
        await settle(app, pilot)
        assert any("no eval 'no_such_eval'" in str(n.message) for n in app._notifications)


def test_screenshot_command_writes_the_diff(evals_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "diff.svg"
    take_screenshot(open_source(evals_db), pane="evals", select="ev_v2", eval_set=None, diff_with=V1,
                    size=(120, 40), output=out)
    shown = " ".join(re.findall(r">([^<]*)</text>", out.read_text())).replace("&#160;", " ")
    assert "response_quality v1  →  response_quality v2" in shown and "Too many tools" in shown


def test_core_never_imports_the_ui() -> None:
    core = (Path(evals_widgets.__file__).parents[2] / "data" / "evals" / "versions.py").read_text()
    assert "textual" not in core and "import rich" not in core and "from rich" not in core
