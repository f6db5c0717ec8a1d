"""Frequency views (VisiData's Shift+F) over traces.

Column facets run in SQL, grouped through an index where the schema has one (``traces(source)``,
``traces(has_errors)``, ``traces(timestamp)`` for days, ``feedback(eval_set_id, rating)``,
``eval_executions(eval_id)``); tool names and error messages come from the search sidecar, which
extracted them once per trace. Every facet is cached: in the sidecar (keyed by the index stamp and the
database file's fingerprint), and in memory for the process. ``facet_filter`` turns a chosen value into
a ``TraceFilter`` for the trace list. Sort orders are ``sort_orders``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from iofold_tui.data.db import file_fingerprint
from iofold_tui.data.labels.counts import rating_rows
from iofold_tui.data.search.index import SearchIndex
from iofold_tui.data.traces.query import TraceFilter, _where

FILTERED_ROWIDS = 200_000  # a filtered tool/error facet sends at most this many rowids to the sidecar
FACETS = ("source", "has_errors", "rating", "verdict", "tool", "error", "day")
NEEDS_INDEX = ("tool", "error")
_MEMO: dict[str, Any] = {}


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    share: float  # of all traces in scope


@dataclass
class Facet:
    name: str
    values: list[FacetValue]
    total: int  # traces in scope (the denominator of the shares)
    ms: float = 0.0
    cached: bool = False
    note: str | None = None
    scope: dict[str, str] = field(default_factory=dict)  # eval_set_id / eval_id the facet is about


def trace_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM traces").fetchone()[0])


def _column_facet(
    db: sqlite3.Connection, name: str, eval_set_id: str | None, eval_id: str | None
) -> list[list[Any]]:
    total = trace_count(db)
    if name == "source":
        rows = db.execute("SELECT source, count(*) FROM traces GROUP BY source ORDER BY 2 DESC").fetchall()
    elif name == "has_errors":
        rows = db.execute(
            "SELECT CASE WHEN has_errors THEN 'errors' ELSE 'no errors' END, count(*) FROM traces "
            "GROUP BY has_errors ORDER BY 2 DESC"
        ).fetchall()
    elif name == "day":
        rows = db.execute(
            "SELECT substr(timestamp, 1, 10), count(*) FROM traces GROUP BY 1 ORDER BY 1"
        ).fetchall()
    elif name == "rating":
        if not eval_set_id:
            raise ValueError("the rating facet needs an eval set")
        rows = rating_rows(db, eval_set_id)
        labelled = sum(int(r[1]) for r in rows)
        rows = [*rows, ("unlabelled", max(total - labelled, 0))]
    elif name == "verdict":
        if not eval_id:
            raise ValueError("the verdict facet needs an eval version")
        rows = db.execute(
            "SELECT CASE WHEN error IS NOT NULL THEN 'error' "
            "WHEN coalesce(result IN (0, 1), 0) = 0 THEN 'invalid' "
            "WHEN result = 1 THEN 'pass' ELSE 'fail' END, "
            "count(*) "
            "FROM eval_executions WHERE eval_id = ? GROUP BY 1 ORDER BY 2 DESC",
            (eval_id,),
        ).fetchall()
        executed = sum(int(r[1]) for r in rows)
        rows = [*rows, ("not run", max(total - executed, 0))]
    else:
        raise ValueError(f"unknown facet {name!r}: one of {', '.join(FACETS)}")
    return [[_text(v), int(n)] for v, n in rows]


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _sidecar_facet(index: SearchIndex, name: str, total: int, limit: int) -> list[list[Any]]:
    conn = index.conn()
    table, col = ("tools", "tool") if name == "tool" else ("errors", "msg")
    rows = conn.execute(
        f"SELECT {col}, count(*) FROM {table} GROUP BY {col} ORDER BY 2 DESC, 1 LIMIT ?", (limit,)
    ).fetchall()
    covered = int(conn.execute(f"SELECT count(DISTINCT rid) FROM {table}").fetchone()[0])
    return [[str(v), int(n)] for v, n in rows] + [
        ["(no tool)" if name == "tool" else "(no error)", max(total - covered, 0)]
    ]


def facet(db: sqlite3.Connection, name: str, *, db_path: Path | None = None, index: SearchIndex | None = None,
          eval_set_id: str | None = None, eval_id: str | None = None, limit: int = 200,
          flt: TraceFilter | None = None) -> Facet:
    """Counts and shares of one facet. ``tool``/``error`` need the search index (ValueError without).

    ``flt``: count only the traces of the trace list's filter (``Facet.note`` says "matching …"). That is
    a pass over the matching rows, not an index's group walk, so it is cached for the process only."""
    start = time.perf_counter()
    if name not in FACETS:
        raise ValueError(f"unknown facet {name!r}: one of {', '.join(FACETS)}")
    if flt is not None and _where(flt).where:
        return _filtered_facet(db, name, flt, index, eval_set_id, eval_id, limit, start, db_path)
    scope = {k: v for k, v in (("eval_set_id", eval_set_id), ("eval_id", eval_id)) if v}
    if name in ("rating",):
        scope.pop("eval_id", None)
    if name in ("verdict",):
        scope.pop("eval_set_id", None)
    stamp = json.dumps([file_fingerprint(db_path), index.stamp() if index is not None else ""])
    key = hashlib.sha256(json.dumps([name, scope, limit, str(db_path)]).encode()).hexdigest()[:24]
    memo = _MEMO.get(key)
    if memo is not None and memo[0] == stamp:
        return _facet(name, memo[1], start, True, scope)

    def compute() -> list[Any]:
        total = trace_count(db)
        if name in NEEDS_INDEX:
            if index is None:
                raise ValueError(f"the {name} facet needs the search index (run `iofold-tui index SOURCE`)")
            return [total, _sidecar_facet(index, name, total, limit)]
        rows = _column_facet(db, name, eval_set_id, eval_id)
        if name != "day" and len(rows) > limit:  # the day histogram is kept whole
            rest = rows[limit - 1:]
            rows = [*rows[:limit - 1], [f"(other {len(rest):,} values)", sum(n for _, n in rest)]]
        return [total, rows]

    cached = False
    if index is not None:
        try:
            value, cached = index.cached(key, compute, stamp)
        except sqlite3.DatabaseError:
            value = compute()
    else:
        value = compute()
    _MEMO[key] = (stamp, value)
    return _facet(name, value, start, cached, scope)


def _filtered_facet(db: sqlite3.Connection, name: str, flt: TraceFilter, index: SearchIndex | None,
                    eval_set_id: str | None, eval_id: str | None, limit: int, start: float,
                    db_path: Path | None) -> Facet:
    scope = {k: v for k, v in (("eval_set_id", eval_set_id), ("eval_id", eval_id)) if v}
    if name in ("rating", "verdict"):
        scope.pop("eval_id" if name == "rating" else "eval_set_id", None)
    stamp = json.dumps([file_fingerprint(db_path), index.stamp() if index is not None else ""])
    key = "flt:" + hashlib.sha256(repr((name, scope, limit, str(db_path), flt)).encode()).hexdigest()[:24]
    memo = _MEMO.get(key)
    if memo is not None and memo[0] == stamp:
        out = _facet(name, memo[1], start, True, scope)
        out.note = memo[2]
        return out
    base = _where(flt)
    where = "WHERE " + " AND ".join(base.where)
    frm = "FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
    params: list[Any] = [flt.eval_set_id or "", *base.params]
    total = int(db.execute(f"SELECT count(*) {frm}{where}", params).fetchone()[0])
    note = f"counting the {total:,} traces matching the list's filters"
    grp = " GROUP BY 1 ORDER BY 2 DESC"
    if name == "source":
        rows = db.execute(f"SELECT t.source, count(*) {frm}{where}{grp}", params).fetchall()
    elif name == "has_errors":
        rows = db.execute(f"SELECT CASE WHEN t.has_errors THEN 'errors' ELSE 'no errors' END, count(*) {frm}"
                          f"{where} GROUP BY 1 ORDER BY 2 DESC", params).fetchall()
    elif name == "day":
        rows = db.execute(f"SELECT substr(t.timestamp, 1, 10), count(*) {frm}{where} GROUP BY 1 ORDER BY 1",
                          params).fetchall()
    elif name == "rating":
        if not eval_set_id:
            raise ValueError("the rating facet needs an eval set")
        rows = db.execute(
            "SELECT coalesce(g.rating, 'unlabelled'), count(*) FROM traces t "
            "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
            f"LEFT JOIN feedback g ON g.trace_id = t.id AND g.eval_set_id = ? {where}{grp}",
            [flt.eval_set_id or "", eval_set_id, *base.params]).fetchall()
    elif name == "verdict":
        if not eval_id:
            raise ValueError("the verdict facet needs an eval version")
        rows = db.execute(
            "SELECT CASE WHEN x.trace_id IS NULL THEN 'not run' WHEN x.error IS NOT NULL THEN 'error' "
            "WHEN coalesce(x.result IN (0, 1), 0) = 0 THEN 'invalid' "
            "WHEN x.result = 1 THEN 'pass' ELSE 'fail' END, count(*) FROM traces t "
            "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
            f"LEFT JOIN eval_executions x ON x.eval_id = ? AND x.trace_id = t.id {where}{grp}",
            [flt.eval_set_id or "", eval_id, *base.params]).fetchall()
    else:  # tool / error: the sidecar, restricted to the matching rowids
        if index is None:
            raise ValueError(f"the {name} facet needs the search index (run `iofold-tui index SOURCE`)")
        rowids = [int(r[0]) for r in db.execute(f"SELECT t.rowid {frm}{where} LIMIT ?",
                                                 [*params, FILTERED_ROWIDS + 1])]
        if len(rowids) > FILTERED_ROWIDS:
            out = facet(db, name, db_path=db_path, index=index, eval_set_id=eval_set_id, eval_id=eval_id,
                        limit=limit)
            out.note = (f"more than {FILTERED_ROWIDS:,} traces match the list's filters: counting all "
                        f"{out.total:,} traces")
            return out
        table, col = ("tools", "tool") if name == "tool" else ("errors", "msg")
        conn = index.conn()
        ids = json.dumps(rowids)
        rows = conn.execute(
            f"SELECT {col}, count(*) FROM {table} WHERE rid IN (SELECT value FROM json_each(?)) "
            f"GROUP BY {col} ORDER BY 2 DESC, 1 LIMIT ?", (ids, limit)).fetchall()
        covered = int(conn.execute(
            f"SELECT count(DISTINCT rid) FROM {table} WHERE rid IN (SELECT value FROM json_each(?))",
            (ids,)).fetchone()[0])
        rows = [*rows, ("(no tool)" if name == "tool" else "(no error)", max(total - covered, 0))]
    values: list[tuple[str, int]] = [(_text(v), int(n)) for v, n in rows]
    if name != "day" and len(values) > limit:
        rest = values[limit - 1:]
        values = [*values[:limit - 1], (f"(other {len(rest):,} values)", sum(n for _, n in rest))]
    value: list[Any] = [total, [list(v) for v in values]]
    _MEMO[key] = (stamp, value, note)
    out = _facet(name, value, start, False, scope)
    out.note = note
    return out


def _facet(name: str, value: list[Any], start: float, cached: bool, scope: dict[str, str]) -> Facet:
    total, rows = int(value[0]), value[1]
    values = [FacetValue(str(v), int(n), (int(n) / total) if total else 0.0) for v, n in rows if int(n) > 0]
    return Facet(name, values, total, (time.perf_counter() - start) * 1000, cached, scope=scope)


def facet_rowids(db: sqlite3.Connection, index: SearchIndex | None, name: str, value: str,
                 eval_id: str | None = None) -> list[int]:
    """Trace rowids with ``value`` for the facets that are not trace columns (tool, error, verdict)."""
    if name in NEEDS_INDEX:
        if index is None:
            raise ValueError(f"the {name} facet needs the search index")
        table, col = ("tools", "tool") if name == "tool" else ("errors", "msg")
        if value in ("(no tool)", "(no error)"):
            have = {int(r[0]) for r in index.conn().execute(f"SELECT DISTINCT rid FROM {table}")}
            return [int(r[0]) for r in db.execute("SELECT rowid FROM traces") if int(r[0]) not in have]
        return [int(r[0]) for r in index.conn().execute(f"SELECT rid FROM {table} WHERE {col} = ?", (value,))]
    if name == "verdict":
        # The matrix's rule (values.execution_state): a result other than 0/1 is 'invalid', never 'fail'.
        state = {"error": "x.error IS NOT NULL", "pass": "x.error IS NULL AND x.result = 1",
                 "fail": "x.error IS NULL AND x.result = 0",
                 "invalid": "x.error IS NULL AND coalesce(x.result IN (0, 1), 0) = 0"}
        if value == "not run":
            return [int(r[0]) for r in db.execute(
                "SELECT t.rowid FROM traces t WHERE NOT EXISTS (SELECT 1 FROM eval_executions x "
                "WHERE x.eval_id = ? AND x.trace_id = t.id)", (eval_id,))]
        return [
            int(r[0])
            for r in db.execute(
                f"SELECT t.rowid FROM eval_executions x JOIN traces t ON t.id = x.trace_id WHERE x.eval_id = "
                f"? AND {state[value]}",
                (eval_id,),
            )
        ]
    raise ValueError(f"{name} is a trace column: use facet_filter")


def facet_filter(flt: TraceFilter, facet_: Facet, value: str, db: sqlite3.Connection,
                 index: SearchIndex | None = None) -> TraceFilter:
    """The trace list filter narrowed to traces with ``value`` (Enter in the facet view)."""
    name = facet_.name
    if value.startswith("(other "):
        raise ValueError("a bucket of several values: narrow the facet instead")
    if name == "source":
        return replace(flt, sources=(value,))
    if name == "has_errors":
        return replace(flt, has_errors=value == "errors")
    if name == "day":
        return replace(flt, date_from=value, date_to=value)
    if name == "rating":
        return replace(flt, eval_set_id=facet_.scope.get("eval_set_id", flt.eval_set_id), rating=value)
    rowids = facet_rowids(db, index, name, value, facet_.scope.get("eval_id"))
    if flt.step_rowids is not None:
        keep = set(flt.step_rowids)
        rowids = [r for r in rowids if r in keep]
    # step_text labels the rowid set in the list's header (steps∋"tool = search_docs").
    return replace(flt, step_rowids=tuple(rowids), step_text=f"{name} = {value}")
