"""Benchmark of full-text search (issue 17) on one database, all figures from one run.

    python3 bench/bench_search.py DB [--side PATH] [--rebuild] [--queries 60] [--json]

Make DB with ``iofold-tui demo-db DB --traces N``. The sidecar goes to ``--side`` (default DB +
``.bench.fts.sqlite``), never into DB. Measures: index build time, sidecar size next to the database's,
peak RSS during the build; one-word and phrase queries (first page of 50, newest first; and with the total
count) p50/p95 over random words / phrases of the corpus, next to the equivalent ``LIKE`` scan over the
previews and steps and to the fallback scan; the incremental update after 1,000 appended traces (and
after deleting them again); facets cold and cached; the most-contradicted order (precompute, first page).
The bench appends 1,000 traces to DB and deletes them again (net: no change but rowids move on).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iofold_tui.data.db import connect
from iofold_tui.data.search import facets as F
from iofold_tui.data.search import sort_orders
from iofold_tui.data.search.extract import extract
from iofold_tui.data.search.index import SearchIndex, sidecar_size
from iofold_tui.data.search.query import parse, tokens
from iofold_tui.data.search.scan import scan


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000


def _corpus(db: Any, n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    high = db.execute("SELECT max(rowid) FROM traces").fetchone()[0]
    words: list[str] = []
    phrases: list[str] = []
    while len(words) < n or len(phrases) < n:
        row = db.execute(
            "SELECT id, trace_id, input_preview, output_preview, steps FROM traces WHERE rowid >= ? LIMIT 1",
            (rng.randint(1, high),),
        ).fetchone()
        values = [v for v in extract(*row) if v]
        toks = [t for t in tokens(rng.choice(values)) if t.isascii() and t.isalpha() and len(t) > 2]
        if len(toks) > 3:
            words.append(rng.choice(toks))
            i = rng.randrange(len(toks) - 2)
            phrases.append('"' + " ".join(toks[i:i + 2]) + '"')
    return words[:n], phrases[:n]


def _like_scan(db: Any, text: str) -> tuple[int, float]:
    pattern = "%" + text.strip('"') + "%"
    sql = "SELECT count(*) FROM traces WHERE input_preview LIKE ?1 OR output_preview LIKE ?1 OR steps LIKE ?1"
    (n,), ms = _timed(lambda: db.execute(sql, (pattern,)).fetchone())
    return int(n), ms


def _append(path: Path, n: int) -> list[int]:
    conn = connect(path)
    conn.execute("BEGIN")
    high = conn.execute("SELECT max(rowid) FROM traces").fetchone()[0]
    conn.execute(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, metadata, steps, "
        "input_preview,"
        " output_preview, step_count, has_errors) SELECT 'bench_' || rowid || '_' || ?, workspace_id, "
        "integration_id,"
        " 'bench_' || rowid || '_' || ?, source, timestamp, metadata, steps, input_preview, output_preview, "
        "step_count,"
        " has_errors FROM traces WHERE rowid > ? - ? ORDER BY rowid LIMIT ?",
        (time.time_ns(), time.time_ns(), high, n * 3, n),
    )
    rows = [r[0] for r in conn.execute("SELECT rowid FROM traces WHERE rowid > ?", (high,))]
    conn.execute("COMMIT")
    conn.close()
    return rows


def _delete(path: Path, rowids: list[int]) -> None:
    conn = connect(path)
    conn.execute("BEGIN")
    conn.execute("DELETE FROM traces WHERE rowid IN (SELECT value FROM json_each(?))", (json.dumps(rowids),))
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("--side", type=Path)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument(
        "--like", type=int, default=3, help="LIKE / fallback scans to time (each reads the table)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    side = args.side or Path(f"{args.db}.bench.fts.sqlite")
    out: dict[str, Any] = {"db": str(args.db), "db_mb": args.db.stat().st_size / 1e6}
    db = connect(args.db, read_only=True)
    out["traces"] = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    index = SearchIndex(args.db, path=side)
    if args.rebuild:
        index.remove()
    rss0 = _rss_mb()
    report, ms = _timed(lambda: index.sync(db))
    out.update(build_mode=report.mode, build_s=ms / 1000, rss_before_mb=rss0, peak_rss_mb=_rss_mb(),
               sidecar_mb=sidecar_size(index) / 1e6)
    out["sidecar_share"] = out["sidecar_mb"] / out["db_mb"]
    print(
        f"build ({report.mode}): {out['build_s']:.1f} s, sidecar {out['sidecar_mb']:,.1f} MB "
        f"({out['sidecar_share']:.0%} of {out['db_mb']:,.1f} MB), peak RSS {out['peak_rss_mb']:.0f} MB",
        flush=True,
    )

    rng = random.Random(17)
    words, phrases = _corpus(db, args.queries, rng)
    for kind, queries in (("word", words), ("phrase", phrases)):
        times, totals, counted = [], [], []
        for q in queries:
            node = parse(q)
            _, ms = _timed(lambda node=node: index.search(node, limit=50, count=False))
            times.append(ms)
            res, ms = _timed(lambda node=node: index.search(node, limit=50))
            counted.append(ms)
            totals.append(res.total)
        rel = [
            _timed(lambda q=q: index.search(parse(q), order="relevance", limit=50))[1] for q in queries[:20]
        ]
        likes = [_like_scan(db, q) for q in queries[:args.like]]
        scans = []
        for q in queries[:(args.like + 1) // 2]:
            res, ms = _timed(lambda q=q: scan(db, parse(q)))
            scans.append(ms)
        out[kind] = {
            "n": len(queries),
            "p50_ms": statistics.median(times),
            "p95_ms": _pct(times, 0.95),
            "with_count_p95_ms": _pct(counted, 0.95),
            "max_ms": max(times),
            "median_matches": statistics.median(totals),
            "relevance_p95_ms": _pct(rel, 0.95),
            "like_scan_ms": [round(ms) for _, ms in likes],
            "fallback_scan_ms": [round(ms) for ms in scans],
        }
        # (--like 0 skips both scans: they read the whole table)
        k = out[kind]
        print(
            f"{kind}: first page p50 {k['p50_ms']:.1f} ms, p95 {k['p95_ms']:.1f} ms (max {k['max_ms']:.0f}); "
            f"with the "
            f"total count p95 {k['with_count_p95_ms']:.1f} ms; median "
            f"{k['median_matches']:,.0f} matches; relevance p95 {k['relevance_p95_ms']:.1f} ms; LIKE scan "
            f"{k['like_scan_ms']} ms; fallback scan {k['fallback_scan_ms']} ms",
            flush=True,
        )

    added = _append(args.db, 1000)
    rep, ms = _timed(lambda: index.sync(db))
    out["update_1000_new"] = {"ms": ms, "mode": rep.mode, "added": rep.added}
    _delete(args.db, added)
    rep2, ms2 = _timed(lambda: index.sync(db))
    out["update_1000_deleted"] = {"ms": ms2, "mode": rep2.mode, "deleted": rep2.deleted}
    rep3, ms3 = _timed(lambda: index.sync(db))
    out["update_nothing"] = {"ms": ms3, "mode": rep3.mode}
    print(
        f"update: 1,000 new {ms:,.0f} ms ({rep.mode}, +{rep.added}); 1,000 deleted {ms2:,.0f} ms "
        f"({rep2.mode}, "
        f"-{rep2.deleted}); nothing changed {ms3:,.0f} ms",
        flush=True,
    )

    es = db.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]
    ev = db.execute("SELECT id FROM evals WHERE eval_set_id = ? LIMIT 1", (es,)).fetchone()[0]
    index.conn().execute("DELETE FROM cache")
    out["facets"] = {}
    for name in F.FACETS:
        F._MEMO.clear()
        cold = F.facet(db, name, db_path=args.db, index=index, eval_set_id=es, eval_id=ev)
        F._MEMO.clear()
        disk = F.facet(db, name, db_path=args.db, index=index, eval_set_id=es, eval_id=ev)
        mem = F.facet(db, name, db_path=args.db, index=index, eval_set_id=es, eval_id=ev)
        out["facets"][name] = {
            "cold_ms": cold.ms,
            "sidecar_cache_ms": disk.ms,
            "memory_ms": mem.ms,
            "values": len(cold.values),
        }
    print(
        "facets (cold / sidecar cache / memory ms): "
        + ", ".join(
            f"{n} {v['cold_ms']:.0f}/{v['sidecar_cache_ms']:.1f}/{v['memory_ms']:.2f}"
            for n, v in out["facets"].items()
        ),
        flush=True,
    )

    (n, _), prep = _timed(lambda: sort_orders.prepare_contradicted(db, index, es, args.db))
    _, first = _timed(lambda: sort_orders.most_contradicted(index, es, limit=50))
    (_, reused), again = _timed(lambda: sort_orders.prepare_contradicted(db, index, es, args.db))
    out["contradicted"] = {
        "precompute_ms": prep,
        "traces": n,
        "first_page_ms": first,
        "reuse_ms": again,
        "reused": reused,
    }
    print(
        f"most contradicted: precompute {prep:,.0f} ms ({n:,} contradicted traces), first page {first:.1f} "
        f"ms, "
        f"reopen (cached) {again:.1f} ms",
        flush=True,
    )
    for key in ("step_count", "source"):
        cost = sort_orders.sort_cost(db, key)
        _, ms = _timed(lambda key=key: sort_orders.sorted_page(db, key))
        out[f"sort_{key}"] = {"through": cost.through, "first_page_ms": ms}
        print(f"sort by {key}: {cost.through} ({cost.note}), first page {ms:,.0f} ms", flush=True)
    index.close()
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
