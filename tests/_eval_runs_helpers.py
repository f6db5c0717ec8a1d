"""Shared helpers for the eval-run tests: a seeded DB whose eval's code now gives different verdicts."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from conftest import build_db

from iofold_tui.data.evalrun.run_results import RunOptions

EVAL = "eval_response_quality_v1"
ES = "set_response_quality"
OTHER_ES = "set_other"
FAST = RunOptions(jobs=1, timeout_s=1.0)

# Own-set labels in the seed: trace_001/002/005 positive, 003/004 negative. The new code fails 001/002,
# passes 003 and 004 fails; 005 (positive) errors: an error, never a contradiction.
# Scoped: fn 001, 002 + fp 003 = 3 contradictions; accuracy = tn 004 / n 4 = 0.25; 5 executions.
FLIP_CODE = '''
import json

def response_quality(trace: dict) -> tuple[bool, str]:
    tid = trace["trace_id"]
    if tid == "trace_005":
        raise ValueError("boom on " + tid)
    if tid.startswith("tx_"):
        print("\\x1b[31mred\\x1b[0m", tid)
        return (int(tid[3:]) % 2 == 0, "extra " + tid)
    return (tid == "trace_003", "flipped " + tid)
'''


def build_flip_template(folder: Path) -> Path:
    """The seeded database whose eval now runs FLIP_CODE; tests build it once per session (the seed costs
    a second of fsyncs) and copy it with flip_db."""
    path = build_db(folder / "template.sqlite")
    set_code(path, FLIP_CODE)
    return path


def flip_db(template: Path, folder: Path) -> Path:
    target = folder / "flip.sqlite"
    shutil.copyfile(template, target)
    return target


def set_code(db: Path, code: str, eval_id: str = EVAL) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE evals SET code = ? WHERE id = ?", (code, eval_id))
    conn.close()


def add_other_set(db: Path) -> None:
    """A second eval set labelling the same five traces the opposite way (the view's defect bait)."""
    flip = {"positive": "negative", "negative": "positive"}
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO eval_sets (id, workspace_id, name) VALUES (?, 'ws_demo', 'other')", (OTHER_ES,)
        )
        labels = conn.execute("SELECT trace_id, rating FROM feedback WHERE eval_set_id = ?", (ES,)).fetchall()
        for tid, rating in labels:
            conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, ?, ?, ?)",
                         (f"fb_o_{tid}", OTHER_ES, tid, flip[rating]))
    conn.close()


def add_traces(db: Path, n: int, labelled_every: int = 0) -> list[str]:
    """``n`` small traces ``tx_00000``...; every ``labelled_every``-th gets a positive label in the seed's
    set."""
    ids = [f"tx_{i:05d}" for i in range(n)]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
            "VALUES (?, 'ws_demo', 'int_langfuse_demo', ?, 'langfuse', '2025-11-10T00:00:00Z', '[]')",
            ((i, f"ext-{i}") for i in ids))
        if labelled_every:
            conn.executemany(
                "INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, ?, ?, 'positive')",
                ((f"fb_{i}", ES, i) for i in ids[::labelled_every]))
    conn.close()
    return ids


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every execution and eval row with rowids and storage classes: "identical" means identical."""
    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(eval_executions)")]
        typed = ", ".join(f"{c}, typeof({c})" for c in cols)
        ecols = [r[1] for r in conn.execute("PRAGMA table_info(evals)")]
        etyped = ", ".join(f"{c}, typeof({c})" for c in ecols)
        return {
            "executions": conn.execute(
                f"SELECT rowid, {typed} FROM eval_executions ORDER BY rowid"
            ).fetchall(),
            "evals": conn.execute(f"SELECT rowid, {etyped} FROM evals ORDER BY rowid").fetchall(),
            "feedback": conn.execute("SELECT * FROM feedback ORDER BY rowid").fetchall(),
        }
    finally:
        conn.close()


def executions(db: Path, eval_id: str = EVAL) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT trace_id, id, result, reason, error, stdout, executed_at FROM eval_executions "
            "WHERE eval_id = ?", (eval_id,)).fetchall()
        return {r[0]: r[1:] for r in rows}
    finally:
        conn.close()


def counters(db: Path, eval_id: str = EVAL) -> tuple[Any, ...]:
    conn = sqlite3.connect(db)
    try:
        return tuple(conn.execute(
            "SELECT execution_count, contradiction_count, accuracy FROM evals WHERE id = ?", (eval_id,)
        ).fetchone())
    finally:
        conn.close()


def oddify(db: Path) -> None:
    """Give the stored rows values whose exact restoration is easy to get wrong (types, NULLs, escapes)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE eval_executions SET execution_time_ms = 11.5, stdout = 'x\x1b[2Jy', executed_at = NULL "
            "WHERE trace_id = 'trace_001'")
        conn.execute(
            "UPDATE eval_executions SET error = 'old error', stderr = '' WHERE trace_id = 'trace_002'"
        )
        conn.execute("UPDATE evals SET accuracy = 1, contradiction_count = 7 WHERE id = ?", (EVAL,))
        # Never run: the run inserts it.
        conn.execute("DELETE FROM eval_executions WHERE trace_id = 'trace_004'")
    conn.close()
