"""Shared helpers for the label tests: extra traces / eval sets on a seeded DB, a manual clock, stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iofold_tui.data.labels.store import LabelStore

ES = "set_response_quality"  # the seed's eval set
ES2 = "set_extra"


class Clock:
    """A clock the test moves by hand, so 'relabel updates updated_at' needs no sleep."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


def add_traces(db: Path, n: int, prefix: str = "tx") -> list[str]:
    """Insert ``n`` minimal traces (and a second eval set) into a seeded database; returns their ids."""
    ids = [f"{prefix}_{i:05d}" for i in range(n)]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO eval_sets (id, workspace_id, name) VALUES (?, 'ws_demo', 'extra')", (ES2,)
        )
        conn.executemany(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
            "VALUES (?, 'ws_demo', 'int_langfuse_demo', ?, 'langfuse', '2025-11-10T00:00:00Z', '[]')",
            ((i, f"ext-{i}") for i in ids))
    conn.close()
    return ids


def feedback_rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, eval_set_id, trace_id, rating, notes, created_at, updated_at "
                            "FROM feedback ORDER BY eval_set_id, trace_id").fetchall()
    finally:
        conn.close()


def open_store(db: Path, **kwargs: object) -> LabelStore:
    """A store whose history sidecar sits beside the test database."""
    return LabelStore(db, history_path=db.with_name(db.name + ".labels.sqlite"), **kwargs)  # type: ignore[arg-type]
