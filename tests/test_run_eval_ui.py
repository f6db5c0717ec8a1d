"""Pilot tests of the run-eval modal: a run changes the database and counters, live messages reach the
app and the pane below, dry run previews then applies, undo, cancel, code that cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
from _eval_runs_helpers import EVAL, FAST, build_flip_template, counters, dump, executions, flip_db, set_code
from textual.widgets import DataTable, Static

from iofold_tui.data.evalrun.run_results import RunOptions
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp, css_path
from iofold_tui.ui.run_eval import EvalResultsApplied, RunEvalScreen, start_eval_run
from iofold_tui.ui.screenshot import settle


class RecordingApp(IofoldApp):
    """Records the app-level messages a matrix / evals pane would react to."""

    CSS_PATH = css_path()  # relative paths resolve against the subclass's module
    applied: list[EvalResultsApplied]

    def on_eval_results_applied(self, message: EvalResultsApplied) -> None:
        self.applied = [*getattr(self, "applied", []), message]


@pytest.fixture(scope="session")
def flip_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_flip_template(tmp_path_factory.mktemp("runs-ui-template"))


@pytest.fixture
def db(flip_template: Path, tmp_path: Path) -> Path:
    return flip_db(flip_template, tmp_path)


def text_of(screen: RunEvalScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_run_updates_executions_counters_and_tells_the_panes(db: Path) -> None:
    app = RecordingApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        assert screen.phase == "done" and screen.summary is not None and screen.summary.run_id == 1
        assert "run 1 applied: 5 of 5 traces written; contradictions 0 → 3" in text_of(screen, "#run-notice")
        assert "5/5" in text_of(screen, "#run-counts")
        assert {t: r[1] for t, r in executions(db).items()} == {
            "trace_001": 0, "trace_002": 0, "trace_003": 1, "trace_004": 0, "trace_005": 0}
        assert counters(db) == (5, 3, 0.25)
        assert screen._below is app.screen_stack[-2]  # delivered to the traces pane, bubbled to the app
        assert [m.eval_id for m in app.applied] == [EVAL] * len(app.applied)
        assert sorted(t for m in app.applied for t in m.trace_ids) == [f"trace_00{i}" for i in range(1, 6)]
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, RunEvalScreen)


async def test_undo_key_restores_the_database(db: Path) -> None:
    before = dump(db)
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        assert dump(db) != before
        await pilot.press("u")
        await settle(app, pilot)
        assert screen.phase == "undone" and "run 1 undone" in text_of(screen, "#run-notice")
        assert dump(db) == before


async def test_dry_run_previews_cells_then_applies_for_real(db: Path) -> None:
    before = dump(db)
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, dry_run=True, options=FAST)
        await settle(app, pilot)
        table = screen.query_one(DataTable)
        assert table.display and table.row_count == 4  # 001, 002, 003 and 005 change; 004 stays a fail
        rows = {
            str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)
        }
        assert rows["trace_001"][1:5] == ["positive", "pass", "fail", "now contradicts"]
        assert rows["trace_005"][3] == "error" and "ValueError: boom" in rows["trace_005"][5]
        assert dump(db) == before and "dry run" in text_of(screen, "#run-notice")
        await pilot.press("a")
        await settle(app, pilot)
        assert screen.summary is not None and screen.summary.mode == "write"
        assert counters(db) == (5, 3, 0.25) and not table.display


async def test_read_only_source_shows_results_and_offers_no_apply(db: Path) -> None:
    before = dump(db)
    app = IofoldApp(open_source(db, read_only=True), pane="traces", watch_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        assert "read-only source" in text_of(screen, "#run-notice")
        assert screen.query_one(DataTable).row_count == 4
        assert not screen.check_action("apply", ()) and not screen.check_action("undo", ())
        await pilot.press("a")
        await settle(app, pilot)
        assert dump(db) == before


async def test_escape_cancels_a_running_eval_and_keeps_what_was_written(db: Path) -> None:
    set_code(db, "def response_quality(trace):\n    while trace['trace_id'] == 'trace_003':\n        pass\n"
                 "    return (False, 'slow')\n")
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=RunOptions(jobs=1, timeout_s=30, batch_size=1, flush_s=0))
        await pilot.press("escape")  # trace_003 spins for 30 s: the run is certainly still going
        await settle(app, pilot)
        summary = screen.summary
        assert summary is not None and summary.cancelled and summary.progress.done < 5
        assert "cancelled" in text_of(screen, "#run-notice")
        written = [t for t, r in executions(db).items() if r[2] == "slow"]
        assert len(written) == summary.progress.done and "trace_003" not in written


async def test_code_that_cannot_run_is_explained(db: Path) -> None:
    set_code(db, "import subprocess\ndef response_quality(trace):\n    return (True, '')\n")
    before = dump(db)
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        notice = text_of(screen, "#run-notice")
        assert screen.phase == "failed" and "cannot run" in notice and "subprocess is not allowed" in notice
        assert dump(db) == before


async def test_without_os_layers_the_dialog_asks_before_running(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing layers: nothing runs until the user confirms, and n leaves the database untouched."""
    from iofold_tui.data.evalrun.confinement import Confinement, Layer
    from iofold_tui.data.evalrun.worker.confine import LAYERS
    from iofold_tui.ui import run_eval
    from iofold_tui.ui.widgets import Confirm

    missing = Confinement(tuple(Layer(name, name != "landlock", "test") for name in LAYERS))
    monkeypatch.setattr(run_eval, "check_sandbox", lambda: missing)
    before = dump(db)
    app = RecordingApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm) and "Missing: Landlock" in str(app.screen.question)
        await pilot.press("n")
        await settle(app, pilot)
        assert screen.phase == "failed" and "NOT confined: missing Landlock" in text_of(screen, "#run-notice")
        assert dump(db) == before
        screen._start(dry_run=False)  # asked again: this time the user says yes
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(app, pilot)
        assert screen.options.unconfined and screen.phase == "done"
        assert "NOT confined" in text_of(screen, "#run-sandbox")
        assert dump(db) != before and counters(db) == (5, 3, 0.25)
