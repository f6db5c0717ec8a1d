"""What the contradiction-matrix grid is asked (``MatrixQuery``) and the SQL it becomes: the LEFT JOINs
of a trace to its label in the set and one execution per chosen eval version, the per-cell expressions
(contradiction, agreement, error, pass, fail, invalid, run) and the WHERE terms of the filters. The grid
(data/matrix/grid.py) pages with them; nothing here runs a query but ``eval_versions``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

FILTERS = ("all", "contradictions", "agreements", "errors", "unlabelled", "neutral", "versions_disagree")
Sort = Literal["time", "contradicted"]
Universe = Literal["all", "labelled"]


@dataclass(frozen=True)
class MatrixQuery:
    """What the grid shows. ``universe='all'``: traces labelled in the set or run by a chosen version;
    ``'labelled'``: only traces labelled in the set. ``eval_ids=None``: every version of the set."""

    eval_set_id: str
    eval_ids: tuple[str, ...] | None = None
    filter: str = "all"
    universe: Universe = "all"
    sources: tuple[str, ...] = ()
    date_from: str | None = None  # YYYY-MM-DD inclusive
    date_to: str | None = None  # YYYY-MM-DD inclusive
    text: str = ""  # case-insensitive substring of input/output preview
    sort: Sort = "time"
    newest_first: bool = True
    page_size: int = 100

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ValueError(f"unknown matrix filter {self.filter!r} (one of {', '.join(FILTERS)})")
        if self.sort not in ("time", "contradicted"):
            raise ValueError(f"unknown matrix sort {self.sort!r}")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")


@dataclass
class QueryContext:
    """A query with its versions resolved and the SQL fragments that depend only on them."""

    q: MatrixQuery
    eval_ids: tuple[str, ...]
    joins: str = ""
    join_params: list[Any] = field(default_factory=list)
    n_expr: str = "0"
    temp: str | None = None  # the contradicted-traces TEMP table, when built


def eval_versions(conn: sqlite3.Connection, eval_set_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM evals WHERE eval_set_id = ? ORDER BY version, id",
                                       (eval_set_id,))]


def cell_exprs(i: int) -> dict[str, str]:
    e = f"e{i}"
    # ok: run, no error and a result of 0/1; anything else in result (2, NULL, 'true', a BLOB) is invalid.
    ok = f"{e}.id IS NOT NULL AND {e}.error IS NULL AND {e}.result IN (0, 1)"
    # coalesce: an unlabelled row must give 0, not NULL (NULL would poison sums and "n = 0").
    labelled = "coalesce(f.rating, '') IN ('positive', 'negative')"
    return {
        "contra": f"({ok} AND {labelled} AND (f.rating = 'positive') <> ({e}.result = 1))",
        "agree": f"({ok} AND {labelled} AND (f.rating = 'positive') = ({e}.result = 1))",
        "error": f"({e}.error IS NOT NULL)",
        "pass": f"({ok} AND {e}.result = 1)",
        "fail": f"({ok} AND {e}.result = 0)",
        "invalid": f"({e}.id IS NOT NULL AND {e}.error IS NULL AND coalesce({e}.result IN (0, 1), 0) = 0)",
        "run": f"({e}.id IS NOT NULL)",
    }


def query_context(conn: sqlite3.Connection, q: MatrixQuery) -> QueryContext:
    ids = q.eval_ids if q.eval_ids is not None else tuple(eval_versions(conn, q.eval_set_id))
    ctx = QueryContext(q, tuple(ids))
    joins = ["LEFT JOIN feedback f ON f.eval_set_id = ? AND f.trace_id = t.id"]
    params: list[Any] = [q.eval_set_id]
    for i, eval_id in enumerate(ctx.eval_ids):
        joins.append(f"LEFT JOIN eval_executions e{i} ON e{i}.eval_id = ? AND e{i}.trace_id = t.id")
        params.append(eval_id)
    ctx.joins, ctx.join_params = " ".join(joins), params
    ctx.n_expr = " + ".join(cell_exprs(i)["contra"] for i in range(len(ctx.eval_ids))) or "0"
    return ctx


def any_cell(ctx: QueryContext, kind: str) -> str:
    parts = [cell_exprs(i)[kind] for i in range(len(ctx.eval_ids))]
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def count_cells(ctx: QueryContext, kind: str) -> str:
    return "(" + (" + ".join(cell_exprs(i)[kind] for i in range(len(ctx.eval_ids))) or "0") + ")"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def where_terms(ctx: QueryContext, row_filter: str) -> tuple[list[str], list[Any]]:
    """WHERE terms; ``+`` keeps SQLite walking the timestamp index instead of a column index."""
    q = ctx.q
    where: list[str] = []
    params: list[Any] = []
    # coalesce() hides the NOT NULL test from the LEFT JOIN simplifier, which would otherwise drive
    # the query from feedback and sort the whole set.
    labelled = "coalesce(f.id, '') <> ''"
    where.append(labelled if q.universe == "labelled" else f"({labelled} OR {any_cell(ctx, 'run')})")
    if q.sources:
        where.append(f"+t.source IN ({','.join('?' * len(q.sources))})")
        params.extend(q.sources)
    if q.date_from:
        where.append("t.timestamp >= ?")
        params.append(q.date_from)
    if q.date_to:
        where.append("t.timestamp < date(?, '+1 day')")
        params.append(q.date_to)
    if q.text:
        where.append("(t.input_preview LIKE ? ESCAPE '\\' OR t.output_preview LIKE ? ESCAPE '\\')")
        params.extend([_like(q.text)] * 2)
    n = f"({ctx.n_expr})"
    row_terms = {
        "all": None,
        "contradictions": f"{n} > 0",
        "agreements": f"{n} = 0 AND {any_cell(ctx, 'agree')}",
        "errors": any_cell(ctx, "error"),
        "unlabelled": f"coalesce(f.id, '') = '' AND {any_cell(ctx, 'run')}",
        "neutral": "coalesce(f.rating, '') = 'neutral'",
        "versions_disagree": f"{any_cell(ctx, 'pass')} AND {any_cell(ctx, 'fail')}",
    }
    for name in {q.filter, row_filter}:
        term = row_terms[name]
        if term:
            where.append(term)
    return where, params


def exec_joins(ctx: QueryContext, trace_col: str) -> str:
    return " ".join(f"LEFT JOIN eval_executions e{i} ON e{i}.eval_id = ? AND e{i}.trace_id = {trace_col}"
                    for i in range(len(ctx.eval_ids)))
