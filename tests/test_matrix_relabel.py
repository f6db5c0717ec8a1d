"""The matrix pane's label keys, driven by real key presses on the hand-computed database of
test_matrix.py: the row and the statistics follow a relabel and its undo incrementally (always equal to a
recompute from scratch), a hidden version's column comes back for it, a read-only source refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _matrix_db import build_matrix_db
from _matrix_helpers import (
    assert_stats_match_db,
    goto_row,
    grid_cell,
    make_app,
    pane,
    rating,
    row_ids,
    stat,
)

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import labeling
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.models import matrix as matrix_mod  # the matrix pane's model: statistics
from iofold_tui.ui.panes.matrix_dialogs import VersionPicker
from iofold_tui.ui.screenshot import settle


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_matrix_db(tmp_path_factory.mktemp("matrix-relabel") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "matrix.sqlite"
    shutil.copyfile(template, path)
    return path


async def test_relabel_updates_row_and_stats_incrementally_and_undo(db: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        calls: list[str] = []
        monkeypatch.setattr(matrix_mod, "cached_stats", lambda *a, **k: calls.append("full") or None)
        await pilot.press("a")  # t13: negative -> positive; both versions pass it
        await settle(app, pilot)
        assert rating(db, "t13") == "positive"
        assert grid_cell(app, "t13", "v:v1") == "✓ pass" and grid_cell(app, "t13", "n") == ""
        assert [stat(app, "v1", c) for c in ("TP", "FP")] == ["3", "1"]
        assert [stat(app, "v2", c) for c in ("TP", "FP")] == ["4", "1"]
        assert_stats_match_db(app, db)
        assert pane(app).relabelled and calls == []  # no recompute
        await goto_row(app, pilot, "t08")  # unlabelled, v2 errored
        await pilot.press("n")
        await settle(app, pilot)
        assert rating(db, "t08") == "neutral" and stat(app, "v1", "neutral") == "2"
        assert_stats_match_db(app, db)
        await pilot.press("u")
        await settle(app, pilot)
        assert rating(db, "t08") is None and stat(app, "v1", "unlabelled") == "2"
        await pilot.press("u")
        await settle(app, pilot)
        assert rating(db, "t13") == "negative" and grid_cell(app, "t13", "v:v1") == "✓ pass ≠"
        assert [stat(app, "v1", c) for c in ("TP", "FP")] == ["2", "2"]
        assert_stats_match_db(app, db)
        await pilot.press("U")
        await settle(app, pilot)
        assert rating(db, "t13") == "positive" and stat(app, "v2", "FP") == "1"
        assert_stats_match_db(app, db)
        pane(app).reload()  # what the app does when the file changed underneath
        await settle(app, pilot)
        assert calls == [] and stat(app, "v2", "FP") == "1"
    labeling.close_label_store(app)


async def test_stats_table_on_screen_follows_a_relabel_and_its_undo(db: Path) -> None:
    """The numbers painted, not only the table's data: a relabel and its undo patch the same rows twice
    between two table rebuilds (a cache of the row's renderables once kept the first patch on screen)."""
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        table = pane(app).stats_table

        def painted(eval_id: str) -> str:
            return table.render_line(table.get_row_index(eval_id) + table.header_height).text

        def data(eval_id: str) -> str:
            return "".join(str(c) for c in table.get_row(eval_id))

        for key in ("a", "u", "a", "u"):  # t13: negative -> positive, back, and again
            await pilot.press(key)
            await settle(app, pilot)
            for eval_id in ("v1", "v2"):
                assert painted(eval_id).rstrip() == data(eval_id).rstrip(), key
        assert stat(app, "v1", "FP") == "2"
        assert_stats_match_db(app, db)
    labeling.close_label_store(app)


async def test_version_choice_and_relabel_of_a_hidden_version(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, VersionPicker)
        await pilot.press("space", "enter")  # untick v1 (the highlighted first option), apply
        await settle(app, pilot)
        keys = [str(k.value) for k in pane(app).grid.columns]
        assert "v:v2" in keys and "v:v1" not in keys
        assert [str(k.value) for k in pane(app).stats_table.rows] == ["v2"]
        await pilot.press("1")  # contradictions of v2 only
        await settle(app, pilot)
        assert row_ids(app) == ["t13", "t12"]
        await pilot.press("0")
        await settle(app, pilot)
        await goto_row(app, pilot, "t10")  # positive; v1 pass (hidden column), v2 not run
        await pilot.press("x")
        await settle(app, pilot)
        assert rating(db, "t10") == "negative"
        assert_stats_match_db(app, db)  # v1's hidden statistics moved too (TP -> FP)
        assert [s.fp for s in pane(app).stats or [] if s.eval_id == "v1"] == [3]
    labeling.close_label_store(app)


async def test_read_only_source_refuses_labels(db: Path) -> None:
    app = IofoldApp(open_source(db, read_only=True), pane="matrix", eval_set="quality", watch_interval=0)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")  # the key stays live: it says why it does nothing
        await settle(app, pilot)
        assert rating(db, "t13") == "negative" and stat(app, "v1", "FP") == "2"
        assert any("labelling disabled" in str(n.message) for n in app._notifications)
    labeling.close_label_store(app)
