"""Benchmark of the contradiction matrix core on a large database.

    python3 bench/bench_matrix.py [DB] [--traces N] [--repeat R] [--json]

DB defaults to /tmp/bench_1m.sqlite when it exists, else a 200k-trace database is generated at
/tmp/bench_matrix_200k.sqlite (3 eval sets labelling 30 % of traces each, the first set with two
eval versions executed over every trace, 1 % errored executions). Times (best of R, warm cache):
compute_stats vs the equivalent raw scoped aggregate run by the ``sqlite3`` CLI on the same file,
first grid page, the page after it, next contradiction, last page, a few filters, and the
"most contradicted" sort cold (builds its TEMP table, see matrix_grid.prepare) and warm.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iofold_tui.data.matrix.grid import first_page, next_contradiction, page_after
from iofold_tui.data.matrix.grid import last_page as grid_last_page
from iofold_tui.data.matrix.grid_query import MatrixQuery
from iofold_tui.data.matrix.stats import compute_stats
from iofold_tui.data.paths import schema_dir

DEFAULT_1M = Path("/tmp/bench_1m.sqlite")
DEFAULT_OWN = Path("/tmp/bench_matrix_200k.sqlite")

# The equivalent raw scoped aggregate: every execution of the set's evals, its label in the eval's
# own set, errors apart. This is what compute_stats must match in speed (≤ 1.2×).
RAW_SCOPED = """
SELECT e.eval_id, COUNT(*) AS executions, SUM(e.error IS NOT NULL) AS errors,
  SUM(e.error IS NULL AND f.rating = 'positive' AND e.result = 1) AS tp,
  SUM(e.error IS NULL AND f.rating = 'negative' AND e.result = 1) AS fp,
  SUM(e.error IS NULL AND f.rating = 'positive' AND e.result = 0) AS fn,
  SUM(e.error IS NULL AND f.rating = 'negative' AND e.result = 0) AS tn,
  SUM(e.error IS NULL AND f.rating = 'neutral') AS neutral,
  SUM(e.error IS NULL AND f.rating IS NULL) AS unlabelled
FROM evals v JOIN eval_executions e ON e.eval_id = v.id
LEFT JOIN feedback f ON f.eval_set_id = v.eval_set_id AND f.trace_id = e.trace_id
WHERE v.eval_set_id = '{set_id}'
GROUP BY e.eval_id;"""


def _batches(rows: Iterator[tuple[Any, ...]], size: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(path: Path, traces: int, seed: int = 7) -> None:
    """A quick synthetic v1.0 database (small steps: the matrix never reads them)."""
    rnd = random.Random(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
    conn.executescript((schema_dir() / "schema.sql").read_text())
    conn.execute("INSERT INTO workspaces (id, name) VALUES ('ws_1', 'bench')")
    conn.execute("INSERT INTO integrations (id, workspace_id, platform, name, api_key_encrypted) "
                 "VALUES ('int_1', 'ws_1', 'langfuse', 'lf', 'x')")
    sets = ["set_a", "set_b", "set_c"]
    for s in sets:
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES (?, 'ws_1', ?)", (s, s))
    for v in (1, 2):
        conn.execute(
            "INSERT INTO evals (id, eval_set_id, name, version, code, model_used, contradiction_count, "
            "execution_count) VALUES (?, 'set_a', 'quality', ?, 'def quality(t): ...', 'm', 0, 0)",
            (f"eval_a{v}", v),
        )
    truth = [rnd.random() < 0.55 for _ in range(traces)]
    sources = ["langfuse", "langsmith", "openai"]

    def trace_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(traces):
            day = f"2025-{1 + i % 12:02d}-{1 + rnd.randrange(28):02d}"
            ts = f"{day}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00Z"
            yield (f"trace_{i:07d}", "ws_1", "int_1", f"ext_{i}", sources[i % 3], ts, "[]",
                   f"question {i} about {'pricing' if i % 7 == 0 else 'tools'}", f"answer {i}", 1, 0)

    for batch in _batches(trace_rows()):
        conn.executemany(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview, output_preview, step_count, has_errors) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            batch,
        )

    def feedback_rows() -> Iterator[tuple[Any, ...]]:
        for s in sets:
            for i in range(traces):
                if rnd.random() < 0.3:
                    roll = rnd.random()
                    rating = "neutral" if roll < 0.12 else ("positive" if truth[i] else "negative")
                    if roll > 0.9:  # sets disagree sometimes
                        rating = "negative" if rating == "positive" else "positive"
                    yield (f"fb_{s}_{i}", s, f"trace_{i:07d}", rating, None)

    for batch in _batches(feedback_rows()):
        conn.executemany(
            "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) VALUES (?,?,?,?,?)", batch
        )

    def execution_rows() -> Iterator[tuple[Any, ...]]:
        for v, acc in ((1, 0.8), (2, 0.9)):
            for i in range(traces):
                err = "Timeout" if rnd.random() < 0.01 else None
                result = 0 if err else int(truth[i] if rnd.random() < acc else not truth[i])
                yield (f"ex_a{v}_{i}", f"eval_a{v}", f"trace_{i:07d}", result, "because", 3, err)

    for batch in _batches(execution_rows()):
        conn.executemany(
            "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, error) "
            "VALUES (?,?,?,?,?,?,?)",
            batch,
        )
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best_ms, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best_ms = min(best_ms, (time.perf_counter() - start) * 1000)
    return best_ms, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", nargs="?", type=Path)
    ap.add_argument("--traces", type=int, default=200_000, help="size of a generated database")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--eval-set", default=None, help="eval set id (default: the one with most executions)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    db: Path = args.db or (DEFAULT_1M if DEFAULT_1M.exists() else DEFAULT_OWN)
    if not db.exists():
        print(f"generating {args.traces:,} traces at {db} …", file=sys.stderr)
        generate(db, args.traces)
    if shutil.which("sqlite3") is None:
        print("sqlite3 CLI not found", file=sys.stderr)
        return 2
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    set_id = args.eval_set or conn.execute(
        "SELECT v.eval_set_id FROM eval_executions e JOIN evals v ON v.id = e.eval_id "
        "GROUP BY v.eval_set_id ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
    figures: dict[str, Any] = {
        "db": str(db),
        "eval_set": set_id,
        "traces": conn.execute("SELECT max(rowid) FROM traces").fetchone()[0],
        "executions": conn.execute("SELECT COUNT(*) FROM eval_executions").fetchone()[0],
    }

    raw_sql = RAW_SCOPED.format(set_id=set_id.replace("'", "''"))

    def raw() -> str:
        return subprocess.run(["sqlite3", "-readonly", str(db), raw_sql], check=True, capture_output=True,
                              text=True).stdout

    def stats() -> list[Any]:
        return compute_stats(conn, set_id)

    raw()  # warm the page cache for both contenders
    # Alternate the contenders so load from other processes hits both alike.
    raw_ms, stats_ms = float("inf"), float("inf")
    for _ in range(args.repeat):
        ms, raw_out = best(raw, 1)
        raw_ms = min(raw_ms, ms)
        ms, result = best(stats, 1)
        stats_ms = min(stats_ms, ms)
    figures["raw_sqlite3_ms"], figures["compute_stats_ms"] = raw_ms, stats_ms
    figures["ratio"] = round(figures["compute_stats_ms"] / figures["raw_sqlite3_ms"], 3)
    figures["source"] = result[0].source if result else None
    for line, s in zip(sorted(raw_out.strip().splitlines()), result, strict=False):
        parts = line.split("|")
        agree = [int(p) for p in parts[3:7]] == [s.tp, s.fp, s.fn, s.tn]
        figures[f"agrees_with_raw_{s.eval_id}"] = agree

    query = MatrixQuery(eval_set_id=set_id)
    figures["first_page_ms"], page = best(lambda: first_page(conn, query), args.repeat)
    figures["page_after_ms"], _ = best(lambda: page_after(conn, query, page.rows[-1].cursor), args.repeat)
    figures["next_contradiction_ms"], _ = best(lambda: next_contradiction(conn, query, page.rows[0].cursor),
                                               args.repeat)
    figures["last_page_ms"], _ = best(lambda: grid_last_page(conn, query), args.repeat)
    contra = MatrixQuery(eval_set_id=set_id, filter="contradictions")
    figures["first_page_contradictions_ms"], _ = best(lambda: first_page(conn, contra), args.repeat)
    errors = MatrixQuery(eval_set_id=set_id, filter="errors")
    figures["first_page_errors_ms"], _ = best(lambda: first_page(conn, errors), args.repeat)
    worst = MatrixQuery(eval_set_id=set_id, sort="contradicted")
    figures["first_page_most_contradicted_cold_ms"], _ = best(lambda: first_page(conn, worst), 1)
    figures["first_page_most_contradicted_ms"], _ = best(lambda: first_page(conn, worst), args.repeat)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:40} {value:.1f}" if isinstance(value, float) else f"{key:40} {value}")
    conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
