"""Sort orders of the trace list with their cost said up front, and the precomputed "most contradicted"
order.

"Most contradicted" is precomputed into the search sidecar per eval set (trace rowid → number of the
set's eval versions whose verdict contradicts the set's own label; executions that errored are not
verdicts, labels of other sets never count — the scoping of ``matrix.stats``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iofold_tui.data.db import file_fingerprint, write_txn
from iofold_tui.data.search.facets import trace_count
from iofold_tui.data.search.index import SearchIndex


@dataclass(frozen=True)
class SortCost:
    key: str
    through: str  # "index <name>", "sidecar", or "full sort"
    note: str


SORTS = {
    "timestamp": "t.timestamp DESC, t.rowid ASC",
    "step_count": "t.step_count DESC, t.timestamp DESC, t.rowid ASC",
    "source": "t.source ASC, t.timestamp DESC, t.rowid ASC",
    "rating": "coalesce(f.rating, 'unlabelled') ASC, t.timestamp DESC, t.rowid ASC",
}


def sort_cost(db: sqlite3.Connection, key: str, eval_set_id: str | None = None) -> SortCost:
    """How a sort order will be answered, said before running it (EXPLAIN QUERY PLAN: an index walk, or
    a temporary B-tree over every trace)."""
    if key == "contradicted":
        return SortCost(key, "sidecar", "precomputed per eval set in the search index")
    order = SORTS[key]
    plan = db.execute(
        f"EXPLAIN QUERY PLAN SELECT t.rowid FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id "
        f"AND f.eval_set_id = ? ORDER BY {order} LIMIT 50", (eval_set_id or "",)).fetchall()
    details = " | ".join(str(r[-1]) for r in plan)
    if "TEMP B-TREE" in details.upper():
        return SortCost(key, "full sort", f"sorts all {trace_count(db):,} traces for the first page")
    index = next(
        (d.split("INDEX ")[-1].split(" ")[0] for d in details.split(" | ") if "INDEX" in d.upper()), ""
    )
    return SortCost(key, f"index {index}".strip(), "walks an index: first page immediately")


def sorted_page(db: sqlite3.Connection, key: str, *, eval_set_id: str | None = None, limit: int = 50,
                offset: int = 0) -> list[int]:
    """Rowids of one page in sort order ``key`` (timestamp, step_count, source, rating)."""
    order = SORTS[key]
    return [int(r[0]) for r in db.execute(
        f"SELECT t.rowid FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
        f"ORDER BY {order} LIMIT ? OFFSET ?", (eval_set_id or "", limit, offset))]


CONTRADICTED_SQL = """
SELECT t.rowid, t.timestamp, count(*) FROM feedback f
JOIN evals v ON v.eval_set_id = f.eval_set_id
JOIN eval_executions e ON e.eval_id = v.id AND e.trace_id = f.trace_id
JOIN traces t ON t.id = f.trace_id
WHERE f.eval_set_id = ? AND f.rating IN ('positive', 'negative') AND e.error IS NULL
  AND e.result IN (0, 1) AND (f.rating = 'positive') <> (e.result = 1)
GROUP BY t.rowid"""


def prepare_contradicted(db: sqlite3.Connection, index: SearchIndex, eval_set_id: str,
                         db_path: Path | None = None) -> tuple[int, bool]:
    """Precompute the set's contradiction counts into the sidecar; (traces with ≥ 1, reused)."""
    conn = index.conn()
    conn.execute("CREATE TABLE IF NOT EXISTS contra(eval_set TEXT NOT NULL, rid INTEGER NOT NULL, ts, "
                 "n INTEGER NOT NULL, PRIMARY KEY(eval_set, rid)) WITHOUT ROWID")
    conn.execute("CREATE INDEX IF NOT EXISTS contra_order ON contra(eval_set, n DESC, ts DESC, rid)")
    stamp = json.dumps(file_fingerprint(db_path))
    key = f"contra:{eval_set_id}"
    row = conn.execute("SELECT stamp, value FROM cache WHERE key = ?", (key,)).fetchone()
    if row is not None and row[0] == stamp:
        return int(json.loads(row[1])), True
    rows = db.execute(CONTRADICTED_SQL, (eval_set_id,)).fetchall()
    with write_txn(conn):
        conn.execute("DELETE FROM contra WHERE eval_set = ?", (eval_set_id,))
        conn.executemany(
            "INSERT INTO contra VALUES (?, ?, ?, ?)",
            [(eval_set_id, int(r[0]), r[1], int(r[2])) for r in rows],
        )
        conn.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, stamp, json.dumps(len(rows))))
    return len(rows), False


def most_contradicted(index: SearchIndex, eval_set_id: str, *, limit: int = 50,
                      after: tuple[int, Any, int] | None = None) -> list[tuple[int, int]]:
    """(rowid, contradiction count) most contradicted first (then newest), keyset paged by ``after``
    = the last row's (n, timestamp, rowid). Only traces with ≥ 1 contradiction (the rest follow in time
    order)."""
    conn = index.conn()
    if after is None:
        rows = conn.execute(
            "SELECT rid, n FROM contra WHERE eval_set = ? ORDER BY n DESC, ts DESC, rid LIMIT ?",
            (eval_set_id, limit),
        ).fetchall()
    else:
        n, ts, rid = after
        rows = conn.execute(
            "SELECT rid, n FROM contra WHERE eval_set = ? AND (n < ? OR (n = ? AND (ts < ? OR (ts = ? AND "
            "rid > ?)))) "
            "ORDER BY n DESC, ts DESC, rid LIMIT ?",
            (eval_set_id, n, n, ts, ts, rid, limit),
        ).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]
