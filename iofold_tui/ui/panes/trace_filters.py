"""The filter dialog of the trace list: source, errors, date range, rating state."""

from __future__ import annotations

import re
from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.query import RATING_STATES, TraceFilter

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TraceFilterScreen(ModalScreen[TraceFilter | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filters.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="filters.apply"),
    ]
    DEFAULT_CSS = """
    TraceFilterScreen { align: center middle; }
    TraceFilterScreen > Vertical {
        width: 72; height: auto; border: thick $accent; background: $surface; padding: 0 1;
    }
    TraceFilterScreen Horizontal { height: auto; }
    TraceFilterScreen Horizontal Input { width: 1fr; }
    TraceFilterScreen Label { margin-top: 1; }
    TraceFilterScreen #error { color: $error; height: auto; }
    """

    TITLE = "Filter traces (Enter in a field or ctrl+s applies, Esc cancels)"

    def __init__(self, current: TraceFilter, sources: list[str], *, rating_and_errors: bool = True) -> None:
        super().__init__()
        self.current = current
        self.sources = sources
        self.rating_and_errors = rating_and_errors

    def compose(self) -> ComposeResult:
        flt = self.current
        with Vertical():
            yield Label(Text(self.TITLE, style="bold"))
            if self.rating_and_errors:
                yield from self._compose_rating_and_errors(flt)
            yield from self._compose_source_and_dates(flt)
            yield Label("", id="error")
            with Horizontal():
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def _compose_rating_and_errors(self, flt: TraceFilter) -> ComposeResult:
        yield Label("Rating in the current eval set")
        yield Select([(r, r) for r in RATING_STATES], value=flt.rating or Select.NULL, id="rating",
                     prompt="any")
        yield Label("Errors")
        yield Select([("with errors", "yes"), ("without errors", "no")],
                     value=Select.NULL if flt.has_errors is None else ("yes" if flt.has_errors else "no"),
                     id="errors", prompt="any")

    def _compose_source_and_dates(self, flt: TraceFilter) -> ComposeResult:
        yield Label("Source")
        yield Select([(one_line(s, 40), s) for s in self.sources],
                     value=flt.sources[0] if flt.sources and flt.sources[0] in self.sources else Select.NULL,
                     id="source", prompt="any")
        yield Label("Date range (YYYY-MM-DD, inclusive)")
        with Horizontal():
            yield Input(flt.date_from or "", placeholder="from", id="date-from")
            yield Input(flt.date_to or "", placeholder="to", id="date-to")

    def _value(self, selector: str) -> str | None:
        if not self.query(selector):
            return None
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL or value is None else str(value)

    def action_apply(self) -> None:
        date_from = self.query_one("#date-from", Input).value.strip() or None
        date_to = self.query_one("#date-to", Input).value.strip() or None
        for value in (date_from, date_to):
            if value and not _DATE.match(value):
                self.query_one("#error", Label).update(
                    Text(f"not a date: {one_line(value, 30)} (use YYYY-MM-DD)"))
                return
        errors = self._value("#errors")
        source = self._value("#source")
        changes: dict[str, object] = {"sources": (source,) if source else (), "date_from": date_from,
                                      "date_to": date_to}
        if self.rating_and_errors:
            changes |= {"rating": self._value("#rating"),
                        "has_errors": None if errors is None else errors == "yes"}
        self.dismiss(self.result(replace(self.current, **changes)))  # type: ignore[arg-type]

    def result(self, flt: TraceFilter) -> object:
        """What the dialog returns; subclasses that filter something else translate the TraceFilter."""
        return flt

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()
