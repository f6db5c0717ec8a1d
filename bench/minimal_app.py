"""The floor for start-up: a minimal Textual app showing 100 rows of the traces table (no paging, no panes)."""

from __future__ import annotations

import sqlite3
import sys

from textual.app import App, ComposeResult
from textual.widgets import DataTable


class Minimal(App[None]):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "source", "input", "output")
        conn = sqlite3.connect(self.path)
        rows = conn.execute(
            "SELECT timestamp, source, substr(input_preview, 1, 40), substr(output_preview, 1, 40) "
            "FROM traces ORDER BY timestamp DESC LIMIT 100"
        ).fetchall()
        table.add_row("", "", "MINIMAL-READY", "")  # the marker the probe waits for, then the rows
        table.add_rows(rows)


if __name__ == "__main__":
    Minimal(sys.argv[1]).run()
