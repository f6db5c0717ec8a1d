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


PANES: list[PaneSpec] = [
    PaneSpec("traces", "T", "Traces", "Trace list: filter, search, page, label in bulk", "iofold_tui.ui.panes.traces:TracesPane"),
]
