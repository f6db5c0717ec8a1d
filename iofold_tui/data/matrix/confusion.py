"""The confusion drill-down of the matrix statistics: the trace ids in one cell (TP / FP / FN / TN, error,
invalid, neutral, unlabelled, not_run) of one eval version, classified like data/matrix/stats.py,
keyset paged by trace id."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

CONFUSION_CELLS = ("TP", "FP", "FN", "TN", "error", "invalid", "neutral", "unlabelled", "not_run")


@dataclass
class ConfusionPage:
    trace_ids: list[str]
    next_after: str | None  # pass back as ``after`` for the next page; None = no more


def cells_for_confusion(conn: sqlite3.Connection, eval_id: str, cell: str, *, after: str | None = None,
                        limit: int = 500) -> ConfusionPage:
    """Trace ids in one confusion cell of ``eval_id`` (scoped to its own set), by trace id, paged.

    Cells: TP / FP / FN / TN, error, neutral, unlabelled, not_run — the same classification as the stats.
    """
    if cell not in CONFUSION_CELLS:
        raise ValueError(f"unknown confusion cell {cell!r} (one of {', '.join(CONFUSION_CELLS)})")
    row = conn.execute("SELECT eval_set_id FROM evals WHERE id = ?", (eval_id,)).fetchone()
    if row is None:
        raise ValueError(f"no eval {eval_id!r}")
    set_id = row[0]
    ok = "e.error IS NULL AND e.result IN (0, 1)"  # the same classification as the stats (invalid apart)
    by_label = {
        "TP": ("positive", f"{ok} AND e.result = 1"), "FN": ("positive", f"{ok} AND e.result = 0"),
        "FP": ("negative", f"{ok} AND e.result = 1"), "TN": ("negative", f"{ok} AND e.result = 0"),
    }
    start = after or ""
    if cell in by_label or cell == "neutral":
        rating, cond = by_label.get(cell, ("neutral", ok))
        sql = (
            "SELECT f.trace_id FROM feedback f JOIN eval_executions e ON e.eval_id = ? AND e.trace_id = "
            "f.trace_id "
            f"WHERE f.eval_set_id = ? AND f.trace_id > ? AND f.rating = ? AND {cond} ORDER BY f.trace_id "
            f"LIMIT ?"
        )
        params: list[Any] = [eval_id, set_id, start, rating, limit + 1]
    elif cell == "not_run":
        sql = ("SELECT f.trace_id FROM feedback f WHERE f.eval_set_id = ? AND f.trace_id > ? AND NOT EXISTS "
               "(SELECT 1 FROM eval_executions e WHERE e.eval_id = ? AND e.trace_id = f.trace_id) "
               "ORDER BY f.trace_id LIMIT ?")
        params = [set_id, start, eval_id, limit + 1]
    else:
        cond = {
            "error": "e.error IS NOT NULL",
            "invalid": "e.error IS NULL AND coalesce(e.result IN (0, 1), 0) = 0",
        }.get(cell) or (
            f"{ok} AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.eval_set_id = ? AND f.trace_id = "
            f"e.trace_id)"
        )
        sql = f"SELECT e.trace_id FROM eval_executions e WHERE e.eval_id = ? AND e.trace_id > ? AND {cond} " \
              "ORDER BY e.trace_id LIMIT ?"
        params = [eval_id, start, *([] if cell in ("error", "invalid") else [set_id]), limit + 1]
    ids = [str(r[0]) for r in conn.execute(sql, params)]
    more = len(ids) > limit
    ids = ids[:limit]
    return ConfusionPage(ids, ids[-1] if more and ids else None)
