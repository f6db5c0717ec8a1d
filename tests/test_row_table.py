"""The line-API table of the trace list: cells are cut and padded like DataTable's, styles survive, the
cursor and the page edges behave like PagedTable's."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from iofold_tui.ui.row_table import RowTable, _fit


def test_fit_cuts_pads_and_justifies() -> None:
    assert _fit("abcdef", 4, None, "ellipsis") == "abc…"
    assert _fit("abcdef", 4, None, None) == "abcd"
    assert _fit("ab", 4, "right", None) == "  ab"
    assert _fit("ab", 5, "center", None) == " ab  "
    assert _fit("ab", 4, None, None) == "ab  "
    assert _fit("日本語", 4, None, "ellipsis") == "日 …" and _fit("日本", 4, None, None) == "日本"


class Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def compose(self) -> ComposeResult:
        table = RowTable(id="t")
        table.add_column("name", width=6, key="name")
        table.add_column("n", width=3, key="n")
        yield table

    def on_row_table_boundary(self, message: RowTable.Boundary) -> None:
        self.seen.append(message.direction)

    def on_row_table_row_selected(self, message: RowTable.RowSelected) -> None:
        self.seen.append(message.row_key.value)


def rows(count: int) -> list[tuple[str, list[Text | str]]]:
    return [(f"r{i}", [Text(f"row number {i}", style="bold red", overflow="ellipsis"),
                       Text(str(i), justify="right")])
            for i in range(count)]


async def test_paints_cells_with_their_styles_and_the_cursor() -> None:
    app = Host()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(RowTable)
        table.show_page(rows(3), has_before=False, has_after=True)
        table.focus()
        await pilot.pause()
        header, first, second = (table.render_line(y) for y in range(3))
        assert header.text.startswith(" name    n   ")
        assert second.text.startswith(" row n…    1 ")  # cut with an ellipsis, the number right-aligned
        cell = next(seg for seg in second if seg.text.startswith("row"))
        assert cell.style is not None and cell.style.bold and cell.style.color.name == "red"
        first_bg = next(seg for seg in first if seg.text.startswith("row")).style.bgcolor
        assert first_bg != cell.style.bgcolor  # the cursor row is highlighted
        table.update_cell("r1", "n", Text("99", justify="right"))
        assert table.get_cell("r1", "n").plain == "99"
        assert table.render_line(2).text.startswith(" row n…   99 ")


async def test_keys_move_the_cursor_and_ask_for_pages_at_the_edges() -> None:
    app = Host()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(RowTable)
        table.show_page(rows(20), has_before=True, has_after=True)
        table.focus()
        await pilot.press("down", "j")
        assert table.cursor_key == "r2"
        await pilot.press("pagedown")  # 7 body rows: the cursor moves a screen and the view follows
        assert table.cursor_row == 9 and table.scroll_y > 0
        await pilot.press("end", "home")
        table.move_cursor(row=19)
        await pilot.press("down")
        table.move_cursor(row=0)
        await pilot.press("up", "enter")
        await pilot.pause()
        assert app.seen == ["last", "first", "after", "before", "r0"]
        table.show_page(rows(5), has_before=False, has_after=False, focus_key="r3")
        assert table.cursor_key == "r3" and [k.value for k in table.rows] == [f"r{i}" for i in range(5)]
        await pilot.click(RowTable, offset=(2, 2))  # the header is row 0 on screen
        assert table.cursor_key == "r1"
