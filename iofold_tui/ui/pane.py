"""Base class of every pane: a screen with the shared header, the footer, and data-refresh hooks."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen

from iofold_tui.ui.widgets import KeyFooter, PaneHeader


class Pane(Screen[None]):
    """Subclasses implement ``compose_body`` and ``reload``; the app calls ``reload`` when the workspace,
    eval set or the database underneath changes (flagged stale while the pane is hidden)."""

    pane_title = "Pane"
    stale = False

    def compose(self) -> ComposeResult:
        yield PaneHeader(id="pane-header")
        yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def iofold(self):  # noqa: ANN201 - the app type is circular to import here
        return self.app

    def context_parts(self) -> list[str]:
        app = self.iofold
        state = app.state
        parts = [app.source.label]
        if len(state.workspaces) > 1 and state.workspace:
            parts.append(f"ws: {state.workspace.name}")
        parts.append(f"eval set: {state.eval_set.name}" if state.eval_set else "no eval set")
        if app.source.read_only_reason:
            parts.append("READ-ONLY")
        return parts

    def set_status(self, status: Text | str = "") -> None:
        self.query_one(PaneHeader).show(self.pane_title, self.context_parts(), status, self.pane_keys())

    def pane_keys(self) -> str:
        """The pane-switching keys as the user's keymap has them, e.g. "T R E M O J I S"."""
        from iofold_tui.ui.panes import PANES  # the registry imports the panes, which import this module

        keymap = getattr(self.app, "user_keymap", {})
        return " ".join(keymap.get(f"pane.{p.mode}", p.key).split(",")[0].strip() for p in PANES)

    def reload(self) -> None:
        """Re-query what the pane shows (runs its workers)."""

    def on_mount(self) -> None:
        self.set_status()
        self.reload()

    def on_screen_resume(self) -> None:
        if self.stale:
            self.stale = False
            self.set_status()
            self.reload()
