"""The jobs list: keyset-paged newest first, with durations and per-type payload descriptions (spec §3).

``jobs.metadata`` only exists after a later migration (the job runner wrote it instead of
``context``), so it is detected per connection and read as NULL when absent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from iofold_tui.data.inspect.job_payloads import JobPayload, describe_job_payload
from iofold_tui.data.inspect.util import schema_columns, where, ws_cond
from iofold_tui.data.values import show_time, to_float, to_int, to_text, to_timestamp

JOB_TYPES = ("import", "generate", "execute")
JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
DURATION_SQL = "(julianday(completed_at) - julianday(started_at)) * 86400"
# A job "running" for longer than this since it started (or was created) has most likely died with its
# worker: the jobs pane and the overview warn about it.
STALE_JOB_HOURS = 24
STALE_JOB_SQL = (f"(status = 'running' AND julianday('now') - julianday(coalesce(started_at, created_at)) "
                 f"> {STALE_JOB_HOURS} / 24.0)")
_COLUMNS = ("id", "workspace_id", "type", "status", "progress", "context", "result", "error",
            "created_at", "started_at", "completed_at", "metadata")


@dataclass(frozen=True)
class JobCursor:
    """Position after the last row of a page: ``(created_at, id)`` of that row."""

    created_at: str | None
    id: str


@dataclass(frozen=True)
class JobRow:
    """Raw DB values; display text through sanitize.one_line / describe()."""

    id: str
    workspace_id: str | None
    type: str | None
    status: str | None
    progress: object
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    duration_s: float | None  # completed_at - started_at; None unless both parse
    elapsed_s: float | None  # now - started_at while running
    error: str | None
    context: str | None
    result: str | None
    metadata: str | None
    has_metadata_column: bool

    @property
    def stale(self) -> bool:
        """Still "running" more than STALE_JOB_HOURS after it started."""
        return self.elapsed_s is not None and self.elapsed_s > STALE_JOB_HOURS * 3600

    @property
    def progress_pct(self) -> int:
        """Progress clamped to 0–100 (stored values outside the range or non-numeric are seen in real
        data)."""
        value = to_int(self.progress)
        return 0 if value is None else max(0, min(100, value))

    def describe(self) -> dict[str, JobPayload]:
        """Pretty-printed context / metadata / result (only the ones present), in that order."""
        parts = {"context": self.context, "metadata": self.metadata, "result": self.result}
        return {
            name: describe_job_payload(self.type or "", text)
            for name, text in parts.items()
            if text not in (None, "") and (name != "metadata" or self.has_metadata_column)
        }


@dataclass(frozen=True)
class JobPage:
    rows: list[JobRow]
    next_cursor: JobCursor | None  # None on the last page


def _round(seconds: object) -> float | None:
    # julianday() arithmetic carries ~10 µs of float noise (1 s reads 0.99999…): keep milliseconds.
    value = to_float(seconds)
    return None if value is None else round(value, 3)


def _text(value: object) -> str | None:
    return None if value is None else to_text(value)


def _time(value: object) -> str | None:
    """A stored timestamp as text; anything that is not a timestamp (a number, a BLOB) visibly marked."""
    if value is None or (isinstance(value, str) and to_timestamp(value) is not None):
        return value
    return show_time(value)


def _keyset(cursor: JobCursor | None) -> tuple[str, dict[str, object]]:
    # ORDER BY created_at DESC, id DESC: SQLite sorts NULL lowest, so NULL timestamps come last.
    if cursor is None:
        return "", {}
    if cursor.created_at is None:
        return " AND created_at IS NULL AND id < :cid", {"cid": cursor.id}
    return (
        " AND (created_at < :cat OR (created_at = :cat AND id < :cid) OR created_at IS NULL)",
        {"cat": cursor.created_at, "cid": cursor.id},
    )


def list_jobs(
    conn: sqlite3.Connection,
    workspace_id: str | None,
    status: str | None = None,
    type: str | None = None,
    limit: int = 100,
    cursor: JobCursor | None = None,
) -> JobPage:
    """One page of jobs, newest first, optionally filtered by status and type."""
    limit = max(1, limit)
    cols = schema_columns(conn).get("jobs")
    if not cols or "id" not in cols:
        return JobPage([], None)
    select = ", ".join(c if c in cols else f"NULL AS {c}" for c in _COLUMNS)
    where = "1"
    params: dict[str, object] = {"limit": limit + 1}
    for name, value in (("workspace_id", workspace_id), ("status", status), ("type", type)):
        if value is not None and name in cols:
            where += f" AND {name} = :{name}"
            params[name] = value
    key_sql, key_params = _keyset(cursor)
    params.update(key_params)
    running = ("CASE WHEN completed_at IS NULL AND status = 'running' "
               "THEN (julianday('now') - julianday(started_at)) * 86400 END")
    duration = DURATION_SQL if {"started_at", "completed_at"} <= cols else "NULL"
    elapsed = running if {"started_at", "completed_at", "status"} <= cols else "NULL"
    order = "created_at DESC, id DESC" if "created_at" in cols else "id DESC"
    if "created_at" not in cols:
        key_sql = "" if cursor is None else " AND id < :cid"
    rows = conn.execute(
        f"SELECT {select}, {duration} AS duration_s, {elapsed} AS elapsed_s FROM jobs "
        f"WHERE {where}{key_sql} ORDER BY {order} LIMIT :limit",
        params,
    ).fetchall()
    has_meta = "metadata" in cols
    jobs = [
        JobRow(
            id=to_text(r[0]), workspace_id=_text(r[1]), type=_text(r[2]), status=_text(r[3]), progress=r[4],
            context=_text(r[5]), result=_text(r[6]), error=_text(r[7]), created_at=_time(r[8]),
            started_at=_time(r[9]), completed_at=_time(r[10]), metadata=_text(r[11]),
            duration_s=_round(r[12]), elapsed_s=_round(r[13]), has_metadata_column=has_meta,
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = rows[limit - 1] if more and jobs else None  # the raw stored values: the keyset compares them
    next_cursor = JobCursor(last[8], last[0]) if last is not None else None
    return JobPage(jobs, next_cursor)


def stale_running(conn: sqlite3.Connection, workspace_id: str | None) -> int:
    """Jobs "running" for more than STALE_JOB_HOURS (0 when the table lacks the columns to tell)."""
    if not {"status", "started_at", "created_at", "workspace_id"} <= schema_columns(conn).get("jobs", set()):
        return 0
    try:
        return int(
            conn.execute(
                f"SELECT count(*) FROM jobs{where(STALE_JOB_SQL, ws_cond('workspace_id', workspace_id))}"
            ).fetchone()[0]
        )
    except sqlite3.DatabaseError:
        return 0
