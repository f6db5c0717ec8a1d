"""The review queue: which trace to label next, paged through SQL by keyset (never all ids in memory).

A queue is a sequence of *tiers*, each a slice of the eval set's workspace in trace-list order
(``timestamp``, ``rowid`` as in ``data.traces``): "unlabelled first" is [unlabelled, labelled];
"contradicted first" is [contradicted, unlabelled, labelled-and-not-contradicted]. A position is
``(tier, timestamp, rowid)``, so labelling a trace (which moves it to another tier) never shifts the
cursor. "Contradicted" is scoped to the eval set: an execution of one of *its* evals whose verdict
disagrees with the label; errored executions and neutral labels are never contradictions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from typing import Any, Literal

from iofold_tui.data.db import with_rowid
from iofold_tui.data.labels.counts import label_counts as label_counts  # the review header's counts
from iofold_tui.data.traces import keyset
from iofold_tui.data.traces.query import TraceFilter, _where

Order = Literal["unlabelled", "contradicted"]
ORDERS: tuple[Order, ...] = ("unlabelled", "contradicted")
ORDER_TITLES = {"unlabelled": "unlabelled first", "contradicted": "contradicted by an eval first"}
QueueKey = tuple[int, Any, int]  # (tier, stored timestamp of any SQLite type, rowid)

# `coalesce` keeps the LEFT JOIN a LEFT JOIN, so SQLite walks the timestamp index instead of driving
# from feedback and sorting every label of the set (see data/traces.py).
_CONTRA = ("EXISTS (SELECT 1 FROM eval_executions x JOIN evals e ON e.id = x.eval_id "
           "WHERE x.trace_id = t.id AND e.eval_set_id = ? AND x.error IS NULL "
           "AND ((f.rating = 'positive' AND x.result = 0) OR (f.rating = 'negative' AND x.result = 1)))")
_TIERS: dict[str, tuple[str, bool]] = {  # name -> (clause, needs the eval set id as a parameter)
    "unlabelled": ("f.rating IS NULL", False),
    "labelled": ("coalesce(f.rating, '') <> ''", False),
    "contradicted": (f"coalesce(f.rating, '') IN ('positive', 'negative') AND {_CONTRA}", True),
    "labelled_plain": (f"coalesce(f.rating, '') <> '' AND NOT {_CONTRA}", True),
}


@dataclass(frozen=True)
class QueueSpec:
    eval_set_id: str
    workspace_id: str | None  # the eval set's workspace: traces elsewhere are never queued
    order: Order = "unlabelled"
    flt: TraceFilter | None = None  # the trace-list filter, when the user asked for it
    newest_first: bool = True

    def tiers(self) -> tuple[str, ...]:
        if self.order == "contradicted":
            return ("contradicted", "unlabelled", "labelled_plain")
        return ("unlabelled", "labelled")

    def unlabelled_tier(self) -> int:
        return self.tiers().index("unlabelled")

    def base_filter(self) -> TraceFilter:
        flt = self.flt or TraceFilter()
        return replace(flt, workspace_id=self.workspace_id, eval_set_id=self.eval_set_id,
                       newest_first=self.newest_first)


@dataclass(frozen=True)
class QueueItem:
    trace_id: str
    tier: int
    timestamp: Any  # as stored (NULL, number, text or BLOB): the keyset cursor, see data.traces.keyset
    rowid: int
    rating: str | None

    @property
    def key(self) -> QueueKey:
        return (self.tier, self.timestamp, self.rowid)


def _select(conn: sqlite3.Connection, spec: QueueSpec, tier: int, after: tuple[Any, int] | None,
            limit: int) -> list[QueueItem]:
    base = _where(spec.base_filter())
    clause, needs_set = _TIERS[spec.tiers()[tier]]
    params: list[Any] = [*base.params, *([spec.eval_set_id] if needs_set else [])]
    order = keyset.order_by(spec.newest_first)
    items: list[QueueItem] = []
    # strictly beyond `after` in list order, one index range per keyset segment (NULL timestamps included)
    for extra, extra_params in keyset.segments(after, spec.newest_first):
        sql = ("SELECT t.id, t.timestamp, t.rowid, f.rating FROM traces t "
               "LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
               f"WHERE {' AND '.join([*base.where, clause, *extra])} ORDER BY {order} LIMIT ?")
        rows = with_rowid(conn, "traces").execute(sql, [spec.eval_set_id, *params, *extra_params,
                                                        limit - len(items)]).fetchall()
        items += [
            QueueItem(str(r[0]), tier, r[1], r[2], r[3]) for r in rows
        ]  # r[2]: the key (WITHOUT ROWID: id)
        if len(items) >= limit:
            break
    return items


def page_after(
    conn: sqlite3.Connection, spec: QueueSpec, after: QueueKey | None, limit: int
) -> list[QueueItem]:
    """Up to ``limit`` queue items strictly after ``after`` (None: from the start), crossing tiers."""
    items: list[QueueItem] = []
    tier = 0 if after is None else after[0]
    position: tuple[str, int] | None = None if after is None else (after[1], after[2])
    while tier < len(spec.tiers()) and len(items) < limit:
        items += _select(conn, spec, tier, position, limit - len(items))
        tier, position = tier + 1, None
    return items


def next_unlabelled(conn: sqlite3.Connection, spec: QueueSpec, after: tuple[Any, int] | None,
                    exclude: str | None = None) -> QueueItem | None:
    """The first unlabelled trace after ``after`` in list order, wrapping around to the start once."""
    tier = spec.unlabelled_tier()
    for position in ((after, None) if after is not None else (None,)):
        for item in _select(conn, spec, tier, position, 2):
            if item.trace_id != exclude:
                return item
    return None


def unlabelled_count(conn: sqlite3.Connection, spec: QueueSpec) -> int:
    """Traces of the queue still without a label in the set (a worker job: one pass over the matches)."""
    base = _where(spec.base_filter())
    where = " AND ".join([*base.where, "f.rating IS NULL"])
    return int(conn.execute(
        "SELECT count(*) FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
        f"WHERE {where}", [spec.eval_set_id, *base.params]).fetchone()[0])


def balance_warning(counts: dict[str, int]) -> str | None:
    """A short warning when the labels cannot train a useful eval yet."""
    pos, neg = counts.get("positive", 0), counts.get("negative", 0)
    if neg == 0:
        return "no negative example yet"
    if pos == 0:
        return "no positive example yet"
    if max(pos, neg) >= 4 * min(pos, neg):
        return f"imbalanced: {pos} positive vs {neg} negative"
    return None


def contradiction_supported(conn: sqlite3.Connection) -> bool:
    """Databases of other generations may lack the eval tables."""
    try:
        conn.execute("SELECT e.eval_set_id, x.trace_id, x.result, x.error FROM eval_executions x "
                     "JOIN evals e ON e.id = x.eval_id LIMIT 0").fetchall()
    except sqlite3.OperationalError:
        return False
    return True
