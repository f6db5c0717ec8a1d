"""Issue 14, the UI: what a new user trips over (ids, headers, focus, help, small screens), driven with
real keys through Textual's Pilot and checked on the screen and in the database."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from _review_helpers import add_unlabelled, feedback, finish, make_app
from textual.widgets import DataTable, Static, TextArea

from iofold_tui.data.source.loader import open_source
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.review_widgets import KeyHelp
from iofold_tui.ui.panes.trace_detail import TraceDetailScreen
from iofold_tui.ui.panes.traces import TracesPane
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.trace_columns import ColumnChooser
from iofold_tui.ui.widgets import PaneHeader


def _app(path: Path, **kwargs: object) -> IofoldApp:
    read_only = bool(kwargs.pop("read_only", False))
    return IofoldApp(open_source(path, read_only=read_only), watch_interval=0, **kwargs)  # type: ignore[arg-type]


def _header(app: IofoldApp) -> str:
    return str(app.screen.query_one(PaneHeader).render())


def _notes(app: IofoldApp) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


def _columns(app: IofoldApp) -> dict[str, int]:
    table = app.screen.query_one(RowTable)
    return {str(k): c.width for k, c in table.columns.items()}


# -- trace list ---------------------------------------------------------------------------------------

async def test_trace_list_shows_ids_and_lays_out_for_80_and_200_columns(many_db: Path) -> None:
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        cols = _columns(app)
        assert "id" in cols and "rating" in cols and "input" in cols  # never dropped
        assert cols["input"] >= 30  # the preview gets the room (it was 9 characters)
        assert sum(w + 2 for w in cols.values()) <= 80
        table = app.screen.query_one(RowTable)
        assert table.columns["rating"].label == "label" and table.columns["rating"].width >= len("label")
        assert str(table.get_cell("trace_005", "id")) == "trace_005"
        await pilot.resize_terminal(200, 60)
        await settle(app, pilot)
        cols = _columns(app)
        assert {"time", "id", "source", "input", "output", "steps", "err", "rating", "ext"} <= set(cols)
        assert sum(w + 2 for w in cols.values()) <= 200 and cols["time"] == 19
        external_id = app.screen.query_one(RowTable).get_cell("trace_005", "ext")
        assert str(external_id).startswith("lf-")
        await pilot.resize_terminal(140, 40)  # the external trace_id only while the previews keep their room
        await settle(app, pilot)
        assert "ext" not in _columns(app) and _columns(app)["input"] >= 30


async def test_column_chooser_hides_moves_widens_and_is_remembered(many_db: Path) -> None:
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("C")
        await settle(app, pilot)
        assert isinstance(app.screen, ColumnChooser)
        await pilot.press("space")  # time: hidden
        await pilot.press("down", "J")  # id moved below source
        await pilot.press(*["down"] * 6, "space")  # the external trace_id (last): hidden
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TracesPane)
        keys = list(_columns(app))
        assert "time" not in keys and "ext" not in keys and keys.index("source") < keys.index("id")
    finish(app)
    again = _app(many_db, pane="traces")  # the choice is kept for this database
    async with again.run_test(size=(200, 40)) as pilot:
        await settle(again, pilot)
        keys = list(_columns(again))
        assert "time" not in keys and "ext" not in keys and keys.index("source") < keys.index("id")
    finish(again)


async def test_y_copies_the_trace_id(many_db: Path) -> None:
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "y")
        await settle(app, pilot)
        assert app.clipboard == "trace_004" and "copied trace_004" in _notes(app)


async def test_select_option_selects_the_trace_and_header_says_where(many_db: Path) -> None:
    app = _app(many_db, pane="traces", select="bulk_042")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(RowTable)
        assert table.cursor_key == "bulk_042"
        top, visible = table.visible_rows()
        first = 5 + (250 - 42) + 1 - table.cursor_row + top  # bulk_042 is row 214 of 255, newest first
        assert f"rows {first}–{first + visible - 1} of 255" in _header(app) and "at bulk_042" in _header(app)


async def test_jump_to_a_missing_id_says_so_and_a_filtered_one_names_the_filter(many_db: Path) -> None:
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"nosuch", "enter")
        await settle(app, pilot)
        assert "no trace with id nosuch" in _notes(app) and "current filters" not in _notes(app)
        assert app.screen.query_one(RowTable).row_count == 100  # the list stays
        app.set_trace_filter(sources=("langfuse",))
        app.screen.reload()
        await settle(app, pilot)
        await pilot.press("colon", *"bulk_007", "enter")
        await settle(app, pilot)
        assert "trace bulk_007 is not in the list with the current filters" in _notes(app)


async def test_header_counts_rows_on_screen_and_pgdn_moves_one_screen(many_db: Path) -> None:
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(RowTable)
        _, visible = table.visible_rows()
        assert visible > 10 and f"rows 1–{visible} of 255" in _header(app)  # not the loaded window 1–100
        await pilot.press("pagedown")
        await settle(app, pilot)
        top, _ = table.visible_rows()
        assert top == visible and table.cursor_row == visible  # a whole screen, the cursor at the top of it
        assert f"rows {visible + 1}–{2 * visible} of 255" in _header(app)


async def test_step_search_list_matches_its_header_and_escape_before_a_match(
        many_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    from iofold_tui.data.search import index as search_index

    def slow_scan(conn, key, needle, *, progress=None, cancelled=lambda: False, **_):
        while not release.wait(0.01):  # a scan of a big file: runs until Esc
            if cancelled():
                return search_index.SearchResult([], 0, False, "newest", complete=False, all_rowids=[])
        return search_index.SearchResult([], 0, False, "newest", all_rowids=[])

    monkeypatch.setattr(search_index, "run_search", slow_scan)
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(RowTable)
        before = list(table.rows)
        await pilot.press("slash", *"needle", "enter")
        for _ in range(20):
            await pilot.pause(0.02)
        # While it runs, the list and its header both show the unfiltered list (the search is noted).
        assert 'steps∋' not in _header(app) and "searching steps" in _header(app)
        assert list(table.rows) == before
        await pilot.press("escape")
        release.set()
        await settle(app, pilot)
        assert "of 0" not in _header(app) and "first 0" not in _header(app) and "rows 1–" in _header(app)
        assert "before any match" in _notes(app) and list(table.rows) == before


def test_message_list_preview_reads_as_the_last_user_message() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}]}]
    text = json.dumps(messages)
    assert preview_text(text) == "second"
    # cut inside the message: as far as it goes
    assert preview_text(text[:text.index("second") + 3]) == "sec…"
    assert preview_text("plain [text]") == "plain [text]" and preview_text(None) == ""


async def test_message_list_preview_in_the_trace_list(many_db: Path) -> None:
    with sqlite3.connect(many_db) as conn:
        conn.execute("UPDATE traces SET input_preview = ? WHERE id = 'trace_005'",
                     (json.dumps([{"role": "user", "content": "How do I retry?"}]),))
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert str(app.screen.query_one(RowTable).get_cell("trace_005", "input")) == "How do I retry?"


# -- review -------------------------------------------------------------------------------------------

async def test_review_header_redo_state_and_undo_wording(seed_db: Path) -> None:
    add_unlabelled(seed_db, 2)
    app = make_app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        assert "5 labelled · minimum 5 examples reached" in _header(app)
        bar = app.screen.query_one("#review-bar", Static)
        assert "ux_000" in str(bar.render())
        await pilot.press("a", "u")
        await settle(app, pilot)
        assert "Undid ux_000: positive → unlabelled" in _notes(app)
        await pilot.press("U")
        await settle(app, pilot)
        assert "Redid ux_000: unlabelled → positive" in _notes(app)
        text = str(bar.render())
        assert "THIS SET POSITIVE" in text and "(unlabelled)" not in text
        assert feedback(seed_db, "ux_000")[1] == "positive"
    finish(app)


async def test_blind_mode_hides_other_sets_labels(seed_db: Path) -> None:
    ids = add_unlabelled(seed_db, 1)
    with sqlite3.connect(seed_db) as conn:
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name, minimum_examples) "
                     "VALUES ('set_tone', 'ws_demo', 'tone', 3)")
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) "
                     "VALUES ('fb_tone', 'set_tone', ?, 'negative', 'TONE-NOTE')", (ids[0],))
    app = make_app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        doc = app.screen.query_one("#review-body")
        assert "TONE-NOTE" in doc.summary.plain
        await pilot.press("b")
        await settle(app, pilot)
        assert "TONE-NOTE" not in doc.summary.plain
        assert "LABELS   1 label of other eval sets hidden" in doc.summary.plain
        await pilot.press("t", "a")  # auto-advance off: label, then the trace shows everything
        await settle(app, pilot)
        assert "TONE-NOTE" in doc.summary.plain
    finish(app)


async def test_label_from_the_trace_detail_view(seed_db: Path) -> None:
    ids = add_unlabelled(seed_db, 1)
    app = make_app(seed_db, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")  # the newest trace: ux_000
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen) and app.screen.trace_id == ids[0]
        await pilot.press("x")
        await settle(app, pilot)
        assert feedback(seed_db, ids[0])[1] == "negative"
        assert "response-quality: negative" in _header(app)
        await pilot.press("u")
        await settle(app, pilot)
        assert feedback(seed_db, ids[0]) is None and "response-quality: unlabelled" in _header(app)
        await pilot.press("a", "escape")
        await settle(app, pilot)
        table = app.screen.query_one(RowTable)  # the list re-read the row on return
        assert "pos" in str(table.get_cell(ids[0], "rating"))
        assert feedback(seed_db, ids[0])[1] == "positive"
    finish(app)


async def test_review_footer_fits_140_columns(seed_db: Path) -> None:
    from textual.widgets._footer import FooterKey, FooterLabel

    app = make_app(seed_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        shown = {k.description: k.region for k in app.screen.query(FooterKey) if k.description}
        shown |= {str(label.render()).strip(): label.region for label in app.screen.query(FooterLabel)}
        for wanted in ("New set", "Help", "Pos/Neg/Neu", "Undo/Redo"):
            assert wanted in shown and 0 < shown[wanted].right <= 140 - 12, wanted  # left of the palette key
    finish(app)


# -- keys, help, focus --------------------------------------------------------------------------------

async def test_question_mark_lists_binding_ids_and_current_keys(
        many_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('"traces.copy_id" = "Y"\n"nosuch.binding" = "z"\n"review.skip" = "x"\n')
    monkeypatch.setenv("IOFOLD_TUI_KEYMAP", str(keymap))
    app = _app(many_db, pane="traces")
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        notes = _notes(app)
        assert "unknown binding id nosuch.binding" in notes and "x → review.negative and review.skip" in notes
        from textual.widgets._footer import FooterKey

        footer = {k.description: k.key_display for k in app.screen.query(FooterKey)}
        assert footer.get("Copy id") == "Y"  # the remapped key is what the footer shows
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, KeyHelp)
        rows = {binding_id: keys for keys, binding_id, _ in app.screen.rows}
        assert rows["traces.copy_id"] == "Y" and rows["traces.goto"] == ":" and rows["app.help"] == "?"
        order = list(rows)
        assert order.index("traces.search") < order.index("table.down") < order.index("app.quit")
        await pilot.press("Y")  # the remapped key works (after closing the help)
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("Y")
        await settle(app, pilot)
        assert app.clipboard == "trace_005"


async def test_question_mark_in_other_panes(seed_db: Path) -> None:
    app = _app(seed_db, pane="jobs")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, KeyHelp)
        assert {"jobs.status", "pane.sql", "app.quit"} <= {binding_id for _, binding_id, _ in app.screen.rows}


async def test_label_keys_in_read_only_panes_say_why(seed_db: Path) -> None:
    for pane in ("traces", "matrix"):
        app = _app(seed_db, pane=pane, read_only=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("x")
            await settle(app, pilot)
            assert "labelling disabled" in _notes(app), pane
            assert feedback(seed_db, "trace_005")[1] == "positive"
        finish(app)


async def test_sql_pane_focuses_its_editor_on_arrival(seed_db: Path) -> None:
    app = _app(seed_db, pane="overview")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("S")
        await settle(app, pilot)
        assert isinstance(app.focused, TextArea)
        await pilot.press("f2")  # to the results, then away and back
        assert isinstance(app.focused, DataTable)
        await pilot.press("O")
        await settle(app, pilot)
        await pilot.press("S")
        await settle(app, pilot)
        assert isinstance(app.focused, TextArea) and app.focused.id == "sql-editor"
        assert "F5 runs" in str(app.focused.border_title)


# -- screens and text ---------------------------------------------------------------------------------

@pytest.fixture
def versions_db(tmp_path: Path) -> Path:
    from iofold_tui.data.source.demo.build import generate

    path = tmp_path / "versions.sqlite"
    generate(path, traces=300, eval_sets=1, versions=3, seed=7)
    return path


async def test_matrix_at_80x24_keeps_versions_and_contradictions(versions_db: Path) -> None:
    app = _app(versions_db, pane="matrix")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        grid = app.screen.query_one("#mx-grid", RowTable)
        keys = [str(k) for k in grid.columns]
        assert len([k for k in keys if k.startswith("v:")]) == 3 and {"n", "trace", "human"} <= set(keys)
        assert sum(c.width + 2 for c in grid.columns.values()) <= 80
        assert grid.visible_rows()[1] > 7
        stats = app.screen.query_one("#mx-stats", DataTable)
        columns = [str(k.value) for k in stats.columns]
        assert columns[:4] == ["version", "n", "contradictions", "contradiction_rate"]
        widths = [c.width for c in stats.columns.values()]
        assert sum(widths[:4]) <= 78  # on screen without scrolling


async def test_raw_json_wraps(seed_db: Path) -> None:
    app = _app(seed_db, pane="traces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TraceDetailScreen) and screen.showing_raw
        assert screen.raw_view.word_wrap  # type: ignore[attr-defined]


async def test_overview_warnings_wrap_and_stale_jobs_are_flagged(seed_db: Path) -> None:
    with sqlite3.connect(seed_db) as conn:
        conn.execute("INSERT INTO jobs (id, workspace_id, type, status, progress, created_at, started_at) "
                     "VALUES ('job_old', 'ws_demo', 'import', 'running', 10, "
                     "datetime('now', '-376 days'), datetime('now', '-375 days')), "
                     "('job_new', 'ws_demo', 'import', 'running', 10, "
                     "datetime('now', '-1 hours'), datetime('now', '-1 hours'))")
    app = _app(seed_db, pane="overview")
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#ov-warnings", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        stale = [r for r in rows if "stale jobs" in str(r[0])]
        assert len(stale) == 1 and str(stale[0][1]).strip() == "1"
        assert "1 job has been" in str(stale[0][2]) and "\n" in str(stale[0][2])  # wrapped, not cut
        assert all(max(len(line) for line in str(r[2]).split("\n")) <= 80 - 24 - 8 for r in rows)
        await pilot.press("J")
        await settle(app, pilot)
        assert '1 job "running" for more than 24 h' in _header(app)


async def test_counts_read_in_the_right_number(seed_db: Path) -> None:
    with sqlite3.connect(seed_db) as conn:
        conn.execute("UPDATE traces SET step_count = 1 WHERE id = 'trace_005'")
    app = _app(seed_db, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "1 step " in _header(app) + " " and "1 steps" not in _header(app)
        await pilot.press("escape", "I")
        await settle(app, pilot)
        assert "1 integration" in _header(app) and "integration(s)" not in _header(app)

