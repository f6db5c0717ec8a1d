"""Which ``eval_comparison`` the database has: iofold's own view (``SOURCE_VIEW``), none
(``SOURCE_MISSING``) or a customised one (``SOURCE_CUSTOMISED``). The statistics (data/matrix/stats.py)
read through the view only when it is iofold's; otherwise they run the same join on the base tables.

A definition counts as iofold's when, normalised (comments, whitespace, identifier quotes and keyword case
removed), it equals schema/schema.sql's, or when it gives the same rows on a small in-memory probe
database (never the user's file): written differently is still the same view.
"""

from __future__ import annotations

import re
import sqlite3

from iofold_tui.data import introspect
from iofold_tui.data.paths import schema_dir

# The columns of iofold's own eval_comparison view, in order.
VIEW_COLUMNS = (
    "execution_id", "eval_id", "trace_id", "predicted_result", "predicted_reason", "execution_time_ms",
    "execution_error", "executed_at", "feedback_id", "human_rating", "feedback_notes", "eval_set_id",
    "is_contradiction",
)

SOURCE_VIEW = "view"
SOURCE_MISSING = "fallback: view missing"
SOURCE_CUSTOMISED = "fallback: view customised"


_CANONICAL: str | None = None


def _normalise(sql: str) -> str:
    """Comments, whitespace, identifier quotes and keyword case removed; string literals kept exact."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a string literal: 'POSITIVE' is not 'positive'
            out.append(part)
            continue
        part = re.sub(r"--[^\n]*|/\*.*?\*/", " ", part, flags=re.S)
        part = re.sub(r'["`\[\]]', "", part).lower()
        part = re.sub(r"\s+", " ", part)
        out.append(re.sub(r"\s*([(),=;<>+-])\s*", r"\1", part))
    return "".join(out).strip(" ;")


def _canonical_view_sql() -> str:
    global _CANONICAL
    if _CANONICAL is None:
        text = (schema_dir() / "schema.sql").read_text()
        match = re.search(r"CREATE VIEW eval_comparison.*?;", text, flags=re.S | re.I)
        _CANONICAL = _normalise(match.group(0) if match else "")
    return _CANONICAL


def comparison_source(conn: sqlite3.Connection) -> str:
    """``view`` when ``eval_comparison`` is iofold's own definition, else which fallback applies."""
    sql = introspect.view_sql(conn, "eval_comparison")
    if sql is None:
        return SOURCE_MISSING
    try:
        cols = tuple(introspect.columns(conn, "eval_comparison"))
    except sqlite3.DatabaseError:  # a view over a dropped table
        return SOURCE_CUSTOMISED
    if cols != VIEW_COLUMNS:
        return SOURCE_CUSTOMISED
    if _normalise(sql) == _canonical_view_sql() or same_results_as_iofold(sql):
        return SOURCE_VIEW
    return SOURCE_CUSTOMISED


_PROBED: dict[str, bool] = {}
# Rows where a different definition shows: labels in the eval's own set and another set, every rating,
# pass / fail / error / results of 2, -1, 'true', NULL and a BLOB, NULL and unknown ratings, an execution
# without a label and a label without an execution.
_PROBE_ROWS = """
INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) VALUES
  ('f1', 'S1', 't1', 'positive', 'n1'), ('f2', 'S1', 't2', 'positive', NULL),
  ('f3', 'S2', 't1', 'negative', NULL), ('f4', 'S1', 't3', 'negative', NULL),
  ('f5', 'S1', 't4', 'neutral', NULL), ('f6', 'S2', 't2', 'neutral', NULL),
  ('f7', 'S1', 't7', 'positive', NULL), ('f8', 'S1', 't5', 'negative', NULL),
  ('f9', 'S1', 't8', 'negative', NULL), ('f10', 'S1', 't9', 'positive', NULL),
  ('f11', 'S1', 't10', 'positive', NULL), ('f12', 'S1', 't11', 'negative', NULL),
  ('f13', 'S1', 't12', NULL, NULL), ('f14', 'S1', 't13', 'meh', NULL);
INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, error, executed_at)
VALUES
  ('x1', 'E1', 't1', 1, 'r1', 5, NULL, '2025-01-01'), ('x2', 'E1', 't2', 0, 'r2', 6, NULL, '2025-01-02'),
  ('x3', 'E1', 't3', 1, 'r3', 7, 'boom', '2025-01-03'), ('x4', 'E1', 't4', 0, 'r4', 8, NULL, NULL),
  ('x5', 'E2', 't1', 0, 'r5', 9, NULL, NULL), ('x6', 'E1', 't5', 2, 'r6', 1, NULL, NULL),
  ('x7', 'E1', 't6', 1, 'r7', 2, NULL, NULL), ('x8', 'E1', 't8', 0, 'r8', 3, NULL, NULL),
  ('x9', 'E1', 't9', 2, 'r9', 4, NULL, NULL), ('x10', 'E1', 't10', 'true', 'r10', 4, NULL, NULL),
  ('x11', 'E1', 't11', -1, 'r11', 4, NULL, NULL), ('x12', 'E1', 't12', 1, NULL, NULL, '', NULL),
  ('x13', 'E1', 't13', NULL, 'r13', 4, NULL, NULL), ('x14', 'E1', 't7', X'01', 'r14', 4, NULL, NULL);
"""


def same_results_as_iofold(view_sql: str) -> bool:
    """Whether a view definition means iofold's ``eval_comparison``: both run on a small in-memory
    probe database (never the user's file) and must give the same rows. Written differently (operand
    order, ``as``/``AS``, spacing, comments) is still the same view; a different join or CASE is not."""
    known = _PROBED.get(view_sql)
    if known is None:
        known = _PROBED[view_sql] = _probe(view_sql)
    return known


def _probe(view_sql: str) -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        # Without NOT NULL: the probe holds what real files hold (NULL ratings and results) too.
        conn.executescript(re.sub(r"\bNOT NULL\b", "", (schema_dir() / "schema.sql").read_text()))
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.executescript(_PROBE_ROWS)
        query = "SELECT * FROM eval_comparison"
        theirs_sql = view_sql
        ours = conn.execute(query)
        ours_cols, ours_rows = [d[0] for d in ours.description], sorted(map(repr, ours.fetchall()))
        conn.execute("DROP VIEW eval_comparison")
        conn.execute(theirs_sql)
        theirs = conn.execute(query)
        return [d[0] for d in theirs.description] == ours_cols and sorted(
            map(repr, theirs.fetchall())
        ) == ours_rows
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return False
    finally:
        conn.close()
