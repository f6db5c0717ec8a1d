"""Live D1 figures (issue 19): the app on ``d1://`` against a real D1 binding (``wrangler dev --local``, the
test Worker in tests/fixtures/d1_api_worker), with 0 / 50 / 200 ms added to every request by the Worker,
beside the same data as a local SQLite file (a ``pull`` of it). Headless, through Textual's Pilot:

* launch -> rows on screen: ``open_source`` to the first frame showing the trace list's rows; for d1:// the
  first launch ever, and a later one (which replays the previous launch's reads as one batch);
* page down at reading pace: the cursor on the last row, READ_S of reading, ``pagedown`` -> the frame with the
  new page (read-ahead fetched it during the reading);
* label key -> shown pending (the frame after the intent is queued), -> acknowledged by D1 (the frame after
  the writer's ack);
* requests per minute while browsing (the paging phase, reading pace included).

    python bench/bench_d1remote.py [--traces 20000] [--delays 0,50,200] [--pages 8] [--json]

Needs wrangler (node_modules/.bin); no network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

READ_S = 1.5


def _seed(api: Any, traces: int) -> None:
    api.exec(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {traces}) "
        "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, metadata, steps, "
        "input_preview, output_preview, step_count, has_errors) SELECT printf('bulk_%07d', i), 'ws_demo', "
        "'int_langfuse_demo', printf('ext-%07d', i), 'langfuse', "
        "printf('2025-%02d-%02d %02d:%02d:%02d', 1 + i % 9, 1 + i % 28, i % 24, i % 60, i % 59), '{}', "
        "'[{\"role\": \"user\", \"content\": \"question ' || i || '\"}]', "
        "'question ' || i || ' about the order', "
        "'answer ' || i || ' with some detail', 3, i % 11 = 0 FROM n",
        "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
        "SELECT 'fb_' || id, 'set_response_quality', id, "
        "CASE WHEN rowid % 2 = 0 THEN 'positive' ELSE 'negative' END, "
        "NULL, '2025-10-30 00:00:00', '2025-10-30 00:00:00' "
        "FROM traces WHERE id LIKE 'bulk_%' AND rowid % 3 = 0")


async def _until(pilot: Any, cond: Any, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause()


FRAMES: list[float] = []


def _record_frames() -> None:
    from iofold_tui.ui.app import IofoldApp

    original = IofoldApp._display

    def display(self: Any, screen: Any, renderable: Any) -> None:
        original(self, screen, renderable)
        if renderable is not None:
            FRAMES.append(time.perf_counter())

    IofoldApp._display = display  # type: ignore[method-assign]


def _frame_after(t: float) -> bool:
    return bool(FRAMES) and FRAMES[-1] > t


async def launch_only(target: str) -> float:
    """A first launch ever (no launch recording to replay): open_source -> rows on screen, ms."""
    from iofold_tui.data import paths
    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.panes.traces import TracesPane

    for f in (paths.data_dir() / "d1").glob("*.warm.json"):
        f.unlink()
    applied: list[float] = []
    original = TracesPane.on_page_loaded

    def on_page_loaded(self: Any, message: Any) -> None:
        original(self, message)
        applied.append(time.perf_counter())

    TracesPane.on_page_loaded = on_page_loaded  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        app = IofoldApp(open_source(target), pane="traces")
        async with app.run_test(size=(140, 40)) as pilot:
            await _until(pilot, lambda: applied and _frame_after(applied[0]))
            took = (next(f for f in FRAMES if f > applied[0]) - t0) * 1000
            await pilot.pause(4.5)  # let it record this launch's reads for the next one
            return took
    finally:
        TracesPane.on_page_loaded = original  # type: ignore[method-assign]


async def measure(target: str, pages: int, label: bool) -> dict[str, Any]:
    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.panes.traces import TracesPane

    applied: list[float] = []
    original = TracesPane.on_page_loaded

    def on_page_loaded(self: Any, message: Any) -> None:
        original(self, message)
        applied.append(time.perf_counter())

    TracesPane.on_page_loaded = on_page_loaded  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    opened = open_source(target)
    app = IofoldApp(opened, pane="traces")
    client = getattr(opened.db, "remote", None)
    client = client.client if client is not None else None
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await _until(pilot, lambda: applied and _frame_after(applied[0]))
            out["launch_ms"] = (next(f for f in FRAMES if f > applied[0]) - t0) * 1000
            table = app.screen.query_one("#traces")
            samples = []
            req0, tb = (client.stats.requests if client else 0), time.perf_counter()
            for _ in range(pages):
                table.move_cursor(row=max(table.row_count - 1, 0))
                await pilot.pause(READ_S)  # reading: the read-ahead fetches the next page meanwhile
                done = len(applied)
                t1 = time.perf_counter()
                await pilot.press("pagedown")
                await _until(pilot, lambda done=done: len(applied) > done and _frame_after(applied[-1]))
                samples.append((next(f for f in FRAMES if f > applied[-1]) - t1) * 1000)
            elapsed = time.perf_counter() - tb
            out["pagedown_p50_ms"] = statistics.median(samples)
            out["pagedown_max_ms"] = max(samples)
            if client:
                out["requests_per_min_browsing"] = round((client.stats.requests - req0) * 60 / elapsed, 1)
            if label:
                from iofold_tui.ui.labeling import LabelQueue

                added: list[float] = []
                acked: list[float] = []
                orig_add, orig_event = LabelQueue._add, LabelQueue._on_event

                def _add(self: Any, intent: Any) -> Any:
                    added.append(time.perf_counter())
                    return orig_add(self, intent)

                def _on_event(self: Any, event: Any) -> None:
                    orig_event(self, event)
                    if event.kind == "applied":
                        acked.append(time.perf_counter())

                LabelQueue._add, LabelQueue._on_event = _add, _on_event  # type: ignore[method-assign]
                pend, ack = [], []
                try:
                    for i in range(6):
                        await pilot.pause(0.5)
                        n_add, n_ack = len(added), len(acked)
                        t1 = time.perf_counter()
                        await pilot.press("a" if i % 2 == 0 else "x")
                        await _until(pilot, lambda n=n_add: len(added) > n and _frame_after(added[-1]))
                        pend.append((next(f for f in FRAMES if f > added[-1]) - t1) * 1000)
                        await _until(pilot, lambda n=n_ack: len(acked) > n and _frame_after(acked[-1]),
                                     timeout=30)
                        ack.append((next(f for f in FRAMES if f > acked[-1]) - t1) * 1000)
                        await pilot.press("down")
                finally:
                    LabelQueue._add, LabelQueue._on_event = orig_add, orig_event  # type: ignore[method-assign]
                out["label_pending_p50_ms"] = statistics.median(pend)
                out["label_acked_p50_ms"] = statistics.median(ack)
                out["label_acked_max_ms"] = max(ack)
    finally:
        TracesPane.on_page_loaded = original  # type: ignore[method-assign]
    return out


def _real_launch(target: str, env: dict[str, str]) -> float:
    """A real ``iofold-tui`` process in a tmux pane (bench/tui_probe.py): process start -> 20 trace rows on
    the terminal, ms. Includes the imports, which the app overlaps with the network for d1://."""
    sys.path.insert(0, str(ROOT / "bench"))
    from tui_probe import launch

    names = ("IOFOLD_TUI_DATA_DIR", "IOFOLD_TUI_CACHE_DIR", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID",
             "IOFOLD_D1_API_BASE")
    command = ["env", *(f"{k}={env[k]}" for k in names if k in env), sys.executable, "-m", "iofold_tui",
               target, "--pane", "traces"]
    result = launch(command, lambda screen: screen.count("bulk_") >= 20, cwd=ROOT)
    return result.seconds * 1000


def real_launches(target: str, runs: int) -> dict[str, float]:
    """Medians of ``runs`` real launches: for d1://, a first launch ever (its recordings removed first)
    and a later one; for a file, the launch."""
    from iofold_tui.data import paths

    first, later = [], []
    for _ in range(runs):
        if target.startswith("d1://"):
            for folder in (paths.data_dir() / "d1", paths.cache_dir() / "d1"):
                for f in [*folder.glob("*.warm.json"), *folder.glob("*.offline.json")]:
                    f.unlink()
            first.append(_real_launch(target, dict(os.environ)))
            # The measured launch is closed as soon as its rows show, before its recording is saved (4 s):
            # record one in-process for the later launch to replay.
            asyncio.run(launch_only(target))
        later.append(_real_launch(target, dict(os.environ)))
    out = {"real_launch_ms": statistics.median(later)}
    if first:
        out["real_launch_first_ever_ms"] = statistics.median(first)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--delays", default="0,50,200")
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--real", type=int, default=0,
                        help="also N real launches (a process in tmux, imports included) per source")
    args = parser.parse_args()
    from d1_api_tools import ACCOUNT, TOKEN_RW, D1Api

    work = Path(tempfile.mkdtemp(prefix="iofold-bench-d1-"))
    os.environ.update({"IOFOLD_TUI_DATA_DIR": str(work / "data"), "IOFOLD_TUI_CACHE_DIR": str(work / "cache"),
                       "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT})
    _record_frames()
    api = D1Api().start()
    results: dict[str, Any] = {}
    try:
        _seed(api, args.traces)
        os.environ["IOFOLD_D1_API_BASE"] = api.api_base
        from iofold_tui.data.source.d1.opening import connect_client
        from iofold_tui.data.source.d1.pull import pull

        copy = work / "copy.sqlite"
        report = pull(connect_client("d1://iofold"), copy)
        results["pull"] = {"rows": sum(report.tables.values()), "requests": report.requests,
                           "seconds": round(report.seconds, 2)}
        results["local"] = asyncio.run(measure(str(copy), args.pages, label=True))
        if args.real:
            results["local"].update(real_launches(str(copy), args.real))
        for delay in (int(d) for d in args.delays.split(",")):
            api.faults(delay_ms=delay)
            t = time.perf_counter()
            api.faults(delay_ms=delay)
            from d1_api_tools import DB_ID

            from iofold_tui.data.source.d1.client import D1Client

            probe = D1Client(ACCOUNT, DB_ID, TOKEN_RW, api_base=api.api_base)
            rtts = []
            for _ in range(5):
                t = time.perf_counter()
                probe.raw("SELECT 1")
                rtts.append((time.perf_counter() - t) * 1000)
            cold = asyncio.run(launch_only("d1://iofold"))
            res = asyncio.run(measure("d1://iofold", args.pages, label=True))
            res["round_trip_ms"] = statistics.median(rtts)
            res["launch_first_ever_ms"] = cold
            if args.real:
                res.update(real_launches("d1://iofold", args.real))
            results[f"d1+{delay}ms"] = res
        api.faults()
    finally:
        api.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"pull: {results['pull']}")
    keys = ["round_trip_ms", "launch_first_ever_ms", "launch_ms", "real_launch_first_ever_ms",
            "real_launch_ms", "pagedown_p50_ms", "pagedown_max_ms",
            "label_pending_p50_ms", "label_acked_p50_ms", "label_acked_max_ms", "requests_per_min_browsing"]
    print(f"{'':<28}" + "".join(f"{k:>14}" for k in results if k != "pull"))
    for key in keys:
        cells = []
        for name, res in results.items():
            if name == "pull":
                continue
            v = res.get(key)
            cells.append(f"{v:>14.0f}" if isinstance(v, (int, float)) else f"{'—':>14}")
        print(f"{key:<28}" + "".join(cells))


if __name__ == "__main__":
    main()
