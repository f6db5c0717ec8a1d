"""Pieces of the SQL console pane: the result-page window, cell rendering and the row detail modal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from iofold_tui.data.sqlconsole.console import ResultCursor
from iofold_tui.ui.text import cell, safe

CELL_WIDTH = 60  # characters shown per cell in the table; the row detail shows what the console kept
Row = tuple[str | None, ...]


def value_text(value: str | None, width: int | None = CELL_WIDTH) -> Text:
    """A result cell: NULL set apart from the text 'NULL'; text already one-lined by the console."""
    if value is None:
        return Text("NULL", style="dim italic")
    return cell(value, width)


@dataclass
class ResultWindow:
    """The pages of one result kept in memory: at most ``keep`` pages, the oldest dropped first.

    The cursor is forward-only, so a dropped page comes back only by running the statement again.
    """

    result: ResultCursor
    page_size: int
    keep: int
    pages: list[list[Row]] = field(default_factory=list)
    base: int = 0  # absolute index of pages[0]
    shown: int = 0  # absolute index of the page on screen

    def add(self, rows: list[Row]) -> None:
        self.pages.append(rows)
        if len(self.pages) > self.keep:
            del self.pages[0]
            self.base += 1

    @property
    def last(self) -> int:
        return self.base + len(self.pages) - 1

    def page(self, index: int) -> list[Row] | None:
        return self.pages[index - self.base] if self.base <= index <= self.last else None

    @property
    def fetched(self) -> int:
        return self.result.rows_fetched

    @property
    def more(self) -> bool:
        return not self.result.done

    def first_row(self, index: int) -> int:
        """Absolute row number (0-based) of the first row of page ``index``."""
        return index * self.page_size


class RowDetail(ModalScreen[None]):
    """Every column of one result row, wrapped (values as the console kept them, sanitized)."""

    BINDINGS = [Binding("escape,enter,q", "dismiss_none", "Close", id="sql.row_close")]
    DEFAULT_CSS = """
    RowDetail { align: center middle; }
    RowDetail > VerticalScroll {
        width: 90%; height: 80%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, columns: Sequence[str], row: Row) -> None:
        super().__init__()
        self.title_text, self.columns, self.row = title, list(columns), row

    def compose(self) -> ComposeResult:
        body = Text()
        body.append(self.title_text, style="bold")
        body.append("  (each value as the console keeps it: at most 500 characters; use substr() for more)\n",
                    style="dim")
        for name, value in zip(self.columns, self.row, strict=False):
            body.append("\n")
            body.append_text(cell(name, 80, style="bold cyan"))
            body.append("\n")
            body.append_text(Text("NULL", style="dim italic") if value is None else safe(value))
            body.append("\n")
        with VerticalScroll():
            yield Static(body)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
