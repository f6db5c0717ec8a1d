"""Compare two eval versions of one eval set: both confusion matrices, metric deltas and the flips.

ONE aggregate query per pair gives the joint table ``(rating in the set, state under A, state under B)
-> count`` over every trace that either version ran or the set labelled (states: pass / fail / error /
invalid (a result other than 0/1) / not_run, exactly as ``matrix.stats`` classifies them; a rating outside
iofold's three counts as
unlabelled, as the matrix does). From it:
  - each version's 4×4 cells, hence ``MatrixStats`` (so metrics, n/a reasons and κ are the matrix's own);
  - fixed: a contradiction under A (positive/fail, negative/pass) that is an agreement under B;
  - broken: an agreement under A that is a contradiction under B;
  - changed: the verdict (pass / fail / error / invalid) differs, both versions having run the trace;
  - coverage: traces only one of them ran.
The lists behind those counts are read in keyset pages (``flip_page``: ordered by trace id, ``after`` the
last id seen), never materialised: at 1M traces a page costs what its rows cost.

Results are cached per database fingerprint (``cached_compare``), like the matrix statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from iofold_tui.data.db import file_fingerprint
from iofold_tui.data.matrix.comparison_view import comparison_source
from iofold_tui.data.matrix.stats import METRICS, RATINGS, STATES, MatrixStats
from iofold_tui.data.paths import cache_dir, path_key

FlipKind = Literal["fixed", "broken", "changed", "only_a", "only_b"]
FLIP_KINDS: tuple[str, ...] = ("fixed", "broken", "changed", "only_a", "only_b")
CACHE_FORMAT = "compare-1"
_STATE_CODES = {0: "pass", 1: "fail", 2: "error", 3: "not_run", 4: "invalid"}


class CompareError(ValueError):
    """The two versions cannot be compared (unknown id, different eval sets)."""


def _state_sql(alias: str) -> str:
    # The matrix's own classification (stats.py): error first, then a result other than 0/1 is
    # invalid, then 1 pass, 0 fail.
    return (
        f"CASE WHEN {alias}.trace_id IS NULL THEN 3 WHEN {alias}.error IS NOT NULL THEN 2 "
        f"WHEN coalesce({alias}.result IN (0, 1), 0) = 0 THEN 4 WHEN {alias}.result = 1 THEN 0 ELSE 1 END"
    )


_RATING_SQL = "CASE WHEN f.rating IN ('positive', 'negative', 'neutral') THEN f.rating ELSE 'unlabelled' END"

# The one pass. Part 1 drives from A's executions (the (eval_id, trace_id) index) probing B and the
# label; part 2 takes B's executions A never ran; part 3 the set's labels neither ran. Parameters:
# :a, :b, :s (the set).
JOINT_SQL = f"""
SELECT r, sa, sb, count(*) FROM (
  SELECT {_RATING_SQL} AS r, {_state_sql('a')} AS sa, {_state_sql('b')} AS sb
  FROM eval_executions a
  LEFT JOIN eval_executions b ON b.eval_id = :b AND b.trace_id = a.trace_id
  LEFT JOIN feedback f ON f.eval_set_id = :s AND f.trace_id = a.trace_id
  WHERE a.eval_id = :a
  UNION ALL
  SELECT {_RATING_SQL}, 3, {_state_sql('b')}
  FROM eval_executions b
  LEFT JOIN feedback f ON f.eval_set_id = :s AND f.trace_id = b.trace_id
  WHERE b.eval_id = :b
    AND NOT EXISTS (SELECT 1 FROM eval_executions x WHERE x.eval_id = :a AND x.trace_id = b.trace_id)
  UNION ALL
  SELECT {_RATING_SQL}, 3, 3
  FROM feedback f
  WHERE f.eval_set_id = :s
    AND NOT EXISTS (SELECT 1 FROM eval_executions x WHERE x.eval_id = :a AND x.trace_id = f.trace_id)
    AND NOT EXISTS (SELECT 1 FROM eval_executions y WHERE y.eval_id = :b AND y.trace_id = f.trace_id)
) GROUP BY 1, 2, 3"""

_EVAL_SQL = (
    "SELECT id, eval_set_id, name, version, status, accuracy, contradiction_count, execution_count, code "
    "FROM evals WHERE id = ?"
)


def _contradicts(rating: str, state: str) -> bool:
    return (rating == "positive" and state == "fail") or (rating == "negative" and state == "pass")


def _agrees(rating: str, state: str) -> bool:
    return (rating == "positive" and state == "pass") or (rating == "negative" and state == "fail")


def flip_kind_of(rating: str, sa: str, sb: str) -> list[str]:
    """The flip lists a trace in ``(rating, state A, state B)`` belongs to."""
    out = []
    if _contradicts(rating, sa) and _agrees(rating, sb):
        out.append("fixed")
    if _agrees(rating, sa) and _contradicts(rating, sb):
        out.append("broken")
    if sa != sb and "not_run" not in (sa, sb):
        out.append("changed")
    if sa != "not_run" and sb == "not_run":
        out.append("only_a")
    if sa == "not_run" and sb != "not_run":
        out.append("only_b")
    return out


@dataclass
class Comparison:
    a: MatrixStats
    b: MatrixStats
    eval_set_id: str
    joint: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (rating, state A, state B) -> n
    code_a: str = ""
    code_b: str = ""
    cached: bool = False

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(FLIP_KINDS, 0)
        for (rating, sa, sb), n in self.joint.items():
            for kind in flip_kind_of(rating, sa, sb):
                out[kind] += n
        return out

    def deltas(self) -> dict[str, float | None]:
        """B − A per metric; None when either side is undefined (its reason is on that side)."""
        ma, mb = self.a.metrics(), self.b.metrics()
        out: dict[str, float | None] = {}
        for name in METRICS:
            a, b = ma[name].value, mb[name].value
            out[name] = None if a is None or b is None else b - a
        return out

    def transitions(self) -> list[tuple[str, str, str, int]]:
        """The joint table as sorted rows (rating, state A, state B, count)."""
        order = {s: i for i, s in enumerate(STATES)}
        rank = {r: i for i, r in enumerate(RATINGS)}
        return sorted(((r, sa, sb, n) for (r, sa, sb), n in self.joint.items()),
                      key=lambda t: (rank[t[0]], order[t[1]], order[t[2]]))

    def to_dict(self, flips: dict[str, list[str]] | None = None) -> dict[str, Any]:
        return {
            "eval_set_id": self.eval_set_id,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "deltas": self.deltas(),
            "counts": self.counts,
            "transitions": [
                {"rating": r, "a": sa, "b": sb, "count": n} for r, sa, sb, n in self.transitions()
            ],
            "flips": flips or {},
        }

    def to_cache(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "eval_set_id": self.eval_set_id,
                "joint": [[r, sa, sb, n] for (r, sa, sb), n in self.joint.items()]}

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Comparison:
        return cls(MatrixStats.from_dict(data["a"]), MatrixStats.from_dict(data["b"]), data["eval_set_id"],
                   {(r, sa, sb): int(n) for r, sa, sb, n in data["joint"]}, cached=True)


def _stats_shell(conn: sqlite3.Connection, eval_id: str, source: str) -> tuple[MatrixStats, str]:
    row = conn.execute(_EVAL_SQL, (eval_id,)).fetchone()
    if row is None:
        raise CompareError(f"no eval {eval_id!r} in this database")

    def num(value: object, kind: type) -> Any:
        try:
            return None if value is None or isinstance(value, bytes) else kind(value)
        except (TypeError, ValueError):
            return None

    stats = MatrixStats(eval_id=str(row[0]), eval_set_id=str(row[1]), name=str(row[2] or ""),
                        version=num(row[3], int) or 0, status=str(row[4] or ""), source=source,
                        stored_accuracy=num(row[5], float), stored_contradictions=num(row[6], int),
                        stored_executions=num(row[7], int))
    code = row[8] if isinstance(row[8], str) else ("" if row[8] is None else str(row[8]))
    return stats, code


def compare(conn: sqlite3.Connection, eval_a: str, eval_b: str) -> Comparison:
    """Both versions' statistics and the joint table, from one aggregate query."""
    source = comparison_source(conn)
    a, code_a = _stats_shell(conn, eval_a, source)
    b, code_b = _stats_shell(conn, eval_b, source)
    if a.eval_set_id != b.eval_set_id:
        raise CompareError(
            f"{eval_a} and {eval_b} belong to different eval sets ({a.eval_set_id}, {b.eval_set_id}):"
            " compare versions of one set"
        )
    joint: dict[tuple[str, str, str], int] = {}
    for rating, sa, sb, n in conn.execute(JOINT_SQL, {"a": eval_a, "b": eval_b, "s": a.eval_set_id}):
        key = (str(rating), _STATE_CODES[int(sa)], _STATE_CODES[int(sb)])
        joint[key] = joint.get(key, 0) + int(n)
    _fill_cells(a, b, joint)
    return Comparison(a, b, a.eval_set_id, joint, code_a, code_b)


def _fill_cells(a: MatrixStats, b: MatrixStats, joint: dict[tuple[str, str, str], int]) -> None:
    for (rating, sa, sb), n in joint.items():
        for stats, state in ((a, sa), (b, sb)):
            if rating == "unlabelled" and state == "not_run":
                continue  # outside the table: a trace this version never ran and nobody labelled
            stats.cells[rating][state] += n


# ---------------------------------------------------------------- flip lists, in keyset pages

def _flip_condition(kind: str) -> str:
    sa, sb = _state_sql("a"), _state_sql("b")
    if kind == "fixed":
        return (f"((f.rating = 'positive' AND {sa} = 1 AND {sb} = 0) OR "
                f"(f.rating = 'negative' AND {sa} = 0 AND {sb} = 1))")
    if kind == "broken":
        return (f"((f.rating = 'positive' AND {sa} = 0 AND {sb} = 1) OR "
                f"(f.rating = 'negative' AND {sa} = 1 AND {sb} = 0))")
    raise CompareError(f"unknown flip list {kind!r} (one of {', '.join(FLIP_KINDS)})")


def flip_page(conn: sqlite3.Connection, cmp: Comparison | tuple[str, str, str], kind: str,
              after: str | None = None, limit: int = 100) -> list[str]:
    """Up to ``limit`` trace ids of one flip list, in trace-id order, after ``after`` (keyset)."""
    a_id, b_id, set_id = (
        (cmp.a.eval_id, cmp.b.eval_id, cmp.eval_set_id) if isinstance(cmp, Comparison) else cmp
    )
    params: dict[str, Any] = {"a": a_id, "b": b_id, "s": set_id, "after": after, "n": int(limit)}
    after_sql = "AND {col} > :after" if after is not None else ""
    if kind in ("fixed", "broken"):  # labelled only: drive from the set's labels, in trace order
        sql = (f"SELECT f.trace_id FROM feedback f "
               f"JOIN eval_executions a ON a.eval_id = :a AND a.trace_id = f.trace_id "
               f"JOIN eval_executions b ON b.eval_id = :b AND b.trace_id = f.trace_id "
               f"WHERE f.eval_set_id = :s {after_sql.format(col='f.trace_id')} AND {_flip_condition(kind)} "
               f"ORDER BY f.trace_id LIMIT :n")
    elif kind == "changed":
        sql = (f"SELECT a.trace_id FROM eval_executions a "
               f"JOIN eval_executions b ON b.eval_id = :b AND b.trace_id = a.trace_id "
               f"WHERE a.eval_id = :a {after_sql.format(col='a.trace_id')} "
               f"AND {_state_sql('a')} != {_state_sql('b')} ORDER BY a.trace_id LIMIT :n")
    elif kind in ("only_a", "only_b"):
        this, other = ("a", "b") if kind == "only_a" else ("b", "a")
        sql = (f"SELECT x.trace_id FROM eval_executions x WHERE x.eval_id = :{this} "
               f"{after_sql.format(col='x.trace_id')} AND NOT EXISTS (SELECT 1 FROM eval_executions y "
               f"WHERE y.eval_id = :{other} AND y.trace_id = x.trace_id) ORDER BY x.trace_id LIMIT :n")
    else:
        _flip_condition(kind)  # raises
        return []
    return [str(r[0]) for r in conn.execute(sql, params)]


def iter_flips(conn: sqlite3.Connection, cmp: Comparison | tuple[str, str, str], kind: str,
               page: int = 1000) -> Any:
    """Every trace id of one flip list, page by page (memory: one page)."""
    after = None
    while True:
        ids = flip_page(conn, cmp, kind, after, page)
        yield from ids
        if len(ids) < page:
            return
        after = ids[-1]


# ---------------------------------------------------------------- cache

def _cache_file(db_path: Path, eval_a: str, eval_b: str) -> Path:
    digest = hashlib.sha256(json.dumps([eval_a, eval_b]).encode()).hexdigest()[:16]
    return cache_dir() / "compare" / f"{path_key(db_path)}-{digest}.json"


def _from_cache(conn: sqlite3.Connection, path: Path, fingerprint: list[int | str], eval_a: str,
                eval_b: str) -> Comparison | None:
    try:
        data = json.loads(_cache_file(path, eval_a, eval_b).read_text())
        if data.get("format") == CACHE_FORMAT and data.get("fingerprint") == fingerprint:
            cmp = Comparison.from_cache(data["comparison"])
            cmp.code_a = _stats_shell(conn, eval_a, cmp.a.source)[1]
            cmp.code_b = _stats_shell(conn, eval_b, cmp.b.source)[1]
            return cmp
    except (OSError, ValueError, KeyError, TypeError, CompareError):
        pass
    return None


def cached_only(
    conn: sqlite3.Connection, db_path: Path | str | None, eval_a: str, eval_b: str
) -> Comparison | None:
    """The cached comparison when it is still valid, else None; costs a file read and two primary-key
    lookups whatever the database size (the compare view calls it before its first frame)."""
    if db_path is None:
        return None
    path = Path(db_path).resolve()
    return _from_cache(conn, path, file_fingerprint(path), eval_a, eval_b)


def cached_compare(
    conn: sqlite3.Connection, db_path: Path | str | None, eval_a: str, eval_b: str
) -> Comparison:
    """``compare`` through a JSON cache valid while the database file and its -wal are unchanged.
    The code of both versions is read fresh (two rows by primary key)."""
    if db_path is None:
        return compare(conn, eval_a, eval_b)
    path = Path(db_path).resolve()
    fingerprint = file_fingerprint(path)
    cmp = _from_cache(conn, path, fingerprint, eval_a, eval_b)
    if cmp is not None:
        return cmp
    cmp = compare(conn, eval_a, eval_b)
    file = _cache_file(path, eval_a, eval_b)
    if file_fingerprint(path) == fingerprint:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "fingerprint": fingerprint,
                                   "comparison": cmp.to_cache()}))
        os.replace(tmp, file)
    return cmp
