"""Recognise which iofold schema generation a database holds and what is missing from v1.0."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from iofold_tui.data import introspect
from iofold_tui.data.errors import SourceError
from iofold_tui.data.matrix.comparison_view import SOURCE_MISSING, SOURCE_VIEW, comparison_source

# Columns iofold-tui reads, per v1.0 table. Extra tables/columns are fine.
V1_COLUMNS: dict[str, tuple[str, ...]] = {
    "workspaces": ("id", "name"),
    "users": ("id", "email"),
    "workspace_members": ("workspace_id", "user_id", "role"),
    "integrations": ("id", "workspace_id", "platform", "name", "status"),
    "traces": ("id", "workspace_id", "trace_id", "source", "timestamp", "steps", "input_preview",
               "output_preview", "step_count", "has_errors"),
    "eval_sets": ("id", "workspace_id", "name", "minimum_examples"),
    "feedback": ("id", "eval_set_id", "trace_id", "rating", "notes"),
    "evals": ("id", "eval_set_id", "name", "version", "parent_eval_id", "code", "status"),
    "eval_executions": ("id", "eval_id", "trace_id", "result", "reason", "error"),
    "jobs": ("id", "workspace_id", "type", "status"),
}
# Without these the app has nothing to show; the others only disable a pane.
CORE_TABLES = ("traces", "eval_sets", "feedback")


@dataclass
class SchemaInfo:
    generation: str
    tables: dict[str, list[str]]
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    view: str = "standard"  # "standard" | "missing" | "customised"

    def has(self, table: str, column: str | None = None) -> bool:
        cols = self.tables.get(table)
        return cols is not None and (column is None or column in cols)


def _view_state(conn: sqlite3.Connection) -> str:
    """One definition of "the standard view" for the whole app: the matrix's (see matrix_stats)."""
    source = comparison_source(conn)
    return "standard" if source == SOURCE_VIEW else "missing" if source == SOURCE_MISSING else "customised"


V1 = "v1.0"
V2 = "v2 (agents, Dec 2025 or later)"
LEGACY = "legacy (external_id/trace_data)"


def _v2_facts(tables: dict[str, list[str]]) -> list[str]:
    """What marks the December 2025 generation (spec §5); a user table named `agents` alone is not it."""
    cols = {t: set(c) for t, c in tables.items()}
    facts = []
    if "agents" in cols:
        facts.append("table agents")
    if "agent_id" in cols.get("evals", ()):
        facts.append("column evals.agent_id")
    if "feedback" in cols and "eval_set_id" not in cols["feedback"]:
        facts.append("feedback without eval_set_id")
    if "agent_id" in cols.get("feedback", ()):
        facts.append("column feedback.agent_id")
    if "score" in cols.get("eval_executions", ()):
        facts.append("column eval_executions.score")
    if "spans" in cols.get("traces", ()):
        facts.append("column traces.spans")
    if "traces" in cols and "eval_sets" not in cols:
        facts.append("no table eval_sets")
    return facts


def _legacy_facts(tables: dict[str, list[str]]) -> list[str]:
    marks = {"traces": ("external_id", "trace_data"), "feedback": ("rating_detail",),
             "eval_executions": ("predicted_result", "predicted_reason")}
    return [f"column {t}.{c}" for t, wanted in marks.items() for c in wanted if c in tables.get(t, ())]


def fingerprint(tables: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """(generation, the facts it rests on); None when no iofold table is present. A generation needs
    two of its own facts, so one user table or column with a telling name does not switch it."""
    v2, legacy = _v2_facts(tables), _legacy_facts(tables)
    if len(v2) >= 2 and len(v2) >= len(legacy):
        return V2, v2
    if len(legacy) >= 2:
        return LEGACY, legacy
    if set(tables) & set(V1_COLUMNS):
        return V1, ["the v1.0 tables"]
    return None, []


def detect(conn: sqlite3.Connection, path: Path | str | None = None) -> SchemaInfo:
    """Classify the database; raise SourceError when it is empty or not a v1.0 iofold database."""
    tables = introspect.schema_columns(conn, views=False)
    if not tables and not introspect.view_names(conn):
        raise SourceError(path, "empty database (no tables)")
    names = set(tables)
    generation, facts = fingerprint(tables)
    if generation is None:
        shown = ", ".join(sorted(names)[:6]) + ("…" if len(names) > 6 else "")
        raise SourceError(path, f"unknown schema: no iofold tables (found {shown})")

    missing: list[str] = []
    for table, cols in V1_COLUMNS.items():
        if table not in tables:
            missing.append(f"table {table}")
            continue
        missing.extend(f"column {table}.{c}" for c in cols if c not in tables[table])
    core_missing = [
        m for m in missing if any(m in (f"table {t}",) or m.startswith(f"column {t}.") for t in CORE_TABLES)
    ]
    if core_missing:
        what = ", ".join(core_missing[:8]) + ("…" if len(core_missing) > 8 else "")
        if generation == V1:
            raise SourceError(path, f"a v1.0 iofold database, but it lacks what iofold-tui needs: {what}")
        raise SourceError(
            path,
            f"schema generation {generation} is not supported yet (iofold-tui reads v1.0; this file has "
            f"{', '.join(facts)}); missing for v1.0: {what}",
        )
    info = SchemaInfo(generation=generation, tables=tables, missing=missing, view=_view_state(conn))
    if missing:
        info.warnings.append("missing from v1.0: " + ", ".join(missing))
    if info.view == "missing":
        info.warnings.append("view eval_comparison is missing: the same rows are computed from the tables")
    elif info.view == "customised":
        info.warnings.append(
            "view eval_comparison differs from iofold's: the matrix uses the equivalent query"
        )
    if "jobs" in tables and "metadata" in tables["jobs"]:
        info.generation = "v1.0 (+ jobs.metadata)"
    return info
