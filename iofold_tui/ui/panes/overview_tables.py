"""The overview's figure tables: each row (or cell) remembers the SQL listing the rows behind it, which
Enter runs in the SQL pane. Filled from the ``Overview`` figures; the warnings table is filled by the pane."""

from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CursorType

from iofold_tui.data.inspect.jobs import DURATION_SQL, JOB_STATUSES
from iofold_tui.data.inspect.overview import Overview
from iofold_tui.data.inspect.util import literal
from iofold_tui.ui.panes.jobs import human_seconds
from iofold_tui.ui.text import cell


class FigureTable(DataTable[Text]):
    """A small table whose rows (or cells) map to the SQL listing the rows behind them."""

    def __init__(self, *, id: str, cursor_type: CursorType = "row") -> None:
        super().__init__(id=id, cursor_type=cursor_type, zebra_stripes=True)
        # Inline: app.tcss sizes every DataTable 1fr, and user CSS outranks any DEFAULT_CSS.
        self.styles.height = "auto"
        self.styles.max_height = 14
        self.styles.margin = (0, 0, 1, 0)
        self.jumps: dict[tuple[int, int | None], str] = {}  # (row, column or None for any) -> sql

    def sql_at(self, coordinate: Coordinate) -> str | None:
        return self.jumps.get((coordinate.row, coordinate.column), self.jumps.get((coordinate.row, None)))


def num_cell(value: int | float | None, fmt: str = "{:,}") -> Text:
    return Text("—" if value is None else fmt.format(value), justify="right")


def _bar(fraction: float, width: int = 12) -> Text:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    done = Text("█" * filled, style="green" if fraction >= 1 else "yellow")
    return done + Text("░" * (width - filled), style="dim")


def _seconds(value: float | None) -> Text:
    if value is None:
        return Text("—", justify="right", style="dim")
    return Text(human_seconds(value), justify="right")


def reset(table: FigureTable, *columns: tuple[str, int | None]) -> None:
    table.clear(columns=True)
    table.jumps.clear()
    for label, width in columns:
        table.add_column(Text(label, style="bold"), width=width)


def fill_tables(t: FigureTable, figures: Overview) -> None:
    reset(t, ("table", 18), ("rows", 13))
    for i, tc in enumerate(figures.tables):
        t.add_row(Text(tc.table), num_cell(tc.count))
        t.jumps[(i, None)] = tc.sql


def fill_accuracy(t: FigureTable, figures: Overview) -> None:
    reset(t, ("bucket", 18), ("evals", 8))
    for i, b in enumerate(figures.accuracy):
        style = {"high": "green", "medium": "yellow", "low": "red"}.get(b.bucket, "dim")
        t.add_row(Text(f"{b.bucket} {b.label}", style=style), num_cell(b.count))
        t.jumps[(i, None)] = b.sql


def fill_sets(t: FigureTable, figures: Overview) -> None:
    reset(t, ("eval set", 16), ("pos", 8), ("neg", 8), ("neu", 8), ("labels/min", 11), ("progress", 11))
    for i, es in enumerate(figures.eval_sets):
        mark = Text(" ✓", style="bold green") if es.ready else Text(" ·", style="yellow")
        t.add_row(cell(es.name or es.id, 16), Text(f"{es.positive:,}", style="green", justify="right"),
                  Text(f"{es.negative:,}", style="red", justify="right"),
                  Text(f"{es.neutral:,}", style="yellow", justify="right"),
                  Text(f"{es.total:,}/{es.minimum_examples:,}", justify="right"), _bar(es.progress, 9) + mark)
        t.jumps[(i, None)] = es.sql
    if not figures.eval_sets:
        t.add_row(Text("no eval sets", style="dim"), *[Text("")] * 5)


def fill_integrations(t: FigureTable, figures: Overview) -> None:
    reset(t, ("name", 20), ("platform", 10), ("status", 7), ("last sync", 20), ("traces", 10),
          ("error", None))
    cols = "id, platform, name, status, error_message, last_synced_at, base_url, config, created_at"
    for i, it in enumerate(figures.integrations):
        t.add_row(cell(it.name, 20), cell(it.platform, 10),
                  cell(it.status, 7, style="bold red" if it.status == "error" else "green"),
                  cell(it.last_synced_at or "never", 20, style="" if it.last_synced_at else "dim"),
                  num_cell(it.trace_count), cell(it.error_message or "", 60, style="red"))
        # Every column but the key (the core never reads it; neither does this listing).
        t.jumps[(i, None)] = f"SELECT {cols} FROM integrations WHERE id = {literal(it.id)}"
    if not figures.integrations:
        t.add_row(Text("no integrations", style="dim"), *[Text("")] * 5)


def fill_jobs(t: FigureTable, figures: Overview) -> None:
    reset(t, ("type", 9), ("total", 7), *[(s, 9) for s in JOB_STATUSES], ("fail rate", 9), ("avg time", 9))
    ws = figures.workspace_id
    groups = {(g.type, g.status): g for g in figures.job_groups}
    for i, jt in enumerate(figures.job_types):
        scope = [f"type IS {literal(jt.type)}"]
        if ws is not None:
            scope.append(f"workspace_id = {literal(ws)}")
        every = (f"SELECT *, {DURATION_SQL} AS duration_s FROM jobs WHERE {' AND '.join(scope)} "
                 "ORDER BY created_at DESC")
        cells: list[Text] = [cell(jt.type, 9), num_cell(jt.total)]
        t.jumps[(i, None)] = every
        for c, status in enumerate(JOB_STATUSES, start=2):
            group = groups.get((jt.type, status))
            count = group.count if group else 0
            style = "bold red" if status == "failed" and count else "dim" if not count else ""
            cells.append(Text(f"{count:,}", style=style, justify="right"))
            if group is not None:
                t.jumps[(i, c)] = group.sql
        rate = jt.failure_rate
        cells.append(Text("—" if rate is None else f"{rate * 100:.0f} %", justify="right",
                          style="bold red" if rate else "dim" if rate is None else "green"))
        if groups.get((jt.type, "failed")) is not None:
            t.jumps[(i, 2 + len(JOB_STATUSES))] = groups[(jt.type, "failed")].sql
        cells.append(_seconds(jt.avg_duration_s))
        t.add_row(*cells)
    if not figures.job_types:
        t.add_row(Text("no jobs", style="dim"), *[Text("")] * (3 + len(JOB_STATUSES)))
