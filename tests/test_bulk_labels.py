"""Label keys and bulk labelling in the trace list: real key presses, assertions on the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from _review_helpers import ES, add_unlabelled, feedback, feedback_count, finish, labels_written, make_app

from iofold_tui.ui.panes.traces import TracesPane
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.widgets import Confirm


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_unlabelled(seed_db, 6)
    return seed_db


def traces_pane(app: object) -> TracesPane:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, TracesPane)
    return screen


async def test_single_label_keys_on_the_cursor_row(db: Path) -> None:
    app = make_app(db, pane="traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert traces_pane(app).table.cursor_key == "ux_000"
        await pilot.press("n")  # no confirmation for one row; the cursor moves on
        await labels_written(app, pilot)  # written by the writer thread
        assert feedback(db, "ux_000")[1] == "neutral"
        assert traces_pane(app).table.cursor_key == "ux_001"
        assert "neu" in str(traces_pane(app).table.get_cell("ux_000", "rating"))
        await pilot.press("u")
        await labels_written(app, pilot)
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") is None
    finish(app)


async def test_bulk_selection_is_one_undo_step(db: Path) -> None:
    app = make_app(db, pane="traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("space", "space", "down", "space")  # ux_000, ux_001, ux_003
        pane = traces_pane(app)
        assert pane.selected == {"ux_000", "ux_001", "ux_003"}
        assert "●" in str(pane.table.get_cell("ux_001", "sel"))
        await pilot.press("x")
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        assert "3 selected traces negative" in str(app.screen.question)
        await pilot.press("y")
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert [feedback(db, t) and feedback(db, t)[1] for t in ("ux_000", "ux_001", "ux_002", "ux_003")] == [
            "negative", "negative", None, "negative"]
        assert traces_pane(app).selected == set()  # applied: the selection is cleared
        await pilot.press("u")  # one step reverts all three
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert all(feedback(db, t) is None for t in ("ux_000", "ux_001", "ux_003"))
        await pilot.press("U")
        await labels_written(app, pilot)
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert all(feedback(db, t)[1] == "negative" for t in ("ux_000", "ux_001", "ux_003"))
    finish(app)


async def test_select_all_matching_the_filter_with_preview_and_cancel(db: Path) -> None:
    app = make_app(db, pane="traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.set_trace_filter(rating="unlabelled")
        traces_pane(app).reload()
        await settle(app, pilot)
        await pilot.press("asterisk")
        await settle(app, pilot)
        pane = traces_pane(app)
        assert pane.selected == {
            f"ux_{i:03d}" for i in range(6)
        }  # the seed's labelled traces are filtered out
        await pilot.press("a")
        await settle(app, pilot)
        assert "6 selected traces positive" in str(app.screen.question)  # type: ignore[attr-defined]
        await pilot.press("escape")  # cancelled: nothing written
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") is None
        await pilot.press("a", "enter")
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert all(feedback(db, f"ux_{i:03d}")[1] == "positive" for i in range(6))
        await labels_written(app, pilot)
        assert feedback(db, "trace_003")[1] == "negative"  # outside the selection: untouched
        await pilot.press("u")
        await labels_written(app, pilot)
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert all(feedback(db, f"ux_{i:03d}") is None for i in range(6))
        await pilot.press("asterisk")  # select all, then * again clears
        await settle(app, pilot)
        await pilot.press("asterisk")
        assert traces_pane(app).selected == set()
    finish(app)


async def test_bulk_label_then_undo_from_review_mode_after_restart(db: Path) -> None:
    app = make_app(db, pane="traces")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("space", "space", "n", "y")
        await settle(app, pilot)
    finish(app)
    assert feedback(db, "ux_000")[1] == feedback(db, "ux_001")[1] == "neutral"
    again = make_app(db)  # the same history: review mode's u undoes the bulk step
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(again, pilot)
        await pilot.press("u")
        await settle(again, pilot)
    finish(again)
    assert feedback(db, "ux_000") is None and feedback(db, "ux_001") is None


async def test_read_only_trace_list_writes_nothing(db: Path) -> None:
    before = feedback_count(db)
    app = make_app(db, pane="traces", read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = traces_pane(app)
        await pilot.press("space", "a", "x", "u")  # live keys that say why they do nothing
        await settle(app, pilot)
        assert not isinstance(app.screen, Confirm)
        assert pane.selected and any("labelling disabled" in str(n.message) for n in app._notifications)
    finish(app)
    assert feedback_count(db) == before
    assert feedback(db, "trace_001", ES)[1] == "positive"
