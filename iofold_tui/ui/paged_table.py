"""A DataTable that holds one page of rows and asks its owner for the next page at the edges.

The owner (a pane) answers a ``Boundary`` message by querying the next page in a thread worker and
calling ``show_page``. Memory stays bounded by the page size whatever the table's size in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

Direction = Literal["first", "last", "after", "before"]


class PagedTable(DataTable[Text | str]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
    ]

    class Boundary(Message):
        def __init__(self, table: PagedTable, direction: Direction) -> None:
            super().__init__()
            self.table = table
            self.direction = direction

        @property
        def control(self) -> PagedTable:
            return self.table

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.has_before = False
        self.has_after = False

    def _edge(self, direction: Direction) -> None:
        self.post_message(self.Boundary(self, direction))

    def action_cursor_down(self) -> None:
        if self.row_count == 0 or self.cursor_row >= self.row_count - 1:
            if self.has_after:
                self._edge("after")
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            if self.has_before:
                self._edge("before")
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.row_count == 0 or self.cursor_row >= self.row_count - 1:
            if self.has_after:
                self._edge("after")
            return
        super().action_page_down()

    def action_page_up(self) -> None:
        if self.cursor_row <= 0:
            if self.has_before:
                self._edge("before")
            return
        super().action_page_up()

    def action_scroll_top(self) -> None:
        self._edge("first")

    def action_scroll_home(self) -> None:
        self._edge("first")

    def action_scroll_bottom(self) -> None:
        self._edge("last")

    def action_scroll_end(self) -> None:
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
            index = 0 if cursor == "first" else self.row_count - 1 if cursor == "last" else min(cursor, self.row_count - 1)
            self.move_cursor(row=index, animate=False)

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - cursor outside the rows during a refresh
            return None
