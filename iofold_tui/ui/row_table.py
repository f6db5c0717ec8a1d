"""A line-API table for one page of rows (the trace list, the matrix grid): each row is laid out once,
as a strip of segments, and a frame paints only the rows on screen.

Textual's DataTable measures every cell of every new row and renders each visible cell through rich's
padding and styling layers: ~120 ms per page of 100 rows at 140 columns, on the UI thread. Here a page is
~100 string cuts and a frame is ~40 strip copies. Page edges work as in ``PagedTable`` (the shared
``PageEdges``: the owner answers ``Boundary`` with the next page and calls ``show_page``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from iofold_tui.ui.paged_table import Direction, PageBoundary, PageEdges

PADDING = 1  # cells each side of a column, as DataTable's default


def same_cell(a: object, b: object) -> bool:
    """Text equality that also sees the base style (rich's ``==`` compares only plain text and spans)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain, str(a.style), a.spans, a.justify) == (b.plain, str(b.style), b.spans, b.justify)
    return a == b


def _fit(plain: str, width: int, justify: str | None, overflow: str | None) -> str:
    """``plain`` in exactly ``width`` cells: cut with an ellipsis (or not), padded as justified."""
    size = cell_len(plain)
    if size > width:
        if overflow == "ellipsis" and width > 0:
            return set_cell_size(plain, width - 1) + "…"
        return set_cell_size(plain, width)
    spare = width - size
    if justify == "right":
        return " " * spare + plain
    if justify == "center":
        return " " * (spare // 2) + plain + " " * (spare - spare // 2)
    return plain + " " * spare


class RowKey(str):
    """A row's key: the string itself, with DataTable's ``.value`` spelling."""

    @property
    def value(self) -> str:
        return str(self)


class ColumnKey(str):
    @property
    def value(self) -> str:
        return str(self)


class CellKey(NamedTuple):
    row_key: RowKey
    column_key: ColumnKey


@dataclass
class Column:
    key: str
    label: str
    width: int


class RowTable(PageEdges, ScrollView, can_focus=True):
    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("home", "scroll_home", "First page", show=False, id="table.home"),
        Binding("end", "scroll_end", "Last page", show=False, id="table.end"),
        Binding("enter", "select_cursor", "Open", show=False, id="table.select"),
        Binding("left", "cursor_left", "Left", show=False, id="table.left"),
        Binding("right", "cursor_right", "Right", show=False, id="table.right"),
    ]
    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor", "row-table--even-row"}
    DEFAULT_CSS = """
    RowTable {
        background: $surface; color: $foreground; height: 1fr; overflow-x: hidden; overflow-y: auto;
        & > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .row-table--even-row { background: $surface-lighten-1 50%; }
        &:dark > .row-table--even-row { background: $surface-darken-1 40%; }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .row-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class Boundary(PageBoundary):
        """``edge``: the row the cursor was on when the neighbouring page was asked for. Keys typed ahead
        of a page swap ask again at the same edge; once the new page is shown those requests are stale."""

        def __init__(self, table: RowTable, direction: Direction) -> None:
            super().__init__(table, direction)
            self.edge = table.cursor_key

    @dataclass
    class Viewport(Message):
        """The rows on screen changed (scrolled, new page): e.g. "rows 24–46 of 5,000" in a header."""

    @dataclass
    class RowSelected(Message):
        table: RowTable
        row_key: RowKey

        @property
        def control(self) -> RowTable:
            return self.table

    @dataclass
    class CellSelected(Message):
        """Enter on a cell (``cursor_type="cell"``)."""

        table: RowTable
        cell_key: CellKey

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, *, id: str | None = None, cursor_type: Literal["row", "cell"] = "row") -> None:
        super().__init__(id=id)
        self.cursor_type = cursor_type
        self.cursor_column = 0
        self.columns: dict[ColumnKey, Column] = {}
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, list[Text | str]] = {}
        self._strips: dict[str, Strip] = {}  # laid-out rows, cleared when a width changes
        self._painted: dict[str, tuple[int, Strip]] = {}  # styled rows: (zebra parity, strip)
        self._painted_width = 0
        self._painted_left = 0
        self.cursor_row = 0
        self.has_before = False
        self.has_after = False
        self._styles = (Style(), Style(), Style(), Style())  # base, header, even row, cursor (per frame)

    # -- columns and rows ------------------------------------------------------------------------------
    def add_column(self, label: str, *, width: int, key: str) -> None:
        self.columns[ColumnKey(key)] = Column(key, label, width)
        self._strips.clear()
        self._painted.clear()
        self._sized()

    def clear(self, columns: bool = False) -> None:
        self.show_page([], has_before=False, has_after=False)
        if columns:
            self.columns.clear()
            self.cursor_column = 0
            self._sized()

    def set_column_width(self, key: str, width: int) -> None:
        if self.columns[ColumnKey(key)].width != width:
            self.columns[ColumnKey(key)].width = width
            self._strips.clear()
            self._painted.clear()
            self._sized()

    @property
    def cursor_coordinate(self) -> Coordinate:
        return Coordinate(self.cursor_row, self.cursor_column)

    def coordinate_to_cell_key(self, coordinate: Coordinate) -> CellKey:
        return CellKey(RowKey(self._keys[coordinate.row]), list(self.columns)[coordinate.column])

    @property
    def cursor_column_key(self) -> str | None:
        keys = list(self.columns)
        return str(keys[self.cursor_column]) if 0 <= self.cursor_column < len(keys) else None

    @property
    def rows(self) -> dict[RowKey, int]:
        return {RowKey(key): index for index, key in enumerate(self._keys)}

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self.cursor_row] if 0 <= self.cursor_row < len(self._keys) else None

    def get_cell(self, row_key: str | RowKey, column_key: str) -> Text | str:
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        return self._cells[key][list(self.columns).index(ColumnKey(column_key))]

    def visible_rows(self) -> tuple[int, int]:
        """(index of the first row on screen, how many rows are on screen) within this page."""
        top = round(self.scroll_y)
        return top, max(0, min(self._body_height, len(self._keys) - top))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.post_message(self.Viewport())

    def update_cell(self, row_key: str | RowKey, column_key: str, value: Text | str) -> None:
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        if column_key not in self.columns or key not in self._cells:
            return  # a hidden column, or a row no longer on this page
        self._cells[key][list(self.columns).index(ColumnKey(column_key))] = value
        self._strips.pop(key, None)
        self._painted.pop(key, None)
        self.refresh_line(self._index[key] + 1)

    def update_cells(self, row_key: str, values: dict[str, Text | str]) -> int:
        """Put new values in one row's cells and repaint that row; returns how many cells changed."""
        cells = self._cells.get(row_key)
        if cells is None:
            return 0
        keys = list(self.columns)
        changed = 0
        for key, value in values.items():
            index = keys.index(ColumnKey(key))
            if not same_cell(cells[index], value):
                cells[index] = value
                changed += 1
        if changed:
            self._strips.pop(row_key, None)
            self._painted.pop(row_key, None)
            self.refresh_line(self._index[row_key] + 1)
        return changed

    def show_page(
        self,
        rows: Iterable[tuple[str, Sequence[Text | str]]],
        *,
        has_before: bool,
        has_after: bool,
        cursor: int | Literal["first", "last"] = "first",
        focus_key: str | None = None,
    ) -> None:
        """Replace the rows (keyed by id) and place the cursor: on ``focus_key`` when that row is shown
        (a jump), else at ``cursor``."""
        self._cells = {key: list(cells) for key, cells in rows}
        self._keys = list(self._cells)
        self._index = {key: index for index, key in enumerate(self._keys)}
        self._strips.clear()
        self._painted.clear()
        self.has_before, self.has_after = has_before, has_after
        if focus_key is not None and focus_key in self._index:
            cursor = self._index[focus_key]
        last = max(len(self._keys) - 1, 0)
        self.cursor_row = 0 if cursor == "first" else last if cursor == "last" else min(cursor, last)
        self._sized()
        self.scroll_to(y=0, animate=False, immediate=True)
        self._show_cursor()
        self.refresh()

    def move_cursor(self, *, row: int | None = None, column: int | None = None,
                    animate: bool = False) -> None:  # (animate: DataTable's signature)
        if row is not None and self._keys:
            self.cursor_row = max(0, min(row, len(self._keys) - 1))
        if column is not None and self.columns:
            self.cursor_column = max(0, min(column, len(self.columns) - 1))
        self._show_cursor()
        self.refresh()

    # -- layout and painting ---------------------------------------------------------------------------
    @property
    def _body_height(self) -> int:
        return max(self.size.height - 1, 1)  # the header row stays at the top

    def _sized(self) -> None:
        width = sum(c.width + 2 * PADDING for c in self.columns.values())
        self.virtual_size = Size(width, len(self._keys) + 1)

    def _column_span(self, index: int) -> tuple[int, int]:
        widths = [c.width + 2 * PADDING for c in self.columns.values()]
        return sum(widths[:index]), sum(widths[:index + 1])

    def _show_cursor(self) -> None:
        top, height = round(self.scroll_y), self._body_height
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False, immediate=True)
        if self.cursor_type == "cell" and self.columns:
            start, end = self._column_span(self.cursor_column)
            left, width = round(self.scroll_x), self.scrollable_content_region.width
            if start < left:
                self.scroll_to(x=start, animate=False, immediate=True, force=True)
            elif end > left + width > 0:
                self.scroll_to(x=end - width, animate=False, immediate=True, force=True)

    def _layout(self, cells: Sequence[Text | str]) -> list[Segment]:
        console = self.app.console
        pad = Segment(" " * PADDING)
        segments: list[Segment] = []
        for column, cell in zip(self.columns.values(), cells, strict=False):
            text = cell if isinstance(cell, Text) else Text(cell)
            segments.append(pad)
            if text.spans:
                text = text.copy()
                text.no_wrap = True
                justify = text.justify if text.justify in ("left", "center", "right") else "left"
                text.align(justify, column.width)
                segments.extend(text.render(console))
            else:  # one style for the whole cell (most cells): cut and pad the string directly
                style = console.get_style(text.style) if text.style else None
                segments.append(Segment(_fit(text.plain, column.width, text.justify, text.overflow), style))
            segments.append(pad)
        return segments

    def _row_strip(self, key: str) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = Strip(self._layout(self._cells[key]))
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        styles = (self.rich_style, self.get_component_rich_style("row-table--header"),
                  self.get_component_rich_style("row-table--even-row"),
                  self.get_component_rich_style("row-table--cursor"))
        width = self.scrollable_content_region.width
        if (styles, width, round(self.scroll_x)) != (self._styles, self._painted_width, self._painted_left):
            self._styles, self._painted_width, self._painted_left = styles, width, round(self.scroll_x)
            self._painted.clear()  # theme, focus, size or horizontal position changed
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, left = self._painted_width, round(self.scroll_x)
        base, header, even, cursor = self._styles
        if y == 0:
            strip = Strip(self._layout([Text(c.label) for c in self.columns.values()]))
            return strip.crop_extend(left, left + width, base + header).apply_style(base + header)
        index = round(self.scroll_y) + y - 1
        if index >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[index]
        if index == self.cursor_row:
            strip = self._row_strip(key).crop_extend(left, left + width, None)
            if self.cursor_type == "row":
                return Strip(Segment.apply_style(strip, style=base, post_style=cursor), width)
            start, end = (x - left for x in self._column_span(self.cursor_column))
            parts = list(strip.apply_style(base).divide([max(0, start), max(0, min(end, width)), width]))
            if len(parts) == 3:
                parts[1] = Strip(Segment.apply_style(parts[1], post_style=cursor), parts[1].cell_length)
            return Strip.join(parts)
        painted = self._painted.get(key)
        if painted is None or painted[0] != index % 2:  # zebra colour follows the position
            strip = self._row_strip(key).crop_extend(left, left + width, None)
            painted = self._painted[key] = (index % 2, strip.apply_style(base + even if index % 2 else base))
        return painted[1]

    def on_resize(self) -> None:
        self._show_cursor()
        self.post_message(self.Viewport())

    # -- keys and mouse --------------------------------------------------------------------------------
    def action_cursor_down(self) -> None:
        if not self._past_last():
            self.move_cursor(row=self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        if not self._past_first():
            self.move_cursor(row=self.cursor_row - 1)

    def action_page_down(self) -> None:
        """One screen down: the rows below the screen come up and the cursor keeps its place on screen."""
        if not self._past_last():
            height = self._body_height
            self.scroll_to(y=round(self.scroll_y) + height, animate=False, immediate=True)
            self.move_cursor(row=self.cursor_row + height)

    def action_page_up(self) -> None:
        if not self._past_first():
            height = self._body_height
            self.scroll_to(y=max(0, round(self.scroll_y) - height), animate=False, immediate=True)
            self.move_cursor(row=self.cursor_row - height)

    def action_cursor_left(self) -> None:
        if self.cursor_type == "cell":
            self.move_cursor(column=self.cursor_column - 1)

    def action_cursor_right(self) -> None:
        if self.cursor_type == "cell":
            self.move_cursor(column=self.cursor_column + 1)

    def action_select_cursor(self) -> None:
        key = self.cursor_key
        if key is None:
            return
        if self.cursor_type == "cell" and self.columns:
            self.post_message(self.CellSelected(self, self.coordinate_to_cell_key(self.cursor_coordinate)))
        else:
            self.post_message(self.RowSelected(self, RowKey(key)))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        column = None
        if self.cursor_type == "cell":
            x = round(self.scroll_x) + event.x
            column = next((i for i in range(len(self.columns)) if x < self._column_span(i)[1]), None)
        self.move_cursor(row=round(self.scroll_y) + event.y - 1, column=column)
        if event.chain >= 2:
            self.action_select_cursor()
