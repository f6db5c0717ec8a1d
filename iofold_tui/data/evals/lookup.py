"""Small lookups of eval versions the UI needs (the palette, screenshots, facets, the matrix)."""

from __future__ import annotations

import sqlite3


def eval_set_of(conn: sqlite3.Connection, eval_id: str) -> str | None:
    """The eval set an eval version belongs to (None: no such eval)."""
    row = conn.execute("SELECT eval_set_id FROM evals WHERE id = ?", (eval_id,)).fetchone()
    return None if row is None else str(row[0])


def eval_choices(conn: sqlite3.Connection, limit: int = 500) -> list[tuple[str, str, int]]:
    """(id, name, version) of the first ``limit`` evals by name and version."""
    rows = conn.execute(
        "SELECT id, name, version FROM evals ORDER BY name, version LIMIT ?", (limit,)
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2] or 0)) for r in rows]


def eval_with_parent(conn: sqlite3.Connection, eval_id: str | None = None) -> tuple[str, str | None] | None:
    """(id, parent id) of ``eval_id``, or of the newest version that has a parent when None."""
    row = conn.execute(
        "SELECT id, parent_eval_id FROM evals WHERE id = coalesce(?, (SELECT id FROM evals "
        "WHERE parent_eval_id IS NOT NULL ORDER BY version DESC LIMIT 1))",
        (eval_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


def first_eval_set(conn: sqlite3.Connection) -> str | None:
    """The oldest eval set's id."""
    row = conn.execute("SELECT id FROM eval_sets ORDER BY created_at LIMIT 1").fetchone()
    return None if row is None else row[0]


def newest_version(conn: sqlite3.Connection, eval_set_id: str | None) -> str | None:
    """The id of the set's highest eval version."""
    row = conn.execute("SELECT id FROM evals WHERE eval_set_id = ? ORDER BY version DESC LIMIT 1",
                       (eval_set_id,)).fetchone()
    return None if row is None else row[0]
