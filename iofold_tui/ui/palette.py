"""The command palette: providers that jump to a trace id or an eval or apply a common trace filter, and the
app's own commands (panes, eval set and workspace switches, carrying labels back to D1)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import SystemCommand
from textual.command import Hit, Hits, Provider

from iofold_tui.data.evals.lookup import eval_choices
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.lookup import trace_ids_from
from iofold_tui.data.traces.query import RATING_STATES
from iofold_tui.ui.panes import PANES

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp  # which lists these providers in its COMMANDS


def _iofold(provider: Provider) -> IofoldApp:
    """The app a provider runs in: always an ``IofoldApp`` (only its COMMANDS list these providers)."""
    return cast("IofoldApp", provider.app)


class TraceIdProvider(Provider):
    """Type the start of a trace id: ids come from the primary-key index (a range scan, not a table scan)."""

    async def search(self, query: str) -> Hits:
        query = query.strip()
        if len(query) < 3:
            return
        app = _iofold(self)

        def lookup() -> list[str]:
            return trace_ids_from(app.db.conn(), query, 8)

        for trace_id in await asyncio.to_thread(lookup):
            yield Hit(1.0, Text(f"Trace: {one_line(trace_id, 80)}"), partial(app.open_trace, trace_id),
                      text=f"Trace: {trace_id}", help="open the trace")


class EvalProvider(Provider):
    async def search(self, query: str) -> Hits:
        app = _iofold(self)
        matcher = self.matcher(query)

        def lookup() -> list[tuple[str, str, int]]:
            try:
                return eval_choices(app.db.conn(), 500)
            except Exception:  # a database without an evals table
                return []

        for eval_id, name, version in await asyncio.to_thread(lookup):
            label = f"Eval: {one_line(name, 60)} v{version} ({one_line(eval_id, 40)})"
            score = matcher.match(label)
            if score > 0 and hasattr(app, "open_eval"):
                yield Hit(score, matcher.highlight(label), partial(app.open_eval, eval_id), text=label)


class FilterProvider(Provider):
    async def search(self, query: str) -> Hits:
        app = _iofold(self)
        matcher = self.matcher(query)
        options: list[tuple[str, dict[str, object] | None]]
        options = [(f"Filter traces: {state}", {"rating": state}) for state in RATING_STATES]
        options += [("Filter traces: has errors", {"has_errors": True}),
                    ("Filter traces: no errors", {"has_errors": False}),
                    ("Filter traces: clear all filters", None)]
        for label, changes in options:
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.apply_trace_filter, changes),
                          text=label)


def app_commands(app: IofoldApp) -> Iterable[SystemCommand]:
    """The app's entries in the palette, after Textual's own."""
    for spec in PANES:
        yield SystemCommand(f"Pane: {spec.title}", spec.help, partial(app.action_pane, spec.mode))
    yield SystemCommand("Switch eval set", "Choose whose labels the panes show", app.action_pick_eval_set)
    from iofold_tui.ui import carry

    if carry.stranded(app) is not None:
        yield SystemCommand(carry.COMMAND, "Labels made on an older export of this D1 database that have "
                            "not gone back to D1", partial(carry.ask_carry, app))
    if len(app.state.workspaces) > 1:
        yield SystemCommand("Switch workspace", "Scope every pane to one workspace",
                            app.action_pick_workspace)
    for es in app.state.eval_sets[:50]:
        yield SystemCommand(f"Eval set: {es.name}", f"Show labels of {es.name}",
                            partial(app.choose_eval_set, es.id))
