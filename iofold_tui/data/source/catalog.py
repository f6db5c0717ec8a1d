"""Small lookups every pane needs: workspaces, eval sets, sources. All tiny tables (or indexed DISTINCTs)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from iofold_tui.data.values import to_count


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str


@dataclass(frozen=True)
class EvalSet:
    id: str
    workspace_id: str
    name: str
    description: str | None
    minimum_examples: int


def workspaces(conn: sqlite3.Connection) -> list[Workspace]:
    try:
        rows = conn.execute("SELECT id, name FROM workspaces ORDER BY name, id").fetchall()
    except sqlite3.OperationalError:
        rows = []
    if not rows:  # traces may reference workspaces that have no row
        rows = [
            (r[0], r[0])
            for r in conn.execute("SELECT DISTINCT workspace_id FROM traces WHERE workspace_id IS NOT NULL")
        ]
    return [Workspace(str(r[0]), str(r[1] if r[1] is not None else r[0])) for r in rows]


def eval_sets(conn: sqlite3.Connection, workspace_id: str | None = None) -> list[EvalSet]:
    sql = "SELECT id, workspace_id, name, description, minimum_examples FROM eval_sets"
    params: tuple[str, ...] = ()
    if workspace_id:
        sql += " WHERE workspace_id = ?"
        params = (workspace_id,)
    rows = conn.execute(sql + " ORDER BY name, id", params).fetchall()
    return [EvalSet(str(r[0]), str(r[1]), str(r[2]), r[3], to_count(r[4])) for r in rows]


def resolve_eval_set(conn: sqlite3.Connection, name_or_id: str, workspace_id: str | None = None) -> EvalSet:
    """By id first, then by name; ValueError with the known names when nothing matches."""
    sets = eval_sets(conn, workspace_id)
    for es in sets:
        if es.id == name_or_id:
            return es
    by_name = [es for es in sets if es.name == name_or_id]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise ValueError(
            f"eval set name {name_or_id!r} exists in several workspaces; use its id or --workspace"
        )
    known = ", ".join(es.name for es in sets[:10]) or "none"
    raise ValueError(f"no eval set {name_or_id!r} (known: {known})")


def sources(conn: sqlite3.Connection, workspace_id: str | None = None) -> list[str]:
    """Distinct trace sources via the source index (a skip-scan, not a table scan)."""
    out: list[str] = []
    last: str | None = None
    ws = " AND +workspace_id = ?" if workspace_id else ""
    while len(out) < 200:
        params: list[object] = [] if last is None else [last]
        cond = "source > ?" if last is not None else "source IS NOT NULL"
        if workspace_id:
            params.append(workspace_id)
        row = conn.execute(f"SELECT min(source) FROM traces WHERE {cond}{ws}", params).fetchone()
        if row is None or row[0] is None:
            break
        last = str(row[0])
        out.append(last)
    return out


def workspace_exists(conn: sqlite3.Connection, workspace_id: str) -> bool:
    return conn.execute("SELECT 1 FROM workspaces WHERE id = ?", (workspace_id,)).fetchone() is not None
