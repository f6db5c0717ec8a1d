"""What real databases hold in an eval's JSON columns and code, read tolerantly: ``test_results`` (either
key style, rows capped), ``training_trace_ids``, and whether the code parses and which function the
runner would call."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iofold_tui.data.values import to_float

MAX_TEST_ROWS = 5_000
AST_LIMIT = 2_000_000  # characters of code we still parse for the syntax note


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
                time_ms=to_float(_pick(item, "execution_time_ms", "executionTimeMs")),
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
