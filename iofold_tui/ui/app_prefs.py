"""What the app remembers per database between launches (stored by data/prefs.py): the pane, the eval
set, the workspace, the trace list's filter and columns, the theme."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING

from iofold_tui.data.prefs import load_prefs, save_prefs
from iofold_tui.data.traces.query import TraceFilter
from iofold_tui.ui.panes import PANES

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp

# Trace filter fields worth restoring on the next launch (not one-off sets like step-search hits).
REMEMBERED_FILTER = ("sources", "has_errors", "date_from", "date_to", "rating", "text", "newest_first")


def restore_prefs(app: IofoldApp) -> None:
    """Start where the last session on this database left off (the app calls it only when launched without
    a pane, eval set or selection)."""
    prefs = load_prefs(app.db.path)
    if prefs.get("pane") in {p.mode for p in PANES}:
        app.start_pane = prefs["pane"]
    if isinstance(prefs.get("eval_set_id"), str):
        app.start_eval_set = prefs["eval_set_id"]
    workspace_id = prefs.get("workspace_id")
    if isinstance(workspace_id, str) and workspace_id in {w.id for w in app.state.workspaces}:
        app.state.workspace_id = workspace_id
    saved = prefs.get("trace_filter")
    if isinstance(saved, dict):
        changes = {k: saved[k] for k in REMEMBERED_FILTER if k in saved}
        if isinstance(changes.get("sources"), list):
            changes["sources"] = tuple(str(x) for x in changes["sources"])
        with contextlib.suppress(TypeError):
            app.state.trace_filter = replace(TraceFilter(), **changes)
    if isinstance(prefs.get("theme"), str) and prefs["theme"] in app.available_themes:
        app.theme = prefs["theme"]


def save_app_prefs(app: IofoldApp) -> None:
    """Remember this session's choices for the next launch on this database."""
    flt = app.state.trace_filter
    save_prefs(app.db.path, {
        "pane": app.current_mode if app.current_mode in {p.mode for p in PANES} else "traces",
        "eval_set_id": app.state.eval_set_id,
        "workspace_id": app.state.workspace_id,
        "trace_filter": {k: getattr(flt, k) for k in REMEMBERED_FILTER},
        "theme": app.theme,
        "trace_columns": app.state.trace_columns,
    })
