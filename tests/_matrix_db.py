"""The hand-computed matrix database every matrix test uses (tests/test_matrix.py checks the numbers below).

The database (built from schema/schema.sql): eval set S ("quality") with versions v1/v2, eval sets O
and P that label some of the same traces (conflicting), an eval in O. Per trace of S:

    trace  S label   O / P label      v1      v2      row contradictions
    t01    positive  O negative       pass    pass    0
    t02    positive  -                fail    pass    1 (v1 FN)
    t03    negative  O positive       pass    fail    1 (v1 FP)
    t04    negative  -                fail    fail    0
    t05    neutral   O positive       pass    fail    0
    t06    positive  -                ERROR   pass    0
    t07    -         O pos, P neg     fail    pass    0
    t08    -         -                pass    ERROR   0
    t09    negative  O negative       -       fail    0
    t10    positive  -                pass    -       0
    t11    -         O negative       -       -       (not a row of S)
    t12    negative  O neutral        fail    pass    1 (v2 FP)
    t13    negative  -                pass    pass    2

v1: TP 2 (t01 t10), FP 2 (t03 t13), FN 1 (t02), TN 2 (t04 t12): n 7; neutral 1, errors 1, unlabelled 2,
    not run 1, executions 11. accuracy 4/7, precision 1/2, recall 2/3, F1 4/7, specificity 1/2,
    κ: pe = (4·3 + 3·4)/49 = 24/49 → (28/49 − 24/49)/(25/49) = 4/25; contradiction rate 3/7.
    Unscoped view: rows 16, contradictions 6 (t01 via O, t02, t03, t06 error-as-fail, t07 via O, t13).
v2: TP 3 (t01 t02 t06), FP 2 (t12 t13), FN 0, TN 3 (t03 t04 t09): n 8; neutral 1, errors 1,
    unlabelled 1, not run 1, executions 11. accuracy 3/4, precision 3/5, recall 1, F1 3/4,
    specificity 3/5, κ: pe = 30/64 → (48/64 − 30/64)/(34/64) = 9/17; contradiction rate 1/4.
    Unscoped view: rows 17, contradictions 6 (t01, t03, t05 via O; t07 via P; t12, t13).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iofold_tui.data.matrix.stats import compute_stats
from iofold_tui.data.paths import schema_dir

LABELS = {  # trace -> {set: rating}
    "t01": {"S": "positive", "O": "negative"},
    "t02": {"S": "positive"},
    "t03": {"S": "negative", "O": "positive"},
    "t04": {"S": "negative"},
    "t05": {"S": "neutral", "O": "positive"},
    "t06": {"S": "positive"},
    "t07": {"O": "positive", "P": "negative"},
    "t08": {},
    "t09": {"S": "negative", "O": "negative"},
    "t10": {"S": "positive"},
    "t11": {"O": "negative"},
    "t12": {"S": "negative", "O": "neutral"},
    "t13": {"S": "negative"},
}
RUNS = {  # eval -> {trace: "pass" | "fail" | "error"}
    "v1": {"t01": "pass", "t02": "fail", "t03": "pass", "t04": "fail", "t05": "pass", "t06": "error",
           "t07": "fail", "t08": "pass", "t10": "pass", "t12": "fail", "t13": "pass"},
    "v2": {"t01": "pass", "t02": "pass", "t03": "fail", "t04": "fail", "t05": "fail", "t06": "pass",
           "t07": "pass", "t08": "error", "t09": "fail", "t12": "pass", "t13": "pass"},
    "o1": {"t01": "pass", "t03": "fail", "t11": "error", "t02": "pass"},
}
STORED = {"v1": (0.9, 6, 11), "v2": (0.75, 2, 12), "o1": (None, 0, 0)}  # accuracy, contradictions, executions
SET_OF = {"v1": "S", "v2": "S", "o1": "O"}
NEWEST_FIRST = ["t13", "t12", "t10", "t09", "t08", "t07", "t05", "t06", "t04", "t03", "t02", "t01"]


def _ts(trace: str) -> str:
    day = 5 if trace == "t06" else int(trace[1:])  # t05 and t06 share a timestamp: rowid breaks the tie
    return f"2025-01-{day:02d}T00:00:00Z"


def _fill(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("""
        INSERT INTO workspaces (id, name) VALUES ('ws', 'W');
        INSERT INTO integrations (id, workspace_id, platform, name, api_key_encrypted)
            VALUES ('int', 'ws', 'langfuse', 'lf', 'k');
        INSERT INTO eval_sets (id, workspace_id, name)
            VALUES ('S', 'ws', 'quality'), ('O', 'ws', 'other'), ('P', 'ws', 'third');
    """)
    for trace in sorted(LABELS):
        source = "openai" if trace in ("t02", "t12") else "langfuse"
        preview = "needle in here" if trace in ("t03", "t08") else f"input {trace}"
        conn.execute(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview, output_preview) VALUES (?, 'ws', 'int', ?, ?, ?, '[]', ?, ?)",
            (trace, f"ext-{trace}", source, _ts(trace), preview, f"output {trace}"),
        )
        for eval_set, rating in LABELS[trace].items():
            conn.execute(
                "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) VALUES (?, ?, ?, ?, ?)",
                (f"fb_{eval_set}_{trace}", eval_set, trace, rating, f"note {eval_set} {trace}"),
            )
    for version, eval_id in enumerate(("v1", "v2", "o1"), start=1):
        accuracy, contradictions, executions = STORED[eval_id]
        conn.execute(
            "INSERT INTO evals (id, eval_set_id, name, version, code, model_used, accuracy, "
            "contradiction_count, execution_count) VALUES (?, ?, 'quality', ?, 'def quality(t): ...', 'm', "
            "?, ?, ?)",
            (eval_id, SET_OF[eval_id], version, accuracy, contradictions, executions),
        )
        for trace, outcome in RUNS[eval_id].items():
            conn.execute(
                "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, "
                "error) "
                "VALUES (?, ?, ?, ?, ?, 5, ?)",
                (
                    f"ex_{eval_id}_{trace}",
                    eval_id,
                    trace,
                    1 if outcome == "pass" else 0,
                    f"reason {eval_id} {trace}",
                    "Timeout after 5s" if outcome == "error" else None,
                ),
            )
    conn.commit()
    conn.close()


def build_matrix_db(path: Path) -> Path:
    """The database above at ``path`` (schema/schema.sql, then the rows)."""
    conn = sqlite3.connect(path)
    conn.executescript((schema_dir() / "schema.sql").read_text())
    conn.close()
    _fill(path)
    return path


def fresh_stats(db: Path) -> dict[str, dict[str, object]]:
    """Set S's statistics recomputed from scratch (what incrementally updated ones must equal)."""
    conn = sqlite3.connect(db)
    try:
        return {s.eval_id: s.to_dict() for s in compute_stats(conn, "S")}
    finally:
        conn.close()
