"""The pane header is one line at any width: long context gives way from the front, so the source's state
and the labels pending (the last parts) stay readable."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from iofold_tui.ui.widgets import PaneHeader

CONTEXT = ["a-very-long-database-name-" * 3, "workspace: " + "w" * 40, "eval set: " + "e" * 50, "D1 offline",
           "⧗ 12 labels pending (D1 unreachable 5 s)"]


class HeaderApp(App[None]):
    def compose(self) -> ComposeResult:
        yield PaneHeader()


@pytest.mark.parametrize("width", [60, 80, 120, 200])
async def test_the_header_is_one_line_and_keeps_the_pending_count(width: int) -> None:
    app = HeaderApp()
    async with app.run_test(size=(width, 10)) as pilot:
        header = app.query_one(PaneHeader)
        header.show("Traces", CONTEXT, pane_keys="T R E M O J I S")
        await pilot.pause()
        assert header.size.height == 1
        text = header.render().plain if hasattr(header.render(), "plain") else str(header.render())
        assert "\n" not in text.strip("\n")
        assert len(text) <= width
        assert "⧗ 12 labels" in text or width < 80
        if width >= 200:
            assert "⧗ 12 labels pending (D1 unreachable 5 s)" in text
