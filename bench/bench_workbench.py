"""Benchmark of the eval workbench on a large database.

    python3 bench/bench_workbench.py DB [--eval-a ID --eval-b ID] [--repeat R] [--run-copy PATH] [--json]

1. compare two versions (``data.evals.compare.compare``: one aggregate pass) against the equivalent raw
   SQL run by the ``sqlite3`` CLI on the same file, in the same run, warm cache, best of R:
     - "same statement": the compare's own query text (what the Python path adds on top of SQLite);
     - "hand-written": the obvious formulation (UNION of the trace ids, then three LEFT JOINs, GROUP BY);
   results are checked identical. Plus the first page of each flip list (keyset).
2. the compare view's first screen once the comparison is cached: headless app, CompareScreen pushed,
   time from the push to the frame after the numbers arrived (median of R).
3. with ``--run-copy PATH``: the database is copied there (the original is never written), a draft
   version is made from EVAL_B and run over the set's labelled traces on 2 sandbox workers (throughput,
   progress callbacks), a second run is cancelled after 2 s (time to stop), then both runs and the
   version are undone and the copy removed.
DB is opened read-only for parts 1 and 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iofold_tui.data.evals.compare import _STATE_CODES, FLIP_KINDS, JOINT_SQL, _state_sql, compare, flip_page

HAND_WRITTEN = """
WITH ids AS (
  SELECT trace_id FROM eval_executions WHERE eval_id = :a
  UNION SELECT trace_id FROM eval_executions WHERE eval_id = :b
  UNION SELECT trace_id FROM feedback WHERE eval_set_id = :s)
SELECT CASE WHEN f.rating IN ('positive', 'negative', 'neutral') THEN f.rating ELSE 'unlabelled' END,
  {state_a},
  {state_b},
  count(*)
FROM ids
LEFT JOIN eval_executions a ON a.eval_id = :a AND a.trace_id = ids.trace_id
LEFT JOIN eval_executions b ON b.eval_id = :b AND b.trace_id = ids.trace_id
LEFT JOIN feedback f ON f.eval_set_id = :s AND f.trace_id = ids.trace_id
GROUP BY 1, 2, 3""".format(state_a=_state_sql("a"), state_b=_state_sql("b"))


DRAFT_CODE = ('import json\n\ndef draft(trace):\n    steps = trace.get("steps") or []\n'
              '    text = json.dumps(steps)\n    return ("error" not in text, f"{len(steps)} steps")\n')


def _cli_sql(sql: str, params: dict[str, str]) -> str:
    for key, value in params.items():
        sql = sql.replace(f":{key}", "'" + value.replace("'", "''") + "'")
    return sql.strip() + ";"


def _cli(db: Path, sql: str) -> tuple[float, list[tuple[str, ...]]]:
    started = time.perf_counter()
    out = subprocess.run(
        ["sqlite3", "-readonly", "-separator", "|", str(db), sql], capture_output=True, text=True, check=True
    ).stdout
    elapsed = time.perf_counter() - started
    return elapsed, sorted(tuple(line.split("|")) for line in out.splitlines() if line)


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def _pick_pair(conn: sqlite3.Connection) -> tuple[str, str]:
    row = conn.execute("SELECT e.parent_eval_id, e.id FROM evals e JOIN evals p ON p.id = e.parent_eval_id "
                       "WHERE e.eval_set_id = p.eval_set_id ORDER BY e.version, e.id LIMIT 1").fetchone()
    if row is None:
        raise SystemExit("no eval with a parent in the same set: give --eval-a and --eval-b")
    return str(row[0]), str(row[1])


def bench_compare(db: Path, a: str, b: str, repeat: int) -> dict[str, Any]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    compare(conn, a, b)  # warm the page cache
    t_compare, cmp = _best(lambda: compare(conn, a, b), repeat)
    params = {"a": a, "b": b, "s": cmp.eval_set_id}
    same = [_cli(db, _cli_sql(JOINT_SQL, params)) for _ in range(repeat)]
    hand = [_cli(db, _cli_sql(HAND_WRITTEN, params)) for _ in range(repeat)]
    code = {state: str(c) for c, state in _STATE_CODES.items()}
    ours = sorted((r, code[sa], code[sb], str(n)) for (r, sa, sb), n in cmp.joint.items())
    identical = same[0][1] == ours and hand[0][1] == ours
    t_same, t_hand = min(t for t, _ in same), min(t for t, _ in hand)
    pages = {}
    for kind in FLIP_KINDS:
        t, _ = _best(lambda k=kind: flip_page(conn, cmp, k, None, 100), repeat)
        pages[kind] = round(t * 1000, 2)
    conn.close()
    return {
        "eval_a": a,
        "eval_b": b,
        "compare_s": round(t_compare, 3),
        "cli_same_statement_s": round(t_same, 3),
        "cli_hand_written_s": round(t_hand, 3),
        "ratio_vs_same": round(t_compare / t_same, 2),
        "ratio_vs_hand_written": round(t_compare / t_hand, 2),
        "identical": identical,
        "counts": cmp.counts,
        "first_flip_page_ms": pages,
    }


def bench_first_screen(db: Path, a: str, b: str, repeat: int) -> dict[str, Any]:
    from textual.screen import Screen
    from textual.widgets import Footer, Static

    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.panes.compare import CompareScreen
    from iofold_tui.ui.screenshot import settle

    class Floor(Screen[None]):
        """The floor: a bare screen with one Static and a footer, timed the same way."""

        def __init__(self) -> None:
            super().__init__()
            self.asked, self.first_screen_ms = time.perf_counter(), None

        def compose(self):
            yield Static("a line of text")
            yield Footer()

        def on_mount(self) -> None:
            self.call_after_refresh(
                lambda: setattr(self, "first_screen_ms", (time.perf_counter() - self.asked) * 1000)
            )

    times: list[float] = []
    floor: list[float] = []

    async def main() -> None:
        app = IofoldApp(open_source(db, read_only=True), pane="evals", watch_interval=0)
        async with app.run_test(headless=True, size=(120, 40)) as pilot:
            await settle(app, pilot)
            for i in range(repeat + 1):
                screen = CompareScreen(a, b)
                await app.push_screen(screen)
                for _ in range(2000):
                    if screen.first_screen_ms is not None:
                        break
                    await pilot.pause(0.001)
                if i:  # the first one fills the cache
                    times.append(screen.first_screen_ms or float("nan"))
                app.pop_screen()
                await settle(app, pilot)
                bare = Floor()
                await app.push_screen(bare)
                for _ in range(2000):
                    if bare.first_screen_ms is not None:
                        break
                    await pilot.pause(0.001)
                if i:
                    floor.append(bare.first_screen_ms or float("nan"))
                app.pop_screen()
                await settle(app, pilot)

    asyncio.run(main())
    return {
        "first_screen_ms_median": round(statistics.median(times), 1),
        "first_screen_ms_max": round(max(times), 1),
        "floor_ms_median": round(statistics.median(floor), 1),
        "runs": len(times),
    }


def bench_run(db: Path, copy: Path, source_eval: str) -> dict[str, Any]:
    from iofold_tui.data.evalrun.history import undo_run
    from iofold_tui.data.evalrun.run_results import RunOptions
    from iofold_tui.data.evalrun.runs import EvalRun
    from iofold_tui.data.evals.drafts import create_version, undo_last

    code = DRAFT_CODE
    started = time.perf_counter()
    shutil.copyfile(db, copy)
    copy_s = time.perf_counter() - started
    sidecar, runs = copy.with_suffix(".workbench.sqlite"), copy.with_suffix(".runs.sqlite")
    conn = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
    try:
        new = create_version(conn, sidecar, source_eval, code)
        batches = []
        run = EvalRun(conn, new.id, "labelled", runs_file=runs, options=RunOptions(jobs=2))
        summary = run.execute(on_batch=lambda batch: batches.append(batch.progress.done))
        rate = summary.progress.rate
        result = {
            "copy_s": round(copy_s, 1),
            "traces": summary.progress.done,
            "elapsed_s": round(summary.progress.elapsed_s, 1),
            "traces_per_s": round(rate),
            "progress_callbacks": len(batches),
        }
        # cancel: a second run over the same traces, cancelled after 2 s
        second = EvalRun(conn, new.id, "labelled", runs_file=runs, options=RunOptions(jobs=2))
        timer = threading.Timer(2.0, second.cancel)
        timer.start()
        t0 = time.perf_counter()
        cancelled = second.execute()
        result.update(cancel_stopped_after_s=round(time.perf_counter() - t0 - 2.0, 2),
                      cancelled_done=cancelled.progress.done, cancelled=cancelled.cancelled)
        undo_run(conn, runs)  # the cancelled run
        undo_run(conn, runs)  # the full run
        undo_last(conn, sidecar)  # the version
        return result
    finally:
        conn.close()
        for path in (copy, sidecar, runs):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def bench_sandbox_only(db: Path, eval_id: str) -> dict[str, Any]:
    """The same traces through the sandbox alone (read, run, no writes): the floor of a draft run."""
    from iofold_tui.data.evalrun.sandbox import EvalRunner
    from iofold_tui.data.evalrun.selection import iter_selected, load_target

    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    target = load_target(conn, eval_id)
    started, done = time.perf_counter(), 0
    with EvalRunner(DRAFT_CODE, "draft", jobs=2) as runner:
        for _ in runner.run(iter_selected(conn, target, "labelled")):
            done += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {
        "sandbox_only_traces": done,
        "sandbox_only_s": round(elapsed, 1),
        "sandbox_only_per_s": round(done / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db", type=Path)
    parser.add_argument("--eval-a")
    parser.add_argument("--eval-b")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--run-copy", type=Path, help="copy the database here and bench a draft run on the copy"
    )
    parser.add_argument("--skip-screen", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument(
        "--sandbox-only", action="store_true", help="also: the labelled traces through the sandbox alone"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    conn = sqlite3.connect(f"{args.db.resolve().as_uri()}?mode=ro", uri=True)
    traces = conn.execute("SELECT count(*) FROM traces").fetchone()[0]
    a, b = (args.eval_a, args.eval_b) if args.eval_a and args.eval_b else _pick_pair(conn)
    conn.close()
    report: dict[str, Any] = {"db": str(args.db), "traces": traces}
    if not args.skip_compare:
        report["compare"] = bench_compare(args.db, a, b, args.repeat)
        print(json.dumps(report["compare"]), flush=True)
    if not args.skip_screen:
        report["first_screen"] = bench_first_screen(args.db, a, b, max(args.repeat, 5))
        print(json.dumps(report["first_screen"]), flush=True)
    if args.sandbox_only:
        report["sandbox_only"] = bench_sandbox_only(args.db, b)
        print(json.dumps(report["sandbox_only"]), flush=True)
    if args.run_copy:
        report["draft_run"] = bench_run(args.db, args.run_copy, b)
        print(json.dumps(report["draft_run"]), flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
