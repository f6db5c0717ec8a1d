"""Headless screenshots of any pane (``iofold-tui screenshot``), through Textual's own SVG export."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.worker import WorkerCancelled

from iofold_tui.data.evals.lookup import eval_with_parent
from iofold_tui.data.source.opened import OpenedSource
from iofold_tui.data.traces.lookup import newest_trace_id
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes import PANES
from iofold_tui.ui.widgets import KeyFooter


async def settle(app: IofoldApp, pilot: object, rounds: int = 40) -> None:
    """Wait until no worker runs, the message queues are drained and the footer's keys are built."""
    for _ in range(rounds):
        await pilot.pause()  # type: ignore[attr-defined]
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker replaced by a newer one: keep waiting for that
            continue
        await pilot.pause()  # type: ignore[attr-defined]
        if not any(w.is_running for w in app.workers):
            break
    for _ in range(100):  # the first build of a footer waits for a timer (after the pane's first frame)
        if all(footer.ready for footer in app.screen.query(KeyFooter)):
            await pilot.pause()  # type: ignore[attr-defined]
            break
        await pilot.pause(0.02)  # type: ignore[attr-defined]


async def _render(app: IofoldApp, pane: str, select: str | None, size: tuple[int, int]) -> str:
    async with app.run_test(headless=True, size=size) as pilot:
        await settle(app, pilot)
        if pane == "trace":
            from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

            trace_id = select or _first_trace(app)
            await app.push_screen(TraceDetailScreen(trace_id))
            await settle(app, pilot)
        elif pane in WORKBENCH:
            await _workbench(app, pilot, pane, select)
        elif select and pane not in WORKBENCH and hasattr(app.screen, "select_item"):
            app.screen.select_item(select)
            await settle(app, pilot)
        return app.export_screenshot(title=f"iofold-tui {pane}")


# Screens over the evals pane: --select EVAL [--diff OTHER for compare].
WORKBENCH = ("eval-editor", "compare")


async def _workbench(app: IofoldApp, pilot: object, pane: str, select: str | None) -> None:
    from iofold_tui.ui.panes.compare import CompareScreen
    from iofold_tui.ui.panes.eval_editor import EvalEditorScreen

    row = eval_with_parent(app.db.conn(), select)
    if row is None:
        raise ValueError(f"no eval {select!r} to show" if select
                         else "the database has no eval with a parent")
    if pane == "eval-editor":
        await app.push_screen(EvalEditorScreen(str(row[0])))
    else:
        other = app.state.screenshot_diff_with or row[1]
        if other is None:
            raise ValueError(f"{row[0]} has no parent: give --diff OTHER_EVAL")
        await app.push_screen(CompareScreen(str(other), str(row[0])))
    await settle(app, pilot)
    await pilot.pause(0.5)  # type: ignore[attr-defined]  # the editor's debounced check
    await settle(app, pilot)


def _first_trace(app: IofoldApp) -> str:
    trace_id = newest_trace_id(app.db.conn())
    if trace_id is None:
        raise ValueError("the database has no traces")
    return trace_id


def take_screenshot(
    opened: OpenedSource,
    *,
    pane: str,
    select: str | None,
    eval_set: str | None,
    diff_with: str | None,
    size: tuple[int, int],
    output: Path,
) -> None:
    modes = {p.mode for p in PANES}
    if pane != "trace" and pane not in modes and pane not in WORKBENCH:
        raise ValueError(f"unknown pane {pane!r} (choose from: trace, {', '.join(sorted(modes))}, "
                         f"{', '.join(WORKBENCH)})")
    start = "traces" if pane == "trace" else "evals" if pane in WORKBENCH else pane
    app = IofoldApp(opened, pane=start, eval_set=eval_set, select=select, watch_interval=0)
    app.state.screenshot_diff_with = diff_with
    app.remember_prefs = False  # a screenshot does not change the pane the next start opens
    svg = asyncio.run(_render(app, pane, select, size))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(svg, encoding="utf-8")
