"""``iofold-tui DB --pane P --select ID`` puts the cursor on ID in every pane (Pane.select_item; the base
class applies --select after the first reload, the trace list / evals / matrix once their rows are in)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import labeling
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.screenshot import settle

JOBS = 250  # more than two pages of the jobs pane (100 a page)


@pytest.fixture
def db(seed_db: Path) -> Path:
    conn = sqlite3.connect(seed_db)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    exprs = ", ".join(
        {
            "id": "'job_extra_' || printf('%03d', n)",
            "created_at": "strftime('%Y-%m-%dT%H:%M:%fZ', '2030-01-01', '+' || n || ' minutes')",
        }.get(c, c)
        for c in cols
    )
    conn.execute(f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {JOBS}) "
                 f"INSERT INTO jobs ({', '.join(cols)}) SELECT {exprs} FROM k, (SELECT * FROM jobs LIMIT 1)")
    conn.commit()
    conn.close()
    return seed_db


def _selected(app: IofoldApp, pane: str, item: str) -> str | None:
    screen = app.screen
    if pane == "traces":
        return screen.query_one("#traces").cursor_key  # type: ignore[attr-defined]
    if pane == "review":
        return screen.queue.current.trace_id  # type: ignore[attr-defined]
    if pane == "matrix":
        grid = screen.grid  # type: ignore[attr-defined]
        key = grid.coordinate_to_cell_key(grid.cursor_coordinate)
        column = str(key.column_key.value)
        return column[2:] if item.startswith("eval_") else grid.cursor_key  # an eval version: its column
    if pane == "jobs":
        return screen.table.cursor_key  # type: ignore[attr-defined]
    return screen.selected_id  # type: ignore[attr-defined]  # evals, integrations


@pytest.mark.parametrize(
    "pane, item",
    [
        ("traces", "trace_003"),
        ("review", "trace_004"),
        ("matrix", "trace_002"),
        ("matrix", "eval_response_quality_v1"),
        ("evals", "eval_response_quality_v1"),
        ("jobs", "job_extra_007"),  # the third page, newest first
        ("jobs", "job_import_001"),
        ("integrations", "int_langfuse_demo"),
    ],
)
async def test_select_on_start(db: Path, pane: str, item: str) -> None:
    app = IofoldApp(open_source(db), pane=pane, select=item, watch_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == pane and _selected(app, pane, item) == item
    labeling.close_label_store(app)
