"""What an eval run is given: the eval (``load_target``) and the traces it runs over (a selection), read
in keyset pages so a 1M-trace run never holds all ids in memory (headless core)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from iofold_tui.data.evalrun.history import CHUNK, RunError, chunks
from iofold_tui.data.traces.query import TraceFilter, TraceQuery

Selection = str | TraceFilter | Sequence[str]  # "labelled" | "all" | a trace filter | explicit trace ids
PAGE = 256  # traces read per keyset page (steps can be MB each)


@dataclass(frozen=True)
class EvalTarget:
    id: str
    eval_set_id: str
    workspace_id: str | None
    name: str
    version: int
    code: str
    stored: tuple[Any, Any, Any]  # execution_count, contradiction_count, accuracy as stored


def load_target(conn: sqlite3.Connection, eval_id: str) -> EvalTarget:
    row = conn.execute(
        "SELECT e.id, e.eval_set_id, s.workspace_id, e.name, e.version, e.code, e.execution_count, "
        "e.contradiction_count, e.accuracy FROM evals e LEFT JOIN eval_sets s ON s.id = e.eval_set_id "
        "WHERE e.id = ?", (eval_id,)).fetchone()
    if row is None:
        raise RunError(f"no eval {eval_id!r} in this database")
    return EvalTarget(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]), str(row[3] or ""),
                      int(row[4] or 0), str(row[5] or ""), (row[6], row[7], row[8]))



def describe_selection(selection: Selection) -> str:
    if selection == "labelled":
        return "labelled traces"
    if selection == "all":
        return "all traces of the workspace"
    if isinstance(selection, TraceFilter):
        return "traces matching " + (", ".join(selection.describe()) or "no filter")
    return f"{len(selection):,} given traces"


def check_selection(selection: Selection) -> None:
    if isinstance(selection, str) and selection not in ("labelled", "all"):
        raise RunError(f"traces to run: 'labelled' or 'all', not {selection!r}")


def count_selected(conn: sqlite3.Connection, target: EvalTarget, selection: Selection) -> int:
    check_selection(selection)
    if selection == "labelled":
        return int(conn.execute("SELECT count(*) FROM feedback f JOIN traces t ON t.id = f.trace_id "
                                "WHERE f.eval_set_id = ?", (target.eval_set_id,)).fetchone()[0])
    if selection == "all":
        return int(conn.execute("SELECT count(*) FROM traces WHERE workspace_id = ?",
                                (target.workspace_id,)).fetchone()[0])
    if isinstance(selection, TraceFilter):
        return TraceQuery(conn, selection).count()
    ids = list(dict.fromkeys(selection))
    return sum(int(conn.execute("SELECT count(*) FROM traces WHERE id IN (SELECT value FROM json_each(?))",
                                (json.dumps(chunk),)).fetchone()[0]) for chunk in chunks(ids, CHUNK))


def iter_selected(conn: sqlite3.Connection, target: EvalTarget, selection: Selection,
                  page: int = PAGE) -> Iterator[tuple[str, Any]]:
    """``(trace id, steps JSON)`` in keyset pages: memory bound by one page, whatever the selection size."""
    check_selection(selection)
    if selection == "labelled":  # UNIQUE(eval_set_id, trace_id) orders it for free
        sql = ("SELECT f.trace_id, t.steps FROM feedback f JOIN traces t ON t.id = f.trace_id "
               "WHERE f.eval_set_id = ? {after} ORDER BY f.trace_id LIMIT ?")
        yield from _keyset(conn, sql, "AND f.trace_id > ?", [target.eval_set_id], page)
    elif selection == "all":  # the workspace_id index holds (workspace_id, rowid)
        sql = ("SELECT rowid, id, steps FROM traces WHERE workspace_id = ? {after} ORDER BY rowid LIMIT ?")
        yield from _keyset(conn, sql, "AND rowid > ?", [target.workspace_id], page, key_col=True)
    elif isinstance(selection, TraceFilter):
        query = TraceQuery(conn, selection)
        result = query.first_page(page)
        while result.rows:
            yield from _steps_of(conn, [row.id for row in result.rows])
            if not result.has_after:
                return
            result = query.page_after(result.rows[-1].key, page)
    else:
        for chunk in chunks(list(dict.fromkeys(selection)), page):
            yield from _steps_of(conn, chunk)


def _keyset(conn: sqlite3.Connection, sql: str, after: str, params: list[Any], page: int,
            key_col: bool = False) -> Iterator[tuple[str, Any]]:
    rows = conn.execute(sql.format(after=""), [*params, page]).fetchall()
    while rows:
        for row in rows:
            yield (str(row[1]), row[2]) if key_col else (str(row[0]), row[1])
        if len(rows) < page:
            return
        rows = conn.execute(sql.format(after=after), [*params, rows[-1][0], page]).fetchall()


def _steps_of(conn: sqlite3.Connection, ids: list[str]) -> Iterator[tuple[str, Any]]:
    found = dict(conn.execute("SELECT id, steps FROM traces WHERE id IN (SELECT value FROM json_each(?))",
                              (json.dumps(ids),)).fetchall())
    for tid in ids:  # in the caller's order; ids without a trace are skipped
        if tid in found:
            yield tid, found[tid]
