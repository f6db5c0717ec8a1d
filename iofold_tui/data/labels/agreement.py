"""Agreement between annotators: who labelled what, how often they agree, and with which eval version.

An *annotator* is a set of labels per (eval set, trace): the source database itself ("mine"), another
copy of the database (a SQLite file, a ``wrangler d1 export`` .sql — its cached working copy — or a
wrangler project dir; ATTACHed read-only, never written), a label file (``export-labels`` CSV / JSON lines
/ .sql patch; loaded into an in-memory scratch schema), or one person's labels in the local label history
(its ``annotator`` column, when it has one). Everything is computed in SQL over the ``feedback``
``UNIQUE(eval_set_id, trace_id)`` index, per eval set:

- per annotator: traces labelled (by rating); ratings outside positive/negative/neutral are ignored;
- per pair: overlap (traces both labelled), percent agreement, Cohen's κ over the three ratings, and the
  rating × rating confusion table;
- for three or more: Fleiss' κ over the traces labelled by all of them (and the share where all agree);
- per annotator and eval version of the set (in the source database): the eval's verdict against the
  annotator's rating with the scoping rules of data/matrix/stats.py (pass ≙ positive, fail ≙ negative;
  neutral, errors, invalid results and traces the eval did not run are excluded and counted).

Undefined figures are ``None`` with the reason, never a fake 0: no overlap, a single trace (the chance
model needs more than one), or expected agreement 1 (every label of both in one class).
Disagreements are listed by trace id with keyset paging (``disagreements``).

The session is opened by data/labels/agreement_open.py, κ is computed by data/labels/kappa.py and the
report is put into words by data/labels/agreement_text.py.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from iofold_tui.data import introspect
from iofold_tui.data.labels.kappa import cohen, fleiss, undefined
from iofold_tui.data.matrix.stats import MatrixStats
from iofold_tui.data.ratings import RATINGS

_VALID = "rating IN ('positive', 'negative', 'neutral')"


@dataclass
class Annotator:
    name: str
    origin: str  # what the user named
    kind: str  # source | database | file | history
    relation: str  # SQL naming a table with eval_set_id, trace_id, rating, notes
    where: str = ""  # an extra filter on it ("AND ...")
    params: tuple[object, ...] = ()
    schema: str = ""  # source / database: the schema holding its ``feedback`` table (introspected)

    def source_sql(self, alias: str) -> str:
        return f"{self.relation} AS {alias}"


@dataclass
class Disagreement:
    trace_id: str
    ratings: dict[str, str | None]  # annotator name -> rating (None: not labelled)


@dataclass
class AgreementSession:
    """A read-only connection on the source with the other annotators attached. Close it when done."""

    conn: sqlite3.Connection
    annotators: list[Annotator]
    source_label: str
    _attached: int = 0
    notes: list[str] = field(default_factory=list)
    _dist: dict[object, list[tuple[int, int]]] = field(default_factory=dict)
    _vec_scope: object = "none yet"  # the set scratch.vec holds (None: every set)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> AgreementSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- eval sets ----------------------------------------------------------------------------------

    def eval_sets(self, wanted: str | None = None) -> list[tuple[str, str]]:
        """(id, name) of the source's eval sets (``wanted``: one, by id or name). Raises ValueError."""
        rows = [(str(r[0]), str(r[1] if r[1] is not None else r[0]))
                for r in self.conn.execute("SELECT id, name FROM main.eval_sets ORDER BY name, id")]
        if wanted is None:
            return rows
        by_id = [r for r in rows if r[0] == wanted]
        if by_id:
            return by_id
        by_name = [r for r in rows if r[1] == wanted]
        if len(by_name) > 1:
            raise ValueError(f"--eval-set {wanted!r}: {len(by_name)} eval sets have this name; "
                             "give its id")
        if not by_name:
            raise ValueError(f"--eval-set {wanted!r}: no eval set with this name or id in "
                             f"{self.source_label}")
        return by_name

    # -- the figures --------------------------------------------------------------------------------

    def report(self, eval_set: str | None = None, *, versions: bool = True) -> dict[str, Any]:
        """Every figure, per eval set; ``versions=False`` leaves out the eval-version agreement
        (``None``)."""
        sets = self.eval_sets(eval_set)
        self._vectors(sets[0][0] if eval_set is not None and sets else None)  # one pass for every set
        out: dict[str, Any] = {
            "source": self.source_label,
            "annotators": [{"name": a.name, "origin": a.origin, "kind": a.kind} for a in self.annotators],
            "eval_sets": [self.eval_set_report(es, name, versions=versions) for es, name in sets],
            "notes": list(self.notes),
        }
        if eval_set is None:
            known = {es for es, _ in sets}
            out["unknown_eval_sets"] = self._unknown_sets(known)
        return out

    def _unknown_sets(self, known: set[str]) -> dict[str, int]:
        """Labels (per annotator) in eval sets the source does not have. The distinct eval set ids come
        from index seeks (``min(eval_set_id) > previous``), one per set: no pass over the labels."""
        found: dict[str, int] = {}
        for a in self.annotators[1:]:
            n, previous = 0, None
            for _ in range(10_000):  # a bound: far more eval sets than any database has
                after = "eval_set_id > ?" if previous is not None else "1"
                row = self.conn.execute(
                    f"SELECT min(eval_set_id) FROM {a.relation} WHERE {after} {_scoped(a, a.relation)}",
                    ((previous,) if previous is not None else ()) + a.params).fetchone()
                if row is None or row[0] is None:
                    break
                previous = row[0]
                if previous not in known:
                    n += int(self.conn.execute(
                        f"SELECT count(*) FROM {a.relation} WHERE eval_set_id = ? AND {_VALID} "
                        f"{_scoped(a, a.relation)}", (previous, *a.params)).fetchone()[0])
            if n:
                found[a.name] = n
        return found

    def eval_set_report(self, es: str, name: str, *, versions: bool = True) -> dict[str, Any]:
        # ``report`` fills every set at once; alone, this set only
        if self._vec_scope not in (None, es):
            self._vectors(es)
        dist = self._dist.get(es, [])
        anns = self.annotators
        k = len(anns)
        labelled = []
        for i, a in enumerate(anns):
            by_rating = {r: 0 for r in RATINGS}
            for v, n in dist:
                code = (v >> 2 * i) & 3
                if code:
                    by_rating[RATINGS[code - 1]] += n
            labelled.append({"name": a.name, "labelled": sum(by_rating.values()), "by_rating": by_rating})
        pairs = [self._pair(dist, i, j) for i, j in itertools.combinations(range(k), 2)]
        group = None
        if k >= 3:
            counts = []
            for v, n in dist:
                codes = [(v >> 2 * i) & 3 for i in range(k)]
                if all(codes):
                    counts.append(([codes.count(c + 1) for c in range(len(RATINGS))], n))
            traces, unanimous, kappa = fleiss(counts, k)
            group = {"annotators": k, "traces": traces, "unanimous": unanimous.value,
                     "fleiss_kappa": kappa.value,
                     "undefined": undefined(unanimous=unanimous, fleiss_kappa=kappa)}
        disagreeing = sum(n for v, n in dist if len({(v >> 2 * i) & 3 for i in range(k)} - {0}) > 1)
        return {
            "eval_set_id": es, "name": name, "annotators": labelled, "pairs": pairs, "fleiss": group,
            "disagreements": disagreeing,
            "versions": self._versions(es, labelled) if versions else None,
        }

    def _vectors(self, es: str | None) -> None:
        """One pass over every annotator's labels (sequential scans, no per-label index probe) of the set
        ``es`` (None: every set at once): ``scratch.vec`` gets one row per (eval set, trace) labelled by
        anyone, ``v`` packing each annotator's rating in two bits (0 none, 1 positive, 2 negative,
        3 neutral; annotator i at bits 2i). ``_dist`` then holds, per set, how many traces have each
        ``v``: every inter-annotator figure follows from that distribution."""
        arms: list[str] = []
        params: list[Any] = []
        code = "(CASE t.rating WHEN 'positive' THEN 1 WHEN 'negative' THEN 2 ELSE 3 END)"
        for i, a in enumerate(self.annotators):
            where = f"WHERE {'t.eval_set_id = ? AND ' if es is not None else ''}t.{_VALID} {_scoped(a, 't')}"
            if self._one_row_per_key(a):
                arms.append(f"SELECT t.eval_set_id AS e, t.trace_id AS t, {code} << {2 * i} AS v "
                            f"FROM {a.relation} AS t NOT INDEXED {where}")
            else:  # no UNIQUE(eval_set_id, trace_id): one rating per trace, or the bits would mix
                arms.append(f"SELECT t.eval_set_id AS e, t.trace_id AS t, max({code}) << {2 * i} AS v "
                            f"FROM {a.relation} AS t NOT INDEXED {where} "
                            "GROUP BY t.eval_set_id, t.trace_id")
            params.extend(((es,) if es is not None else ()) + a.params)
        self.conn.execute("PRAGMA query_only = 0")  # the in-memory scratch schema only
        try:
            self.conn.execute("DROP TABLE IF EXISTS scratch.vec")
            self.conn.execute("CREATE TABLE scratch.vec AS "
                              "SELECT e AS eval_set_id, t AS trace_id, sum(v) AS v "
                              f"FROM ({' UNION ALL '.join(arms)}) GROUP BY e, t", params)
        finally:
            self.conn.execute("PRAGMA query_only = 1")
        self._dist = {}
        per_set = self.conn.execute("SELECT eval_set_id, v, count(*) FROM scratch.vec GROUP BY 1, 2")
        for e, v, n in per_set:
            self._dist.setdefault(e, []).append((int(v), int(n)))
        self._vec_scope = es

    def _one_row_per_key(self, a: Annotator) -> bool:
        """Whether the relation has a unique index / key on exactly (eval_set_id, trace_id)."""
        if a.kind in ("file", "history"):
            return True
        try:
            keys = introspect.attached_unique_keys(self.conn, a.schema, "feedback")
        except sqlite3.Error:
            return False
        return any(sorted(cols) == ["eval_set_id", "trace_id"] for cols in keys)

    def _pair(self, dist: list[tuple[int, int]], i: int, j: int) -> dict[str, Any]:
        table: dict[str, dict[str, int]] = {r: {c: 0 for c in RATINGS} for r in RATINGS}
        for v, n in dist:
            a, b = (v >> 2 * i) & 3, (v >> 2 * j) & 3
            if a and b:
                table[RATINGS[a - 1]][RATINGS[b - 1]] += n
        overlap = sum(sum(r.values()) for r in table.values())
        agree = sum(table[c][c] for c in RATINGS)
        percent, kappa = cohen(table)
        return {"a": self.annotators[i].name, "b": self.annotators[j].name, "overlap": overlap,
                "agree": agree, "percent_agreement": percent.value, "cohens_kappa": kappa.value,
                "undefined": undefined(percent_agreement=percent, cohens_kappa=kappa), "confusion": table}

    def _versions(self, es: str, labelled: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each annotator against each eval version of the set (in the source database). Each version's
        execution on each labelled trace is read once for all annotators (``scratch.vec`` joined to the
        ``eval_executions(eval_id, trace_id)`` index): this is the part whose cost grows with the labels."""
        evals = [(str(e[0]), str(e[1] or ""), _int(e[2]), str(e[3] or "")) for e in self.conn.execute(
            "SELECT id, name, version, status FROM main.evals WHERE eval_set_id = ? ORDER BY version, id",
            (es,))]
        out = []
        stats = {(i, e[0]): MatrixStats(e[0], es, e[1], e[2], e[3], a.name)
                 for e in evals for i, a in enumerate(self.annotators)}
        for e in evals:
            # The rules of data/matrix/stats.py: an error first, then a result of 1 / 0, else invalid.
            rows = self.conn.execute(
                "SELECT x.v, CASE WHEN e.error IS NOT NULL THEN 'error' "
                "WHEN coalesce(e.result IN (0, 1), 0) = 0 THEN 'invalid' WHEN e.result = 1 THEN 'pass' "
                "ELSE 'fail' END, "
                "count(*) FROM scratch.vec AS x JOIN main.eval_executions AS e ON e.eval_id = ? "
                "AND e.trace_id = x.trace_id WHERE x.eval_set_id = ? GROUP BY 1, 2", (e[0], es)).fetchall()
            for i in range(len(self.annotators)):
                cells = stats[(i, e[0])].cells
                for v, state, n in rows:
                    code = (int(v) >> 2 * i) & 3
                    if code:
                        cells[RATINGS[code - 1]][str(state)] += int(n)
        for e in evals:
            for i, a in enumerate(self.annotators):
                s = stats[(i, e[0])]
                for r in RATINGS:
                    s.cells[r]["not_run"] = labelled[i]["by_rating"][r] - sum(
                        s.cells[r][st] for st in ("pass", "fail", "error", "invalid"))
                accuracy, kappa = s.accuracy, s.cohens_kappa
                out.append({"annotator": a.name, "eval_id": s.eval_id, "eval_name": s.name,
                            "version": s.version, "status": s.status, "n": s.n, "agree": s.tp + s.tn,
                            "tp": s.tp, "fp": s.fp, "fn": s.fn, "tn": s.tn,
                            "percent_agreement": accuracy.value, "cohens_kappa": kappa.value,
                            "undefined": undefined(percent_agreement=accuracy, cohens_kappa=kappa),
                            "excluded": {k: v for k, v in s.excluded.items() if k != "unlabelled"}})
        out.sort(key=lambda d: [a.name for a in self.annotators].index(str(d["annotator"])))
        return out

    def _pair_disagree_sql(self, a: Annotator, b: Annotator, select: str) -> tuple[str, tuple[object, ...]]:
        sql = (f"SELECT {select} FROM {a.source_sql('x')} JOIN {b.source_sql('y')} "
               "ON y.eval_set_id = x.eval_set_id AND y.trace_id = x.trace_id "
               f"WHERE x.eval_set_id = ? AND x.{_VALID} AND y.{_VALID} AND x.rating != y.rating "
               f"{_scoped(a, 'x')} {_scoped(b, 'y')}")
        return sql, (*a.params, *b.params)

    def count_disagreements(self, es: str) -> int:
        """Traces of the set that two annotators labelled differently."""
        parts: list[str] = []
        params: list[Any] = []
        for a, b in itertools.combinations(self.annotators, 2):
            sql, p = self._pair_disagree_sql(a, b, "x.trace_id")
            parts.append(sql)
            params.extend((es, *p))
        if not parts:
            return 0
        if len(parts) == 1:
            return int(self.conn.execute(f"SELECT count(*) FROM ({parts[0]})", params).fetchone()[0])
        union = " UNION ".join(parts)
        return int(self.conn.execute(f"SELECT count(*) FROM ({union})", params).fetchone()[0])

    def disagreements(self, es: str, *, after: object = None, limit: int = 100) -> list[Disagreement]:
        """Traces labelled differently by two annotators, ordered by trace id, ``limit`` after ``after``."""
        ids: set[object] = set()
        for a, b in itertools.combinations(self.annotators, 2):
            sql, p = self._pair_disagree_sql(a, b, "x.trace_id")
            window = "" if after is None else " AND x.trace_id > ?"
            rows = self.conn.execute(f"{sql}{window} ORDER BY x.trace_id LIMIT ?",
                                     (es, *p, *(() if after is None else (after,)), limit))
            ids.update(r[0] for r in rows)
        page = sorted(ids, key=_sort_key)[:limit]
        return [Disagreement(str(t), self.ratings_of(es, t)) for t in page]

    def ratings_of(self, es: str, trace_id: object) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for a in self.annotators:
            row = self.conn.execute(f"SELECT rating FROM {a.relation} WHERE eval_set_id = ? AND trace_id = ? "
                                    f"AND {_VALID} {_scoped(a, a.relation)}",
                                    (es, trace_id, *a.params)).fetchone()
            out[a.name] = None if row is None else str(row[0])
        return out


def _sort_key(value: object) -> tuple[int, Any]:
    """SQLite's order: NULL, numbers, text, blobs."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value.encode())  # BINARY collation: byte order
    return (3, bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode())


def _scoped(a: Annotator, alias: str) -> str:
    return a.where.replace("{t}", alias) if a.where else ""


def _int(value: object) -> int:
    try:
        return int(value) if isinstance(value, int | float | str | bytes) else 0
    except (TypeError, ValueError):
        return 0

