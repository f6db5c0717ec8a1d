"""In-process figures of the real panes, driven by key presses through Textual's Pilot (headless):

* matrix: relabel key → committed → statistics updated incrementally and painted;
* page down / end / home in the trace list and the matrix: key → the frame with the new page;
* memory while paging through the trace list and the matrix (RSS sampled as pages go by).

    python bench/bench_app.py DB [--pages 300]

(Review mode's label key → next trace is measured in a real terminal by bench/bench.py.)

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

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.screenshot import settle


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until(pilot: object, condition, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause()  # type: ignore[attr-defined]


FRAMES: list[float] = []  # perf_counter() of every frame the compositor hands to the driver


def _record_frames() -> None:
    original = IofoldApp._display

    def display(self: IofoldApp, screen: object, renderable: object) -> None:
        original(self, screen, renderable)
        if renderable is not None:
            FRAMES.append(time.perf_counter())

    IofoldApp._display = display  # type: ignore[method-assign]


async def matrix_relabel(db: Path, repeats: int = 40) -> dict[str, float]:
    """Relabel key → committed → statistics patched → the frame that shows them: from just before the key
    is sent (Pilot) to the first frame rendered after the pane applied the patched statistics."""
    from iofold_tui.ui.panes.matrix import MatrixPane

    patched: list[float] = []
    original = MatrixPane.on_relabelled

    def on_relabelled(self: MatrixPane, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        patched.append(time.perf_counter())

    MatrixPane.on_relabelled = on_relabelled  # type: ignore[method-assign]
    app = IofoldApp(open_source(db), pane="matrix", watch_interval=0)
    samples: list[float] = []
    split: list[tuple[float, float]] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.current_mode == "matrix")
        pane = app.screen
        await until(pilot, lambda: getattr(pane, "stats", None) is not None, timeout=900)
        await settle(app, pilot)
        for i in range(repeats + 1):  # the first one warms up (first write, first patch): not counted
            pane.relabelled = False
            row = app.db.query_one("SELECT rating FROM feedback WHERE eval_set_id = ? AND trace_id = ?",
                                   (pane.set_id, pane.grid.cursor_key))
            key = "x" if row is None or row[0] != "negative" else "a"  # always a real change
            done = len(patched)
            t0 = time.perf_counter()
            await pilot.press(key)
            await until(pilot, lambda done=done: len(patched) > done and pane.relabelled
                        and FRAMES and FRAMES[-1] > patched[-1])
            frame = next(f for f in FRAMES if f > patched[-1])
            if i:
                samples.append((frame - t0) * 1000)
                split.append(((patched[-1] - t0) * 1000, (frame - patched[-1]) * 1000))
            await pilot.press("down")
            await settle(app, pilot)
        for _ in range(repeats + 1):
            await pilot.press("u")
            await settle(app, pilot)
    MatrixPane.on_relabelled = original  # type: ignore[method-assign]
    print("  (key → statistics patched, patched → frame) ms:", " ".join(f"{a:.0f}/{b:.0f}" for a, b in split))
    return {"p50_ms": statistics.median(samples), "p95_ms": pct(samples, 0.95), "n": len(samples)}


async def paging_latency(db: Path, pane_name: str, presses: int = 30) -> dict[str, float]:
    """What a user waits for: the key (``pagedown`` on the last row, ``end``, ``home``) to the first frame
    rendered after the pane applied the new page (query + table rebuild + render), not the query alone."""
    from iofold_tui.ui.panes.matrix import MatrixPane
    from iofold_tui.ui.panes.traces import TracesPane

    cls = TracesPane if pane_name == "traces" else MatrixPane
    applied: list[float] = []
    original = cls.on_page_loaded

    def on_page_loaded(self: object, message: object) -> None:
        original(self, message)  # type: ignore[arg-type]
        applied.append(time.perf_counter())

    cls.on_page_loaded = on_page_loaded  # type: ignore[method-assign]
    original_move = getattr(cls, "on_move_to", None)
    if original_move is not None:  # the matrix's jump may land on the page already shown: a cursor move

        def on_move_to(self: object, message: object) -> None:
            original_move(self, message)  # type: ignore[misc]
            applied.append(time.perf_counter())

        cls.on_move_to = on_move_to  # type: ignore[attr-defined]
    app = IofoldApp(open_source(db, read_only=True), pane=pane_name, watch_interval=0)
    result: dict[str, float] = {}
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.current_mode == pane_name, timeout=900)
        await settle(app, pilot)
        table = app.screen.query_one("#traces" if pane_name == "traces" else "#mx-grid")
        for key in ("pagedown", "end", "home"):
            samples = []
            for _ in range(presses if key == "pagedown" else max(5, presses // 3)):
                if key == "pagedown":
                    table.move_cursor(row=max(table.row_count - 1, 0))
                await settle(app, pilot)
                done = len(applied)
                t0 = time.perf_counter()
                await pilot.press(key)
                await until(
                    pilot, lambda done=done: len(applied) > done and FRAMES and FRAMES[-1] > applied[-1]
                )
                samples.append((next(f for f in FRAMES if f > applied[-1]) - t0) * 1000)
            result[f"{key}_p50_ms"], result[f"{key}_p95_ms"] = statistics.median(samples), pct(samples, 0.95)
        # Jump: to a random trace id in the trace list (what ':' + Enter runs), to the next contradiction
        # (']') in the matrix.
        ids = [row[0] for row in app.db.query("SELECT id FROM traces WHERE rowid IN (SELECT abs(random()) % "
                                              "(SELECT max(rowid) FROM traces) + 1 FROM traces LIMIT 20)")]
        samples = []
        for trace_id in ids[:max(5, presses // 3)]:
            await settle(app, pilot)
            done = len(applied)
            t0 = time.perf_counter()
            if pane_name == "traces":
                app.screen.select_item(trace_id)  # type: ignore[attr-defined]
            else:
                await pilot.press("right_square_bracket")
            await until(pilot, lambda done=done: len(applied) > done and FRAMES and FRAMES[-1] > applied[-1])
            samples.append((next(f for f in FRAMES if f > applied[-1]) - t0) * 1000)
        result["jump_p50_ms"], result["jump_p95_ms"] = statistics.median(samples), pct(samples, 0.95)
    cls.on_page_loaded = original  # type: ignore[method-assign]
    if original_move is not None:
        cls.on_move_to = original_move  # type: ignore[attr-defined]
    return result


async def scroll_memory(db: Path, pane_name: str, pages: int) -> list[tuple[int, float]]:
    app = IofoldApp(open_source(db, read_only=True), pane=pane_name, watch_interval=0)
    series: list[tuple[int, float]] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#traces" if pane_name == "traces" else "#mx-grid")
        for page in range(pages):
            table.move_cursor(row=max(table.row_count - 1, 0))
            first = table.cursor_key
            await pilot.press("down")
            await until(pilot, lambda first=first: table.cursor_key != first and table.row_count > 0)
            if page % max(1, pages // 6) == 0 or page == pages - 1:
                series.append((page + 1, rss_mb()))
    return series


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("db", type=Path)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    _record_frames()
    for name in ("traces", "matrix"):
        if name == "matrix" and args.skip_matrix:
            continue
        lat = asyncio.run(paging_latency(args.db, name))
        print(f"{name}: key → new page on screen (query + table rebuild + frame): " + ", ".join(
            f"{k} p50 {lat[k + '_p50_ms']:.0f} ms / p95 {lat[k + '_p95_ms']:.0f} ms"
            for k in ("pagedown", "end", "home", "jump")))
        series = asyncio.run(scroll_memory(args.db, name, args.pages))
        print(
            f"{name}: RSS while paging 100-row pages: "
            + ", ".join(f"page {p}: {m:.0f} MB" for p, m in series)
        )
    if not args.skip_matrix:
        mx = asyncio.run(matrix_relabel(args.db))
        print(f"matrix: relabel key → committed → statistics updated on screen: p50 {mx['p50_ms']:.1f} ms, "
              f"p95 {mx['p95_ms']:.1f} ms (n={mx['n']}; from before Pilot sends the key to the frame)")


if __name__ == "__main__":
    main()
