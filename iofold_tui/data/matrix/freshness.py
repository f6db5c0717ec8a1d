"""Cheap checks of whether the matrix's (incrementally updated) statistics still describe the database,
and the small lookups the matrix pane needs besides the grid and the statistics themselves."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from iofold_tui.data.labels.counts import RATED
from iofold_tui.data.labels.counts import label_counts as all_label_counts
from iofold_tui.data.matrix.confusion import cells_for_confusion


def execution_signature(conn: sqlite3.Connection, eval_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per eval: executions and the newest rowid (index-only), to notice runs added underneath."""
    out: dict[str, tuple[int, int]] = {}
    for eval_id in eval_ids:
        n, top = conn.execute(
            "SELECT COUNT(*), coalesce(MAX(rowid), 0) FROM eval_executions WHERE eval_id = ?", (eval_id,)
        ).fetchone()
        out[eval_id] = (int(n), int(top))
    return out


def label_counts(conn: sqlite3.Connection, eval_set_id: str) -> dict[str, int]:
    """The set's positive / negative / neutral label counts, the ratings with none left out."""
    counts = all_label_counts(conn, eval_set_id)
    return {rating: counts[rating] for rating in RATED if counts[rating]}


def confusion_trace_ids(
    conn: sqlite3.Connection, eval_id: str, cell: str, cap: int
) -> tuple[list[str], bool]:
    """Up to ``cap`` trace ids of one confusion cell, by trace id, and whether there are more."""
    ids: list[str] = []
    after: str | None = None
    while len(ids) < cap:
        page = cells_for_confusion(conn, eval_id, cell, after=after, limit=min(5_000, cap - len(ids)))
        ids += page.trace_ids
        after = page.next_after
        if after is None:
            break
    return ids, after is not None
