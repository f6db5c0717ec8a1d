"""Evals of an eval set: version chains, details, test results (headless core of the evals pane).

Everything here tolerates what real databases hold: parent links that loop or point nowhere, code that
is not Python, ``test_results`` / ``training_trace_ids`` that are not JSON, in either key style (read by
``eval_parsing``). The list query reads only small columns (never ``code`` or ``test_results``) so a set
with many evals stays fast; recomputed counters come from
:func:`iofold_tui.data.matrix.stats.recomputed_counts` in one call. Diffs between versions and exporting
code are ``code_text``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from iofold_tui.data import introspect
from iofold_tui.data.evals.eval_parsing import (
    CodeCheck,
    TestResults,
    check_code,
    parse_test_results,
    parse_trace_ids,
)
from iofold_tui.data.matrix.stats import EvalCounts, recomputed_counts
from iofold_tui.data.values import marked, to_float, to_int, to_text

MAX_LIST = 5_000  # evals shown per set; more is said on screen
MAX_TRAINING = 5_000
FIELDS = (
    ("code", "code"),
    ("generation_prompt", "generation prompt"),
    ("custom_instructions", "custom instructions"),
)


# ---------------------------------------------------------------- list + version chains

@dataclass(frozen=True)
class EvalSummary:
    id: str
    eval_set_id: str
    name: str
    version: int
    parent_eval_id: str | None
    status: str
    model_used: str
    accuracy: float | None
    execution_count: int | None
    contradiction_count: int | None
    created_at: str
    code_chars: int
    # Stored counters that are not numbers (SQLite does not enforce types): field -> the value as stored,
    # shown marked instead of as a bare "—".
    unreadable: Mapping[str, object] = field(default_factory=dict)

    def shown(self, name: str, value: object) -> str | None:
        """The marked raw text of counter ``name`` when its stored value is not a number, else None."""
        return marked(self.unreadable[name]) if name in self.unreadable and value is None else None


@dataclass(frozen=True)
class EvalRef:
    """An eval outside the listed set (a parent in another set)."""

    id: str
    eval_set_id: str
    name: str
    version: int


@dataclass
class ChainLink:
    eval_id: str
    parent_id: str | None = None  # parent in the displayed tree (same name), after cutting cycles
    inferred: bool = False  # parent taken from version order, not from parent_eval_id
    base_id: str | None = None  # what "diff with parent" compares against
    depth: int = 0
    note: str | None = None  # missing parent, cycle, parent of another name / set


@dataclass
class EvalList:
    eval_set_id: str | None
    rows: list[tuple[EvalSummary, ChainLink]] = field(default_factory=list)  # display order
    truncated: bool = False
    problem: str | None = None

    @cached_property
    def _by_id(self) -> dict[str, tuple[EvalSummary, ChainLink]]:
        return {r[0].id: r for r in self.rows}

    def find(self, eval_id: str) -> tuple[EvalSummary, ChainLink] | None:
        return self._by_id.get(eval_id)

    def lineage(self, eval_id: str) -> list[EvalSummary]:
        """The eval and its tree ancestors, newest first (cycles were cut, so this ends)."""
        by_id = self._by_id
        out: list[EvalSummary] = []
        current: str | None = eval_id
        while current in by_id and len(out) <= len(by_id):
            summary, link = by_id[current]
            out.append(summary)
            current = link.parent_id
        return out


_LIST_COLUMNS = ("id", "eval_set_id", "name", "version", "parent_eval_id", "status", "model_used", "accuracy",
                 "execution_count", "contradiction_count", "created_at")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return introspect.column_set(conn, table)


_int = to_int
_float = to_float


def _summary(row: Mapping[str, Any]) -> EvalSummary:
    return EvalSummary(
        id=str(row["id"]),
        eval_set_id=str(row["eval_set_id"] or ""),
        name=str(row["name"] or "(unnamed)"),
        version=_int(row["version"]) or 0,
        parent_eval_id=None if row["parent_eval_id"] is None else str(row["parent_eval_id"]),
        status=str(row["status"] or ""),
        model_used=str(row["model_used"] or ""),
        accuracy=_float(row["accuracy"]),
        execution_count=_int(row["execution_count"]),
        contradiction_count=_int(row["contradiction_count"]),
        created_at=str(row["created_at"] or ""),
        code_chars=_int(row.get("code_chars")) or 0,
        unreadable={
            name: row[name]
            for name, convert in (
                ("accuracy", _float),
                ("execution_count", _int),
                ("contradiction_count", _int),
            )
            if row[name] is not None and convert(row[name]) is None
        },
    )


def list_evals(conn: sqlite3.Connection, eval_set_id: str, limit: int = MAX_LIST) -> EvalList:
    """The set's evals grouped by name, each group in version-chain order (one query + one for outside
    parents)."""
    cols = _columns(conn, "evals")
    missing = [c for c in ("id", "name", "eval_set_id") if c not in cols]
    if not cols or missing:
        what = "no evals table" if not cols else "evals has no " + ", ".join(missing)
        return EvalList(eval_set_id, problem=f"{what}: this pane reads the v1.0 schema")
    select = ", ".join(c if c in cols else f"NULL AS {c}" for c in _LIST_COLUMNS)
    code_len = "length(code)" if "code" in cols else "0"
    order = "name, version, id" if "version" in cols else "name, id"
    rows = [
        dict(r)
        for r in conn.execute(
            f"SELECT {select}, {code_len} AS code_chars FROM evals WHERE eval_set_id = ? ORDER BY {order} "
            f"LIMIT ?",
            (eval_set_id, limit + 1),
        )
    ]
    summaries = [_summary(r) for r in rows[:limit]]
    known = {s.id for s in summaries}
    wanted = sorted(
        {s.parent_eval_id for s in summaries if s.parent_eval_id and s.parent_eval_id not in known}
    )
    outside: dict[str, EvalRef] = {}
    if wanted and "version" in cols:
        for r in conn.execute(
            "SELECT id, eval_set_id, name, version FROM evals WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        ):
            outside[str(r[0])] = EvalRef(str(r[0]), str(r[1] or ""), str(r[2] or ""), _int(r[3]) or 0)
    return EvalList(eval_set_id, rows=build_chains(summaries, outside), truncated=len(rows) > limit)


def counts(conn: sqlite3.Connection, evals: EvalList) -> dict[str, EvalCounts]:
    """Recomputed, correctly scoped counters of every listed eval (one aggregate pass, in matrix_stats)."""
    return recomputed_counts(conn, [s.id for s, _ in evals.rows]) if evals.rows else {}


def _key(s: EvalSummary) -> tuple[int, str]:
    return (s.version, s.id)


def build_chains(evals: Sequence[EvalSummary], outside: Mapping[str, EvalRef] | None = None
                 ) -> list[tuple[EvalSummary, ChainLink]]:
    """Group by name; inside a group, link versions by ``parent_eval_id`` (else the previous version).

    Links that loop are cut at the loop's lowest version; a parent that does not exist falls back to
    version order. Returns rows in display order (groups by name, each a depth-first tree) with links.
    """
    outside = outside or {}
    by_id = {s.id: s for s in evals}
    groups: dict[str, list[EvalSummary]] = {}
    for s in sorted(evals, key=lambda s: (s.name, *_key(s))):
        groups.setdefault(s.name, []).append(s)
    links: dict[str, ChainLink] = {}
    for name, members in groups.items():
        prev: EvalSummary | None = None
        for s in members:
            link = links[s.id] = ChainLink(s.id)
            p = s.parent_eval_id
            inferred_parent = prev.id if prev else None
            if p and p in by_id and by_id[p].name == name:
                link.parent_id = link.base_id = p
            elif p and p in by_id:
                other = by_id[p]
                link.base_id, link.note = p, f"derived from {other.name} v{other.version}"
            elif p and p in outside:
                other_ref = outside[p]
                link.base_id = p
                link.note = (
                    f"parent {other_ref.name} v{other_ref.version} is in eval set {other_ref.eval_set_id}"
                )
            else:
                link.parent_id = link.base_id = inferred_parent
                link.inferred = inferred_parent is not None
                if p:
                    link.note = f"parent {p} is missing" + ("; chained by version order" if prev else "")
            prev = s
        _cut_cycles(members, links)
    out: list[tuple[EvalSummary, ChainLink]] = []
    for members in groups.values():
        children: dict[str | None, list[EvalSummary]] = {}
        for s in members:
            children.setdefault(links[s.id].parent_id, []).append(s)
        stack = [(s, 0) for s in reversed(children.get(None, []))]
        while stack:  # iterative DFS: chains can be thousands of versions long
            s, depth = stack.pop()
            links[s.id].depth = depth
            out.append((s, links[s.id]))
            stack.extend((c, depth + 1) for c in reversed(children.get(s.id, [])))
    return out


def _cut_cycles(members: list[EvalSummary], links: dict[str, ChainLink]) -> None:
    by_id = {s.id: s for s in members}
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = finished
    for start in members:
        path: list[str] = []
        node: str | None = start.id
        while node is not None and node not in state:
            state[node] = 1
            path.append(node)
            node = links[node].parent_id
        if node is not None and state[node] == 1:
            loop = path[path.index(node):]
            cut = min(loop, key=lambda i: _key(by_id[i]))
            shown = " → ".join(f"v{by_id[i].version}" for i in [*loop, loop[0]])
            links[cut].parent_id, links[cut].inferred = None, False
            links[cut].note = f"parent chain loops ({shown}); shown as a root"
        for n in path:
            state[n] = 2


# ---------------------------------------------------------------- one eval in full

@dataclass
class EvalDetail:
    summary: EvalSummary
    description: str
    code: str
    generation_prompt: str
    custom_instructions: str
    updated_at: str
    test_results: TestResults
    training_ids: list[str]
    training_problem: str | None
    check: CodeCheck

    def text_of(self, field_name: str) -> str:
        return str(getattr(self, field_name) or "")

    @property
    def problems(self) -> list[str]:
        out = [] if self.check.ok and not self.check.note else [self.check.note or "code: not valid Python"]
        out += self.test_results.problems
        if self.training_problem:
            out.append(self.training_problem)
        return out


def load_eval(conn: sqlite3.Connection, eval_id: str) -> EvalDetail | None:
    code_len = "length(code)" if "code" in _columns(conn, "evals") else "0"
    row = conn.execute(f"SELECT *, {code_len} AS code_chars FROM evals WHERE id = ?", (eval_id,)).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = {
        c: None
        for c in (
            *_LIST_COLUMNS,
            "description",
            "code",
            "generation_prompt",
            "custom_instructions",
            "test_results",
            "training_trace_ids",
            "updated_at",
        )
    }
    data.update(dict(row))
    summary = _summary(data)
    code = (
        data["code"] if isinstance(data["code"], str) else "" if data["code"] is None else str(data["code"])
    )
    training, training_problem = parse_trace_ids(data["training_trace_ids"])
    return EvalDetail(
        summary=summary,
        description=str(data["description"] or ""),
        code=code,
        generation_prompt=str(data["generation_prompt"] or ""),
        custom_instructions=str(data["custom_instructions"] or ""),
        updated_at=str(data["updated_at"] or ""),
        test_results=parse_test_results(data["test_results"]),
        training_ids=training,
        training_problem=training_problem,
        check=check_code(code, summary.name),
    )


@dataclass(frozen=True)
class TrainingTrace:
    id: str
    exists: bool
    rating: str | None
    preview: str


def training_traces(conn: sqlite3.Connection, ids: Sequence[str], eval_set_id: str,
                    limit: int = MAX_TRAINING) -> list[TrainingTrace]:
    """The training ids with whether each trace exists and its label in the eval's set (one query)."""
    wanted = list(ids[:limit])
    if not wanted:
        return []
    sql = """SELECT j.value, t.id IS NOT NULL, f.rating, substr(t.input_preview, 1, 200)
             FROM json_each(?) j LEFT JOIN traces t ON t.id = j.value
             LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? ORDER BY j.key"""
    return [TrainingTrace(to_text(r[0]), bool(r[1]), r[2], str(r[3] or ""))
            for r in conn.execute(sql, (json.dumps(wanted), eval_set_id))]


def accuracy_band(value: float | None) -> Literal["high", "mid", "low", "none"]:
    """iofold's colour bands: ≥ 0.8 green, ≥ 0.6 yellow, else red."""
    if value is None:
        return "none"
    return "high" if value >= 0.8 else "mid" if value >= 0.6 else "low"
