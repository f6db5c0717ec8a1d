"""Shared by the live-D1 test modules (tests/test_d1remote*.py): the seeded stand-in's constants, ways to
open it, read its rows behind the app's back (a colleague), and run the CLI. The server fixtures (``api``,
``env``, ``proxy``) are in conftest.py: one ``wrangler dev`` per module that asks for them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from d1_api_tools import ACCOUNT, DB_ID, TOKEN_RW, D1Api

from iofold_tui.data.labels.writer import LabelWriter, WriterEvent, WriterTiming
from iofold_tui.data.source.d1.client import D1Client

ES = "set_response_quality"
EVAL = "eval_response_quality_v1"
BULK = 1200


def seed(server: D1Api) -> None:
    """BULK traces beside the seed's five, a third of them labelled, half with an eval result."""
    server.exec(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BULK}) "
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, metadata, "
            "steps, input_preview, output_preview, step_count, has_errors) "
            "SELECT printf('bulk_%05d', i), 'ws_demo', 'int_langfuse_demo', printf('ext-%05d', i), "
            "CASE WHEN i % 3 = 0 THEN 'langsmith' ELSE 'langfuse' END, "
            "printf('2025-10-%02d %02d:%02d:00', 1 + i % 28, i % 24, i % 60), '{}', "
            "'[{\"role\": \"user\", \"content\": \"q' || i || '\"}]', "
            "'question ' || i, 'answer ' || i, 1, i % 7 = 0 FROM n",
            "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
            "SELECT 'fb_' || id, 'set_response_quality', id, "
            "CASE WHEN rowid % 2 = 0 THEN 'positive' ELSE 'negative' END, "
            "NULL, '2025-10-30 00:00:00', '2025-10-30 00:00:00' "
            "FROM traces WHERE id LIKE 'bulk_%' AND rowid % 3 = 0",
            "INSERT INTO eval_executions "
            "(id, eval_id, trace_id, result, reason, execution_time_ms, executed_at) "
            "SELECT 'ex_' || id, 'eval_response_quality_v1', id, rowid % 4 <> 0, 'r', 3, "
            "'2025-10-31 00:00:00' FROM traces WHERE id LIKE 'bulk_%' AND rowid % 2 = 0")


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def open_remote(read_only: bool = False) -> Any:
    from iofold_tui.data.source.loader import open_source

    return open_source("d1://iofold", read_only=read_only)


def client(api_base: str, token: str = TOKEN_RW, **kw: Any) -> D1Client:
    return D1Client(ACCOUNT, DB_ID, token, api_base=api_base, **kw)


def remote_row(api: D1Api, trace_id: str) -> dict[str, Any] | None:
    sql = "SELECT id, rating, notes, updated_at FROM feedback WHERE eval_set_id = ? AND trace_id = ?"
    rows = api.exec((sql, [ES, trace_id]))[0]["results"]
    return rows[0] if rows else None


def colleague_labels(api: D1Api, trace_id: str, rating: str, at: str) -> None:
    api.exec(("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
              "VALUES ('fb_colleague_' || ?2, ?1, ?2, ?3, NULL, ?4, ?4) ON CONFLICT (eval_set_id, trace_id) "
              "DO UPDATE SET rating = excluded.rating, updated_at = excluded.updated_at",
              [ES, trace_id, rating, at]))


def store_and_writer(opened: Any) -> tuple[Any, LabelWriter, list[WriterEvent]]:
    from iofold_tui.data.labels.remote_store import RemoteLabelStore

    store = RemoteLabelStore(opened.db.remote, opened.db.path, history_path=opened.history_path)
    events: list[WriterEvent] = []
    writer = LabelWriter(store, events.append, WriterTiming(0.05, 0.05, 0.2)).start()
    return store, writer, events


def run_cli(args: list[str], env_vars: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "iofold-tui"), *args], env=env_vars, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
