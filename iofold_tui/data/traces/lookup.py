"""Small trace lookups the UI needs (the palette, screenshots, the conflict queue)."""

from __future__ import annotations

import sqlite3
from typing import Any


def trace_ids_from(conn: sqlite3.Connection, prefix: str, limit: int = 8) -> list[str]:
    """Trace ids starting with ``prefix``, in id order: a range scan of the primary-key index."""
    rows = conn.execute("SELECT id FROM traces WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                        (prefix, prefix + "\uffff", limit)).fetchall()
    return [str(r[0]) for r in rows]


def newest_trace_id(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT id FROM traces ORDER BY timestamp DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def previews(conn: sqlite3.Connection, trace_id: str) -> tuple[Any, Any] | None:
    """The stored (input_preview, output_preview) of a trace, raw (None: no such trace)."""
    row = conn.execute(
        "SELECT input_preview, output_preview FROM traces WHERE id = ?", (trace_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def trace_or_eval_exists(conn: sqlite3.Connection, item_id: str) -> bool:
    """A trace or an eval has this id (what ``--select`` can point at)."""
    row = conn.execute("SELECT 1 FROM traces WHERE id = ? UNION ALL SELECT 1 FROM evals WHERE id = ? LIMIT 1",
                       (item_id, item_id)).fetchone()
    return row is not None
