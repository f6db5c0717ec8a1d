"""Another process changes the database underneath (issue 13): deleted rows leave the screen, a deleted
trace says so, and an empty review queue says why instead of "loading the queue…" forever."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from _review_helpers import add_unlabelled, finish, labels_written
from textual.widgets import Static

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.review_widgets import ReviewDocument
from iofold_tui.ui.screenshot import settle


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_unlabelled(seed_db, 8)
    return seed_db


def _app(db: Path, pane: str, eval_set: str = "response-quality") -> IofoldApp:
    return IofoldApp(open_source(db), pane=pane, eval_set=eval_set, watch_interval=0.1)  # the real watcher


def _delete(db: Path, *ids: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("PRAGMA foreign_keys=ON")  # feedback and executions go with their trace
        conn.executemany("DELETE FROM traces WHERE id = ?", [(i,) for i in ids])
    conn.close()


async def _until(pilot: object, condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    await pilot.pause()  # type: ignore[attr-defined]


async def test_rows_deleted_by_another_process_leave_the_trace_list(db: Path) -> None:
    app = _app(db, "traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.table  # type: ignore[attr-defined]
        await pilot.press("a")  # a label of our own first: the label store is open, our writes move nothing
        await labels_written(app, pilot)
        await pilot.press("down")
        assert table.cursor_key == "ux_002"
        _delete(db, "ux_001", "ux_002", "ux_005")
        await _until(pilot, lambda: not {"ux_001", "ux_002", "ux_005"} & {str(k.value) for k in table.rows})
        assert table.cursor_key == "ux_003"  # the cursor's trace is gone: its next neighbour
        assert "ux_004" in {str(k.value) for k in table.rows}
    finish(app)


async def test_rows_deleted_by_another_process_leave_the_matrix(db: Path) -> None:
    app = _app(db, "matrix")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        grid = app.screen.grid  # type: ignore[attr-defined]
        keys = [str(k.value) for k in grid.rows]
        assert "trace_001" in keys
        _delete(db, "trace_001")
        await _until(pilot, lambda: "trace_001" not in {str(k.value) for k in grid.rows})
    finish(app)


async def test_the_review_of_a_deleted_trace_says_so(db: Path) -> None:
    app = _app(db, "review")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.screen.current.trace_id == "ux_000"  # type: ignore[attr-defined]
        _delete(db, "ux_000")

        def shown() -> str:
            document = app.screen.query_one(ReviewDocument)
            return "\n".join(document.render_line(y).text for y in range(document.size.height))

        await _until(pilot, lambda: "no longer exists" in shown())
        assert "deleted" in shown()
    finish(app)


async def test_an_empty_review_queue_says_why(schema_db: Path) -> None:
    conn = sqlite3.connect(schema_db)
    with conn:
        conn.execute("INSERT INTO workspaces (id, name) VALUES ('ws', 'w')")
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('es', 'ws', 'quality')")
    conn.close()
    app = IofoldApp(open_source(schema_db), pane="review", eval_set="quality", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        document = app.screen.query_one(ReviewDocument)
        text = "\n".join(document.render_line(y).text for y in range(document.size.height))
        assert "Nothing to review" in text and "no traces" in text
        assert "loading the queue" not in text
        assert app.screen.query_one("#review-bar", Static) is not None
    finish(app)


async def test_the_trace_view_of_a_deleted_trace_says_so(db: Path) -> None:
    app = _app(db, "traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")  # open ux_000
        await settle(app, pilot)
        summary = app.screen.query_one("#summary", Static)
        assert "ux_000" in str(summary.content)
        _delete(db, "ux_000")
        await _until(pilot, lambda: "was deleted" in str(summary.content))
    finish(app)
