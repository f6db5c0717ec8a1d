"""Throughput of the eval sandbox: EvalRunner (reused workers, batches) vs one `python -c` per trace.

    python bench/bench_sandbox.py [--traces 20000] [--baseline 100] [--jobs 2]

Two workloads, each measured both ways in the same run: "synthetic" (a json/re eval over generated
traces of ~1.5 KB of steps) and "seed" (schema/seed.sql's own eval over its 5 traces, cycled; ~3.3 KB).
The baseline runs `jobs` processes at a time, so it gets the same cores, and uses `-I -S` (no site
import) so that it is the cheapest possible process per trace, not a strawman.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from iofold_tui.data.evalrun.sandbox import EvalRunner, check_sandbox
    from iofold_tui.data.paths import schema_dir
except ImportError:  # a plain checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from iofold_tui.data.evalrun.sandbox import EvalRunner, check_sandbox
    from iofold_tui.data.paths import schema_dir

SYNTHETIC_EVAL = """
import json
import re

def response_is_grounded(trace: dict) -> tuple[bool, str]:
    steps = trace["steps"]
    if not steps:
        return (False, "no steps")
    calls = [call for step in steps for call in step.get("tool_calls", [])]
    last = steps[-1].get("output") or {}
    text = last.get("response", "") if isinstance(last, dict) else str(last)
    if re.search(r"\\b(I don't know|cannot help)\\b", text, re.I):
        return (False, "the agent gave up")
    if calls and not any(str(call.get("result", "")) in text for call in calls):
        return (False, f"answer ignores {len(calls)} tool results")
    return (True, f"{len(json.dumps(steps))} bytes, {len(calls)} tool calls")
"""

BASELINE_SCRIPT = """
import json, sys
namespace = {}
exec(sys.argv[1], namespace)
func = [v for k, v in namespace.items() if k == sys.argv[2]][0]
trace = json.loads(sys.stdin.read())
print(json.dumps(func({"trace_id": trace["id"], "steps": json.loads(trace["steps"])})))
"""


def make_traces(count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    traces = []
    for index in range(count):
        result = f"order {rng.randint(1000, 9999)} ships {rng.choice(['today', 'tomorrow', 'monday'])}"
        answer = rng.choice([f"Your {result}.", "Sorry, I don't know.", "It is on its way."])
        steps = [
            {
                "step_id": f"s{index}-1",
                "timestamp": "2025-01-01T10:00:00Z",
                "messages_added": [{"role": "user", "content": "Where is my order? " + "details " * 56}],
                "tool_calls": [{"tool_name": "lookup_order", "arguments": {"id": index}, "result": result}],
                "input": "Where is my order?",
                "output": None,
                "metadata": {"latency_ms": rng.randint(5, 900)},
            },
            {
                "step_id": f"s{index}-2",
                "timestamp": "2025-01-01T10:00:01Z",
                "messages_added": [{"role": "assistant", "content": answer + " " + "context " * 56}],
                "tool_calls": [],
                "input": None,
                "output": {"response": answer},
                "metadata": {"tokens_in": 512, "tokens_out": 64},
            },
        ]
        traces.append((f"trace-{index:06d}", json.dumps(steps)))
    return traces


def seed_workload(count: int) -> tuple[str, str, list[tuple[str, str]]]:
    """The seed database's eval and its traces, cycled to ``count``."""
    conn = sqlite3.connect(":memory:")
    conn.executescript((schema_dir() / "schema.sql").read_text())
    conn.executescript((schema_dir() / "seed.sql").read_text())
    name, code = conn.execute("SELECT name, code FROM evals ORDER BY created_at LIMIT 1").fetchone()
    rows = conn.execute("SELECT id, steps FROM traces ORDER BY id").fetchall()
    conn.close()
    return code, name, [(f"{rows[i % len(rows)][0]}-{i}", rows[i % len(rows)][1]) for i in range(count)]


Workload = tuple[str, str, list[tuple[str, str]]]


def bench_runner(work: Workload, jobs: int) -> tuple[float, float, dict[str, bool | None]]:
    """(seconds including worker start, seconds of run() alone, results)."""
    code, name, traces = work
    start = time.perf_counter()
    with EvalRunner(code, name, jobs=jobs) as runner:
        started = time.perf_counter()
        results = {r.trace_id: r.result for r in runner.run(traces)}
        done = time.perf_counter()
    errors = [tid for tid, res in results.items() if res is None]
    assert not errors, f"{len(errors)} errors"
    return done - start, done - started, results


def bench_baseline(work: Workload, jobs: int) -> tuple[float, dict[str, bool | None]]:
    code, name, traces = work

    def one(trace: tuple[str, str]) -> tuple[str, bool | None]:
        payload = json.dumps({"id": trace[0], "steps": trace[1]})
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", BASELINE_SCRIPT, code, name],
            input=payload,
            capture_output=True,
            text=True,
            check=True,
        )
        return trace[0], json.loads(proc.stdout)[0]

    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        results = dict(pool.map(one, traces))
    return time.perf_counter() - start, results


def bench_startup(jobs: int, runs: int = 15) -> list[float]:
    """Seconds from EvalRunner() to every worker confined and ready (OS layers included)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with EvalRunner("def probe(trace):\n    return (True, '')\n", "probe", jobs=jobs):
            times.append(time.perf_counter() - start)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20000)
    parser.add_argument("--baseline", type=int, default=100, help="traces for the process-per-trace baseline")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    workloads = {
        "synthetic": (SYNTHETIC_EVAL, "response_is_grounded", make_traces(args.traces)),
        "seed": seed_workload(args.traces),
    }
    print(f"{os.cpu_count()} CPUs, jobs={args.jobs}, python {sys.version.split()[0]}")
    print(check_sandbox().summary())
    starts = bench_startup(args.jobs)
    print(
        f"worker start (confined, {args.jobs} workers, {len(starts)} runs): median "
        f"{starts[len(starts) // 2] * 1000:.0f} ms, "
        f"max {starts[-1] * 1000:.0f} ms"
    )
    print(f"{'workload':<11}{'mode':<42}{'traces':>8}{'seconds':>9}{'traces/s':>10}")
    for label, work in workloads.items():
        size = sum(len(steps) for _, steps in work[2]) / len(work[2])
        total_s, run_s, results = bench_runner(work, args.jobs)
        base_work = (work[0], work[1], work[2][: args.baseline])
        base_s, base_results = bench_baseline(base_work, args.jobs)
        same = all(results[tid] == res for tid, res in base_results.items())
        rows = [
            ("EvalRunner, incl. worker start", args.traces, total_s),
            ("EvalRunner, run() only", args.traces, run_s),
            ("one `python -I -S -c` per trace", args.baseline, base_s),
        ]
        for mode, count, seconds in rows:
            print(f"{label:<11}{mode:<42}{count:>8,}{seconds:>9.2f}{count / seconds:>10,.0f}")
        speedup = (args.traces / total_s) / (args.baseline / base_s)
        print(
            f"{label:<11}steps ≈ {size:,.0f} B/trace; speed-up {speedup:,.0f}x; "
            f"same results as the baseline: {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
