"""A small two-workspace database with known contents for the inspection tests.

Workspace ws_a holds one instance of every warning kind; ws_b holds a stale counter, a newline
hazard and a deflated contradiction counter but no conflicting labels or orphans. Expected figures
are spelled out next to the rows that produce them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import sqlite_utils
from conftest import build_db

HAZARD_CODE = "def check(trace):\n    return True, 'line one\\nline two'\n"  # real newline + backslash-n
PLAIN_CODE = "def check(trace):\n    return True, 'ok'\n"  # real newlines only
ESCAPE_ONLY_CODE = "def check(trace): return True, 'a\\nb'"  # backslash-n only


def build_inspect_db(path: Path) -> Path:
    build_db(path, seed=False)
    db = sqlite_utils.Database(path)

    def rows(table: str, columns: str, *values: tuple[object, ...]) -> None:
        """Rows by position under ``columns`` (dicts and lists are stored as JSON text)."""
        db[table].insert_all([dict(zip(columns.split(), v, strict=True)) for v in values])

    rows("workspaces", "id name", ("ws_a", "Alpha"), ("ws_b", "Beta"))
    rows("users", "id email", ("u1", "a@x"), ("u2", "b@x"))
    rows("workspace_members", "id workspace_id user_id", ("m1", "ws_a", "u1"), ("m2", "ws_a", "u2"),
         ("m3", "ws_b", "u1"))
    rows("integrations",
         "id workspace_id platform name api_key_encrypted config status error_message last_synced_at",
         ("int_a1", "ws_a", "langfuse", "LF prod", "enc-SECRET-AAA",
          {"project_id": "p1", "secret_key": "sk-lf-zzz"}, "active", None, "2025-01-02T00:00:00Z"),
         ("int_a2", "ws_a", "langsmith", "LS", "", "{bad json", "error", "HTTP 401 unauthorized", None),
         ("int_b1", "ws_b", "openai", "OAI", "enc-B", None, "active", None, None))
    rows("traces", "id workspace_id integration_id trace_id source timestamp steps",
         *[(f"t{i}", "ws_a", "int_a1" if i < 6 else "int_a2", f"ext{i}", "langfuse",
            f"2025-01-0{i}T00:00:00Z", "[]") for i in range(1, 7)],
         *[(f"tb{i}", "ws_b", "int_b1", f"extb{i}", "openai", f"2025-02-0{i}T00:00:00Z", "[]")
           for i in (1, 2)])
    rows("eval_sets", "id workspace_id name minimum_examples",
         ("set_q", "ws_a", "quality", 5), ("set_s", "ws_a", "safety", 4), ("set_b", "ws_b", "beta", 2))
    # set_q: pos 3 (t1, t2, gone_trace), neg 1, neutral 1 -> 5/5 ready; set_s: pos 1, neg 2 -> 3/4.
    # t1 is positive in quality and negative in safety: the one conflicting trace. t3 is negative in both.
    rows("feedback", "id eval_set_id trace_id rating",
         ("f1", "set_q", "t1", "positive"), ("f2", "set_q", "t2", "positive"),
         ("f3", "set_q", "t3", "negative"), ("f4", "set_q", "t4", "neutral"),
         ("f5", "set_q", "gone_trace", "positive"),
         ("f6", "set_s", "t1", "negative"), ("f7", "set_s", "t3", "negative"),
         ("f8", "set_s", "t5", "positive"),
         ("f9", "set_b", "tb1", "positive"), ("f10", "set_b", "tb2", "negative"))
    # ev_q1: 6 executions but execution_count 5 (stale); view counts 4 contradictions (x1/q, x3/q,
    # x3/s, x5/s errored) but only 2 are real (x1, x3 against set_q) -> stored 4 is inflated.
    # ev_q2: stored counters right (1 execution, 1 contradiction). ev_b1: stored 0, real 1; count 2 vs 1.
    rows("evals", "id eval_set_id name version code model_used accuracy execution_count contradiction_count "
         "created_at",
         ("ev_q1", "set_q", "check", 1, HAZARD_CODE, "m", 0.95, 5, 4, "2025-03-01 00:00:00"),
         ("ev_q2", "set_q", "check", 2, PLAIN_CODE, "m", 0.8, 1, 1, "2025-03-02 00:00:00"),
         ("ev_s1", "set_s", "check", 1, ESCAPE_ONLY_CODE, "m", 0.5, 0, 0, "2025-03-03 00:00:00"),
         ("ev_s2", "set_s", "check", 2, PLAIN_CODE, "m", None, 0, 0, "2025-03-04 00:00:00"),
         ("ev_b1", "set_b", "check", 1, HAZARD_CODE, "m", 0.9, 2, 0, "2025-03-05 00:00:00"))
    rows("eval_executions", "id eval_id trace_id result reason execution_time_ms error",
         ("x1", "ev_q1", "t1", 0, "r", 1, None), ("x2", "ev_q1", "t2", 1, "r", 1, None),
         ("x3", "ev_q1", "t3", 1, "r", 1, None), ("x4", "ev_q1", "t4", 0, "r", 1, "Timeout"),
         ("x5", "ev_q1", "t5", 0, "r", 1, "boom"), ("x6", "ev_q1", "gone_trace", 1, "r", 1, None),
         ("y1", "ev_q2", "t3", 1, "r", 1, None),
         ("z1", "ev_b1", "tb1", 0, "r", 1, None))
    imp = {"integration_id": "int_a1", "filters": {"date_from": "2025-01-01", "limit": 50}}
    generated = {"eval_id": "ev_q1", "accuracy": 0.95,
                 "test_results": {"correct": 19, "incorrect": 1, "errors": 0, "total": 20, "details": []}}
    day1, day2, day3 = "2025-01-01", "2025-01-02", "2025-01-03"
    rows("jobs",
         "id workspace_id type status progress context result error created_at started_at completed_at",
         ("j1", "ws_a", "import", "completed", 100, imp, {"imported": 5, "skipped": 1, "failed": 0}, None,
          f"{day1} 10:00:00", f"{day1} 10:00:00", f"{day1} 10:00:30"),
         ("j2", "ws_a", "import", "failed", 40, imp, None, "HTTP 401",
          f"{day1} 11:00:00", f"{day1} 11:00:00", f"{day1} 11:00:10"),
         ("j3", "ws_a", "import", "completed", 100, imp, None, None,
          f"{day1} 12:00:00", f"{day1} 12:00:00", f"{day1} 12:00:20"),
         ("j4", "ws_a", "generate", "completed", 100, {"workspaceId": "ws_a", "evalSetId": "set_q"},
          generated, None, f"{day2} 10:00:00", f"{day2} 10:00:00", f"{day2} 10:01:00"),
         ("j5", "ws_a", "execute", "running", 30, {"workspaceId": "ws_a", "evalId": "ev_q1"}, None, None,
          f"{day3} 10:00:00", f"{day3} 10:00:00", None),
         ("j6", "ws_a", "execute", "queued", 0, "{not json", None, None, f"{day3} 11:00:00", None, None),
         ("j7", "ws_a", "execute", "cancelled", 10, None, None, None,
          f"{day3} 12:00:00", f"{day3} 12:00:00", f"{day3} 12:00:05"),
         ("j8", "ws_b", "generate", "failed", 0, None, None, "LLM error",
          "2025-01-04 10:00:00", "2025-01-04 10:00:00", "2025-01-04 10:01:40"))
    db.close()
    return path


def copy_db(template: Path, dest: Path) -> Path:
    """Building a database costs about a second of fsyncs here; tests copy one built per module."""
    shutil.copyfile(template, dest)
    return dest


def connect_rows(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn
