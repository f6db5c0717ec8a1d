"""Helpers for the review-mode and bulk-label pilot tests: extra traces, executions, DB reads, app runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iofold_tui.data.source.loader import open_source
from iofold_tui.ui import labeling
from iofold_tui.ui.app import IofoldApp

ES = "set_response_quality"
EVAL = "eval_response_quality_v1"


def add_unlabelled(db: Path, n: int) -> list[str]:
    """``n`` traces newer than the seed's (so newest-first lists them first: ux_000 is the newest)."""
    ids = [f"ux_{i:03d}" for i in range(n)]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview, output_preview, step_count) "
            "VALUES (?, 'ws_demo', 'int_langfuse_demo', ?, 'langfuse', ?, ?, ?, ?, 1)",
            ((tid, f"ext-{tid}", f"2025-12-{28 - i:02d}T00:00:00Z",
              '[{"step_id": "s1", "messages_added": [{"role": "user", "content": "question ' + tid
              + '"}], "tool_calls": [], "input": null, "output": {"response": "answer ' + tid
              + '"}, "metadata": {}}]',
              f"question {tid}", f"answer {tid}") for i, tid in enumerate(ids)))
    conn.close()
    return ids


def add_execution(db: Path, trace_id: str, result: int, error: str | None = None,
                  eval_id: str = EVAL) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, "
                     "error) VALUES (?, ?, ?, ?, 'test verdict', 3, ?)",
                     (f"x_{trace_id}_{eval_id}", eval_id, trace_id, result, error))
    conn.close()


def feedback(db: Path, trace_id: str, eval_set_id: str = ES) -> tuple | None:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, rating, notes, created_at, updated_at FROM feedback "
                            "WHERE eval_set_id = ? AND trace_id = ?", (eval_set_id, trace_id)).fetchone()
    finally:
        conn.close()


def feedback_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM feedback").fetchone()[0])
    finally:
        conn.close()


def make_app(db: Path, *, pane: str = "review", eval_set: str | None = "response-quality",
             read_only: bool = False) -> IofoldApp:
    return IofoldApp(open_source(db, read_only=read_only), pane=pane, eval_set=eval_set, watch_interval=0)


def finish(app: IofoldApp, *, drain: float = 10.0) -> None:
    """Close what a run left open (the lead wires close_label_store into the app's unmount), once the label
    writer has written what was queued (``drain`` seconds at most; what it could not write stays queued)."""
    import time

    queue = labeling.open_label_queue(app)
    deadline = time.monotonic() + drain
    while (queue is not None and queue.writer is not None and queue.store.queued()
           and time.monotonic() < deadline):
        time.sleep(0.02)
    labeling.close_label_store(app)


async def labels_written(app: IofoldApp, pilot: object, timeout: float = 10.0) -> None:
    """Wait until every queued label / undo / redo is written (the writer thread applies them)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        queue = labeling.open_label_queue(app)
        if queue is None or (not queue.pending and not queue.store.queued()):
            break
        assert time.monotonic() < deadline, f"labels still pending after {timeout} s: {queue.pending}"
        await asyncio.sleep(0.02)
    if app.is_running:
        await pilot.pause()  # type: ignore[attr-defined]
