"""Command palette providers: jump to a trace id, an eval, or apply a common trace filter."""

from __future__ import annotations

import asyncio
from functools import partial

from rich.text import Text
from textual.command import Hit, Hits, Provider

from iofold_tui.data.evals.lookup import eval_choices
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.lookup import trace_ids_from
from iofold_tui.data.traces.query import RATING_STATES


class TraceIdProvider(Provider):
    """Type the start of a trace id: ids come from the primary-key index (a range scan, not a table scan)."""

    async def search(self, query: str) -> Hits:
        query = query.strip()
        if len(query) < 3:
            return
        app = self.app

        def lookup() -> list[str]:
            return trace_ids_from(app.db.conn(), query, 8)  # type: ignore[attr-defined]

        for trace_id in await asyncio.to_thread(lookup):
            yield Hit(1.0, Text(f"Trace: {one_line(trace_id, 80)}"), partial(app.open_trace, trace_id),  # type: ignore[attr-defined]
                      text=f"Trace: {trace_id}", help="open the trace")


class EvalProvider(Provider):
    async def search(self, query: str) -> Hits:
        app = self.app
        matcher = self.matcher(query)

        def lookup() -> list[tuple[str, str, int]]:
            try:
                return eval_choices(app.db.conn(), 500)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - a database without an evals table
                return []

        for eval_id, name, version in await asyncio.to_thread(lookup):
            label = f"Eval: {one_line(name, 60)} v{version} ({one_line(eval_id, 40)})"
            score = matcher.match(label)
            if score > 0 and hasattr(app, "open_eval"):
                yield Hit(score, matcher.highlight(label), partial(app.open_eval, eval_id), text=label)


class FilterProvider(Provider):
    async def search(self, query: str) -> Hits:
        app = self.app
        matcher = self.matcher(query)
        options = [(f"Filter traces: {state}", {"rating": state}) for state in RATING_STATES]
        options += [("Filter traces: has errors", {"has_errors": True}), ("Filter traces: no errors", {"has_errors": False}),
                    ("Filter traces: clear all filters", None)]
        for label, changes in options:
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.apply_trace_filter, changes), text=label)  # type: ignore[attr-defined]
