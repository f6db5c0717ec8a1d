"""Benchmark: load a large ``wrangler d1 export`` file with iofold-tui vs the sqlite3 CLI.

    python3 bench/bench_d1export.py --mb 200 [--keep DIR] [--seed 1]

Writes a synthetic export in wrangler's exact format (schema/schema.sql's DDL, rows as
``INSERT INTO "t" VALUES(...);`` one per line, newlines as ``replace('..\\n..','\\n',char(10))``,
indexes then the view last, no trailing newline), then in the same run times:

* ``load_export`` in a subprocess (so its peak RSS, ``ru_maxrss``, is its own);
* ``sqlite3 new.db < export.sql`` (the command users would type: autocommit, one sync per row), timed
  on the first ``--plain-mb`` MB only because it is so slow;
* the sqlite3 CLI at its best: journal off, synchronous off, one transaction (a fairer floor).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iofold_tui.data.paths import schema_dir  # noqa: E402
from iofold_tui.data.source.export.statements import iter_statements  # noqa: E402

WORDS = ("the agent called search_docs; result: 3 hits", "revenue = q1 + q2", "it's done", "SMTP timeout",
         "café ☕ 数据", "SELECT * FROM t;", "tool_call(\"weather\", {\"city\": \"Paris\"})", "ok 👍")


def literal(value: object) -> str:
    """A value the way wrangler 4 writes it (JavaScript numbers, replace() for newlines)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    text = str(value)
    out = "'" + text.replace("'", "''").replace("\r", "\\r").replace("\n", "\\n") + "'"
    if "\r" in text:
        out = f"replace({out},'\\r',char(13))"
    if "\n" in text:
        out = f"replace({out},'\\n',char(10))"
    return out


def insert(table: str, values: tuple[object, ...]) -> str:
    return f'INSERT INTO "{table}" VALUES(' + ",".join(literal(v) for v in values) + ");"


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _steps(rng: random.Random, trace: str) -> str:
    steps = []
    for i in range(rng.randint(2, 6)):
        steps.append(
            {
                "step_id": f"{trace}_s{i}",
                "timestamp": f"2025-01-0{1 + i % 9}T10:00:0{i % 10}Z",
                "messages_added": [
                    {"role": "user", "content": _text(rng, 6) + "\n" + _text(rng, 4)},
                    {"role": "assistant", "content": _text(rng, 10)},
                ],
                "tool_calls": [
                    {
                        "tool_name": "search_docs",
                        "arguments": {"q": _text(rng, 2)},
                        "result": {"hits": rng.randint(0, 9), "text": _text(rng, 8)},
                    }
                ],
                "input": _text(rng, 5),
                "output": {"response": _text(rng, 12)},
                "metadata": {"latency_ms": i * 37},
            }
        )
    return json.dumps(steps, ensure_ascii=False)


def _schema() -> tuple[dict[str, str], list[str]]:
    tables: dict[str, str] = {}
    rest: list[str] = []
    with (schema_dir() / "schema.sql").open("rb") as fh:
        for stmt in iter_statements(fh):
            if stmt.kind == "create table" and stmt.name:
                tables[stmt.name] = stmt.sql
            else:
                rest.append(stmt.sql)
    return tables, rest


def export_lines(mb: int, seed: int) -> Iterator[str]:
    """Lines of a wrangler-style export of about ``mb`` megabytes (traces ~70 %, executions the rest)."""
    rng = random.Random(seed)
    tables, rest = _schema()
    budget = mb * 1_000_000
    yield "PRAGMA defer_foreign_keys=TRUE;"
    yield tables["workspaces"]
    yield insert("workspaces", ("ws_1", "Bench workspace", "2025-01-01 00:00:00", "2025-01-01 00:00:00"))
    yield tables["integrations"]
    yield insert("integrations", ("int_1", "ws_1", "langfuse", "Langfuse", "enc:xx", None, "{}", "active",
                                  None, None, "2025-01-01 00:00:00", "2025-01-01 00:00:00"))
    yield tables["traces"]
    written, n_traces = 0, 0
    while written < budget * 0.7:
        n_traces += 1
        tid = f"trace_{n_traces:07d}"
        line = insert("traces", (tid, "ws_1", "int_1", f"ext-{n_traces}", "langfuse",
                                 f"2025-01-{1 + n_traces % 28:02d} 12:00:00", '{"env": "prod"}',
                                 _steps(rng, tid), _text(rng, 3)[:200], _text(rng, 3)[:200],
                                 rng.randint(2, 6), rng.random() < 0.1, "2025-02-01 00:00:00"))
        written += len(line) + 1
        yield line
    yield tables["eval_sets"]
    yield insert("eval_sets", ("es_1", "ws_1", "response-quality", "bench", 5, "2025-01-01", "2025-01-01"))
    yield tables["feedback"]
    for i in range(1, n_traces + 1, 3):
        yield insert("feedback", (f"fb_{i}", "es_1", f"trace_{i:07d}", rng.choice(("positive", "negative")),
                                  None, "2025-01-02", "2025-01-02"))
    yield tables["evals"]
    code = 'def check(trace: dict) -> tuple[bool, str]:\n    return True, "ok"\n'
    n_evals = math.ceil(budget * 0.3 / 100 / n_traces) + 1  # executions are > 100 bytes: enough versions
    for v in range(1, n_evals + 1):
        yield insert(
            "evals",
            (
                f"ev_{v}",
                "es_1",
                "check",
                None,
                v,
                None,
                code,
                "bench-model",
                None,
                None,
                0.9,
                None,
                None,
                0,
                0,
                "active",
                "2025-01-03",
                "2025-01-03",
            ),
        )
    yield tables["eval_executions"]
    i = 0
    while written < budget:
        i += 1
        line = insert(
            "eval_executions",
            (
                f"ex_{i}",
                f"ev_{1 + i // n_traces}",
                f"trace_{1 + i % n_traces:07d}",
                rng.random() < 0.7,
                _text(rng, 4),
                rng.randint(1, 900),
                None,
                None,
                None,
                "2025-01-04",
            ),
        )
        written += len(line) + 1
        yield line
    for name in sorted(
        tables.keys()
        - {"workspaces", "integrations", "traces", "eval_sets", "feedback", "evals", "eval_executions"}
    ):
        yield tables[name]
    yield from rest  # indexes, then the view, as wrangler orders them


def write_export(path: Path, mb: int, seed: int) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        first = True
        for line in export_lines(mb, seed):
            fh.write(line if first else "\n" + line)  # wrangler writes no trailing newline
            first = False


_CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from iofold_tui.data.source.export.load import load_export
t = time.perf_counter()
r = load_export(Path(sys.argv[1]), Path(sys.argv[2]))
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024,
                  "statements": r.statements, "errors": r.error_count}))
"""


def time_loader(sql: Path, db: Path) -> dict[str, float]:
    db.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(sql), str(db), str(ROOT)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def time_cli(sql: Path, db: Path, *, tuned: bool) -> dict[str, float]:
    """Wall and CPU seconds of the sqlite3 CLI loading ``sql`` (errors go to its stderr; it goes on)."""
    db.unlink(missing_ok=True)
    cpu, started = _children_cpu(), time.perf_counter()
    if tuned:
        script = f"PRAGMA journal_mode=OFF;\nPRAGMA synchronous=OFF;\nBEGIN;\n.read '{sql}'\nCOMMIT;\n"
        subprocess.run(["sqlite3", str(db)], input=script, text=True, check=False, capture_output=True)
    else:
        with sql.open("rb") as fh:
            subprocess.run(["sqlite3", str(db)], stdin=fh, check=False, capture_output=True)
    return {"wall": time.perf_counter() - started, "cpu": _children_cpu() - cpu}


def prefix_of(sql: Path, mb: float, out: Path) -> Path:
    """The first ``mb`` MB of an export, cut at a line end (the plain CLI is too slow for all of it)."""
    with sql.open("rb") as src, out.open("wb") as dst:
        head = src.read(int(mb * 1e6))
        dst.write(head[: head.rfind(b"\n") + 1])
    return out


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="export size in MB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="directory to keep (and reuse) the generated export in")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each loader; the best is reported")
    ap.add_argument(
        "--plain-mb",
        type=float,
        default=2.0,
        help="MB of the export to time `sqlite3 new.db < export.sql` on (it syncs every row); 0 skips",
    )
    args = ap.parse_args()
    if shutil.which("sqlite3") is None:
        sys.exit("the sqlite3 CLI is needed for the comparison")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-d1export-"))
    work.mkdir(parents=True, exist_ok=True)
    sql = work / f"export-{args.mb}mb-{args.seed}.sql"
    if not sql.exists():
        t = time.perf_counter()
        write_export(sql, args.mb, args.seed)
        print(f"generated {sql} in {time.perf_counter() - t:.1f} s")
    size_mb = sql.stat().st_size / 1e6
    ours, tuned = [], []
    for _ in range(args.repeat):  # interleaved, best of N: the machine may be shared
        ours.append(time_loader(sql, work / "ours.sqlite"))
        tuned.append(time_cli(sql, work / "cli-tuned.sqlite", tuned=True))
    o, t = best(ours), best(tuned)
    print(
        f"export: {size_mb:,.0f} MB, {ours[0]['statements']:,.0f} statements, {ours[0]['errors']:.0f} "
        f"errors; "
        f"best of {args.repeat}; MB/s by wall clock (CPU seconds in brackets)"
    )
    print(
        f"load_export:                       {size_mb / o['wall']:7.1f} MB/s  {o['wall']:6.1f} s "
        f"({o['cpu']:.1f})"
        f"  peak RSS {max(r['rss_mb'] for r in ours):.0f} MB"
    )
    print(
        f"sqlite3 CLI, journal off, one txn: {size_mb / t['wall']:7.1f} MB/s  {t['wall']:6.1f} s "
        f"({t['cpu']:.1f})"
        f"  ours/cli throughput {t['wall'] / o['wall']:.2f}x"
    )
    if args.plain_mb > 0:
        part = prefix_of(sql, args.plain_mb, work / "prefix.sql")
        p = time_cli(part, work / "cli-plain.sqlite", tuned=False)
        part_mb = part.stat().st_size / 1e6
        print(
            f"sqlite3 new.db < export.sql:       {part_mb / p['wall']:7.1f} MB/s  (first {part_mb:.1f} MB: "
            f"{p['wall']:.1f} s; one sync per row)  ours/cli throughput "
            f"{(size_mb / o['wall']) / (part_mb / p['wall']):.1f}x"
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
