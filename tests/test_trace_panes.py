"""Pilot tests: the trace list and trace detail driven with real keys."""

from __future__ import annotations

from pathlib import Path

from _hostile import make_hostile_db
from rich.text import Text
from textual.widgets import Input, Static, Tree

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.trace_detail import TraceDetailScreen
from iofold_tui.ui.panes.traces import TracesPane
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.screenshot import settle


def _app(path: Path, **kwargs: object) -> IofoldApp:
    return IofoldApp(open_source(path), watch_interval=0, **kwargs)  # type: ignore[arg-type]


def _ids(app: IofoldApp) -> list[str]:
    table = app.screen.query_one(RowTable)
    return [str(k.value) for k in table.rows]


def _status(app: IofoldApp) -> str:
    return str(app.screen.query_one("#pane-header", Static).render())


async def test_list_shows_rows_and_honest_counts(seed_db: Path) -> None:
    app = _app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, TracesPane)
        ids = _ids(app)
        assert len(ids) == 5
        assert "1–5 of 5" in _status(app)
        await pilot.press("o", "down", "enter")  # the order picker: newest, oldest, …
        await settle(app, pilot)
        assert _ids(app) == list(reversed(ids))
        assert "oldest first" in _status(app)


async def test_first_frame_has_rows_and_header_lists_pane_keys(many_db: Path) -> None:
    """The unfiltered first page is on screen before any worker ran; a filter goes through the worker."""
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(140, 40)):
        assert isinstance(app.screen, TracesPane)
        assert len(_ids(app)) == 100 and _ids(app)[:2] == ["trace_005", "trace_004"]  # no settle needed
        assert not [w for w in app.workers if w.group == "page"]
        assert "panes: T R E M O J I S · ? keys" in _status(app)
    app = _app(many_db, pane="traces")
    app.state.trace_filter = app.state.trace_filter.__class__(text="question 7")
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        assert _ids(app) == [f"bulk_{i:03d}" for i in (*range(79, 69, -1), 7)]  # newest first


async def test_search_filters_instantly_and_escape_clears(seed_db: Path) -> None:
    app = _app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("p", *"revenue")  # the instant preview filter
        await settle(app, pilot)
        assert len(_ids(app)) == 1
        assert "1–1 of 1" in _status(app) and "of 5 traces" in _status(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.screen.query_one("#search-bar", Input).has_class("visible")


async def test_paging_end_home_and_jump(many_db: Path) -> None:
    app = _app(many_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        first = _ids(app)
        assert len(first) == 100
        assert "rows 1–36 of 255" in _status(app)  # the rows on screen (40 lines less header and footer)
        await pilot.press("end")
        await settle(app, pilot)
        assert "rows 220–255 of 255" in _status(app)
        assert _ids(app)[-1] == "bulk_001"  # the oldest
        await pilot.press("home")
        await settle(app, pilot)
        assert _ids(app) == first
        table = app.screen.query_one(RowTable)
        table.move_cursor(row=99)
        await pilot.press("down")  # past the page edge: the next page loads
        await settle(app, pilot)
        assert "rows 101–136 of 255" in _status(app)
        await pilot.press("up")
        await settle(app, pilot)
        assert "rows 65–100 of 255" in _status(app)
        await pilot.press("colon", *"bulk_042", "enter")
        await settle(app, pilot)
        assert table.cursor_key == "bulk_042"
        top, _ = table.visible_rows()  # the header says where the jump landed
        assert f"rows {5 + 250 - 42 + 1 - table.cursor_row + top}–" in _status(app)
        assert "at bulk_042" in _status(app)


async def test_filter_dialog_applies_rating(seed_db: Path) -> None:
    from textual.widgets import Select

    app = _app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        await settle(app, pilot)
        app.screen.query_one("#rating", Select).value = "negative"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert len(_ids(app)) == 2
        assert "negative" in _status(app)
        await pilot.press("c")
        await settle(app, pilot)
        assert len(_ids(app)) == 5


async def test_step_search_worker(seed_db: Path) -> None:
    app = _app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"smtp", "enter")
        await settle(app, pilot)
        ids = _ids(app)
        assert ids
        steps = [app.db.query_one("SELECT lower(steps) FROM traces WHERE id=?", (i,))[0] for i in ids]
        assert all("smtp" in text for text in steps)


async def test_detail_opens_and_toggles_raw(seed_db: Path) -> None:
    app = _app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen)
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "REQUEST" in summary and "ANSWER" in summary and "LABELS" in summary
        tree = app.screen.query_one("#steps-tree", Tree)
        assert len(tree.root.children) >= 1
        await pilot.press("r")
        await settle(app, pilot)
        assert app.screen.showing_raw
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, TracesPane)


async def test_hostile_traces_render_safely(tmp_path: Path) -> None:
    path, ids = make_hostile_db(tmp_path / "hostile.sqlite")
    app = _app(path)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        for trace_id in ids:
            screen = TraceDetailScreen(trace_id)
            await app.push_screen(screen)
            await settle(app, pilot)
            for static in screen.query(Static):
                rendered = static.render()
                text = rendered.plain if isinstance(rendered, Text) else str(rendered)
                assert "\x1b" not in text and "\x00" not in text
            for node in list(screen.query_one(Tree).root.children)[:5]:
                screen.query_one(Tree).move_cursor(node)
                await pilot.pause()
            await pilot.press("r")
            await settle(app, pilot)
            app.pop_screen()
            await settle(app, pilot)
        svg = app.export_screenshot()
        assert "\x1b" not in svg


async def test_gc_freeze_timer_runs_without_error(seed_db: Path) -> None:
    """The start-up timer that freezes long-lived objects (review latency) must fire cleanly."""
    import gc
    import time

    gc.unfreeze()
    app = _app(seed_db)
    async with app.run_test(size=(120, 30)) as pilot:
        deadline = time.monotonic() + 10
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            await pilot.pause()
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
