"""The contradiction-matrix grid: one row per trace, one cell per chosen eval version, keyset paged.

Rows are ordered like the trace list (``timestamp DESC, rowid ASC`` is a forward walk of the
``traces(timestamp DESC)`` index); each row looks up its label in the set and one execution per version
through the UNIQUE (eval_set_id, trace_id) / (eval_id, trace_id) indexes, so a page costs
page-size × (versions + 1) index probes plus however many rows a filter skips.

"Most contradicted first" is split into segments by contradiction count (k … 1, then 0). Segments ≥ 1
come from a TEMP table of the set's contradicted traces (built once per connection, set and versions;
rebuilt when ``PRAGMA data_version`` or the connection's own changes say the data moved), segment 0
is the ordinary time walk. Nothing is ever written to the user's database.

Text in rows is raw database text: the UI passes it through ``sanitize.one_line``/``clean``.
The query and its SQL fragments are in data/matrix/grid_query.py; the confusion drill-down of the
statistics in data/matrix/confusion.py.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import Any

from iofold_tui.data.matrix.grid_query import (
    MatrixQuery,
    QueryContext,
    count_cells,
    exec_joins,
    query_context,
    where_terms,
)
from iofold_tui.data.traces import keyset
from iofold_tui.data.traces.query import PREVIEW_CHARS, preview_columns

_PREVIEW = PREVIEW_CHARS


@dataclass(frozen=True)
class Cursor:
    """A row's position: ``n`` (contradiction count, used by the contradicted sort), the stored timestamp
    (any SQLite type, NULL included: see data.traces.keyset), rowid."""

    n: int
    timestamp: Any
    rowid: int


@dataclass(frozen=True)
class Cell:
    eval_id: str
    state: str  # pass / fail / error / not_run
    agreement: str  # agreement / contradiction / error / unlabelled / neutral / not_run
    execution_id: str | None
    result: bool | None
    reason: str | None
    error: str | None


@dataclass(frozen=True)
class MatrixRow:
    rowid: int
    trace_id: str
    external_id: str
    timestamp: str
    source: str
    input_preview: str
    output_preview: str
    feedback_id: str | None
    rating: str | None  # in this eval set; None = unlabelled
    note: str | None
    cells: tuple[Cell, ...]
    sort_value: Any = None  # the stored timestamp: the keyset cursor

    @property
    def contradictions(self) -> int:
        return sum(c.agreement == "contradiction" for c in self.cells)

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.contradictions, self.sort_value, self.rowid)


@dataclass
class MatrixPage:
    rows: list[MatrixRow]
    has_before: bool
    has_after: bool
    eval_ids: tuple[str, ...] = ()
    query_ms: float = 0.0
    focus_id: str | None = None


def _columns(ctx: QueryContext) -> str:
    cols = [preview_columns(), "f.id", "f.rating", f"substr(f.notes, 1, {_PREVIEW})"]
    for i in range(len(ctx.eval_ids)):
        cols += [
            f"e{i}.id",
            f"e{i}.result",
            f"substr(e{i}.reason, 1, {_PREVIEW})",
            f"substr(e{i}.error, 1, {_PREVIEW})",
        ]
    return ", ".join(cols)


def _cell(eval_id: str, rating: str | None, ex_id: Any, result: Any, reason: Any, error: Any) -> Cell:
    if ex_id is None:
        state, agreement = "not_run", "not_run"
    elif error is not None:
        state, agreement = "error", "error"
    elif isinstance(result, bytes | str) or result not in (0, 1):  # 2, -1, NULL, 'true', a BLOB
        state, agreement = "invalid", "invalid"
    else:
        state = "pass" if result == 1 else "fail"
        if rating in ("positive", "negative"):
            agreement = "agreement" if (rating == "positive") == (state == "pass") else "contradiction"
        else:
            agreement = "neutral" if rating == "neutral" else "unlabelled"
    return Cell(eval_id, state, agreement, None if ex_id is None else str(ex_id),
                None if state not in ("pass", "fail") else state == "pass", reason, error)


def _row(ctx: QueryContext, r: sqlite3.Row | tuple[Any, ...]) -> MatrixRow:
    rating = r[8]
    cells = tuple(
        _cell(eval_id, rating, *r[10 + 4 * i : 14 + 4 * i]) for i, eval_id in enumerate(ctx.eval_ids)
    )
    return MatrixRow(
        rowid=r[0], trace_id=str(r[1]), external_id=str(r[2] or ""), timestamp=str(r[3] or ""),
        source=str(r[4] or ""), input_preview=str(r[5] or ""), output_preview=str(r[6] or ""),
        feedback_id=r[7], rating=rating, note=r[9], cells=cells, sort_value=r[3],
    )


# ---------------------------------------------------------------- the contradicted-traces TEMP table

def _temp_name(ctx: QueryContext) -> str:
    digest = hashlib.sha256("\x1f".join((ctx.q.eval_set_id, *ctx.eval_ids)).encode()).hexdigest()[:16]
    return f"iofold_mx_{digest}"


def _data_key(conn: sqlite3.Connection) -> tuple[int, int]:
    return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes


def _ensure_temp(conn: sqlite3.Connection, ctx: QueryContext) -> str | None:
    """Build (or reuse) the TEMP table of contradicted traces; None when TEMP writes are impossible."""
    name = _temp_name(ctx)
    try:
        meta = conn.execute(f"SELECT dv, tc FROM temp.{name}_key").fetchone()
    except sqlite3.OperationalError:
        meta = None
    if meta is not None and tuple(meta) == _data_key(conn):
        return name
    # CREATE … AS SELECT and DROP do not count in total_changes, so the key stays valid after a build.
    sql = (
        f"CREATE TEMP TABLE {name} AS SELECT t.rowid AS rid, t.timestamp AS ts, ({ctx.n_expr}) AS n, "
        f"{count_cells(ctx, 'error')} AS err FROM feedback f {exec_joins(ctx, 'f.trace_id')} "
        # CROSS JOIN keeps traces last: only contradicted labels pay for the timestamp lookup.
        "CROSS JOIN traces t WHERE f.eval_set_id = ? AND f.rating IN ('positive', 'negative') "
        f"AND ({ctx.n_expr}) > 0 AND t.id = f.trace_id"
    )
    try:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}_key")
        conn.execute(sql, [*ctx.join_params[1:], ctx.q.eval_set_id])
        conn.execute(f"CREATE INDEX temp.{name}_order ON {name} (n, ts DESC, rid)")
        dv, tc = _data_key(conn)
        conn.execute(f"CREATE TEMP TABLE {name}_key AS SELECT ? AS dv, ? AS tc", (dv, tc))
    except sqlite3.OperationalError:  # e.g. PRAGMA query_only: fall back to walking the time index
        return None
    return name


def prepare(conn: sqlite3.Connection, q: MatrixQuery) -> bool:
    """Build the contradicted-traces TEMP table now (a worker job: about the cost of the labelled part of
    the statistics), so switching to "most contradicted" or paging it is instant later. TEMP tables are
    per connection: call this on the connection the grid queries use. False if TEMP is unavailable."""
    ctx = query_context(conn, q)
    return _ensure_temp(conn, ctx) is not None


def refresh_trace(conn: sqlite3.Connection, q: MatrixQuery, trace_id: str) -> None:
    """After relabelling ``trace_id`` on this connection: patch the TEMP table instead of rebuilding it."""
    ctx = query_context(conn, q)
    name = _temp_name(ctx)
    try:
        conn.execute(f"SELECT 1 FROM temp.{name}_key").fetchone()
    except sqlite3.OperationalError:
        return  # nothing built yet: the next query builds it fresh
    conn.execute(f"DELETE FROM temp.{name} WHERE rid = (SELECT rowid FROM traces WHERE id = ?)", (trace_id,))
    conn.execute(
        f"INSERT INTO temp.{name} SELECT rid, ts, n, err FROM (SELECT t.rowid AS rid, t.timestamp AS ts, "
        f"({ctx.n_expr}) AS n, {count_cells(ctx, 'error')} AS err FROM traces t {ctx.joins} WHERE t.id = ?) "
        "WHERE n > 0",
        [*ctx.join_params, trace_id],
    )
    dv, tc = _data_key(conn)
    conn.execute(f"DROP TABLE temp.{name}_key")
    conn.execute(f"CREATE TEMP TABLE {name}_key AS SELECT ? AS dv, ? AS tc", (dv, tc))


# ---------------------------------------------------------------- segment queries

def _fetch(conn: sqlite3.Connection, ctx: QueryContext, segment: int | None, after: Cursor | None,
           forward: bool, limit: int, row_filter: str = "all") -> list[MatrixRow]:
    """Up to ``limit`` rows of one segment (None = no contradiction-count split) past ``after``."""
    where, params = where_terms(ctx, row_filter)
    from_sql = f"traces t {ctx.joins}"
    join_params = list(ctx.join_params)
    ts, rid = "t.timestamp", "t.rowid"
    if segment is not None and segment > 0 and ctx.temp:
        from_sql = f"temp.{ctx.temp} m JOIN traces t ON t.rowid = m.rid {ctx.joins}"
        ts, rid = "m.ts", "m.rid"
        where.insert(0, "m.n = ?")
        params.insert(0, segment)
        if "errors" in (ctx.q.filter, row_filter):  # cheap pre-filter on the TEMP row
            where.insert(1, "m.err > 0")
    elif segment is not None:
        where.append(f"({ctx.n_expr}) = ?")
        params.append(segment)
    desc = forward == ctx.q.newest_first  # newest first = timestamp DESC, rowid ASC
    order = keyset.order_by(desc, ts, rid)
    out: list[MatrixRow] = []
    # One index range per keyset segment: NULL timestamps are their own (keyset.py).
    key = None if after is None else (after.timestamp, after.rowid)
    for extra, extra_params in keyset.segments(key, desc, ts, rid):
        sql = (f"SELECT {_columns(ctx)} FROM {from_sql} WHERE {' AND '.join([*where, *extra])} "
               f"ORDER BY {order} LIMIT ?")
        out += [
            _row(ctx, r) for r in conn.execute(sql, [*join_params, *params, *extra_params, limit - len(out)])
        ]
        if len(out) >= limit:
            break
    return out


def _segments(ctx: QueryContext, row_filter: str) -> list[int | None]:
    """Segments in display order."""
    if ctx.q.sort == "time":
        return [None]
    k = len(ctx.eval_ids)
    if "contradictions" in (ctx.q.filter, row_filter):
        return list(range(k, 0, -1))
    if {ctx.q.filter, row_filter} & {"agreements", "unlabelled", "neutral"}:
        return [0]
    if {ctx.q.filter, row_filter} & {"errors", "versions_disagree"}:
        # n = k means every version ran cleanly and gave the same (wrong) answer: no error, no disagreement.
        return list(range(k - 1, -1, -1))
    return list(range(k, -1, -1))


def _walk(conn: sqlite3.Connection, ctx: QueryContext, start: Cursor | None, forward: bool, limit: int,
          row_filter: str = "all") -> list[MatrixRow]:
    """Rows in (``forward``) display order from ``start`` (exclusive), crossing segments as needed."""
    segs = _segments(ctx, row_filter)
    if not forward:
        segs = segs[::-1]
    if ctx.q.sort == "contradicted" and any(s for s in segs) and ctx.temp is None:
        ctx.temp = _ensure_temp(conn, ctx)
    out: list[MatrixRow] = []
    began = start is None
    for seg in segs:
        after = None
        if not began:
            if seg is not None and seg != start.n:  # type: ignore[union-attr]
                continue
            began, after = True, start
        out += _fetch(conn, ctx, seg, after, forward, limit - len(out), row_filter)
        if len(out) >= limit:
            break
    return out


def _timed(ctx: QueryContext, fn: Any) -> MatrixPage:
    started = time.perf_counter()
    page: MatrixPage = fn()
    page.eval_ids, page.query_ms = ctx.eval_ids, (time.perf_counter() - started) * 1000
    return page


# ---------------------------------------------------------------- public paging API

def first_page(conn: sqlite3.Connection, q: MatrixQuery) -> MatrixPage:
    ctx = query_context(conn, q)

    def run() -> MatrixPage:
        rows = _walk(conn, ctx, None, True, q.page_size + 1)
        return MatrixPage(rows[: q.page_size], False, len(rows) > q.page_size)
    return _timed(ctx, run)


def last_page(conn: sqlite3.Connection, q: MatrixQuery) -> MatrixPage:
    ctx = query_context(conn, q)

    def run() -> MatrixPage:
        rows = _walk(conn, ctx, None, False, q.page_size + 1)
        return MatrixPage(rows[: q.page_size][::-1], len(rows) > q.page_size, False)
    return _timed(ctx, run)


def page_after(conn: sqlite3.Connection, q: MatrixQuery, cursor: Cursor) -> MatrixPage:
    ctx = query_context(conn, q)

    def run() -> MatrixPage:
        rows = _walk(conn, ctx, cursor, True, q.page_size + 1)
        return MatrixPage(rows[: q.page_size], True, len(rows) > q.page_size)
    return _timed(ctx, run)


def page_before(conn: sqlite3.Connection, q: MatrixQuery, cursor: Cursor) -> MatrixPage:
    ctx = query_context(conn, q)

    def run() -> MatrixPage:
        rows = _walk(conn, ctx, cursor, False, q.page_size + 1)
        return MatrixPage(rows[: q.page_size][::-1], len(rows) > q.page_size, True)
    return _timed(ctx, run)


def next_contradiction(conn: sqlite3.Connection, q: MatrixQuery, after: Cursor | None) -> MatrixRow | None:
    """``]c``: the next visible row (same filters) with at least one contradiction."""
    ctx = query_context(conn, q)
    rows = _walk(conn, ctx, after, True, 1, row_filter="contradictions")
    return rows[0] if rows else None


def previous_contradiction(
    conn: sqlite3.Connection, q: MatrixQuery, before: Cursor | None
) -> MatrixRow | None:
    """``[c``: the previous visible row with a contradiction (from the end when ``before`` is None)."""
    ctx = query_context(conn, q)
    rows = _walk(conn, ctx, before, False, 1, row_filter="contradictions")
    return rows[0] if rows else None


def row_for(conn: sqlite3.Connection, q: MatrixQuery, trace_id: str) -> MatrixRow | None:
    """One trace's row under ``q``'s filters (internal or external trace id); None if filtered out."""
    ctx = query_context(conn, q)
    found = conn.execute("SELECT rowid FROM traces WHERE id = ? UNION ALL SELECT rowid FROM traces "
                         "WHERE trace_id = ? LIMIT 1", (trace_id, trace_id)).fetchone()
    if found is None:
        return None
    where, params = where_terms(ctx, "all")
    sql = f"SELECT {_columns(ctx)} FROM traces t {ctx.joins} WHERE t.rowid = ? AND {' AND '.join(where)}"
    row = conn.execute(sql, [*ctx.join_params, int(found[0]), *params]).fetchone()
    return _row(ctx, row) if row else None


def jump_to(conn: sqlite3.Connection, q: MatrixQuery, trace_id: str) -> MatrixPage | None:
    """A page holding ``trace_id`` about a third from the top (``focus_id`` set); None if not shown."""
    started = time.perf_counter()
    target = row_for(conn, q, trace_id)
    if target is None:
        return None
    above = page_before(conn, replace(q, page_size=max(q.page_size // 3, 1)), target.cursor)
    below = page_after(conn, replace(q, page_size=max(q.page_size - len(above.rows) - 1, 1)), target.cursor)
    return MatrixPage([*above.rows, target, *below.rows], above.has_before, below.has_after, below.eval_ids,
                      (time.perf_counter() - started) * 1000, focus_id=target.trace_id)

