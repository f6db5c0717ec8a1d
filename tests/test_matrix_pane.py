"""The matrix pane, driven by real key presses on the hand-computed database of test_matrix.py
(eval set S "quality", versions v1/v2, sets O/P labelling the same traces). Every test asserts on what
is shown and, for labels, on the database and on statistics recomputed from scratch."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from _matrix_db import NEWEST_FIRST, build_matrix_db
from _matrix_helpers import (
    cursor,
    goto_row,
    grid_cell,
    make_app,
    notes,
    pane,
    row_ids,
    stat,
)
from textual.widgets import Input, Static

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import labeling
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.models import matrix as matrix_mod  # the matrix pane's model: page size, statistics
from iofold_tui.ui.panes.matrix_dialogs import CellDetailScreen, SourceDateScreen
from iofold_tui.ui.panes.trace_detail import TraceDetailScreen
from iofold_tui.ui.screenshot import settle


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_matrix_db(tmp_path_factory.mktemp("matrix-pane") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "matrix.sqlite"
    shutil.copyfile(template, path)
    return path


async def test_grid_stats_and_honest_notes(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert row_ids(app) == NEWEST_FIRST  # t11 is labelled only in another set: not a row of S
        assert cursor(app) == ("t13", "v:v1")  # the first version column
        assert grid_cell(app, "t13", "v:v1") == "✓ pass ≠"  # negative label, pass: readable without colour
        assert grid_cell(app, "t06", "v:v1") == "⚠ error"
        assert grid_cell(app, "t09", "v:v1") == "· —"
        assert grid_cell(app, "t04", "v:v2") == "✗ fail"
        assert grid_cell(app, "t13", "n") == "2"
        assert "neg" in grid_cell(app, "t13", "human") and grid_cell(app, "t13", "note") == "note S t13"
        # v1: TP 2, FN 1, FP 2, TN 2 (hand-computed in test_matrix.py)
        assert [stat(app, "v1", c) for c in ("n", "TP", "FN", "FP", "TN")] == ["7", "2", "1", "2", "2"]
        assert stat(app, "v1", "accuracy") == "0.571≠"  # stored 0.9 differs
        assert stat(app, "v1", "cohens_kappa") == "0.160"
        counts = [stat(app, "v1", c) for c in ("error", "neutral", "unlabelled", "not_run")]
        assert counts == ["1", "1", "2", "1"]
        assert stat(app, "v2", "recall") == "1.000" and stat(app, "v2", "contradictions") == "2"
        text = notes(app)
        assert "source: eval_comparison view" in text
        assert "stored accuracy 0.900 ≠ recomputed 0.571" in text
        assert "stored contradiction_count 6 ≠ recomputed 3" in text
        assert "would say 6 contradictions over 16 rows" in text and "inflated" in text
    labeling.close_label_store(app)


async def test_undefined_metrics_read_na_with_reason(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE feedback SET rating = 'positive' WHERE eval_set_id = 'S' AND rating = 'negative'")
    conn.commit()
    conn.close()
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert stat(app, "v1", "specificity") == "n/a*"  # never 0
        assert "specificity* n/a (no human negatives)" in notes(app)
    labeling.close_label_store(app)


FILTER_KEYS = {  # key -> rows of S it shows (hand-computed from the table in test_matrix.py)
    "1": ["t13", "t12", "t03", "t02"],  # contradictions
    "2": ["t10", "t09", "t06", "t04", "t01"],  # agreements only (t06: v1 errored, v2 agrees)
    "3": ["t08", "t06"],  # errors
    "4": ["t08", "t07"],  # unlabelled, run
    "5": ["t05"],  # neutral
    "6": ["t12", "t07", "t05", "t03", "t02"],  # one version passes, another fails
}


async def test_filter_keys(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        for key, expected in FILTER_KEYS.items():
            await pilot.press(key)
            await settle(app, pilot)
            assert row_ids(app) == expected, key
        await pilot.press("0")
        await settle(app, pilot)
        assert row_ids(app) == NEWEST_FIRST
    labeling.close_label_store(app)


async def test_search_source_date_and_clear(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        app.screen.query_one("#search-bar", Input).value = "needle"  # typing it key by key is slow in Pilot
        await pilot.press("enter")
        await settle(app, pilot)
        assert row_ids(app) == ["t08", "t03"]
        assert "needle" in str(app.screen.query_one("#pane-header", Static).content)
        await pilot.press("c")
        await settle(app, pilot)
        assert row_ids(app) == NEWEST_FIRST and not app.screen.query_one("#search-bar", Input).has_focus
        await pilot.press("d")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, SourceDateScreen)
        dialog.query_one("#date-from", Input).value = "2025-01-03"
        dialog.query_one("#date-to", Input).value = "2025-01-09"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert row_ids(app) == ["t09", "t08", "t07", "t05", "t06", "t04", "t03"]
        await pilot.press("1")  # filters combine
        await settle(app, pilot)
        assert row_ids(app) == ["t03"]
    labeling.close_label_store(app)


async def test_contradiction_jumps_across_pages(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix_mod, "PAGE_SIZE", 3)
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert row_ids(app) == ["t13", "t12", "t10"]
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert cursor(app)[0] == "t12"
        await pilot.press("right_square_bracket")  # t03 is on a later page
        await settle(app, pilot)
        assert cursor(app) == ("t03", "v:v1") and "t03" in row_ids(app)
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert cursor(app)[0] == "t02"
        await pilot.press("right_square_bracket")  # none below: stay
        await settle(app, pilot)
        assert cursor(app)[0] == "t02"
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(app, pilot)
        assert cursor(app)[0] == "t12"
    labeling.close_label_store(app)


async def test_most_contradicted_sort(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("o")  # oldest first
        await settle(app, pilot)
        assert row_ids(app) == NEWEST_FIRST[::-1]
        await pilot.press("o")  # most contradicted first
        await settle(app, pilot)
        assert row_ids(app)[:4] == ["t13", "t12", "t03", "t02"]
        assert "most contradicted first" in str(app.screen.query_one("#pane-header", Static).content)
    labeling.close_label_store(app)


async def test_enter_on_a_cell_shows_verdict_reason_code_and_note(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE eval_executions SET stdout = 'printed line', stderr = 'warned' "
                 "WHERE id = 'ex_v1_t03'")
    conn.commit()
    conn.close()
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await goto_row(app, pilot, "t03")
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CellDetailScreen)
        verdict = str(screen.query_one("#cell-verdict", Static).content)
        for part in ("PASS", "contradicts the human label", "neg", "note S t03", "reason v1 t03",
                     "printed line", "warned"):
            assert part in verdict, part
        assert "def quality" in screen.query_one("#cell-code", Static).content.code  # type: ignore[union-attr]
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("left", "left")  # a non-version column: the whole trace
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen) and app.screen.trace_id == "t03"
    labeling.close_label_store(app)


async def test_enter_on_a_confusion_cell_lists_exactly_those_traces(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        app.set_trace_filter(text="unrelated", sources=("openai",))  # must not narrow the drill-down
        await pilot.press("tab")
        stats = pane(app).stats_table
        assert stats.has_focus
        stats.move_cursor(row=0, column=[str(k.value) for k in stats.columns].index("FP"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.current_mode == "review"  # as a review queue
        flt = app.state.trace_filter
        assert sorted(flt.trace_ids or ()) == ["t03", "t13"] and flt.text == "" and flt.sources == ()
        review = app.screen
        assert review.use_filter and review.current is not None and review.current.trace_id in ("t03", "t13")
        await pilot.press("s")  # skip: the queue holds exactly the two traces
        await settle(app, pilot)
        assert review.current is not None and review.current.trace_id in ("t03", "t13")
        await pilot.press("T")
        await settle(app, pilot)
        assert sorted(str(k.value) for k in app.screen.query_one("#traces").rows) == ["t03", "t13"]
    labeling.close_label_store(app)


async def test_pending_matrix_eval_and_select_item(db: Path) -> None:
    app = make_app(db, pane="traces")
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        app.state.pending_matrix_eval = "v2"  # what the evals pane sets before switching
        await pilot.press("M")
        await settle(app, pilot)
        assert cursor(app)[1] == "v:v2" and app.state.pending_matrix_eval is None
        pane(app).select_item("t04")
        await settle(app, pilot)
        assert cursor(app) == ("t04", "v:v2")
        pane(app).select_item("other")  # an eval set by name
        await settle(app, pilot)
        assert app.state.eval_set_id == "O" and [str(k.value) for k in pane(app).stats_table.rows] == ["o1"]
        pane(app).select_item("v1")  # an eval of another set: switch back and focus its column
        await settle(app, pilot)
        assert app.state.eval_set_id == "S" and cursor(app)[1] == "v:v1"
    labeling.close_label_store(app)


async def test_statistics_cache_on_reopen(db: Path) -> None:
    for expected in (False, True):
        app = make_app(db)
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(app, pilot)
            assert pane(app).stats_cached is expected
            assert stat(app, "v1", "TP") == "2"
        labeling.close_label_store(app)


async def test_hostile_text_is_shown_inert(tmp_path: Path) -> None:
    from _hostile import HOSTILE_STRINGS, make_hostile_db

    path, ids = make_hostile_db(tmp_path / "hostile.sqlite")
    conn = sqlite3.connect(path)
    for i, trace in enumerate(ids[:len(HOSTILE_STRINGS)]):
        hostile = HOSTILE_STRINGS[i]
        conn.execute("INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, "
                     "error, stdout) VALUES (?, 'eval_response_quality_v1', ?, 1, ?, 1, ?, ?)",
                     (f"hx{i}", trace, hostile, hostile if i % 2 else None, hostile))
    conn.commit()
    conn.close()
    app = IofoldApp(open_source(path), pane="matrix", eval_set="response-quality", watch_interval=0)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert {f"hostile_{i}" for i in range(len(HOSTILE_STRINGS))} <= set(row_ids(app))
        note = grid_cell(app, "hostile_0", "note")
        assert "[bold red]not markup" in note  # literal, not interpreted
        assert "\x1b" not in grid_cell(app, "hostile_1", "note")
        await goto_row(app, pilot, "hostile_1")
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CellDetailScreen)
        shown = str(screen.query_one("#cell-verdict", Static).content)
        assert "ANSI red" in shown and "\x1b" not in shown and "\x07" not in shown
    labeling.close_label_store(app)
