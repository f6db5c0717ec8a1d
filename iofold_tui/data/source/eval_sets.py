"""Create an eval set the way iofold's API does (``POST /api/eval-sets``)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

from iofold_tui.data.sanitize import one_line

DEFAULT_MINIMUM = 5  # iofold's default (schema and API)


class EvalSetError(ValueError):
    """The form's input cannot become an eval set; the message is shown in the form."""


def insert_eval_set(conn: sqlite3.Connection, workspace_id: str, name: str, description: str | None,
                    minimum_examples: int) -> str:
    """Insert inside the caller's transaction; ids and timestamps as iofold's ``POST /api/eval-sets``
    writes them (``set_<uuid>``, ISO-8601 with milliseconds), names unique per workspace."""
    name = name.strip()
    if not name:
        raise EvalSetError("a name is required")
    if minimum_examples < 1:
        raise EvalSetError("minimum examples must be at least 1")
    if conn.execute(
        "SELECT 1 FROM eval_sets WHERE workspace_id = ? AND name = ?", (workspace_id, name)
    ).fetchone():
        raise EvalSetError(f"an eval set named {one_line(name, 40)!r} already exists in this workspace")
    eval_set_id = f"set_{uuid.uuid4()}"
    moment = datetime.now(UTC)
    now = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"  # JS toISOString()
    conn.execute(
        "INSERT INTO eval_sets (id, workspace_id, name, description, minimum_examples, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (eval_set_id, workspace_id, name, (description or "").strip() or None, minimum_examples, now, now),
    )
    return eval_set_id
