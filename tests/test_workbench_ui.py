"""The workbench in the app (Pilot): evals list → n → edit → save → run on the labelled traces → compare →
open a flipped trace; the static check marks the line as you type; promote from the compare view."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import build_db
from textual.widgets import Static

from iofold_tui.data.evals.compare import compare, flip_page
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.compare import CompareScreen, FlipList
from iofold_tui.ui.panes.eval_editor import CodeEditor, EvalEditorScreen
from iofold_tui.ui.run_eval import RunEvalScreen
from iofold_tui.ui.screenshot import settle

SRC = "eval_response_quality_v1"
# Passes everything: the seed's negatives (trace_003, trace_004) become contradictions (broken),
# its positives stay agreements.
PASS_ALL = "def response_quality(trace):\n    return True, 'always'\n"


def _app(path: Path) -> IofoldApp:
    return IofoldApp(open_source(path), pane="evals", watch_interval=0)


async def _until(pilot: object, app: IofoldApp, condition: object, rounds: int = 300) -> None:
    for _ in range(rounds):
        if condition():  # type: ignore[operator]
            return
        await settle(app, pilot, rounds=2)
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    raise AssertionError("condition not reached")


def _editor_loaded(app: IofoldApp) -> bool:
    """The eval editor is on screen and has loaded the eval it edits."""
    return isinstance(app.screen, EvalEditorScreen) and app.screen.detail is not None


async def test_new_version_run_compare_open_flipped_trace(tmp_path: Path) -> None:
    db = build_db(tmp_path / "ui.sqlite")
    app = _app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.screen.selected_id == SRC
        await pilot.press("n")
        await _until(pilot, app, lambda: _editor_loaded(app))
        editor_screen = app.screen
        editor = editor_screen.query_one(CodeEditor)
        assert "def response_quality" in editor.text and editor.has_focus
        # an error, marked at its line as you type (debounced check)
        editor.move_cursor((0, 0))
        await pilot.press(*"import os", "enter")
        await _until(pilot, app, lambda: 1 in editor.problem_lines)
        assert "line 1" in str(editor_screen.query_one("#editor-problems", Static).render())
        await pilot.press("ctrl+s")  # refused: nothing saved
        await settle(app, pilot)
        assert editor_screen.saved is None
        # replace everything with code that passes every trace, then save
        editor.load_text(PASS_ALL)
        await _until(pilot, app, lambda: not editor.problem_lines and not editor_screen.checking)
        await pilot.press("ctrl+s")
        await _until(pilot, app, lambda: editor_screen.saved is not None)
        new_id = editor_screen.saved.id
        conn = sqlite3.connect(db)
        row = conn.execute(
            "SELECT version, parent_eval_id, status, code FROM evals WHERE id = ?", (new_id,)
        ).fetchone()
        assert row == (2, SRC, "draft", PASS_ALL)
        # try it on the labelled traces
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        await pilot.press("enter")  # "the labelled traces" is preselected
        await _until(pilot, app, lambda: isinstance(app.screen, RunEvalScreen) and app.screen.phase == "done")
        executions = conn.execute("SELECT count(*) FROM eval_executions WHERE eval_id = ?", (new_id,))
        assert executions.fetchone()[0] == 5
        await pilot.press("escape")
        await settle(app, pilot)
        # compare with the parent
        await pilot.press("ctrl+g")
        await _until(pilot, app, lambda: isinstance(app.screen, CompareScreen) and app.screen.cmp is not None)
        cmp_screen = app.screen
        expected = compare(conn, SRC, new_id)
        assert cmp_screen.cmp.counts == expected.counts and expected.counts["broken"] == 2
        flips = cmp_screen.query_one(FlipList)
        assert flips.has_focus
        await pilot.press("down")  # broken
        await pilot.press("enter")
        await _until(
            pilot, app, lambda: app.current_mode == "review" and getattr(app.screen, "current", None)
        )
        broken = flip_page(conn, expected, "broken")
        assert app.state.trace_filter.trace_ids == tuple(broken)
        shown = app.screen.current
        assert getattr(shown, "trace_id", getattr(shown, "id", None)) in broken
        conn.close()


async def test_compare_view_code_diff_and_promote(tmp_path: Path) -> None:
    db = build_db(tmp_path / "ui2.sqlite")
    from iofold_tui.data.evals.drafts import create_version, workbench_path

    opened = open_source(db)
    conn = sqlite3.connect(db, isolation_level=None)
    new = create_version(conn, workbench_path(opened.history_path), SRC, PASS_ALL)
    app = IofoldApp(opened, pane="evals", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.screen.select_item(new.id)
        await settle(app, pilot)
        await pilot.press("C")
        await _until(pilot, app, lambda: isinstance(app.screen, CompareScreen) and app.screen.cmp is not None)
        screen = app.screen
        assert (screen.eval_a, screen.eval_b) == (SRC, new.id)
        await pilot.press("d")
        await settle(app, pilot)
        assert "+    return True, 'always'" in str(app.screen.query_one("#cmp-diff", Static).render())
        await pilot.press("d")
        await settle(app, pilot)
        assert app.screen is screen
        await pilot.press("p")
        await settle(app, pilot)
        await pilot.press("y")  # confirm
        await _until(pilot, app, lambda: screen.cmp is not None and screen.cmp.b.status == "active")
        assert conn.execute("SELECT status FROM evals WHERE id = ?", (SRC,)).fetchone()[0] == "archived"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen.selected_id == new.id
    conn.close()


async def test_n_is_next_match_while_searching(tmp_path: Path) -> None:
    db = build_db(tmp_path / "ui3.sqlite")
    app = _app(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("c", "slash", *"return", "enter")
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        assert not isinstance(app.screen, EvalEditorScreen)  # a search is active: n moves to the next match
        await pilot.press("slash", "ctrl+u", "enter")  # clear the search (the prompt holds the last one)
        await settle(app, pilot)
        await pilot.press("n")
        await _until(pilot, app, lambda: isinstance(app.screen, EvalEditorScreen))


async def test_try_the_editors_code_on_one_trace_stores_nothing(tmp_path: Path) -> None:
    from iofold_tui.ui.panes.eval_editor import TryTraceScreen

    db = build_db(tmp_path / "ui4.sqlite")
    before = sqlite3.connect(db).execute("SELECT count(*) FROM eval_executions").fetchone()[0]
    app = _app(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await _until(pilot, app, lambda: _editor_loaded(app))
        await _until(pilot, app, lambda: not app.screen.checking)
        await pilot.press("ctrl+r")  # nothing saved yet: the editor's own code on one trace
        await settle(app, pilot)
        await pilot.press(*"trace_001", "enter")
        await _until(
            pilot, app, lambda: isinstance(app.screen, TryTraceScreen) and app.screen.result is not None
        )
        result = app.screen.result
        # the seed's own execution says so
        assert result.result is True and "get_order_status" in result.reason
        assert "PASS" in str(app.screen.query_one("#try-out").render())
    assert sqlite3.connect(db).execute("SELECT count(*) FROM eval_executions").fetchone()[0] == before
