"""Review mode, driven by real key presses; every test asserts on the database (and on what is shown)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _review_helpers import (
    ES,
    add_execution,
    add_unlabelled,
    feedback,
    feedback_count,
    finish,
    labels_written,
    make_app,
)
from textual.widgets import Static, TextArea

from iofold_tui.data.labels.review_queue import QueueSpec, next_unlabelled, page_after
from iofold_tui.ui.app import DatabaseChanged
from iofold_tui.ui.panes.review import ReviewPane
from iofold_tui.ui.panes.review_widgets import ReviewDocument
from iofold_tui.ui.screenshot import settle


@pytest.fixture
def db(seed_db: Path) -> Path:
    add_unlabelled(seed_db, 4)
    return seed_db


def text_of(app: object, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)  # type: ignore[attr-defined]


def summary_of(app: object) -> str:
    """The summary part of the review document, as painted lines (not the source Text)."""
    document = app.screen.query_one(ReviewDocument)  # type: ignore[attr-defined]
    return "\n".join(document.render_line(y).text for y in range(document.size.height))


def pane(app: object) -> ReviewPane:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, ReviewPane)
    return screen


async def test_label_relabel_undo_redo(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_000"  # unlabelled first, newest first
        assert "5 labelled · minimum 5 examples reached" in text_of(app, "#pane-header")
        await pilot.press("a")
        await labels_written(app, pilot)
        first = feedback(db, "ux_000")
        assert first is not None and first[1] == "positive" and first[0].startswith("fb_")
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_001"  # auto-advanced after the commit
        assert "6 labelled · minimum 5 examples reached" in text_of(app, "#pane-header")
        await pilot.press("k", "x")  # back, relabel: same row, new rating
        await labels_written(app, pilot)
        again = feedback(db, "ux_000")
        assert again[0] == first[0] and again[1] == "negative"
        await pilot.press("u")  # undo the relabel: the exact previous row
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") == first
        await pilot.press("u")  # undo the first label: the row is deleted
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") is None
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_000"  # undo shows the trace it reverted
        assert "unlabelled" in text_of(app, "#review-bar")
        await pilot.press("U")
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") == first
        await settle(app, pilot)
        assert len(pane(app).latencies) == 2  # one measurement per label that advanced or rendered
    finish(app)


async def test_digit_keys_skip_and_next_unlabelled(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await settle(app, pilot)
        await pilot.press("s")  # skip ux_001: nothing written
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert [feedback(db, t) and feedback(db, t)[1] for t in ("ux_000", "ux_001", "ux_002", "ux_003")] == [
            "positive", None, "negative", "neutral"]
        await pilot.press("right_square_bracket")  # wraps around to the skipped one
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_001"
    finish(app)


async def test_note_editing_saves_and_never_loses_text(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("t")  # auto-advance off: stay on the trace
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.focused, TextArea)
        await pilot.press(*"draft a", "enter", *"x")  # label keys type text while editing
        await pilot.press("escape")
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") is None  # unlabelled: the note waits for the label
        assert "note draft" in text_of(app, "#review-bar")
        await pilot.press("n")
        await labels_written(app, pilot)
        assert feedback(db, "ux_000")[1:3] == ("neutral", "draft a\nx")
        await pilot.press("e", *" more", "escape")
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert feedback(db, "ux_000")[2] == "draft a\nx more"  # an existing label: saved on Esc
        await pilot.press("u")  # the note edit is its own undo step
        await labels_written(app, pilot)
        assert feedback(db, "ux_000")[2] == "draft a\nx"
    finish(app)


async def test_undo_survives_a_restart(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
    finish(app)
    assert feedback(db, "ux_000")[1] == "negative"
    again = make_app(db)  # a new app instance on the same files
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(again, pilot)
        await pilot.press("u")
        await settle(again, pilot)
        await labels_written(again, pilot)
        assert feedback(db, "ux_000") is None
        await pilot.press("U")
        await labels_written(again, pilot)
        assert feedback(db, "ux_000")[1] == "negative"
    finish(again)


async def test_read_only_source_shows_reason_and_writes_nothing(db: Path) -> None:
    before = feedback_count(db)
    app = make_app(db, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "labelling disabled: opened with --read-only" in text_of(app, "#review-bar")
        assert pane(app).check_action("label", ("positive",)) is None  # greyed out in the footer
        await pilot.press("a", "x", "u", "e")
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_000"  # the rest works: navigation
        await pilot.press("j")
        await settle(app, pilot)
        assert pane(app).current.trace_id == "ux_001"
    finish(app)
    assert feedback_count(db) == before


async def test_start_in_review_with_eval_set_by_name_or_id(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name, minimum_examples) "
                     "VALUES ('set_other', 'ws_demo', 'other', 9)")
    conn.close()
    for wanted in ("other", "set_other"):
        app = make_app(db, eval_set=wanted)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            assert pane(app).eval_set.id == "set_other"
            assert "0 labelled · 9 more to the minimum of 9 examples" in text_of(app, "#pane-header")
            assert "no negative example yet" in text_of(app, "#pane-header")
            assert pane(app).current.trace_id == "ux_000"  # everything is unlabelled in a new set
            await pilot.press("a")
        finish(app)
        await labels_written(app, pilot)
        assert feedback(db, "ux_000", "set_other")[1] == "positive"
        await labels_written(app, pilot)
        assert feedback(db, "ux_000") is None  # the other eval set is untouched
        other = sqlite3.connect(db)
        other.execute("DELETE FROM feedback WHERE eval_set_id = 'set_other'")
        other.commit()


async def test_contradicted_first_and_blind_mode(db: Path) -> None:
    add_execution(db, "ux_000", 1)
    conn = sqlite3.connect(db)
    with conn:  # trace_003 is labelled negative: a passing verdict contradicts it, an errored one never does
        conn.execute("UPDATE eval_executions SET result = 1 WHERE trace_id = 'trace_003'")
        conn.execute("UPDATE eval_executions SET result = 0, error = 'TimeoutError' "
                     "WHERE trace_id = 'trace_001'")
    conn.close()
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("b")  # blind: ux_000 is unlabelled, its verdict is hidden
        assert "PASS" not in summary_of(app)
        assert "hidden: blind mode" in summary_of(app)
        await pilot.press("t", "x")  # stay, label: the verdict shows and contradicts the label
        await settle(app, pilot)
        summary = summary_of(app)
        assert "PASS" in summary and "contradicts your label" in summary
        await pilot.press("u")
        await pilot.press("o")  # contradicted by an eval first
        await settle(app, pilot)
        assert pane(app).current.trace_id == "trace_003"
        assert "contradicted by an eval" in text_of(app, "#review-bar")
        await pilot.press("j")
        await settle(app, pilot)
        # then the unlabelled tier (trace_001 errored: not contradicted)
        assert pane(app).current.trace_id == "ux_000"
    finish(app)


async def test_create_eval_set_from_review(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        await pilot.press(*"tone", "tab", *"polite answers", "tab", "backspace", *"3", "ctrl+s")
        await settle(app, pilot)
        conn = sqlite3.connect(db)
        row = conn.execute("SELECT id, workspace_id, description, minimum_examples, created_at "
                           "FROM eval_sets WHERE name = 'tone'").fetchone()
        conn.close()
        assert row is not None and row[0].startswith("set_") and row[1:4] == ("ws_demo", "polite answers", 3)
        assert row[4].endswith("Z") and "T" in row[4]
        assert app.state.eval_set_id == row[0] and pane(app).eval_set.id == row[0]
        assert "0 labelled · 3 more to the minimum of 3 examples" in text_of(app, "#pane-header")
        await pilot.press("c", *"tone", "ctrl+s")  # duplicate names are refused in the form
        await settle(app, pilot)
        assert "already exists" in str(app.screen.query_one("#form-error").content)
    finish(app)


async def test_refresh_when_the_database_changes_underneath(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) "
                         "VALUES ('fb_ext', ?, 'ux_000', 'negative')", (ES,))
        conn.close()
        app.post_message(DatabaseChanged())
        await settle(app, pilot)
        assert "NEGATIVE" in text_of(app, "#review-bar")
        assert "6 labelled · minimum 5 examples reached" in text_of(app, "#pane-header")
    finish(app)


async def test_watcher_ignores_our_own_labels_but_not_other_writers(db: Path) -> None:
    seen: list[int] = []
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.load_catalog = lambda: seen.append(1)  # type: ignore[method-assign]  # what a change triggers
        app.watch_database()  # baseline
        await settle(app, pilot)
        await pilot.press("a", "x")  # two labels through our own connection
        await settle(app, pilot)
        app.watch_database()
        await settle(app, pilot)
        await labels_written(app, pilot)
        assert seen == [] and feedback_count(db) == 7
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE feedback SET notes = 'from a script' WHERE trace_id = 'trace_001'")
        conn.close()
        app.watch_database()
        await settle(app, pilot)
        assert len(seen) == 1
    finish(app)


def test_queue_pages_across_tiers(db: Path) -> None:
    conn = sqlite3.connect(db)
    spec = QueueSpec(ES, "ws_demo")
    first = page_after(conn, spec, None, 3)
    assert [i.trace_id for i in first] == ["ux_000", "ux_001", "ux_002"]
    rest = page_after(conn, spec, first[-1].key, 10)
    assert [i.trace_id for i in rest][:2] == ["ux_003", "trace_005"]  # then the labelled tier
    assert len(first) + len(rest) == 9 and rest[-1].tier == 1
    assert next_unlabelled(conn, spec, (first[-1].timestamp, first[-1].rowid)).trace_id == "ux_003"
    after = (rest[0].timestamp, rest[0].rowid)
    assert next_unlabelled(conn, spec, after, exclude="ux_003").trace_id == "ux_000"
    conn.close()


def thumb_rows(document: ReviewDocument) -> list[int]:
    """Rows whose last cell (the position column) has the thumb's colour, as painted in the last frame."""
    colours = [list(document.render_line(y))[-1].style.bgcolor for y in range(document.size.height)]
    track = max(set(colours), key=colours.count)
    return [y for y, colour in enumerate(colours) if colour != track]


async def test_document_scrolls_and_draws_its_position(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(100, 13)) as pilot:
        await settle(app, pilot)
        document = app.screen.query_one(ReviewDocument)
        height = document.size.height
        assert document.virtual_size.height > height  # the trace is longer than the window
        rows = thumb_rows(document)
        assert rows and rows[0] == 0 and len(rows) < height
        await pilot.press("pagedown")
        await settle(app, pilot)
        assert document.scroll_offset.y == height  # one page, and the arrows stayed next/previous
        assert thumb_rows(document)[0] > 0
        await pilot.press("end")
        await settle(app, pilot)
        assert document.scroll_offset.y == document.max_scroll_y
        assert thumb_rows(document)[-1] == height - 1
        await pilot.press("j")  # the next trace starts at its top
        await settle(app, pilot)
        assert document.scroll_offset.y == 0 and thumb_rows(document)[0] == 0
