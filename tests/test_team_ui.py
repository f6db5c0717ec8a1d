"""Issue 18 in the TUI: the conflict queue resolves conflicts with keys (checked in the database and the label
history), the agreement view is reachable from the overview."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from _review_helpers import finish
from click.testing import CliRunner
from conftest import build_db
from textual.widgets import DataTable, Static

from iofold_tui.cli import main
from iofold_tui.data.labels.conflict_queue import load_conflicts
from iofold_tui.data.labels.history import LabelHistory
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.agreement_view import AgreementScreen
from iofold_tui.ui.panes.label_conflicts import LabelConflictsScreen
from iofold_tui.ui.screenshot import settle

ES = "set_response_quality"


def _row(db: Path, trace: str) -> tuple[str, str | None] | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT rating, notes FROM feedback WHERE eval_set_id = ? AND trace_id = ?",
                           (ES, trace)).fetchone()
        return None if row is None else (row[0], row[1])
    finally:
        conn.close()


async def _until(pilot: object, check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)  # type: ignore[attr-defined]


def _queue_conflicts(db: Path, tmp_path: Path) -> list[str]:
    conn = sqlite3.connect(db)
    mine = [r[0] for r in conn.execute("SELECT trace_id FROM feedback WHERE eval_set_id = ? "
                                       "ORDER BY trace_id LIMIT 2", (ES,))]
    ratings = dict(conn.execute("SELECT trace_id, rating FROM feedback WHERE eval_set_id = ?",
                                (ES,)).fetchall())
    conn.close()
    other = {"positive": "negative", "negative": "positive", "neutral": "positive"}
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("eval_set_id,trace_id,rating,notes,annotator\n" + "".join(
        f'{ES},{t},{other[ratings[t]]},"their note {i}",bob\n' for i, t in enumerate(mine)))
    result = CliRunner().invoke(main, ["import-labels", str(db), str(theirs), "--apply"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(load_conflicts(open_source(db).db.path)) == 2
    return mine


async def test_conflict_queue_resolves_with_keys(tmp_path: Path) -> None:
    db = build_db(tmp_path / "team.sqlite")
    first, second = _queue_conflicts(db, tmp_path)
    before_second = _row(db, second)
    opened = open_source(db)
    app = IofoldApp(opened, pane="overview", watch_interval=0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("C")
            await _until(pilot, lambda: isinstance(app.screen, LabelConflictsScreen)
                         and app.screen.query_one(DataTable).row_count == 2)
            screen = app.screen
            assert "their note 0" in str(screen.query_one("#cq-theirs", Static).render())
            await pilot.press("t")  # take theirs for the first
            await _until(pilot, lambda: screen.query_one(DataTable).row_count == 1)
            assert _row(db, first)[1] == "their note 0"
            await pilot.press("m")  # keep mine for the second
            await _until(pilot, lambda: screen.query_one(DataTable).row_count == 0)
            assert _row(db, second) == before_second
            assert "no conflicts queued" in str(screen.query_one("#cq-status", Static).render())
    finally:
        finish(app)
    assert load_conflicts(opened.db.path) == []
    history = LabelHistory(opened.history_path)
    try:
        step = history.load(history.top_applied())  # type: ignore[arg-type]
    finally:
        history.close()
    assert step is not None and len(step.changes) == 1
    change = step.changes[0]
    assert (change.trace_id, change.new.notes) == (first, "their note 0")  # type: ignore[union-attr]


async def test_third_rating_and_agreement_view(tmp_path: Path) -> None:
    db = build_db(tmp_path / "team.sqlite")
    first, _ = _queue_conflicts(db, tmp_path)
    app = IofoldApp(open_source(db), pane="overview", eval_set="response-quality", watch_interval=0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("C")
            await _until(pilot, lambda: isinstance(app.screen, LabelConflictsScreen)
                         and app.screen.query_one(DataTable).row_count == 2)
            mine_note = _row(db, first)[1]
            await pilot.press("n")  # a third rating: neutral, my note kept
            await _until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
            assert _row(db, first) == ("neutral", mine_note)
            await pilot.press("escape")
            await pilot.press("A")
            await _until(pilot, lambda: isinstance(app.screen, AgreementScreen)
                         and "labelled" in str(app.screen.query_one("#ag-text", Static).render()))
    finally:
        finish(app)


async def test_agreement_view_reviews_the_disagreements(tmp_path: Path) -> None:
    import shutil

    from textual.widgets import Input

    db = build_db(tmp_path / "mine.sqlite")
    other = tmp_path / "bob.sqlite"
    shutil.copy(db, other)
    conn = sqlite3.connect(other)
    with conn:
        flipped = conn.execute("SELECT trace_id FROM feedback WHERE eval_set_id = ? AND rating = 'positive' "
                               "ORDER BY trace_id LIMIT 1", (ES,)).fetchone()[0]
        conn.execute("UPDATE feedback SET rating = 'negative' WHERE eval_set_id = ? AND trace_id = ?",
                     (ES, flipped))
    conn.close()
    app = IofoldApp(open_source(db), pane="overview", eval_set="response-quality", watch_interval=0)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("A")
            await _until(pilot, lambda: isinstance(app.screen, AgreementScreen))
            screen = app.screen
            screen.query_one(Input).value = str(other)
            screen.query_one(Input).focus()
            await pilot.press("enter")
            await _until(pilot, lambda: screen.query_one(DataTable).row_count == 1
                         and "Cohen" in str(screen.query_one("#ag-text", Static).render()))
            await pilot.press("r")
            await _until(pilot, lambda: app.current_mode == "review")
            assert app.state.trace_filter.trace_ids == (flipped,)
    finally:
        finish(app)
