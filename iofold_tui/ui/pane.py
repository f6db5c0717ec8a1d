"""Base class of every pane: a screen with the shared header, the footer, and data-refresh hooks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.widgets import KeyFooter, PaneHeader


@dataclass
class QueryDone(Message, bubble=False):
    """A ``Pane.run_query`` worker finished (posted from its thread; handled on the UI thread)."""

    group: str | None
    ticket: int
    on_result: Callable[[Any], object]
    on_error: Callable[[BaseException], object] | None = None
    result: object = None
    error: BaseException | None = None
    what: str = "query"


class Pane(Screen[None]):
    """Subclasses implement ``compose_body`` and ``reload``; the app calls ``reload`` when the workspace,
    eval set or the database underneath changes (flagged stale while the pane is hidden)."""

    pane_title = "Pane"
    stale = False
    # Tables the pane reads. When the database lacks one, the pane says so in its body and does nothing
    # else (no query, no key of its own); every other pane works as usual.
    requires: tuple[str, ...] = ()
    _GUARDED = ("reload", "on_screen_resume", "select_item", "run_sql")
    _tickets: dict[str | None, int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
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
                ", which this pane reads. Every other pane works; "
                "the SQL pane shows what the database holds.",
            ), id="pane-unavailable")
        yield from self.compose_body()  # built (handlers find their widgets) but hidden, below
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # An unavailable pane's own keys have no widgets to act on.
        own_actions = (getattr(b, "action", "").split("(")[0] for b in self.BINDINGS)
        return not (self.unavailable and action in own_actions)

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def iofold(self):  # the app type is circular to import here
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
        remote_status = getattr(app.db, "status", None)  # a live D1 source: the last round trip, or offline
        if callable(remote_status):
            parts.append(remote_status())
        queue = state.label_queue  # once labels were queued
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

    # True: the pane applies ``--select`` itself once its first rows are in (the trace list, evals, matrix);
    # otherwise the base class calls ``select_item`` with it right after the first reload.
    selects_on_start = False

    def start_selection(self) -> str | None:
        """``iofold-tui DB --pane P --select ID``: the id, once, when this is the pane the app started on."""
        app = self.app
        start = getattr(app, "start_select", None)
        if not start or self.__dict__.get("_start_taken"):
            return None
        self._start_taken = True
        from iofold_tui.ui.panes import PANES  # the registry imports the panes, which import this module

        mode = next((p.mode for p in PANES if p.target.endswith(f":{type(self).__name__}")), None)
        return start if mode is not None and mode == getattr(app, "start_pane", None) else None

    def select_item(self, item_id: str) -> None:
        """Put the cursor on ``item_id`` (what ``iofold-tui DB --select ID`` and the palette hand over)."""
        self.notify(f"{self.pane_title}: nothing to select here", severity="warning")

    # -- queries off the UI thread ----------------------------------------------------------------------
    def run_query(self, fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], object],
                  group: str | None = "query", what: str = "query",
                  on_error: Callable[[BaseException], object] | None = None) -> int:
        """Run ``fn(*args)`` in a thread worker; ``on_result(value)`` runs on the UI thread unless a newer
        query of the same ``group`` was started meanwhile (its result would be stale: it is dropped).
        ``group=None``: every result is delivered. An exception becomes one sanitised line in the pane
        (``what`` failed: …) and ``on_error(exc)``, never a traceback. Returns the query's ticket (see
        ``is_latest``)."""
        tickets = self.__dict__.setdefault("_tickets", {})
        ticket = tickets.get(group, 0) + 1
        tickets[group] = ticket
        self._query_worker(fn, args, on_result, on_error, group, ticket, what)
        return ticket

    def ticket(self, group: str | None) -> int:
        """The ticket of the newest query of ``group`` (0: none yet)."""
        return self.__dict__.get("_tickets", {}).get(group, 0)

    def is_latest(self, group: str | None, ticket: int) -> bool:
        """No query of ``group`` was started after the one with this ``ticket``."""
        return self.ticket(group) == ticket

    def supersede(self, group: str) -> None:
        """Results of queries of ``group`` already running are dropped when they arrive."""
        tickets = self.__dict__.setdefault("_tickets", {})
        tickets[group] = tickets.get(group, 0) + 1

    @work(thread=True, group="pane-query")
    def _query_worker(self, fn: Callable[..., Any], args: tuple[Any, ...], on_result: Callable[[Any], object],
                      on_error: Callable[[BaseException], object] | None, group: str | None, ticket: int,
                      what: str) -> None:
        try:
            done = QueryDone(group, ticket, on_result, on_error, result=fn(*args), what=what)
        except Exception as exc:  # a thread's traceback would garble the screen: one line instead
            done = QueryDone(group, ticket, on_result, on_error, error=exc, what=what)
        self.post_message(done)

    def on_query_done(self, message: QueryDone) -> None:
        message.stop()
        if message.group is not None and not self.is_latest(message.group, message.ticket):
            return
        if message.error is not None:
            error = message.error
            detail = one_line(str(error), 200) or type(error).__name__
            self.notify(f"{message.what} failed: {detail}", severity="error")
            if message.on_error is not None:
                message.on_error(error)
            return
        message.on_result(message.result)

    def on_mount(self) -> None:
        if self.unavailable:
            for child in self.children:
                if not isinstance(child, PaneHeader | KeyFooter) and child.id != "pane-unavailable":
                    child.display = False
        self.set_status(Text(f"no table {', '.join(self.unavailable)} in this database", style="yellow")
                        if self.unavailable else "")
        self.reload()
        start = None if self.selects_on_start or self.unavailable else self.start_selection()
        if start:
            self.call_after_refresh(self.select_item, start)

    def on_screen_resume(self) -> None:
        if self.stale:
            self.stale = False
            self.set_status()
            self.reload()


def _unless_unavailable(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Pane, *args: Any, **kwargs: Any) -> Any:
        if self.unavailable:
            return None
        return method(self, *args, **kwargs)

    return guarded
