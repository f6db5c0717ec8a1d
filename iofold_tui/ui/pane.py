"""Base class of every pane: a screen with the shared header, the footer, and data-refresh hooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from iofold_tui.ui.widgets import KeyFooter, PaneHeader


class Pane(Screen[None]):
    """Subclasses implement ``compose_body`` and ``reload``; the app calls ``reload`` when the workspace,
    eval set or the database underneath changes (flagged stale while the pane is hidden)."""

    pane_title = "Pane"
    stale = False
    # Tables the pane reads. When the database lacks one, the pane says so in its body and does nothing
    # else (no query, no key of its own); every other pane works as usual.
    requires: tuple[str, ...] = ()
    _GUARDED = ("reload", "on_screen_resume", "select_item", "run_sql")

    def __init_subclass__(cls, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init_subclass__(**kwargs)
        for name in cls._GUARDED:
            method = cls.__dict__.get(name)
            if method is not None and callable(method):
                setattr(cls, name, _unless_unavailable(method))
        own_check = cls.__dict__.get("check_action")
        if own_check is not None:
            @functools.wraps(own_check)
            def check_action(self: Pane, action: str, parameters: tuple[object, ...]) -> bool | None:
                if self.unavailable:
                    return Pane.check_action(self, action, parameters)
                return own_check(self, action, parameters)

            cls.check_action = check_action  # type: ignore[method-assign]

    @functools.cached_property
    def unavailable(self) -> list[str]:
        """The required tables this database does not have (empty: the pane works)."""
        schema = getattr(getattr(self.app, "source", None), "schema", None)
        if schema is None or not self.requires:
            return []
        return [t for t in self.requires if not schema.has(t)]

    def compose(self) -> ComposeResult:
        yield PaneHeader(id="pane-header")
        if self.unavailable:
            names = ", ".join(self.unavailable)
            yield Static(Text.assemble(
                (f"{self.pane_title}: not available for this database\n\n", "bold yellow"),
                f"It has no table {names}" if len(self.unavailable) == 1 else f"It has no tables {names}",
                ", which this pane reads. Every other pane works; the SQL pane shows what the database holds.",
            ), id="pane-unavailable")
        yield from self.compose_body()  # built (handlers find their widgets) but hidden, below
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # An unavailable pane's own keys have no widgets to act on.
        return not (self.unavailable and any(getattr(b, "action", "").split("(")[0] == action for b in self.BINDINGS))

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
        queue = getattr(app, "_iofold_label_queue", None)  # ui.labeling.LabelQueue, once labels were queued
        pending = queue.summary() if queue is not None else None
        if pending:
            parts.append(pending)
        return parts

    def set_status(self, status: Text | str = "") -> None:
        self._status = status
        self.query_one(PaneHeader).show(self.pane_title, self.context_parts(), status, self.pane_keys())

    def pending_changed(self) -> None:
        """Queued labels were added or written (ui.labeling.LabelQueue): the header's count moves."""
        self.query_one(PaneHeader).show(self.pane_title, self.context_parts(), getattr(self, "_status", ""),
                                        self.pane_keys())

    def pane_keys(self) -> str:
        """The pane-switching keys as the user's keymap has them, e.g. "T R E M O J I S"."""
        from iofold_tui.ui.panes import PANES  # the registry imports the panes, which import this module

        keymap = getattr(self.app, "user_keymap", {})
        return " ".join(keymap.get(f"pane.{p.mode}", p.key).split(",")[0].strip() for p in PANES)

    def reload(self) -> None:
        """Re-query what the pane shows (runs its workers)."""

    def on_mount(self) -> None:
        if self.unavailable:
            for child in self.children:
                if not isinstance(child, PaneHeader | KeyFooter) and child.id != "pane-unavailable":
                    child.display = False
        self.set_status(Text(f"no table {', '.join(self.unavailable)} in this database", style="yellow")
                        if self.unavailable else "")
        self.reload()

    def on_screen_resume(self) -> None:
        if self.stale:
            self.stale = False
            self.set_status()
            self.reload()


def _unless_unavailable(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Pane, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if self.unavailable:
            return None
        return method(self, *args, **kwargs)

    return guarded
