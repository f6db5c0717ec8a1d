"""The trace list: filters, keyset paging and counts, all in SQL.

Rows are ordered by ``(timestamp, rowid)``: the ``traces(timestamp DESC)`` index stores rowid after the
timestamp, so "newest first" is ``timestamp DESC, rowid ASC`` (a forward index scan) and "oldest first"
its exact reverse; NULL, numeric, text and BLOB timestamps keep their place in that order (the cursor
holds the stored value, see ``keyset``). Every page is an index range from a cursor: no OFFSET, no full
sort, memory bound by
the page size. Filters other than the date range are written with a unary ``+`` so SQLite keeps walking
the timestamp index instead of choosing a column index and sorting a million rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from iofold_tui.data.db import rowid_column, with_rowid
from iofold_tui.data.ratings import RATINGS
from iofold_tui.data.traces import keyset
from iofold_tui.data.values import show_number, to_bool, to_count

RATING_STATES = ("unlabelled", *RATINGS)


@dataclass(frozen=True)
class TraceFilter:
    workspace_id: str | None = None
    eval_set_id: str | None = None  # whose rating the list shows and filters on
    sources: tuple[str, ...] = ()
    has_errors: bool | None = None
    date_from: str | None = None  # YYYY-MM-DD, inclusive
    date_to: str | None = None  # YYYY-MM-DD, inclusive
    rating: str | None = None  # one of RATING_STATES
    text: str = ""  # substring of input/output preview (case-insensitive)
    step_text: str = ""  # substring of the full steps; matched rowids come from scan_steps()
    step_rowids: tuple[int, ...] | None = None
    trace_ids: tuple[str, ...] | None = None  # an explicit set (drill-down, review queue)
    executed_by_eval: str | None = None  # traces this eval has an execution for
    newest_first: bool = True

    def describe(self) -> list[str]:
        """Active filters as short phrases for the header."""
        parts: list[str] = []
        if self.sources:
            parts.append("source=" + ",".join(self.sources))
        if self.has_errors is not None:
            parts.append("errors" if self.has_errors else "no errors")
        if self.date_from or self.date_to:
            parts.append(f"{self.date_from or '…'}→{self.date_to or '…'}")
        if self.rating:
            parts.append(self.rating)
        if self.text:
            parts.append(f'"{self.text}"')
        if self.step_text:
            parts.append(f'steps∋"{self.step_text}"')
        if self.trace_ids is not None:
            parts.append(f"{len(self.trace_ids):,} selected traces")
        if self.executed_by_eval:
            parts.append(f"executed by {self.executed_by_eval}")
        return parts

    def cleared(self) -> TraceFilter:
        return TraceFilter(
            workspace_id=self.workspace_id, eval_set_id=self.eval_set_id, newest_first=self.newest_first
        )


@dataclass(frozen=True)
class TraceRow:
    rowid: int
    id: str
    external_id: str
    timestamp: str
    source: str
    input_preview: str
    output_preview: str
    step_count: int
    has_errors: bool
    rating: str | None
    note: str | None
    sort_value: Any = None  # the stored timestamp, any SQLite type: the keyset cursor (see keyset.py)
    step_count_text: str = ""  # step_count for display: the number, or the stored value marked (⚠'many')

    @property
    def key(self) -> tuple[Any, int]:
        return (self.sort_value, self.rowid)


@dataclass
class TracePage:
    rows: list[TraceRow]
    has_before: bool
    has_after: bool
    query_ms: float = 0.0
    focus_id: str | None = None  # the row a jump asked for


@dataclass
class _Sql:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.where.append(clause)
        self.params.extend(params)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(flt: TraceFilter, drive_from_feedback: bool = False) -> _Sql:
    """WHERE clauses. ``drive_from_feedback`` lets SQLite start from the rating index when a rating is
    rare; otherwise ``coalesce`` keeps the LEFT JOIN so the timestamp index drives (no big sort)."""
    sql = _Sql()
    if flt.workspace_id:
        sql.add("+t.workspace_id = ?", flt.workspace_id)
    if flt.sources:
        sql.add(f"+t.source IN ({','.join('?' * len(flt.sources))})", *flt.sources)
    if flt.has_errors is not None:
        sql.add("+t.has_errors = ?", 1 if flt.has_errors else 0)
    if flt.date_from:
        sql.add("t.timestamp >= ?", flt.date_from)
    if flt.date_to:
        sql.add("t.timestamp < date(?, '+1 day')", flt.date_to)
    if flt.rating == "unlabelled":
        sql.add("f.rating IS NULL")
    elif flt.rating in RATINGS:
        sql.add("f.rating = ?" if drive_from_feedback else "coalesce(f.rating, '') = ?", flt.rating)
    if flt.text:
        pattern = _like(flt.text)
        sql.add(
            "(t.input_preview LIKE ? ESCAPE '\\' OR t.output_preview LIKE ? ESCAPE '\\')", pattern, pattern
        )
    if flt.step_rowids is not None:
        sql.add("t.rowid IN (SELECT value FROM json_each(?))", json.dumps(list(flt.step_rowids)))
    if flt.trace_ids is not None:
        sql.add("t.id IN (SELECT value FROM json_each(?))", json.dumps(list(flt.trace_ids)))
    if flt.executed_by_eval:  # the (eval_id, trace_id) index answers this per row
        sql.add(
            "EXISTS (SELECT 1 FROM eval_executions x WHERE x.eval_id = ? AND x.trace_id = t.id)",
            flt.executed_by_eval,
        )
    return sql


PREVIEW_CHARS = 400  # how much of a preview (or note) a list row reads


def preview_columns(alias: str = "t") -> str:
    """A trace's list-row columns, the one definition for every list (traces, search results, matrix):
    rowid, id, trace_id, timestamp, source and both previews cut to ``PREVIEW_CHARS``."""
    return (
        f"{alias}.rowid, {alias}.id, {alias}.trace_id, {alias}.timestamp, {alias}.source, "
        f"substr({alias}.input_preview, 1, {PREVIEW_CHARS}), substr({alias}.output_preview, 1, "
        f"{PREVIEW_CHARS})"
    )


_COLUMNS = f"{preview_columns()}, t.step_count, t.has_errors, f.rating, substr(f.notes, 1, {PREVIEW_CHARS})"


def _row(r: sqlite3.Row | tuple[Any, ...]) -> TraceRow:
    return TraceRow(
        rowid=r[0], id=str(r[1]), external_id=str(r[2] or ""), timestamp=str(r[3] or ""),
        source=str(r[4] or ""), input_preview=str(r[5] or ""), output_preview=str(r[6] or ""),
        step_count=to_count(r[7]), has_errors=bool(to_bool(r[8])), rating=r[9], note=r[10], sort_value=r[3],
        step_count_text=show_number(r[7], "d", null="0"),
    )


def trace_exists(conn: sqlite3.Connection, trace_id: str) -> bool:
    """A trace with this internal id or external trace_id exists (whatever the filter)."""
    row = conn.execute(
        "SELECT 1 FROM traces WHERE id = ? UNION ALL SELECT 1 FROM traces WHERE trace_id = ? LIMIT 1",
        (trace_id, trace_id),
    ).fetchone()
    return row is not None


PAGE_ROWS = 100  # the trace list's page (a live D1's first launch guesses its first page with it)


class TraceQuery:
    """Pages of traces matching one filter. Each method is one indexed range query."""

    # Below this many rows with the wanted rating, sorting them beats walking the timestamp index.
    RARE_RATING = 20_000

    def __init__(self, conn: sqlite3.Connection, flt: TraceFilter) -> None:
        self.conn = with_rowid(conn, "traces")  # a WITHOUT ROWID table pages on its primary key
        self.flt = flt
        self._rare: bool | None = None

    def _rating_is_rare(self) -> bool:
        if self._rare is None:
            self._rare = False
            if self.flt.rating in RATINGS:
                n = self.conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM feedback WHERE eval_set_id = ? AND rating = ? LIMIT "
                    "?)",
                    (self.flt.eval_set_id or "", self.flt.rating, self.RARE_RATING),
                ).fetchone()[0]
                self._rare = n < self.RARE_RATING
        return self._rare

    def _select(
        self, extra: list[str], extra_params: list[Any], descending: bool, limit: int
    ) -> list[TraceRow]:
        base = _where(self.flt, self._rating_is_rare())
        clauses = base.where + extra
        order = keyset.order_by(descending)
        sql = (
            f"SELECT {_COLUMNS} FROM traces t "
            "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
            f"{'WHERE ' + ' AND '.join(clauses) if clauses else ''} ORDER BY {order} LIMIT ?"
        )
        params = [self.flt.eval_set_id or "", *base.params, *extra_params, limit]
        return [_row(r) for r in self.conn.execute(sql, params)]

    # The list's visual order is "forward"; newest_first decides which index direction that is.
    def _forward(self) -> bool:
        return self.flt.newest_first

    def _beyond(self, key: tuple[Any, int], descending: bool, limit: int) -> list[TraceRow]:
        """Up to ``limit`` rows strictly after ``key`` in the SQL order ``descending``: one index range per
        keyset segment (NULL timestamps are their own segment, see keyset.py)."""
        rows: list[TraceRow] = []
        for where, params in keyset.segments(key, descending):
            rows += self._select(where, params, descending, limit - len(rows))
            if len(rows) >= limit:
                break
        return rows

    def _page(self, fetch: Callable[[], tuple[list[TraceRow], bool, bool]]) -> TracePage:
        start = time.perf_counter()
        rows, before, after = fetch()
        return TracePage(rows, before, after, (time.perf_counter() - start) * 1000)

    def first_page(self, size: int) -> TracePage:
        def fetch() -> tuple[list[TraceRow], bool, bool]:
            rows = self._select([], [], self._forward(), size + 1)
            return rows[:size], False, len(rows) > size
        return self._page(fetch)

    def last_page(self, size: int) -> TracePage:
        def fetch() -> tuple[list[TraceRow], bool, bool]:
            rows = self._select([], [], not self._forward(), size + 1)
            return list(reversed(rows[:size])), len(rows) > size, False
        return self._page(fetch)

    def page_after(self, key: tuple[str, int], size: int) -> TracePage:
        def fetch() -> tuple[list[TraceRow], bool, bool]:
            rows = self._beyond(key, self._forward(), size + 1)
            return rows[:size], True, len(rows) > size
        return self._page(fetch)

    def page_before(self, key: tuple[str, int], size: int) -> TracePage:
        def fetch() -> tuple[list[TraceRow], bool, bool]:
            rows = self._beyond(key, not self._forward(), size + 1)
            return list(reversed(rows[:size])), len(rows) > size, True
        return self._page(fetch)

    def around(self, trace_id: str, size: int) -> TracePage | None:
        """A page that contains ``trace_id`` (internal id or external trace_id), about a third from the
        top."""
        start = time.perf_counter()
        row = self.conn.execute(
            "SELECT rowid, timestamp FROM traces WHERE id = ? UNION ALL "
            "SELECT rowid, timestamp FROM traces WHERE trace_id = ? LIMIT 1", (trace_id, trace_id)
        ).fetchone()
        if row is None:
            return None
        key = (row[1], row[0])
        target = self._select(["t.rowid = ?"], [key[1]], True, 1)
        if not target:  # exists but filtered out
            return None
        before = self.page_before(key, size // 3)
        after = self.page_after(key, size - len(before.rows) - 1)
        page = TracePage(before.rows + target + after.rows, before.has_before, after.has_after,
                         (time.perf_counter() - start) * 1000, focus_id=target[0].id)
        return page

    def exists(self, trace_id: str) -> bool:
        return trace_exists(self.conn, trace_id)

    def position(self, key: tuple[Any, int]) -> int:
        """How many matching rows come before ``key`` in the list's order (a jump's "row k of N"): the
        rows after it in the reverse SQL order, counted per keyset segment (a worker job, like count)."""
        base = _where(self.flt, self._rating_is_rare())
        total = 0
        for where, params in keyset.segments(key, not self._forward()):
            clauses = base.where + where
            sql = (
                "SELECT count(*) FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = "
                "? "
                + ("WHERE " + " AND ".join(clauses) if clauses else "")
            )
            total += int(
                self.conn.execute(sql, [self.flt.eval_set_id or "", *base.params, *params]).fetchone()[0]
            )
        return total

    def count(self) -> int:
        """Rows matching the filter (a worker job: proportional to the matches' index range)."""
        base = _where(self.flt, drive_from_feedback=True)
        join = "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ?" if self.flt.rating else ""
        params: list[Any] = ([self.flt.eval_set_id or ""] if join else []) + base.params
        where = ("WHERE " + " AND ".join(base.where)) if base.where else ""
        return int(self.conn.execute(f"SELECT count(*) FROM traces t {join} {where}", params).fetchone()[0])


def total_traces(conn: sqlite3.Connection, workspace_id: str | None = None) -> int:
    if workspace_id:
        return int(
            conn.execute("SELECT count(*) FROM traces WHERE workspace_id = ?", (workspace_id,)).fetchone()[0]
        )
    return int(conn.execute("SELECT count(*) FROM traces").fetchone()[0])


def scan_steps(
    conn: sqlite3.Connection,
    needle: str,
    flt: TraceFilter,
    *,
    chunk: int = 20_000,
    limit: int = 200_000,
    progress: Callable[[int, int, int], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[list[int], bool]:
    """Rowids of traces whose full ``steps`` contain ``needle`` (case-insensitive), scanned in rowid chunks
    so a worker can report progress and stop between chunks. Returns (rowids, complete)."""
    if rowid_column(conn, "traces") != "rowid":  # WITHOUT ROWID: no integer ranges, one pass on the key
        base = _where(replace(flt, step_text="", step_rowids=None, rating=None))
        where = " AND ".join(["t.steps LIKE ? ESCAPE '\\'", *base.where])
        keys = [r[0] for r in with_rowid(conn, "traces").execute(
            f"SELECT t.rowid FROM traces t WHERE {where} LIMIT ?", [_like(needle), *base.params, limit + 1])]
        return keys[:limit], len(keys) <= limit
    lo_hi = conn.execute("SELECT min(rowid), max(rowid) FROM traces").fetchone()
    if lo_hi is None or lo_hi[0] is None:
        return [], True
    low, high = int(lo_hi[0]), int(lo_hi[1])
    narrowed = replace(flt, step_text="", step_rowids=None, rating=None)
    base = _where(narrowed)
    where = " AND ".join(["t.rowid >= ?", "t.rowid < ?", "t.steps LIKE ? ESCAPE '\\'", *base.where])
    pattern = _like(needle)
    found: list[int] = []
    position = low
    while position <= high:
        if cancelled():
            return found, False
        end = position + chunk
        rows = conn.execute(
            f"SELECT t.rowid FROM traces t WHERE {where}", [position, end, pattern, *base.params]
        )
        found.extend(int(r[0]) for r in rows)
        position = end
        if progress:
            progress(min(position, high + 1) - low, high + 1 - low, len(found))
        if len(found) >= limit:
            return found[:limit], False
    return found, True
