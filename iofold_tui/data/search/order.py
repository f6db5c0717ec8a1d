"""Trace list orders other than time: steps, source, rating, most contradicted, search relevance.

The time orders are the trace list's keyset walk of the timestamp index (``traces.query``). Every other
order is computed once per filter, in a worker, as the matching rowids in that order (capped at ``CAP``),
and the list pages through that list by position (``OrderedQuery``, the ``TraceQuery`` interface): a
page is then one ``rowid IN (…)`` lookup of its 100 rows, whatever the order cost to compute.

The cost is said before running it (``order_cost``): an index walk, the sidecar's precomputed
contradiction counts, or a sort of every matching trace.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from iofold_tui.data.db import with_rowid
from iofold_tui.data.search import sort_orders
from iofold_tui.data.search.index import IndexUnavailable, SearchIndex
from iofold_tui.data.traces.query import (
    _COLUMNS,
    TraceFilter,
    TracePage,
    TraceRow,
    _row,
    _where,
    trace_exists,
)

_JOIN = "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ?"
CAP = 200_000  # rowids an order keeps (the rest: narrow the filter)

# key -> (what the header says, what the picker says)
ORDERS: dict[str, tuple[str, str]] = {
    "newest": ("newest first", "newest first"),
    "oldest": ("oldest first", "oldest first"),
    "step_count": ("most steps first", "step count (most first)"),
    "source": ("by source", "source (A→Z, newest first within)"),
    "rating": ("by rating", "rating in this eval set (neg, neu, pos, unlabelled)"),
    "contradicted": ("most contradicted first", "most contradicted (evals vs this set's label)"),
    "relevance": ("by relevance", "search relevance (bm25)"),
}
TIME_ORDERS = ("newest", "oldest")


def order_cost(db: sqlite3.Connection, key: str, eval_set_id: str | None = None,
               flt: TraceFilter | None = None) -> str:
    """How ``key`` is answered, in words, before it runs."""
    if key in TIME_ORDERS:
        return "walks the timestamp index: instant"
    if key == "relevance":
        return "ranks the search's matches through the index (bm25)"
    if key == "contradicted":
        return (
            "precomputed per eval set in the search sidecar (once: one pass over the set's verdicts)"
        )
    cost = sort_orders.sort_cost(db, key, eval_set_id)
    if cost.through == "full sort" and flt is not None and _where(flt).where:
        return "sorts every trace matching the filter (full sort)"
    return f"{cost.note} ({cost.through})"


def _matching(db: sqlite3.Connection, flt: TraceFilter, rowids: list[int]) -> list[int]:
    """``rowids`` (in their order) that also match ``flt``."""
    base = _where(flt)
    if not base.where:
        return rowids
    keep: set[int] = set()
    for start in range(0, len(rowids), 50_000):
        chunk = rowids[start : start + 50_000]
        sql = (
            "SELECT t.rowid FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
            "WHERE t.rowid IN (SELECT value FROM json_each(?)) AND " + " AND ".join(base.where)
        )
        keep.update(
            int(r[0]) for r in db.execute(sql, [flt.eval_set_id or "", json.dumps(chunk), *base.params])
        )
    return [r for r in rowids if r in keep]


@dataclass
class Ordered:
    key: str
    rowids: list[int]
    total: int  # matches before the cap
    ms: float
    note: str = ""


def ordered_rowids(
    db: sqlite3.Connection,
    flt: TraceFilter,
    key: str,
    *,
    source_key: Path | str | None = None,
    db_path: Path | None = None,
    query: str = "",
    cap: int = CAP,
) -> Ordered:
    """The rowids matching ``flt`` in order ``key`` (ValueError says why an order is not available)."""
    start = time.perf_counter()
    db = with_rowid(db, "traces")
    note = ""
    if key in sort_orders.SORTS:
        base = _where(replace(flt, newest_first=True))
        where = ("WHERE " + " AND ".join(base.where)) if base.where else ""
        rows = [
            int(r[0])
            for r in db.execute(
                f"SELECT t.rowid FROM traces t {_JOIN} {where} ORDER BY {sort_orders.SORTS[key]} LIMIT ?",
                [flt.eval_set_id or "", *base.params, cap + 1],
            )
        ]
    elif key == "contradicted":
        if not flt.eval_set_id:
            raise ValueError("most contradicted needs an eval set (v picks one)")
        rows = _contradicted(db, flt.eval_set_id, source_key, db_path)
        rows = _matching(db, flt, rows)
        note = "traces with at least one contradiction only"
    elif key == "relevance":
        from iofold_tui.data.search.index import run_search

        if not query:
            raise ValueError("relevance orders a search's matches: search first (/)")
        res = run_search(db, source_key, query, order="relevance", limit=cap + 1, update=False)
        if res.order != "relevance":
            raise ValueError(
                "relevance needs the search index (it is being built, or run `iofold-tui index`)"
            )
        rows = _matching(db, replace(flt, step_rowids=None, step_text=""), res.rowids)  # same set
    else:
        raise ValueError(f"unknown order {key!r}")
    total = len(rows)
    return Ordered(key, rows[:cap], total, (time.perf_counter() - start) * 1000, note)


def _contradicted(
    db: sqlite3.Connection, eval_set_id: str, source_key: Path | str | None, db_path: Path | None
) -> list[int]:
    if source_key is not None:
        index: SearchIndex | None = None
        try:
            index = SearchIndex(source_key)
            index.conn(create=True)
            sort_orders.prepare_contradicted(db, index, eval_set_id, db_path)
            return [
                int(r[0])
                for r in index.conn().execute(
                    "SELECT rid FROM contra WHERE eval_set = ? ORDER BY n DESC, ts DESC, rid", (eval_set_id,)
                )
            ]
        except (IndexUnavailable, sqlite3.DatabaseError):
            pass  # no sidecar: the same query, sorted here
        finally:
            if index is not None:
                index.close()
    rows = db.execute(sort_orders.CONTRADICTED_SQL, (eval_set_id,)).fetchall()
    # newest first within a count: a stable sort on the timestamp descending, then the count
    rows.sort(key=lambda r: str(r[1] or ""), reverse=True)
    rows.sort(key=lambda r: -int(r[2]))
    return [int(r[0]) for r in rows]


class OrderedQuery:
    """Pages of a precomputed order (the ``TraceQuery`` interface); a row's key is (position, rowid)."""

    def __init__(self, conn: sqlite3.Connection, rowids: list[int], eval_set_id: str | None) -> None:
        self.conn = with_rowid(conn, "traces")
        self.rowids = rowids
        self.eval_set_id = eval_set_id

    def _rows(self, start: int, stop: int) -> list[TraceRow]:
        start, stop = max(0, start), max(0, min(stop, len(self.rowids)))
        want = self.rowids[start:stop]
        if not want:
            return []
        got: dict[int, TraceRow] = {}
        for r in self.conn.execute(
            f"SELECT {_COLUMNS} FROM traces t {_JOIN} "
            "WHERE t.rowid IN (SELECT value FROM json_each(?))",
            (self.eval_set_id or "", json.dumps(want)),
        ):
            got[int(r[0])] = _row(r)
        # deleted underneath: skipped; the key is the position in the order
        return [replace(got[rid], sort_value=start + i) for i, rid in enumerate(want) if rid in got]

    def _page(self, start: int, stop: int, focus_id: str | None = None) -> TracePage:
        began = time.perf_counter()
        rows = self._rows(start, stop)
        return TracePage(
            rows, start > 0, stop < len(self.rowids), (time.perf_counter() - began) * 1000, focus_id=focus_id
        )

    def first_page(self, size: int) -> TracePage:
        return self._page(0, size)

    def last_page(self, size: int) -> TracePage:
        return self._page(len(self.rowids) - size, len(self.rowids))

    def page_after(self, key: tuple[Any, int], size: int) -> TracePage:
        return self._page(int(key[0]) + 1, int(key[0]) + 1 + size)

    def page_before(self, key: tuple[Any, int], size: int) -> TracePage:
        return self._page(int(key[0]) - size, int(key[0]))

    def _at(self, trace_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT rowid FROM traces WHERE id = ? UNION ALL "
            "SELECT rowid FROM traces WHERE trace_id = ? LIMIT 1",
            (trace_id, trace_id),
        ).fetchone()
        if row is None:
            return None
        try:
            return self.rowids.index(int(row[0]))
        except ValueError:
            return None

    def around(self, trace_id: str, size: int) -> TracePage | None:
        at = self._at(trace_id)
        if at is None:
            return None
        start = max(0, at - size // 3)
        page = self._page(start, start + size)
        hit = next((r.id for r in page.rows if r.sort_value == at), None)
        return replace(page, focus_id=hit) if hit else None

    def exists(self, trace_id: str) -> bool:
        return trace_exists(self.conn, trace_id)

    def position(self, key: tuple[Any, int]) -> int:
        return int(key[0])

    def count(self) -> int:
        return len(self.rowids)
