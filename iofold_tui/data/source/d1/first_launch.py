"""A first launch ever of a live D1 database in two round trips after the name lookup, not three.

With nothing recorded yet, the launch batch carries the reads every launch makes (FIRST_LAUNCH_READS) and
a guess at the trace list's first page: the statement the list sends with no saved settings (asked of
``TraceQuery`` itself, so the text is the list's own), sent with its eval-set parameter replaced by the
eval set the app will pick (first workspace, first eval set by name — ``DEFAULT_EVAL_SET_SQL``, the same
rule as the app's ``_apply_workspace``). When the batch returns, the app's pick is computed from the
catalog rows in the same batch and the page is cached under the exact statement and parameters the list
will ask; a guess that does not match (a saved filter, several workspaces) is simply never asked for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any, cast

from iofold_tui.data.source.d1.api import Result
from iofold_tui.data.source.d1.params import bind

FIRST_LAUNCH_READS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("select name from sqlite_master where type = 'table'", ()),
    ("select name from sqlite_master where type = 'view'", ()),
    ("select sql from sqlite_master where name = ?", ("eval_comparison",)),
    ("SELECT id, name FROM workspaces ORDER BY name, id", ()),
    ("SELECT id, workspace_id, name, description, minimum_examples FROM eval_sets ORDER BY name, id", ()),
    ('SELECT rowid FROM "traces" LIMIT 0', ()),
    ("SELECT count(*) FROM traces", ()),
)
_WORKSPACES, _EVAL_SETS = 3, 4  # their places in FIRST_LAUNCH_READS
DEFAULT_EVAL_SET_SQL = (
    "(SELECT id FROM eval_sets WHERE (SELECT count(*) FROM workspaces) <= 1 "
    "OR workspace_id = (SELECT id FROM workspaces ORDER BY name, id LIMIT 1) ORDER BY name, id LIMIT 1)")
_MARK = "\x00iofold-eval-set\x00"
_JOIN = "f.eval_set_id = ?"


class _Noting:
    """A connection that only notes the statements it is given (and answers none)."""

    row_factory = None

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:  # any params, as sqlite3's
        self.seen.append((sql, list(params)))
        return self

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Any:
        return iter(())


def first_page_guess() -> tuple[str, list[Any], str, list[Any]] | None:
    """(the list's first-page statement and parameters with the eval set as a mark, the statement to send
    and its parameters), or None when the list's statement is not the expected shape."""
    from iofold_tui.data.traces.query import PAGE_ROWS, TraceFilter, TraceQuery

    noting = _Noting()
    flt = replace(TraceFilter(), eval_set_id=_MARK)
    TraceQuery(cast(sqlite3.Connection, noting), flt).first_page(PAGE_ROWS)
    pages = [(sql, params) for sql, params in noting.seen if _JOIN in sql]
    if len(pages) != 1:
        return None
    text, values = bind(*pages[0])
    if values.count(_MARK) != 1 or values[0] != _MARK or text.count(_JOIN) != 1:
        return None
    sent = text.replace(_JOIN, f"f.eval_set_id = {DEFAULT_EVAL_SET_SQL}", 1)
    return text, values, sent, values[1:]


def app_eval_set(results: list[Result]) -> str | None:
    """The eval set the app starts on with no saved settings, from the batch's catalog rows (offset by the
    schema statement in front of FIRST_LAUNCH_READS)."""
    workspaces = results[1 + _WORKSPACES].rows
    sets = results[1 + _EVAL_SETS].rows
    ws = workspaces[0][0] if workspaces else None
    every = ws is None or len(workspaces) <= 1
    chosen = next((es for es in sets if every or es[1] == ws), None)
    return None if chosen is None else str(chosen[0])


def page_key(guess: tuple[str, list[Any], str, list[Any]], eval_set_id: str) -> tuple[Any, ...]:
    text, values, _, _ = guess
    return (text, tuple(eval_set_id if v == _MARK else v for v in values))
