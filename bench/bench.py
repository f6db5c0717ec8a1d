"""iofold-tui benchmark (not a timed test): figures for README, measured next to peers in the same run.

    python bench/bench.py --sizes 10000,100000,1000000
    python bench/bench.py --sizes 100000 --runs 9 --launch-only   # launch against the floor only

Builds (or reuses) synthetic databases with ``iofold-tui demo-db`` into bench/out/, then per size:
launch → rows on screen for the real app under tmux against a minimal Textual app showing 100 rows (the
floor), peak RSS, and trace-list query times (first page, page down, end, jump to id, count).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from tui_probe import Session, launch  # noqa: E402

from iofold_tui.data.traces.query import TraceFilter, TraceQuery  # noqa: E402


def ensure_db(traces: int) -> Path:
    path = OUT / f"bench_{traces}.sqlite"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "iofold_tui", "demo-db", str(path), "--traces", str(traces)],
                       check=True, cwd=ROOT)
        print(f"  built {path.name} in {time.perf_counter() - t0:.0f} s ({path.stat().st_size / 1e9:.2f} GB)")
    return path


def timed(fn, repeat: int = 20) -> tuple[float, float]:
    """(median ms, p95 ms) over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def query_figures(path: Path) -> dict[str, tuple[float, float]]:
    conn = sqlite3.connect(path)
    es = conn.execute("SELECT id FROM eval_sets ORDER BY id LIMIT 1").fetchone()
    q = TraceQuery(conn, TraceFilter(eval_set_id=es[0] if es else None))
    first = q.first_page(100)
    max_rowid = conn.execute("SELECT max(rowid) FROM traces").fetchone()[0]
    rng = random.Random(1)
    ids = [
        conn.execute("SELECT id FROM traces WHERE rowid = ?", (rng.randint(1, max_rowid),)).fetchone()[0]
        for _ in range(20)
    ]
    pages = iter(range(10**9))
    state = {"page": first}

    def page_down() -> None:
        next(pages)
        state["page"] = q.page_after(state["page"].rows[-1].key, 100)

    jumps = iter(ids * 100)
    return {
        "first page": timed(lambda: q.first_page(100)),
        "page down": timed(page_down),
        "end": timed(lambda: q.last_page(100)),
        "jump to id": timed(lambda: q.around(next(jumps), 100)),
        "count (worker)": timed(q.count, repeat=3),
    }


ROW = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def rows_on_screen(screen: str) -> bool:
    """The same test for both apps: 30 trace rows (lines with a timestamp) are on the terminal."""
    return sum(1 for line in screen.splitlines() if ROW.search(line)) >= 30


def launch_figures(path: Path, runs: int) -> dict[str, float]:
    app, floor = [], []
    for _ in range(runs):
        floor.append(
            launch([sys.executable, str(HERE / "minimal_app.py"), str(path)], rows_on_screen, cwd=ROOT)
        )
        app.append(launch([sys.executable, "-m", "iofold_tui", str(path), "--pane", "traces"], rows_on_screen,
                          cwd=ROOT))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    return {
        "app_s": med([r.seconds for r in app]), "app_rss_mb": max(r.peak_rss_mb for r in app),
        "floor_s": med([r.seconds for r in floor]), "floor_rss_mb": max(r.peak_rss_mb for r in floor),
        # Launches of the two alternate, so a ratio per pair cancels the machine's drift between pairs.
        "ratio_median": med([a.seconds / f.seconds for a, f in zip(app, floor, strict=True)]),
        "app_best_s": min(r.seconds for r in app), "floor_best_s": min(r.seconds for r in floor),
    }


def review_figures(path: Path, labels: int, think_s: float) -> dict[str, float]:
    """Label key → committed → next trace on screen, in a real terminal (bench/review_probe.py times each
    key from the moment Textual parsed it to the frame handed to the terminal). Keys are sent by tmux
    ``think_s`` apart (a fast labeller); the labels are undone with ``u`` afterwards."""
    out = OUT / "review_samples.jsonl"
    out.unlink(missing_ok=True)
    with Session([sys.executable, str(HERE / "review_probe.py"), str(path), str(out)], cwd=ROOT) as tui:
        tui.wait_for("THIS SET")
        time.sleep(2.0)  # start-up workers (stats, queue, prefetch) done: the steady state a labeller is in
        for i in range(labels + 1):  # the first key is a warm-up (first store open)
            tui.keys("a" if i % 3 else "x")
            time.sleep(think_s)
        deadline = time.perf_counter() + 30
        while (len(out.read_text().splitlines()) if out.exists() else 0) < labels + 1:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only some label keys were measured; screen:\n{tui.screen()}")
            time.sleep(0.1)
        for _ in range(labels + 1):
            tui.keys("u")
            time.sleep(0.05)
        time.sleep(1.0)
        tui.keys("q")
        time.sleep(0.5)
    rows = [json.loads(line) for line in out.read_text().splitlines()][1:]
    shown = sorted(r["ms"] for r in rows)
    committed = sorted(r["commit_ms"] for r in rows)
    p95 = lambda xs: xs[min(len(xs) - 1, int(0.95 * len(xs)))]  # noqa: E731
    return {"p50_ms": statistics.median(shown), "p95_ms": p95(shown), "max_ms": shown[-1],
            "commit_p50_ms": statistics.median(committed), "commit_p95_ms": p95(committed), "n": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3, help="launches per measurement (median)")
    parser.add_argument(
        "--labels", type=int, default=100, help="label keys timed in review mode (largest size)"
    )
    parser.add_argument("--think-ms", type=float, default=300, help="pause between label keys")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also run bench_app, bench_matrix, bench_d1export and bench_sandbox on the largest size",
    )
    parser.add_argument(
        "--launch-only",
        action="store_true",
        help="only launch → rows on screen against the floor (no queries, no review mode): for a quick check",
    )
    args = parser.parse_args()
    # As pip does when it installs the package: byte-compiled modules (an editable checkout, or
    # PYTHONDONTWRITEBYTECODE, would otherwise make every launch compile iofold_tui from source).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "iofold_tui")], check=True)
    # One tmux server for the whole run: without it each launch would also start (and time) a server. Its
    # own socket directory, so tmux sessions of other jobs (tests, other benches) cannot end it mid-run.
    socket_dir = OUT / "tmux"
    socket_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TMUX_TMPDIR"] = str(socket_dir)
    subprocess.run(["tmux", "new-session", "-d", "-s", "bench-keeper"], check=False)
    try:
        run(args)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", "bench-keeper"], check=False)


def run(args: argparse.Namespace) -> None:
    results: dict[str, dict] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"== {size:,} traces")
        path = ensure_db(size)
        launch_res = launch_figures(path, args.runs)
        queries = {} if args.launch_only else query_figures(path)
        results[str(size)] = {"launch": launch_res, "queries": queries, "file_gb": path.stat().st_size / 1e9}
        print(
            f"  launch → rows: app {launch_res['app_s']:.2f} s ({launch_res['app_rss_mb']:.0f} MB peak RSS), "
            f"minimal Textual app {launch_res['floor_s']:.2f} s ({launch_res['floor_rss_mb']:.0f} MB) "
            f"→ {launch_res['ratio_median']:.2f}× the floor (median of {args.runs} paired launches; "
            f"best: {launch_res['app_best_s']:.2f} s vs {launch_res['floor_best_s']:.2f} s = "
            f"{launch_res['app_best_s'] / launch_res['floor_best_s']:.2f}×)"
        )
        for name, (med, p95) in queries.items():
            print(f"  {name:<16} median {med:7.2f} ms   p95 {p95:7.2f} ms")
    if args.launch_only:
        return
    largest = ensure_db(max(int(s) for s in args.sizes.split(",")))
    review = review_figures(largest, args.labels, args.think_ms / 1000)
    results["review"] = review
    print(
        f"== review mode on {largest.name}, in a terminal, keys {args.think_ms:.0f} ms apart: label key → "
        f"committed → "
        f"next trace on screen p50 {review['p50_ms']:.1f} ms, p95 {review['p95_ms']:.1f} ms, max "
        f"{review['max_ms']:.1f} ms "
        f"(key → committed p50 {review['commit_p50_ms']:.1f} ms, p95 {review['commit_p95_ms']:.1f} ms; "
        f"n={review['n']})"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    if args.full:
        for script, extra in (("bench_app.py", [str(largest)]), ("bench_matrix.py", [str(largest)]),
                              ("bench_d1export.py", ["--mb", "1000"]), ("bench_sandbox.py", [])):
            print(f"== {script} {' '.join(extra)}", flush=True)
            subprocess.run([sys.executable, str(HERE / script), *extra], check=False, cwd=ROOT)


if __name__ == "__main__":
    main()
