"""A DataTable that holds one page of rows and asks its owner for the next page at the edges.

The owner (a pane) answers a ``Boundary`` message by querying the next page in a thread worker and
calling ``show_page``. Memory stays bounded by the page size whatever the table's size in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable

Direction = Literal["first", "last", "after", "before"]


@dataclass
class PageBoundary(Message):
    """The cursor went past the first or last row of the page (or Home/End): load that page."""

    table: Widget
    direction: Direction

    @property
    def control(self) -> Widget:
        return self.table


class PageEdges:
    """Keys at a page's edges ask the owning pane for the neighbouring page with a ``Boundary`` message
    (``Home``/``End`` for the first/last); shared by PagedTable (DataTable) and RowTable (line API).
    The host class defines ``Boundary``, ``row_count``, ``cursor_row``, ``has_before`` and ``has_after``."""

    def _edge(self, direction: Direction) -> None:
        hold_gc = getattr(self.app, "hold_gc", None)  # type: ignore[attr-defined]
        if hold_gc is not None:  # a new page is on its way: no collection before its frame
            hold_gc()
        self.post_message(self.Boundary(self, direction))  # type: ignore[attr-defined]

    def _past_last(self) -> bool:
        """The cursor is on the last row: ask for the next page (if any) instead of moving."""
        if self.row_count == 0 or self.cursor_row >= self.row_count - 1:  # type: ignore[attr-defined]
            if self.has_after:  # type: ignore[attr-defined]
                self._edge("after")
            return True
        return False

    def _past_first(self) -> bool:
        if self.cursor_row <= 0:  # type: ignore[attr-defined]
            if self.has_before:  # type: ignore[attr-defined]
                self._edge("before")
            return True
        return False

    def action_scroll_home(self) -> None:
        self._edge("first")

    def action_scroll_end(self) -> None:
        self._edge("last")


class PagedTable(PageEdges, DataTable[Text | str]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
    ]

    class Boundary(PageBoundary):
        pass

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.has_before = False
        self.has_after = False

    def action_cursor_down(self) -> None:
        if not self._past_last():
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if not self._past_first():
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self._past_last():
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self._past_first():
            super().action_page_up()

    def action_scroll_top(self) -> None:
        self._edge("first")

    def action_scroll_bottom(self) -> None:
        self._edge("last")

    def show_page(
        self,
        rows: Iterable[tuple[str, Sequence[Text | str]]],
        *,
        has_before: bool,
        has_after: bool,
        cursor: int | Literal["first", "last"] = "first",
        focus_key: str | None = None,
    ) -> None:
        """Replace the rows (keyed by id) and place the cursor: on ``focus_key`` when that row is
        shown (a jump), else at ``cursor``."""
        self.clear()
        keys = []
        for key, cells in rows:
            self.add_row(*cells, key=key)
            keys.append(key)
        self.has_before, self.has_after = has_before, has_after
        if focus_key is not None and focus_key in keys:
            cursor = keys.index(focus_key)
        if self.row_count:
            last = self.row_count - 1
            index = 0 if cursor == "first" else last if cursor == "last" else min(cursor, last)
            self.move_cursor(row=index, animate=False)

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # cursor outside the rows during a refresh
            return None
