"""Snapshot tests at a fixed size (pytest-textual-snapshot). Only screens without timings are
snapshotted, so the SVGs are deterministic. Update with `pytest tests/test_snapshots.py --snapshot-update`
after checking the new rendering by eye."""

from __future__ import annotations

from pathlib import Path

from _hostile import make_hostile_db
from textual.pilot import Pilot

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.trace_detail import TraceDetailScreen
from iofold_tui.ui.screenshot import settle

SIZE = (120, 36)


def _detail(app: IofoldApp, trace_id: str):
    async def run_before(pilot: Pilot) -> None:
        await settle(app, pilot)
        await app.push_screen(TraceDetailScreen(trace_id))
        await settle(app, pilot)

    return run_before


def test_trace_detail_snapshot(seed_db: Path, snap_compare) -> None:
    app = IofoldApp(open_source(seed_db), pane="traces", watch_interval=0)
    assert snap_compare(app, terminal_size=SIZE, run_before=_detail(app, "trace_004"))


def test_hostile_trace_snapshot(tmp_path: Path, snap_compare) -> None:
    path, _ = make_hostile_db(tmp_path / "hostile.sqlite")
    app = IofoldApp(open_source(path), pane="traces", watch_interval=0)
    assert snap_compare(app, terminal_size=SIZE, run_before=_detail(app, "hostile_1"))


def test_raw_json_view_snapshot(seed_db: Path, snap_compare) -> None:
    """The pygments-highlighted raw steps of a span-shaped trace."""
    app = IofoldApp(open_source(seed_db), pane="traces", watch_interval=0)
    assert snap_compare(app, press=["r"], terminal_size=SIZE, run_before=_detail(app, "trace_002"))
