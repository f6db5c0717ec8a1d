"""Helpers for the matrix pane's pilot tests (test_matrix_pane.py, test_matrix_relabel.py): the app on the
hand-computed database of test_matrix.py, what the grid and the statistics table show, the database's
labels and statistics recomputed from scratch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from _matrix_db import fresh_stats
from textual.widgets import Static

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.matrix import MatrixPane


def make_app(db: Path, pane: str = "matrix") -> IofoldApp:
    return IofoldApp(open_source(db), pane=pane, eval_set="quality", watch_interval=0)


def pane(app: IofoldApp) -> MatrixPane:
    screen = app.screen
    assert isinstance(screen, MatrixPane), type(screen)
    return screen


def row_ids(app: IofoldApp) -> list[str]:
    return [str(k.value) for k in pane(app).grid.rows]


def cursor(app: IofoldApp) -> tuple[str | None, str]:
    grid = pane(app).grid
    key = grid.coordinate_to_cell_key(grid.cursor_coordinate)
    return str(key.row_key.value), str(key.column_key.value)


def grid_cell(app: IofoldApp, trace: str, column: str) -> str:
    return str(pane(app).grid.get_cell(trace, column))


def stat(app: IofoldApp, eval_id: str, column: str) -> str:
    return str(pane(app).stats_table.get_cell(eval_id, column)).strip()


def notes(app: IofoldApp) -> str:
    return str(app.screen.query_one("#mx-notes", Static).content)


def rating(db: Path, trace: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT rating FROM feedback WHERE eval_set_id = 'S' AND trace_id = ?",
                           (trace,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def assert_stats_match_db(app: IofoldApp, db: Path) -> None:
    """The incrementally updated statistics equal a full recompute, cell for cell."""
    shown = {s.eval_id: s.to_dict() for s in pane(app).stats or []}
    expected = fresh_stats(db)
    assert shown.keys() == expected.keys()
    for eval_id, data in expected.items():
        assert shown[eval_id]["cells"] == data["cells"], eval_id


async def goto_row(app: IofoldApp, pilot: object, trace: str) -> None:
    grid = pane(app).grid
    grid.move_cursor(row=row_ids(app).index(trace))
    await pilot.pause()  # type: ignore[attr-defined]
