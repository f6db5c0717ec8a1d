"""Everything the trace detail pane shows for one trace, in one worker call."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from iofold_tui.data.traces.steps import ParsedSteps, parse_steps
from iofold_tui.data.values import marked, to_bool, to_count, to_int


@dataclass(frozen=True)
class FeedbackEntry:
    eval_set_id: str
    eval_set_name: str
    rating: str
    notes: str | None
    updated_at: str | None


@dataclass(frozen=True)
class ExecutionEntry:
    eval_id: str
    eval_name: str
    version: int
    eval_set_id: str
    result: int | None
    reason: str
    error: str | None
    execution_time_ms: int | None
    stdout: str | None
    stderr: str | None
    executed_at: str | None


@dataclass
class TraceDetail:
    id: str
    external_id: str
    source: str
    timestamp: str
    workspace_id: str
    integration_id: str
    has_errors: bool
    step_count: int
    input_preview: str
    output_preview: str
    metadata: str | None
    steps_raw: str | None
    steps: ParsedSteps
    feedback: list[FeedbackEntry] = field(default_factory=list)
    executions: list[ExecutionEntry] = field(default_factory=list)
    step_count_text: str = ""  # set when the stored step_count is not a count: "steps ⚠'many'"


def _steps_text(value: object) -> str:
    number = to_int(value)
    if value is not None and (
        number is None or number < 0 or (isinstance(value, float) and not value.is_integer())
    ):
        return f"steps {marked(value)}"
    return ""


def load_trace(conn: sqlite3.Connection, trace_id: str, *, max_executions: int = 200) -> TraceDetail | None:
    row = conn.execute(
        "SELECT id, trace_id, source, timestamp, workspace_id, integration_id, has_errors, step_count, "
        "input_preview, output_preview, metadata, steps FROM traces WHERE id = ?", (trace_id,)
    ).fetchone()
    if row is None:
        return None
    raw = row[11]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    detail = TraceDetail(
        id=str(row[0]),
        external_id=str(row[1] or ""),
        source=str(row[2] or ""),
        timestamp=str(row[3] or ""),
        workspace_id=str(row[4] or ""),
        integration_id=str(row[5] or ""),
        has_errors=bool(to_bool(row[6])),
        step_count=to_count(row[7]),
        step_count_text=_steps_text(row[7]),
        input_preview=str(row[8] or ""),
        output_preview=str(row[9] or ""),
        metadata=row[10] if isinstance(row[10], str) or row[10] is None else str(row[10]),
        steps_raw=raw if isinstance(raw, str) or raw is None else str(raw),
        steps=parse_steps(raw),
    )
    detail.feedback = [
        FeedbackEntry(str(r[0]), str(r[1] or r[0]), r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT f.eval_set_id, es.name, f.rating, f.notes, f.updated_at FROM feedback f "
            "LEFT JOIN eval_sets es ON es.id = f.eval_set_id WHERE f.trace_id = ? ORDER BY es.name",
            (trace_id,),
        )
    ]
    try:
        detail.executions = [
            ExecutionEntry(
                str(r[0]),
                str(r[1] or r[0]),
                to_count(r[2]),
                str(r[3] or ""),
                r[4],
                str(r[5] or ""),
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
            )
            for r in conn.execute(
                "SELECT x.eval_id, e.name, e.version, e.eval_set_id, x.result, x.reason, x.error, "
                "x.execution_time_ms, x.stdout, x.stderr, x.executed_at FROM eval_executions x "
                "LEFT JOIN evals e ON e.id = x.eval_id WHERE x.trace_id = ? "
                "ORDER BY e.name, e.version LIMIT ?",
                (trace_id, max_executions),
            )
        ]
    except sqlite3.OperationalError:  # a database without evals/executions tables
        detail.executions = []
    return detail
