"""Issue 6's end-to-end check: press `r` in the matrix, the sandbox runs the changed eval, and the grid
cells and the statistics change on screen."""

from __future__ import annotations

from pathlib import Path

from _eval_runs_helpers import EVAL, build_flip_template, executions, flip_db

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.matrix import MatrixPane
from iofold_tui.ui.run_eval import RunEvalScreen
from iofold_tui.ui.screenshot import settle


def _cell(app: IofoldApp, trace: str) -> str:
    pane = app.screen
    assert isinstance(pane, MatrixPane)
    return str(pane.grid.get_cell(trace, f"v:{EVAL}"))


def _stat(app: IofoldApp, column: str) -> str:
    pane = app.screen
    assert isinstance(pane, MatrixPane)
    return str(pane.stats_table.get_cell(EVAL, column)).strip()


async def test_run_from_the_matrix_changes_cells_and_statistics(tmp_path: Path) -> None:
    (tmp_path / "template").mkdir()
    db = flip_db(build_flip_template(tmp_path / "template"), tmp_path)
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        assert "pass" in _cell(app, "trace_001")
        assert _stat(app, "contradictions") == "0"
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, RunEvalScreen) and app.screen.phase == "done"
        await pilot.press("escape")
        await settle(app, pilot)
        assert executions(db)["trace_001"][1] == 0  # the new code fails a positive trace
        assert "fail" in _cell(app, "trace_001") and "≠" in _cell(app, "trace_001")
        assert "error" in _cell(app, "trace_005")  # an error is its own state, not a contradiction
        assert _stat(app, "contradictions") == "3"
        assert _stat(app, "error") == "1"
