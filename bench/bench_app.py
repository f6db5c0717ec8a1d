"""In-process figures of the real panes, driven by key presses through Textual's Pilot (headless):

* review mode: label key → committed → next trace shown (p50 / p95), and key → committed;
* matrix: relabel key → committed → statistics updated incrementally and painted;
* memory while paging through the trace list and the matrix (RSS sampled as pages go by).

    python bench/bench_app.py DB [--labels 60] [--pages 300]

Labels written by the run are undone at the end (through the same undo path), so DB keeps its content.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events  # noqa: E402

from iofold_tui.data.sources import open_source  # noqa: E402
from iofold_tui.ui.app import IofoldApp  # noqa: E402
from iofold_tui.ui.screenshot import settle  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until(pilot: object, condition, timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause()  # type: ignore[attr-defined]


async def review_latency(db: Path, labels: int, think_ms: float) -> dict[str, float]:
    """Keys go in through the driver, as a terminal's bytes would (not Pilot.press: it also queues a callback
    on every widget and waits for them, work a real session never does). Latency is the key's send time to
    the pane's call_after_refresh once the next trace is painted. ``think_ms`` is the pause between keys (a
    person reads before pressing); 0 presses as soon as the previous trace is shown."""
    app = IofoldApp(open_source(db), pane="review", watch_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        await pilot.press("a")  # warm-up (first store open, first page of the queue)
        await until(pilot, lambda: len(pane.shown_perf) >= 1)
        await settle(app, pilot)
        pane.commit_ms.clear()
        shown: list[float] = []
        for i in range(labels):
            before = len(pane.shown_perf)
            key = "a" if i % 3 else "x"
            sent = time.perf_counter()
            app._driver.send_message(events.Key(key, key))  # type: ignore[union-attr]
            while len(pane.shown_perf) == before:
                await asyncio.sleep(0.0005)
            shown.append((pane.shown_perf[-1] - sent) * 1000)
            if think_ms:
                await asyncio.sleep(think_ms / 1000)
        committed = list(pane.commit_ms)
        for _ in range(labels + 1):
            await pilot.press("u")
            await settle(app, pilot)
    return {"p50_ms": statistics.median(shown), "p95_ms": pct(shown, 0.95), "max_ms": max(shown),
            "commit_p50_ms": statistics.median(committed), "commit_p95_ms": pct(committed, 0.95), "n": len(shown)}


async def matrix_relabel(db: Path, repeats: int = 20) -> dict[str, float]:
    """Relabel key → committed → statistics updated and painted, measured in the pane (``relabel_ms``: the
    key's perf_counter to a call_after_refresh once the patched statistics are on screen), like review mode.
    ``pilot_*`` is the wall time of Pilot's round trip for comparison: it includes Pilot's own idle waits
    (two 20 ms polls of process CPU per key press), so it cannot go below ~40 ms."""
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    walls: list[float] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.current_mode == "matrix")
        pane = app.screen
        await until(pilot, lambda: getattr(pane, "stats", None) is not None, timeout=900)
        await settle(app, pilot)
        pane.relabel_ms.clear()
        for i in range(repeats):
            pane.relabelled = False
            row = app.db.query_one("SELECT rating FROM feedback WHERE eval_set_id = ? AND trace_id = ?",
                                   (pane.set_id, pane.grid.cursor_key))
            key = "x" if row is None or row[0] != "negative" else "a"  # always a real change
            t0 = time.perf_counter()
            await pilot.press(key)
            await until(pilot, lambda i=i: pane.relabelled and len(pane.relabel_ms) >= i + 1)
            walls.append((time.perf_counter() - t0) * 1000)
            await pilot.press("down")
        samples = list(pane.relabel_ms)
        for _ in range(repeats):
            await pilot.press("u")
            await settle(app, pilot)
    return {"p50_ms": statistics.median(samples), "p95_ms": pct(samples, 0.95),
            "pilot_p50_ms": statistics.median(walls), "pilot_p95_ms": pct(walls, 0.95), "n": len(samples)}


async def scroll_memory(db: Path, pane_name: str, pages: int) -> list[tuple[int, float]]:
    app = IofoldApp(open_source(db, read_only=True), pane=pane_name, watch_interval=0)
    series: list[tuple[int, float]] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#traces" if pane_name == "traces" else "PagedTable")
        for page in range(pages):
            table.move_cursor(row=max(table.row_count - 1, 0))
            first = table.cursor_key
            await pilot.press("down")
            await until(pilot, lambda first=first: table.cursor_key != first and table.row_count > 0)
            if page % max(1, pages // 6) == 0 or page == pages - 1:
                series.append((page + 1, rss_mb()))
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", type=Path)
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--think-ms", type=float, default=300.0, help="pause between label keys (default 300 ms)")
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    for think in (args.think_ms, 0.0):
        rev = asyncio.run(review_latency(args.db, args.labels, think))
        print(f"review (next key {think:.0f} ms after a trace is shown): label key → committed → next trace shown: "
              f"p50 {rev['p50_ms']:.1f} ms, p95 {rev['p95_ms']:.1f} ms, max {rev['max_ms']:.1f} ms "
              f"(key → committed p50 {rev['commit_p50_ms']:.1f} ms, p95 {rev['commit_p95_ms']:.1f} ms; n={rev['n']})")
    for name in ("traces", "matrix"):
        if name == "matrix" and args.skip_matrix:
            continue
        series = asyncio.run(scroll_memory(args.db, name, args.pages))
        print(f"{name}: RSS while paging 100-row pages: " + ", ".join(f"page {p}: {m:.0f} MB" for p, m in series))
    if not args.skip_matrix:
        mx = asyncio.run(matrix_relabel(args.db))
        print(f"matrix: relabel key → committed → statistics updated on screen: p50 {mx['p50_ms']:.1f} ms, "
              f"p95 {mx['p95_ms']:.1f} ms (Pilot round trip incl. its idle polling: p50 {mx['pilot_p50_ms']:.1f} ms, "
              f"p95 {mx['pilot_p95_ms']:.1f} ms; n={mx['n']})")


if __name__ == "__main__":
    main()
