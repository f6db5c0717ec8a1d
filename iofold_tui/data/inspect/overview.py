"""The overview figures: what the seed README's monitoring queries compute, scoped to one workspace.

Every figure carries ``sql`` listing the rows behind it, so the UI can jump from a number to its rows
(in the SQL console, read-only). All counts are SQL aggregates over indexes. The costliest are the
row counts of ``traces`` and ``eval_executions`` (index-only scans: well under a second per million
rows) and the warning checks (see inspect_checks): call ``overview()`` from a worker.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from iofold_tui.data.inspect.checks import DataWarning, detect_warnings
from iofold_tui.data.inspect.integrations import IntegrationInfo, list_integrations
from iofold_tui.data.inspect.jobs import DURATION_SQL
from iofold_tui.data.inspect.util import has_columns, literal, schema_columns, where, ws_cond
from iofold_tui.data.values import to_count, to_float

BUCKETS = (("high", "≥ 90 %"), ("medium", "80–90 %"), ("low", "< 80 %"), ("none", "no accuracy"))
BUCKET_CONDITIONS = {
    "high": "e.accuracy >= 0.9",
    "medium": "e.accuracy >= 0.8 AND e.accuracy < 0.9",
    "low": "e.accuracy < 0.8",
    "none": "e.accuracy IS NULL",
}
BUCKET_CASE = ("CASE WHEN e.accuracy IS NULL THEN 'none' WHEN e.accuracy >= 0.9 THEN 'high' "
               "WHEN e.accuracy >= 0.8 THEN 'medium' ELSE 'low' END")


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str | None


@dataclass(frozen=True)
class TableCount:
    table: str
    count: int
    sql: str


@dataclass(frozen=True)
class EvalSetProgress:
    id: str
    name: str | None
    minimum_examples: int
    positive: int
    negative: int
    neutral: int
    sql: str

    @property
    def total(self) -> int:
        return self.positive + self.negative + self.neutral

    @property
    def progress(self) -> float:
        """Labels toward ``minimum_examples`` (iofold counts every rating, neutral included), 0–1."""
        return 1.0 if self.minimum_examples <= 0 else min(1.0, self.total / self.minimum_examples)

    @property
    def ready(self) -> bool:
        return self.total >= self.minimum_examples


@dataclass(frozen=True)
class AccuracyBucket:
    bucket: str  # high | medium | low | none
    label: str
    count: int
    sql: str


@dataclass(frozen=True)
class IntegrationCount:
    platform: str | None
    status: str | None
    count: int
    sql: str


@dataclass(frozen=True)
class JobGroup:
    type: str | None
    status: str | None
    count: int
    avg_duration_s: float | None  # over jobs that started and completed
    timed: int  # how many jobs the average covers
    sql: str


@dataclass(frozen=True)
class JobTypeSummary:
    type: str | None
    total: int
    by_status: dict[str, int]
    avg_duration_s: float | None

    @property
    def failure_rate(self) -> float | None:
        """failed / (completed + failed): queued, running and cancelled jobs have no outcome yet."""
        done = self.by_status.get("completed", 0) + self.by_status.get("failed", 0)
        return self.by_status.get("failed", 0) / done if done else None


@dataclass
class Overview:
    workspace_id: str | None
    workspaces: list[Workspace]
    tables: list[TableCount]
    eval_sets: list[EvalSetProgress]
    accuracy: list[AccuracyBucket]
    integration_counts: list[IntegrationCount]
    integrations: list[IntegrationInfo]
    job_groups: list[JobGroup]
    job_types: list[JobTypeSummary]
    warnings: list[DataWarning]
    notes: list[str] = field(default_factory=list)


def _round(seconds: float | None) -> float | None:
    """julianday() arithmetic carries ~10 µs of float noise (1 s reads 0.99999…): keep milliseconds."""
    value = to_float(seconds)
    return None if value is None else round(value, 3)


def _ws_sets(ws: str) -> str:
    return f"(SELECT id FROM eval_sets WHERE workspace_id = {literal(ws)})"


def _table_filters(ws: str) -> dict[str, str]:
    """WHERE clause scoping each v1.0 table to one workspace (each served by an index)."""
    lit = literal(ws)
    evals = f"(SELECT id FROM evals WHERE eval_set_id IN {_ws_sets(ws)})"
    return {
        "workspaces": f"id = {lit}",
        "users": f"id IN (SELECT user_id FROM workspace_members WHERE workspace_id = {lit})",
        "workspace_members": f"workspace_id = {lit}",
        "integrations": f"workspace_id = {lit}",
        "traces": f"workspace_id = {lit}",
        "eval_sets": f"workspace_id = {lit}",
        "feedback": f"eval_set_id IN {_ws_sets(ws)}",
        "evals": f"eval_set_id IN {_ws_sets(ws)}",
        "eval_executions": f"eval_id IN {evals}",
        "jobs": f"workspace_id = {lit}",
    }


_SCOPE_NEEDS = {"users": ("workspace_members", "user_id"), "feedback": ("eval_sets", "workspace_id"),
                "evals": ("eval_sets", "workspace_id"), "eval_executions": ("evals", "eval_set_id")}


def table_counts(
    conn: sqlite3.Connection, workspace_id: str | None, schema: dict[str, set[str]]
) -> list[TableCount]:
    result: list[TableCount] = []
    filters = _table_filters(workspace_id) if workspace_id is not None else {}
    for table in (
        "workspaces",
        "users",
        "workspace_members",
        "integrations",
        "traces",
        "eval_sets",
        "feedback",
        "evals",
        "eval_executions",
        "jobs",
    ):
        if table not in schema:
            continue
        where = filters.get(table)
        need = _SCOPE_NEEDS.get(table)
        if where is not None and need is not None and not has_columns(schema, *need):
            continue  # cannot be scoped on this schema: better absent than wrong
        sql = f"SELECT * FROM {table}" + (
            f" WHERE {where}" if where else ""
        )  # table: one of the fixed names above
        count = conn.execute(
            f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        ).fetchone()[0]
        result.append(TableCount(table, int(count), sql))
    return result


def eval_set_progress(conn: sqlite3.Connection, workspace_id: str | None) -> list[EvalSetProgress]:
    rows = conn.execute(
        "SELECT s.id, s.name, s.minimum_examples, sum(f.rating = 'positive'), sum(f.rating = 'negative'), "
        "sum(f.rating = 'neutral') FROM eval_sets s LEFT JOIN feedback f ON f.eval_set_id = s.id "
        f"{where(ws_cond('s.workspace_id', workspace_id))} GROUP BY s.id ORDER BY s.name, s.id"
    ).fetchall()
    return [
        EvalSetProgress(
            r[0],
            r[1],
            to_count(r[2]),
            to_count(r[3]),
            to_count(r[4]),
            to_count(r[5]),
            f"SELECT * FROM feedback WHERE eval_set_id = {literal(r[0])} ORDER BY rating, created_at",
        )
        for r in rows
    ]


def accuracy_buckets(conn: sqlite3.Connection, workspace_id: str | None) -> list[AccuracyBucket]:
    ws = ws_cond("s.workspace_id", workspace_id)
    base = "FROM evals e LEFT JOIN eval_sets s ON s.id = e.eval_set_id"
    counts = dict(
        conn.execute(f"SELECT {BUCKET_CASE} AS bucket, count(*) {base}{where(ws)} GROUP BY bucket").fetchall()
    )
    listing = "SELECT e.id, e.name, e.version, e.eval_set_id, e.accuracy, e.status, e.created_at "
    return [
        AccuracyBucket(
            b,
            label,
            to_count(counts.get(b, 0)),
            f"{listing}{base}{where(BUCKET_CONDITIONS[b], ws)} ORDER BY e.accuracy DESC, e.created_at DESC",
        )
        for b, label in BUCKETS
    ]


def integration_counts(conn: sqlite3.Connection, workspace_id: str | None) -> list[IntegrationCount]:
    ws = ws_cond("workspace_id", workspace_id)
    rows = conn.execute(
        f"SELECT platform, status, count(*) FROM integrations{where(ws)} GROUP BY platform, status ORDER BY "
        f"platform, status"
    ).fetchall()
    cols = "id, platform, name, status, error_message, last_synced_at"  # never api_key_encrypted
    return [
        IntegrationCount(
            r[0],
            r[1],
            to_count(r[2]),
            f"SELECT {cols} FROM integrations"
            f"{where(f'platform IS {literal(r[0])}', f'status IS {literal(r[1])}', ws)} ORDER BY name",
        )
        for r in rows
    ]


def job_groups(conn: sqlite3.Connection, workspace_id: str | None) -> list[JobGroup]:
    ws = ws_cond("workspace_id", workspace_id)
    duration = f"CASE WHEN started_at IS NOT NULL THEN {DURATION_SQL} END"
    rows = conn.execute(
        f"SELECT type, status, count(*), avg({duration}), count({duration}) FROM jobs{where(ws)} "
        "GROUP BY type, status ORDER BY type, status"
    ).fetchall()
    return [
        JobGroup(
            r[0],
            r[1],
            to_count(r[2]),
            _round(r[3]),
            to_count(r[4]),
            f"SELECT *, {DURATION_SQL} AS duration_s FROM jobs"
            f"{where(f'type IS {literal(r[0])}', f'status IS {literal(r[1])}', ws)} ORDER BY created_at DESC",
        )
        for r in rows
    ]


def job_type_summaries(groups: list[JobGroup]) -> list[JobTypeSummary]:
    by_type: dict[str | None, list[JobGroup]] = {}
    for g in groups:
        by_type.setdefault(g.type, []).append(g)
    result: list[JobTypeSummary] = []
    for job_type, items in by_type.items():
        timed = sum(g.timed for g in items)
        total_time = sum((g.avg_duration_s or 0.0) * g.timed for g in items)
        result.append(JobTypeSummary(
            job_type, sum(g.count for g in items), {str(g.status): g.count for g in items},
            _round(total_time / timed) if timed else None,
        ))
    return result


def overview(conn: sqlite3.Connection, workspace_id: str | None, *, warnings: bool = True) -> Overview:
    """All overview figures for one workspace (every workspace when None). Run it in a worker.

    On 1M traces / 2M executions the figures take about 1.3 s and the warnings about 15 s more, so a
    UI wants ``warnings=False`` first and ``detect_warnings`` in a second (interruptible) step.
    """
    schema = schema_columns(conn)
    notes: list[str] = []
    workspaces = (
        [Workspace(r[0], r[1]) for r in conn.execute("SELECT id, name FROM workspaces ORDER BY name, id")]
        if has_columns(schema, "workspaces", "id", "name")
        else []
    )
    sets = eval_set_progress(conn, workspace_id) \
        if has_columns(schema, "eval_sets", "id", "name", "minimum_examples", "workspace_id") \
        and has_columns(schema, "feedback", "eval_set_id", "rating") else []
    buckets = (
        accuracy_buckets(conn, workspace_id)
        if has_columns(schema, "evals", "accuracy", "eval_set_id")
        and has_columns(schema, "eval_sets", "workspace_id")
        else []
    )
    integ_ok = has_columns(schema, "integrations", "platform", "status", "workspace_id")
    jobs_ok = has_columns(schema, "jobs", "type", "status", "started_at", "completed_at", "workspace_id")
    groups = job_groups(conn, workspace_id) if jobs_ok else []
    for name, ok in (("eval sets", bool(sets) or "eval_sets" in schema), ("accuracy", bool(buckets)),
                     ("integrations", integ_ok), ("jobs", jobs_ok)):
        if not ok:
            notes.append(f"{name}: not available on this schema")
    found, check_notes = detect_warnings(conn, workspace_id, schema=schema) if warnings else ([], [])
    return Overview(
        workspace_id=workspace_id,
        workspaces=workspaces,
        tables=table_counts(conn, workspace_id, schema),
        eval_sets=sets,
        accuracy=buckets,
        integration_counts=integration_counts(conn, workspace_id) if integ_ok else [],
        integrations=list_integrations(conn, workspace_id) if integ_ok else [],
        job_groups=groups,
        job_types=job_type_summaries(groups),
        warnings=found,
        notes=notes + check_notes,
    )
