"""Evals of an eval set: version chains, details, test results and diffs (headless core of the evals pane).

Everything here tolerates what real databases hold: parent links that loop or point nowhere, code that
is not Python, ``test_results`` / ``training_trace_ids`` that are not JSON, in either key style. The list
query reads only small columns (never ``code`` or ``test_results``) so a set with many evals stays fast;
recomputed counters come from :func:`iofold_tui.data.matrix_stats.recomputed_counts` in one call.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shlex
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from iofold_tui.data import introspect
from iofold_tui.data.matrix.stats import EvalCounts, recomputed_counts
from iofold_tui.data.sanitize import clean
from iofold_tui.data.values import marked, to_float, to_int, to_text

MAX_LIST = 5_000  # evals shown per set; more is said on screen
MAX_TEST_ROWS = 5_000
MAX_TRAINING = 5_000
AST_LIMIT = 2_000_000  # characters of code we still parse for the syntax note
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

@dataclass(frozen=True)
class TestRow:
    trace_id: str
    expected: bool | None
    predicted: bool | None
    match: bool | None
    reason: str
    time_ms: float | None
    error: str | None
    expected_text: str
    predicted_text: str


@dataclass
class TestResults:
    rows: list[TestRow] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    shape: str = "none"  # snake_case / camelCase / mixed / none
    problems: list[str] = field(default_factory=list)
    total_rows: int = 0  # detail rows in the JSON (rows holds at most MAX_TEST_ROWS)

    @property
    def mismatches(self) -> int:
        return sum(1 for r in self.rows if r.match is False)


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    note: str | None  # why it is not valid Python, or what is odd about it
    entry: str | None  # the top-level function the runner would call


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


def _json(raw: object, what: str) -> tuple[Any, str | None]:
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str):
        return raw, None
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as exc:
        return None, f"{what} is not valid JSON ({exc.msg} at character {exc.pos:,})"
    except (ValueError, RecursionError) as exc:
        return None, f"{what} is not valid JSON ({type(exc).__name__})"


def parse_trace_ids(raw: object) -> tuple[list[str], str | None]:
    """``training_trace_ids``: a JSON array of ids. Returns (ids, problem)."""
    if raw is None or raw == "":
        return [], None
    data, problem = _json(raw, "training_trace_ids")
    if problem:
        return [], problem
    if not isinstance(data, list):
        return [], f"training_trace_ids is a JSON {type(data).__name__}, expected an array"
    ids = [str(v) for v in data if isinstance(v, str | int) and not isinstance(v, bool)]
    skipped = len(data) - len(ids)
    return ids, f"training_trace_ids: {skipped} entries are not ids (skipped)" if skipped else None


_TRUE = {"true", "pass", "passed", "positive", "1", "yes"}
_FALSE = {"false", "fail", "failed", "negative", "0", "no"}


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else None
    return None


def _pick(item: Mapping[str, Any], *keys: str) -> Any:
    return next((item[k] for k in keys if k in item), None)


def parse_test_results(raw: object) -> TestResults:
    """``{correct, incorrect, errors, total, accuracy?, details: [...]}``, details in snake_case or
    camelCase."""
    if raw is None or raw == "":
        return TestResults()
    data, problem = _json(raw, "test_results")
    if problem:
        return TestResults(problems=[problem])
    if isinstance(data, list):
        details, summary = data, {}
    elif isinstance(data, dict):
        summary = {k: data[k] for k in ("correct", "incorrect", "errors", "total", "accuracy") if k in data}
        details = data.get("details", [])
        if not isinstance(details, list):
            return TestResults(summary=summary, problems=["test_results.details is not an array"])
    else:
        return TestResults(problems=[f"test_results is a JSON {type(data).__name__}, expected an object"])
    out = TestResults(summary=summary, total_rows=len(details))
    styles: set[str] = set()
    bad = 0
    for item in details[:MAX_TEST_ROWS]:
        if not isinstance(item, dict):
            bad += 1
            continue
        styles |= {"camelCase" for k in ("traceId", "executionTimeMs") if k in item}
        styles |= {"snake_case" for k in ("trace_id", "execution_time_ms") if k in item}
        expected, predicted = _pick(item, "expected"), _pick(item, "predicted")
        exp_b, pred_b = _as_bool(expected), _as_bool(predicted)
        match = _as_bool(item["match"]) if "match" in item else (
            exp_b == pred_b if exp_b is not None and pred_b is not None else None)
        error = _pick(item, "error")
        out.rows.append(
            TestRow(
                trace_id=str(_pick(item, "trace_id", "traceId", "id") or ""),
                expected=exp_b,
                predicted=pred_b,
                match=match,
                reason=str(_pick(item, "reason") or ""),
                time_ms=_float(_pick(item, "execution_time_ms", "executionTimeMs")),
                error=None if error in (None, "") else str(error),
                expected_text="" if expected is None else str(expected),
                predicted_text="" if predicted is None else str(predicted),
            )
        )
    out.shape = "mixed" if len(styles) > 1 else next(iter(styles), "none")
    if bad:
        out.problems.append(f"test_results: {bad} detail rows are not objects (skipped)")
    if len(details) > MAX_TEST_ROWS:
        out.problems.append(f"test_results: showing the first {MAX_TEST_ROWS:,} of {len(details):,} rows")
    correct = summary.get("correct")
    if isinstance(correct, int) and len(details) <= MAX_TEST_ROWS and not bad:
        matched = sum(1 for r in out.rows if r.match)
        if matched != correct:
            out.problems.append(f"test_results says {correct} correct but its rows show {matched}")
    return out


def check_code(code: str, name: str) -> CodeCheck:
    """Whether the code parses, and which top-level function iofold would call."""
    if not code.strip():
        return CodeCheck(False, "code is empty", None)
    if len(code) > AST_LIMIT:
        return CodeCheck(True, f"code not syntax-checked ({len(code):,} characters)", None)
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return CodeCheck(False, f"not valid Python: line {exc.lineno or '?'}: {exc.msg}", None)
    except (ValueError, RecursionError, MemoryError) as exc:
        return CodeCheck(False, f"not valid Python: {type(exc).__name__}: {str(exc)[:80]}", None)
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if name in defs:
        return CodeCheck(True, None, name)
    if defs:
        return CodeCheck(True, f"no top-level def {name}(); the runner would call {defs[0]}()", defs[0])
    return CodeCheck(True, "no top-level function to call", None)


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


# ---------------------------------------------------------------- diffs

DiffKind = Literal["equal", "add", "del", "hunk"]
SideKind = Literal["equal", "replace", "add", "del", "hunk"]


@dataclass(frozen=True)
class DiffLine:
    kind: DiffKind
    old_no: int | None
    new_no: int | None
    text: str


@dataclass(frozen=True)
class SideRow:
    kind: SideKind
    old_no: int | None
    old_text: str | None
    new_no: int | None
    new_text: str | None


@dataclass
class FieldDiff:
    field: str
    label: str
    unified: list[DiffLine]
    side: list[SideRow]
    added: int
    removed: int

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed


def split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (as the highlighter splits), without the empty tail of a final newline."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" and len(lines) > 1 else ([] if text == "" else lines)


def _groups(
    a: list[str], b: list[str], context: int | None
) -> list[Sequence[tuple[str, int, int, int, int]]]:
    matcher = difflib.SequenceMatcher(None, a, b)
    if context is None:
        return [matcher.get_opcodes()]
    return list(matcher.get_grouped_opcodes(context))


def diff_lines(
    old: str, new: str, context: int | None = 3, field_name: str = "code", label: str = "code"
) -> FieldDiff:
    """Unified lines and side-by-side rows from one difflib pass; ``context=None`` keeps every line."""
    a, b = split_lines(old), split_lines(new)
    unified: list[DiffLine] = []
    side: list[SideRow] = []
    added = removed = 0
    if a != b:
        for group in _groups(a, b, context):
            i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
            header = f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"
            unified.append(DiffLine("hunk", None, None, header))
            side.append(SideRow("hunk", None, header, None, None))
            for tag, x1, x2, y1, y2 in group:
                if tag == "equal":
                    for k in range(x2 - x1):
                        unified.append(DiffLine("equal", x1 + k + 1, y1 + k + 1, a[x1 + k]))
                        side.append(SideRow("equal", x1 + k + 1, a[x1 + k], y1 + k + 1, b[y1 + k]))
                    continue
                removed += x2 - x1
                added += y2 - y1
                unified += [DiffLine("del", i + 1, None, a[i]) for i in range(x1, x2)]
                unified += [DiffLine("add", None, j + 1, b[j]) for j in range(y1, y2)]
                for k in range(max(x2 - x1, y2 - y1)):
                    i, j = x1 + k, y1 + k
                    has_old, has_new = i < x2, j < y2
                    kind: SideKind = "replace" if has_old and has_new else "del" if has_old else "add"
                    side.append(SideRow(kind, i + 1 if has_old else None, a[i] if has_old else None,
                                        j + 1 if has_new else None, b[j] if has_new else None))
    return FieldDiff(field_name, label, unified, side, added, removed)


def eval_diff(old: EvalDetail, new: EvalDetail, context: int | None = 3) -> list[FieldDiff]:
    """Code, generation prompt and custom instructions of ``old`` → ``new``."""
    return [diff_lines(old.text_of(f), new.text_of(f), context, f, label) for f, label in FIELDS]


def unified_text(old: EvalDetail, new: EvalDetail, context: int = 3) -> str:
    """A plain unified diff (``git apply``-style headers) of all three fields, for copying."""
    parts: list[str] = []
    for f, _ in FIELDS:
        a, b = split_lines(old.text_of(f)), split_lines(new.text_of(f))
        tag = "" if f == "code" else f".{f}"
        parts += difflib.unified_diff(
            a,
            b,
            f"{old.summary.name}_v{old.summary.version}{tag}",
            f"{new.summary.name}_v{new.summary.version}{tag}",
            n=context,
            lineterm="",
        )
    return "\n".join(parts) + ("\n" if parts else "")


# ---------------------------------------------------------------- export / external viewer

def accuracy_band(value: float | None) -> Literal["high", "mid", "low", "none"]:
    """iofold's colour bands: ≥ 0.8 green, ≥ 0.6 yellow, else red."""
    if value is None:
        return "none"
    return "high" if value >= 0.8 else "mid" if value >= 0.6 else "low"


def default_export_name(name: str, version: int) -> str:
    """``<name>_v<version>.py`` with anything but letters, digits, ``_`` and ``-`` replaced."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_.") or "eval"
    return f"{stem[:80]}_v{version}.py"


def export_code(code: str, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the code exactly as stored; ``FileExistsError`` unless ``overwrite``."""
    path = Path(path).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    with path.open("w" if overwrite else "x", encoding="utf-8", newline="") as handle:
        handle.write(code)
    return path


def viewer_command(env: Mapping[str, str] | None = None) -> list[str] | None:
    """$PAGER, else $EDITOR, else ``less`` / ``more`` when installed; None when nothing is usable."""
    env = os.environ if env is None else env
    for var in ("PAGER", "EDITOR"):
        value = (env.get(var) or "").strip()
        if value:
            try:
                parts = shlex.split(value)
            except ValueError:
                continue
            if parts and shutil.which(parts[0]):
                return parts
    for fallback in ("less", "more"):
        if shutil.which(fallback):
            return [fallback]
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(code: str) -> tuple[str, bool]:
    """Code for a pager on the terminal: raw unless it holds control characters (then made visible)."""
    if not _CONTROL.search(code):
        return code, False
    return clean(code, limit=None), True
