"""The panes of the app. Each is a Textual mode with one key (shown in the footer) and a palette entry.

To add a pane: write ``iofold_tui/ui/panes/<name>.py`` with a ``Pane`` subclass and add one PaneSpec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class PaneSpec:
    mode: str
    key: str
    title: str
    help: str
    target: str  # "module:Class", imported when the pane is first shown

    def load(self) -> type[Screen]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def create(self) -> Screen:
        """A new screen of this pane (the app's mode factory)."""
        return self.load()()


PANES: list[PaneSpec] = [
    PaneSpec("traces", "T", "Traces", "Trace list: filter, search, page, label in bulk",
             "iofold_tui.ui.panes.traces:TracesPane"),
    PaneSpec("review", "R", "Review", "Label one trace at a time: a/x/n, undo u/U, notes e",
             "iofold_tui.ui.panes.review:ReviewPane"),
    PaneSpec("evals", "E", "Evals", "Eval versions: highlighted code, diffs, test results, jumps",
             "iofold_tui.ui.panes.evals:EvalsPane"),
    PaneSpec("matrix", "M", "Matrix",
             "Where evals contradict the labels: per-version stats, drill-down, relabel",
             "iofold_tui.ui.panes.matrix:MatrixPane"),
    PaneSpec("overview", "O", "Overview",
             "Row counts, label progress, accuracy, integrations, jobs, warnings",
             "iofold_tui.ui.panes.overview:OverviewPane"),
    PaneSpec("jobs", "J", "Jobs", "Import / generate / execute jobs: progress, durations, payloads",
             "iofold_tui.ui.panes.jobs:JobsPane"),
    PaneSpec("integrations", "I", "Integrations",
             "Langfuse / LangSmith / OpenAI connections (keys never shown)",
             "iofold_tui.ui.panes.integrations:IntegrationsPane"),
    PaneSpec("sql", "S", "SQL", "SQL console: read-only by default, presets, history, streamed results",
             "iofold_tui.ui.panes.sql:SqlPane"),
]
