"""SQL console presets: the seed README's query examples and monitoring queries (spec §10).

The README's own versions have two known problems, fixed here and said in the description: it filters
``evals.workspace_id`` (a column evals does not have; scoped through ``eval_sets``), and its
contradictions query inherits the view's defects (a correctly scoped version sits beside it).
"""

from __future__ import annotations

from dataclasses import dataclass

from iofold_tui.data.inspect.checks import scoped_recount_sql
from iofold_tui.data.inspect.jobs import DURATION_SQL
from iofold_tui.data.inspect.overview import BUCKET_CASE
from iofold_tui.data.inspect.util import literal


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    sql: str


def presets(workspace_id: str | None = None, eval_set_id: str | None = None) -> list[Preset]:
    """Ready-to-run presets with the workspace / eval set written in as literals (editable by the user)."""
    ws = literal(workspace_id) if workspace_id is not None else None

    def where_ws(col: str) -> str:
        return f"\nWHERE {col} = {ws}" if ws else ""

    def and_ws(col: str) -> str:
        return f"\n  AND {col} = {ws}" if ws else ""

    first_set = (
        "(SELECT id FROM eval_sets"
        + (f" WHERE workspace_id = {ws}" if ws else "")
        + " ORDER BY created_at, id LIMIT 1)"
    )
    eval_set = literal(eval_set_id) if eval_set_id is not None else first_set
    return [
        Preset(
            "traces_rating",
            "Traces with their rating",
            "README example: traces LEFT JOIN feedback (one row per eval set that rated the trace).",
            "SELECT t.id, t.trace_id, t.source, t.timestamp, t.input_preview, t.output_preview,\n"
            "       f.eval_set_id, f.rating, f.notes\n"
            "FROM traces t\nLEFT JOIN feedback f ON f.trace_id = t.id"
            f"{where_ws('t.workspace_id')}\nORDER BY t.timestamp DESC\nLIMIT 100",
        ),
        Preset(
            "evals_newest",
            "Evals, newest first",
            "README example, scoped through eval_sets.workspace_id (evals has no workspace_id).",
            "SELECT e.id, e.name, e.version, e.status, e.accuracy, e.execution_count, "
            "e.contradiction_count,\n"
            "       s.name AS eval_set, e.created_at\n"
            "FROM evals e\nJOIN eval_sets s ON s.id = e.eval_set_id"
            f"{where_ws('s.workspace_id')}\nORDER BY e.created_at DESC",
        ),
        Preset(
            "contradictions_readme",
            "Contradictions of an eval set (README, unscoped)",
            "As the README writes it, straight from the view: also judges other sets' evals by this set's "
            "labels and counts errored runs as contradictions.",
            f"SELECT *\nFROM eval_comparison\nWHERE eval_set_id = {eval_set}\n  AND is_contradiction = 1",
        ),
        Preset(
            "contradictions_scoped",
            "Contradictions of an eval set (correctly scoped)",
            "The view restricted to evals of this set judged by this set's labels, errored runs excluded.",
            "SELECT v.*\nFROM eval_comparison v\nJOIN evals e ON e.id = v.eval_id\n"
            f"WHERE e.eval_set_id = {eval_set}\n  AND v.eval_set_id = e.eval_set_id\n"
            "  AND v.is_contradiction = 1\n  AND v.execution_error IS NULL",
        ),
        Preset(
            "contradiction_counts",
            "Stored vs recomputed contradiction counts",
            "evals.contradiction_count beside the scoped recount (differences mean inflated counters).",
            "SELECT e.id, e.name, e.version, e.contradiction_count AS stored,\n"
            f"       {scoped_recount_sql(True)} AS recomputed\n"
            "FROM evals e\nJOIN eval_sets s ON s.id = e.eval_set_id"
            f"{where_ws('s.workspace_id')}\nORDER BY e.created_at DESC",
        ),
        Preset(
            "integrations_status",
            "Integrations by platform and status",
            "README monitoring query (the API key column is never selected).",
            "SELECT platform, status, count(*) AS count\nFROM integrations"
            f"{where_ws('workspace_id')}\nGROUP BY platform, status\nORDER BY platform, status",
        ),
        Preset(
            "evals_accuracy",
            "Evals by accuracy bucket",
            "README monitoring query: ≥ 0.9 high, ≥ 0.8 medium, else low (none: no accuracy yet).",
            f"SELECT {BUCKET_CASE} AS bucket,\n       count(*) AS count\n"
            "FROM evals e\nJOIN eval_sets s ON s.id = e.eval_set_id"
            f"{where_ws('s.workspace_id')}\nGROUP BY bucket\nORDER BY bucket",
        ),
        Preset(
            "jobs_status",
            "Jobs by type and status",
            "README monitoring query: count and average duration in seconds of jobs that started.",
            "SELECT type, status, count(*) AS count,\n"
            f"       avg({DURATION_SQL}) AS avg_duration_s\n"
            "FROM jobs\nWHERE started_at IS NOT NULL"
            f"{and_ws('workspace_id')}\n"
            "GROUP BY type, status\nORDER BY type, status",
        ),
        Preset(
            "label_progress",
            "Label progress per eval set",
            "Ratings per eval set against minimum_examples.",
            "SELECT s.id, s.name, s.minimum_examples,\n"
            "       sum(f.rating = 'positive') AS positive, sum(f.rating = 'negative') AS negative,\n"
            "       sum(f.rating = 'neutral') AS neutral, count(f.id) AS total\n"
            "FROM eval_sets s\nLEFT JOIN feedback f ON f.eval_set_id = s.id"
            f"{where_ws('s.workspace_id')}\nGROUP BY s.id\nORDER BY s.name",
        ),
    ]
