"""The floor for start-up: a minimal Textual app showing 100 rows of the traces table, with the columns the
trace list shows (selection mark, time, source, input, output, steps, errors, this eval set's rating) and
nothing else: no panes, no header, no paging, no footer.

Cells are rich ``Text`` (as any app showing untrusted data must: a ``str`` cell is parsed as markup).
"""

from __future__ import annotations

import sqlite3
import sys

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

COLUMNS = (("", 1), ("time", 19), ("source", 10), ("input", 40), ("output", 40), ("steps", 5), ("err", 3),
           ("rating", 6))


class Minimal(App[None]):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        conn = sqlite3.connect(self.path)
        rows = conn.execute(
            "SELECT t.timestamp, t.source, substr(t.input_preview, 1, 100), substr(t.output_preview, 1, "
            "100), "
            "t.step_count, t.has_errors, f.rating FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id "
            "AND f.eval_set_id = (SELECT id FROM eval_sets ORDER BY id LIMIT 1) "
            "ORDER BY t.timestamp DESC LIMIT 100"
        ).fetchall()
        cell = lambda value: Text(str(value or ""), no_wrap=True, overflow="ellipsis")  # noqa: E731
        table.add_row(*[cell(v) for v in ("", "", "", "MINIMAL-READY", "", "", "", "")])  # the probe's marker
        table.add_rows([[cell(""), *(cell(v) for v in row[:5]), cell("✗" if row[5] else ""), cell(row[6])]
                        for row in rows])


if __name__ == "__main__":
    Minimal(sys.argv[1]).run()
