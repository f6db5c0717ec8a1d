"""The workbench from the matrix and review (Pilot, seed database): N on a version column → the editor on
that eval → save → a draft whose parent is that eval, its column shown back in the matrix; the cell
drill-down and review try a version on the trace on screen (verdict, reason, stdout, time, the sandbox's
layers), store nothing, and refuse to run without the OS layers unless the user says yes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import build_db
from textual.widgets import Static

from iofold_tui.data.evalrun.confinement import Confinement, Layer
from iofold_tui.data.evalrun.worker.confine import LAYERS
from iofold_tui.data.evals.drafts import create_version, workbench_path
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import run_eval
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.key_help import help_rows
from iofold_tui.ui.panes.eval_editor import CodeEditor, EvalEditorScreen
from iofold_tui.ui.panes.matrix import MatrixPane
from iofold_tui.ui.panes.matrix_dialogs import CellDetailScreen
from iofold_tui.ui.panes.review import ReviewPane
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.try_trace import TryTraceScreen
from iofold_tui.ui.widgets import Confirm, PickOne

SRC = "eval_response_quality_v1"
PASS_ALL = "def response_quality(trace):\n    print('looked at', len(trace))\n    return True, 'always'\n"


async def _until(pilot: object, app: IofoldApp, condition: object, rounds: int = 400) -> None:
    for _ in range(rounds):
        if condition():  # type: ignore[operator]
            return
        await settle(app, pilot, rounds=2)
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    raise AssertionError("condition not reached")


def _executions(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM eval_executions ORDER BY id").fetchall()


def _cursor_column(app: IofoldApp) -> str:
    grid = app.screen.grid  # type: ignore[attr-defined]
    return str(grid.coordinate_to_cell_key(grid.cursor_coordinate).column_key.value)


async def _matrix(app: IofoldApp, pilot: object) -> MatrixPane:
    await _until(pilot, app, lambda: isinstance(app.screen, MatrixPane) and app.screen.grid.row_count > 0
                 and _cursor_column(app).startswith("v:"))
    return app.screen  # type: ignore[return-value]


def _text(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


async def test_N_on_a_matrix_column_writes_that_evals_next_version(tmp_path: Path) -> None:
    db = build_db(tmp_path / "mx.sqlite")
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        matrix = await _matrix(app, pilot)
        assert _cursor_column(app) == f"v:{SRC}"
        rows = {name: description for _, name, description in help_rows(app, matrix)}
        assert rows["matrix.new_version"] == "New version" and rows["matrix.neutral"]  # ? lists both keys
        await pilot.press("N")
        await _until(pilot, app, lambda: isinstance(app.screen, EvalEditorScreen)
                     and app.screen.detail is not None)
        editor_screen = app.screen
        assert editor_screen.source_id == SRC
        editor = editor_screen.query_one(CodeEditor)
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT code FROM evals WHERE id = ?", (SRC,)).fetchone()[0]
        assert editor.text == stored and editor.has_focus
        editor.load_text(PASS_ALL)
        await _until(pilot, app, lambda: not editor.problem_lines and not editor_screen.checking)
        await pilot.press("ctrl+s")
        await _until(pilot, app, lambda: editor_screen.saved is not None)
        new_id = editor_screen.saved.id
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT version, parent_eval_id, status, code FROM evals WHERE id = ?",
                               (new_id,)).fetchone()
        assert row == (2, SRC, "draft", PASS_ALL)
        await pilot.press("escape")  # back to the matrix, the cursor on the new version's column
        await _until(pilot, app, lambda: app.screen is matrix and _cursor_column(app) == f"v:{new_id}")
        assert new_id in matrix.model.column_ids


async def test_N_elsewhere_than_a_version_column_says_so_and_n_still_labels(tmp_path: Path) -> None:
    db = build_db(tmp_path / "mx2.sqlite")
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        matrix = await _matrix(app, pilot)
        keys = [str(k.value) for k in matrix.grid.columns]
        matrix.grid.move_cursor(column=keys.index("trace"), animate=False)
        await pilot.press("N")
        await settle(app, pilot)
        assert app.screen is matrix  # no editor: the cursor names no eval
        assert any("N writes its next version" in str(n.message) for n in app._notifications)
        matrix.grid.move_cursor(column=keys.index(f"v:{SRC}"), animate=False)
        await pilot.press("n")  # labels neutral, as before
        await settle(app, pilot)
        assert not isinstance(app.screen, EvalEditorScreen)


async def test_try_from_the_matrix_drill_down_stores_nothing(tmp_path: Path) -> None:
    db = build_db(tmp_path / "mx3.sqlite")
    opened = open_source(db)
    with sqlite3.connect(db, isolation_level=None) as conn:
        draft = create_version(conn, workbench_path(opened.history_path), SRC, PASS_ALL)
    before = _executions(db)
    app = IofoldApp(opened, pane="matrix", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        matrix = await _matrix(app, pilot)
        await _until(pilot, app, lambda: f"v:{draft.id}" in {str(k.value) for k in matrix.grid.columns})
        keys = [str(k.value) for k in matrix.grid.columns]
        matrix.grid.move_cursor(column=keys.index(f"v:{draft.id}"), animate=False)
        trace_id = matrix.grid.cursor_key
        await pilot.press("enter")
        await _until(pilot, app, lambda: isinstance(app.screen, CellDetailScreen))
        cell = app.screen
        assert (cell.eval_id, cell.trace_id) == (draft.id, trace_id)
        await _until(pilot, app, lambda: "not run on this trace (ctrl+r tries it here)"
                     in _text(cell, "#cell-verdict"))
        await pilot.press("ctrl+r")
        await _until(pilot, app, lambda: isinstance(app.screen, TryTraceScreen) and app.screen.done)
        screen = app.screen
        assert screen.result is not None and screen.result.result is True and screen.result.reason == "always"
        out = _text(screen, "#try-out")
        for part in (f"response_quality v{draft.version}", trace_id, "PASS", " ms", "reason  always",
                     "stdout  looked at", "nothing was stored"):
            assert part in out, part
        assert "confined" in _text(screen, "#try-sandbox")  # the sandbox's layer summary
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is cell
    assert _executions(db) == before


async def test_try_from_review_picks_a_version_newest_first(tmp_path: Path) -> None:
    db = build_db(tmp_path / "rv.sqlite")
    opened = open_source(db)
    with sqlite3.connect(db, isolation_level=None) as conn:
        draft = create_version(conn, workbench_path(opened.history_path), SRC, PASS_ALL)
    before = _executions(db)
    app = IofoldApp(opened, pane="review", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, app, lambda: isinstance(app.screen, ReviewPane)
                     and app.screen.current is not None)
        review = app.screen
        trace_id = review.current.trace_id
        assert "review.try" in {row[1] for row in help_rows(app, review)}
        await pilot.press("ctrl+r")
        await _until(pilot, app, lambda: isinstance(app.screen, PickOne))
        assert app.screen.current == draft.id and [v for v, _ in app.screen.options] == [draft.id, SRC]
        await pilot.press("enter")
        await _until(pilot, app, lambda: isinstance(app.screen, TryTraceScreen) and app.screen.done)
        screen = app.screen
        assert (screen.eval_id, screen.trace_id) == (draft.id, trace_id)
        assert screen.result is not None and screen.result.result is True
        assert "PASS" in _text(screen, "#try-out")
    assert _executions(db) == before


async def test_try_without_os_layers_asks_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = Confinement(tuple(Layer(name, name != "landlock", "test") for name in LAYERS))
    monkeypatch.setattr(run_eval, "check_sandbox", lambda: missing)
    db = build_db(tmp_path / "mx4.sqlite")
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        matrix = await _matrix(app, pilot)
        await pilot.press("enter")
        await _until(pilot, app, lambda: isinstance(app.screen, CellDetailScreen))
        await pilot.press("ctrl+r")
        await _until(pilot, app, lambda: isinstance(app.screen, Confirm))
        assert "Missing: Landlock" in str(app.screen.question)
        await pilot.press("n")
        await _until(pilot, app, lambda: isinstance(app.screen, TryTraceScreen))
        screen = app.screen
        assert screen.done and screen.result is None and "refused" in _text(screen, "#try-out")
        assert "NOT confined: missing Landlock" in _text(screen, "#try-sandbox")
        await pilot.press("escape", "escape")
        await _until(pilot, app, lambda: app.screen is matrix)
        await pilot.press("enter", "ctrl+r")
        await _until(pilot, app, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")  # this time the user says yes: it runs without the missing layers
        await _until(pilot, app, lambda: isinstance(app.screen, TryTraceScreen) and app.screen.done
                     and app.screen.result is not None)
        assert app.screen.unconfined and app.screen.result.reason


async def test_N_in_the_evals_pane_is_new_version_too(tmp_path: Path) -> None:
    db = build_db(tmp_path / "ev.sqlite")
    app = IofoldApp(open_source(db), pane="evals", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, app, lambda: getattr(app.screen, "selected_id", None) == SRC)
        await pilot.press("N")
        await _until(pilot, app, lambda: isinstance(app.screen, EvalEditorScreen)
                     and app.screen.source_id == SRC)
