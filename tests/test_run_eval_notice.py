"""Issue 14: a run replaces iofold's stored evals.accuracy / contradiction_count with recounts — the run
dialog says so before the run starts (not for a dry run) and again in its outcome (undo restores them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _eval_runs_helpers import EVAL, FAST, build_flip_template, flip_db
from textual.widgets import Static

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.run_eval import RunEvalScreen, start_eval_run
from iofold_tui.ui.screenshot import settle


@pytest.fixture
def db(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return flip_db(build_flip_template(tmp_path_factory.mktemp("notice-template")), tmp_path)


def notice(screen: RunEvalScreen) -> str:
    return str(screen.query_one("#run-notice", Static).render())


@pytest.mark.parametrize("dry_run", [False, True])
async def test_said_before_the_run_starts(db: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool) -> None:
    monkeypatch.setattr(RunEvalScreen, "_execute", lambda self, dry, results: None)  # hold it at the start
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, dry_run=dry_run, options=FAST)
        await pilot.pause()
        text = notice(screen)
        if dry_run:
            assert "replaces" not in text
        else:
            assert all(word in text for word in ("replaces", "accuracy", "contradiction_count", "restores"))


async def test_said_in_the_outcome(db: Path) -> None:
    app = IofoldApp(open_source(db), pane="traces", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = start_eval_run(app, EVAL, options=FAST)
        await settle(app, pilot)
        assert screen.phase == "done"
        assert "replaced with recounts (u restores them)" in notice(screen)
