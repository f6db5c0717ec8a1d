"""The overview: what the seed README's monitoring queries compute, per workspace, each figure one Enter
away from its rows (the SQL pane runs the figure's ``sql``, read-only).

Figures come from one worker (about 1.5 s on 1M traces); the warning checks run afterwards in a
second, cancellable worker one kind at a time (seconds each on big databases), each shown as it
arrives and cached for a minute per database state.
"""

from __future__ import annotations

import contextlib
import sqlite3
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from iofold_tui.data.inspect.checks import KINDS as WARNING_KINDS
from iofold_tui.data.inspect.checks import DataWarning, detect_warnings
from iofold_tui.data.inspect.jobs import DURATION_SQL, JOB_STATUSES
from iofold_tui.data.inspect.overview import Overview, overview
from iofold_tui.data.inspect.util import literal
from iofold_tui.data.text import plural
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.jobs import human_seconds
from iofold_tui.ui.panes.sql import show_sql, workspace_scope
from iofold_tui.ui.text import cell

WARNINGS_TTL_S = 60.0
Fingerprint = tuple[int, int, int, int]


class WarningCache:
    """Warning results per (database, workspace), valid ``ttl`` seconds while the files are unchanged.

    The fingerprint is the size and mtime of the database and its -wal file: any commit moves it.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[tuple[str, str | None], tuple[float, Fingerprint, list[DataWarning], list[str]]] = {}

    @staticmethod
    def fingerprint(path: Path) -> Fingerprint:
        parts: list[int] = []
        for p in (path, path.with_name(path.name + "-wal")):
            try:
                st = p.stat()
                parts += [st.st_size, st.st_mtime_ns]
            except OSError:
                parts += [-1, -1]
        return parts[0], parts[1], parts[2], parts[3]

    def get(self, path: Path, ws: str | None) -> tuple[list[DataWarning], list[str]] | None:
        item = self._items.get((str(path), ws))
        if item is None or time.monotonic() - item[0] > self.ttl or item[1] != self.fingerprint(path):
            return None
        return item[2], item[3]

    def put(self, path: Path, ws: str | None, fingerprint: Fingerprint, found: list[DataWarning],
            notes: list[str]) -> None:
        self._items[(str(path), ws)] = (time.monotonic(), fingerprint, found, notes)

    def clear(self) -> None:
        self._items.clear()


_CACHE = WarningCache(WARNINGS_TTL_S)


@dataclass
class WarningsArrived(Message):
    """One check of the warnings worker started (``finished`` False) or ended; ``ticket``: the figures
    query the checks belong to (``Pane.run_query``), stale once the overview reloaded."""

    kind: str | None
    found: list[DataWarning]
    notes: list[str]
    ticket: int
    finished: bool = False
    stopped: bool = False


class FigureTable(DataTable[Text]):
    """A small table whose rows (or cells) map to the SQL listing the rows behind them."""

    def __init__(self, *, id: str, cursor_type: str = "row") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type=cursor_type, zebra_stripes=True)  # type: ignore[arg-type]
        # Inline: app.tcss sizes every DataTable 1fr, and user CSS outranks any DEFAULT_CSS.
        self.styles.height = "auto"
        self.styles.max_height = 14
        self.styles.margin = (0, 0, 1, 0)
        self.jumps: dict[tuple[int, int | None], str] = {}  # (row, column or None for any) -> sql

    def sql_at(self, coordinate: Coordinate) -> str | None:
        return self.jumps.get((coordinate.row, coordinate.column), self.jumps.get((coordinate.row, None)))


def _num(value: int | float | None, fmt: str = "{:,}") -> Text:
    return Text("—" if value is None else fmt.format(value), justify="right")


def _bar(fraction: float, width: int = 12) -> Text:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return Text("█" * filled, style="green" if fraction >= 1 else "yellow") + Text("░" * (width - filled), style="dim")


def _seconds(value: float | None) -> Text:
    if value is None:
        return Text("—", justify="right", style="dim")
    return Text(human_seconds(value), justify="right")


class OverviewPane(Pane):
    pane_title = "Overview"
    BINDINGS = [
        Binding("enter", "jump", "Rows", id="overview.jump", show=True),
        Binding("r", "refresh", "Refresh", id="overview.refresh"),
        Binding("escape", "stop_checks", "Stop checks", id="overview.stop"),
        Binding("A", "agreement", "Agreement", id="overview.agreement"),
        Binding("C", "conflicts", "Conflicts", id="overview.conflicts"),
    ]
    DEFAULT_CSS = """
    OverviewPane #ov-body { height: 1fr; padding: 0 1; }
    OverviewPane #ov-top { height: auto; }
    OverviewPane #ov-left { width: 38; height: auto; margin-right: 2; }
    OverviewPane #ov-right { width: 1fr; height: auto; }
    OverviewPane .ov-title { text-style: bold; color: $accent; height: 1; }
    OverviewPane #ov-notes { height: auto; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.figures: Overview | None = None
        self.warnings: list[DataWarning] = []
        self.notes: list[str] = []
        self.checking: str | None = None  # the warning kind being checked
        self.checks_done = 0
        self.checks_state = ""  # "", "stopped", "cached"
        self.took = 0.0
        self._warn_conn: sqlite3.Connection | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="ov-body"):
            with Horizontal(id="ov-top"):
                with Vertical(id="ov-left"):
                    yield Static("Rows per table", classes="ov-title")
                    yield FigureTable(id="ov-tables")
                with Vertical(id="ov-right"):
                    yield Static("Eval sets: labels toward minimum_examples", classes="ov-title")
                    yield FigureTable(id="ov-sets")
                    yield Static("Evals by accuracy", classes="ov-title")
                    yield FigureTable(id="ov-accuracy")
            yield Static("Integrations", classes="ov-title")
            yield FigureTable(id="ov-integrations")
            yield Static("Jobs by type and status (Enter on a status cell lists those jobs)", classes="ov-title")
            yield FigureTable(id="ov-jobs", cursor_type="cell")
            yield Static("Warnings", classes="ov-title", id="ov-warnings-title")
            yield FigureTable(id="ov-warnings")
            yield Static(id="ov-notes")

    def table(self, name: str) -> FigureTable:
        return self.query_one(f"#ov-{name}", FigureTable)

    # -- loading ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        self._stop_warnings()
        self.checking, self.checks_done, self.checks_state = None, 0, ""
        self.update_status()
        db = self.iofold.db

        def load(ws: str | None) -> tuple[Overview, float]:
            started = time.perf_counter()
            with db.fresh() as conn:
                return overview(conn, ws, warnings=False), time.perf_counter() - started

        self.run_query(load, workspace_scope(self.app), on_result=self._figures_loaded, group="figures",
                       what="overview")

    def action_agreement(self) -> None:
        """Annotator agreement on the current eval set (issue 18)."""
        from iofold_tui.ui.panes.agreement_view import AgreementScreen

        self.app.push_screen(AgreementScreen())

    def action_conflicts(self) -> None:
        """The queue of label conflicts left by import-labels (issue 18)."""
        from iofold_tui.ui.panes.label_conflicts import LabelConflictsScreen

        self.app.push_screen(LabelConflictsScreen())

    def action_refresh(self) -> None:
        _CACHE.clear()
        self.reload()

    def _figures_loaded(self, loaded: tuple[Overview, float]) -> None:
        self.figures, self.took = loaded
        self.warnings, self.notes = [], []
        self._fill()
        self._start_warnings(self.figures.workspace_id, self.ticket("figures"))

    def _start_warnings(self, ws: str | None, ticket: int) -> None:
        path = Path(self.iofold.db.path)
        cached = _CACHE.get(path, ws)
        if cached is not None:
            self.warnings, self.notes = list(cached[0]), list(cached[1])
            self.checks_done, self.checks_state = len(WARNING_KINDS), "cached"
            self._fill_warnings()
            self.update_status()
            return
        self._check_warnings(path, ws, ticket)

    @work(thread=True, exclusive=True, group="ov-warnings")
    def _check_warnings(self, path: Path, ws: str | None, ticket: int) -> None:
        worker = get_current_worker()
        found_all: list[DataWarning] = []
        notes_all: list[str] = []
        fingerprint = _CACHE.fingerprint(path)
        with self.iofold.db.fresh() as conn:
            self._warn_conn = conn
            try:
                for kind in WARNING_KINDS:
                    if worker.is_cancelled:
                        return
                    self.post_message(WarningsArrived(kind, [], [], ticket))
                    try:
                        found, notes = detect_warnings(conn, ws, kinds=[kind])
                    except sqlite3.OperationalError:  # interrupted: the user stopped the checks
                        self.post_message(WarningsArrived(None, [], [], ticket, stopped=True))
                        return
                    found_all += found
                    notes_all += notes
                    self.post_message(WarningsArrived(kind, found, notes, ticket, finished=True))
            finally:
                self._warn_conn = None
        _CACHE.put(path, ws, fingerprint, found_all, notes_all)
        self.post_message(WarningsArrived(None, [], [], ticket, finished=True))

    def on_warnings_arrived(self, message: WarningsArrived) -> None:
        if not self.is_latest("figures", message.ticket):
            return
        if message.stopped:
            self.checking, self.checks_state = None, "stopped"
        elif message.kind is None:
            self.checking = None
        elif not message.finished:
            self.checking = message.kind
        else:
            self.checks_done += 1
            self.warnings += message.found
            self.notes += message.notes
            self._fill_warnings()
        self.update_status()
        self.refresh_bindings()  # "Esc stops" only while a check runs

    def _stop_warnings(self) -> None:
        self.workers.cancel_group(self, "ov-warnings")
        conn = self._warn_conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                conn.interrupt()

    def action_stop_checks(self) -> None:
        if self.checking is not None:
            self._stop_warnings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_checks":
            return self.checking is not None
        return True

    # -- rendering -------------------------------------------------------------------------------------
    def update_status(self) -> None:
        status = Text()
        if self.figures is None:
            status.append("computing figures…", style="yellow")
        else:
            status.append(f"figures in {self.took:.1f} s", style="dim")
            n = len(self.warnings)
            if self.checking:
                status.append(f"  ·  checking {self.checking.replace('_', ' ')} "
                              f"({self.checks_done + 1}/{len(WARNING_KINDS)})… Esc stops", style="yellow")
            elif self.checks_state == "stopped":
                status.append(f"  ·  checks stopped after {self.checks_done}/{len(WARNING_KINDS)} (r reruns)",
                              style="yellow")
            elif self.checks_done >= len(WARNING_KINDS):
                status.append(f"  ·  {plural(n, 'warning')}" if n else "  ·  no warnings", style="bold red" if n else "green")
                if self.checks_state == "cached":
                    status.append(" (cached; r rechecks)", style="dim")
            status.append("  ·  Enter on a figure: its rows (SQL pane)", style="dim")
        self.set_status(status)

    def _fill(self) -> None:
        figures = self.figures
        assert figures is not None
        focus = self.focused if isinstance(self.focused, FigureTable) else None
        keep = (focus.id, focus.cursor_coordinate) if focus is not None else None
        self._fill_tables(figures)
        self._fill_accuracy(figures)
        self._fill_sets(figures)
        self._fill_integrations(figures)
        self._fill_jobs(figures)
        self._fill_warnings()
        if keep is not None and keep[0]:
            table = self.query_one(f"#{keep[0]}", FigureTable)
            table.move_cursor(row=keep[1].row, column=keep[1].column, animate=False)
            table.focus()
        elif focus is None:
            self.table("tables").focus()

    @staticmethod
    def _reset(table: FigureTable, *columns: tuple[str, int | None]) -> None:
        table.clear(columns=True)
        table.jumps.clear()
        for label, width in columns:
            table.add_column(Text(label, style="bold"), width=width)

    def _fill_tables(self, figures: Overview) -> None:
        t = self.table("tables")
        self._reset(t, ("table", 18), ("rows", 13))
        for i, tc in enumerate(figures.tables):
            t.add_row(Text(tc.table), _num(tc.count))
            t.jumps[(i, None)] = tc.sql

    def _fill_accuracy(self, figures: Overview) -> None:
        t = self.table("accuracy")
        self._reset(t, ("bucket", 18), ("evals", 8))
        for i, b in enumerate(figures.accuracy):
            style = {"high": "green", "medium": "yellow", "low": "red"}.get(b.bucket, "dim")
            t.add_row(Text(f"{b.bucket} {b.label}", style=style), _num(b.count))
            t.jumps[(i, None)] = b.sql

    def _fill_sets(self, figures: Overview) -> None:
        t = self.table("sets")
        self._reset(t, ("eval set", 16), ("pos", 8), ("neg", 8), ("neu", 8), ("labels/min", 11), ("progress", 11))
        for i, es in enumerate(figures.eval_sets):
            mark = Text(" ✓", style="bold green") if es.ready else Text(" ·", style="yellow")
            t.add_row(cell(es.name or es.id, 16), Text(f"{es.positive:,}", style="green", justify="right"),
                      Text(f"{es.negative:,}", style="red", justify="right"),
                      Text(f"{es.neutral:,}", style="yellow", justify="right"),
                      Text(f"{es.total:,}/{es.minimum_examples:,}", justify="right"), _bar(es.progress, 9) + mark)
            t.jumps[(i, None)] = es.sql
        if not figures.eval_sets:
            t.add_row(Text("no eval sets", style="dim"), *[Text("")] * 5)

    def _fill_integrations(self, figures: Overview) -> None:
        t = self.table("integrations")
        self._reset(t, ("name", 20), ("platform", 10), ("status", 7), ("last sync", 20), ("traces", 10), ("error", None))
        cols = "id, platform, name, status, error_message, last_synced_at, base_url, config, created_at"
        for i, it in enumerate(figures.integrations):
            t.add_row(cell(it.name, 20), cell(it.platform, 10),
                      cell(it.status, 7, style="bold red" if it.status == "error" else "green"),
                      cell(it.last_synced_at or "never", 20, style="" if it.last_synced_at else "dim"),
                      _num(it.trace_count), cell(it.error_message or "", 60, style="red"))
            # Every column but the key (the core never reads it; neither does this listing).
            t.jumps[(i, None)] = f"SELECT {cols} FROM integrations WHERE id = {literal(it.id)}"
        if not figures.integrations:
            t.add_row(Text("no integrations", style="dim"), *[Text("")] * 5)

    def _fill_jobs(self, figures: Overview) -> None:
        t = self.table("jobs")
        self._reset(t, ("type", 9), ("total", 7), *[(s, 9) for s in JOB_STATUSES], ("fail rate", 9), ("avg time", 9))
        ws = figures.workspace_id
        groups = {(g.type, g.status): g for g in figures.job_groups}
        for i, jt in enumerate(figures.job_types):
            scope = [f"type IS {literal(jt.type)}"] + ([f"workspace_id = {literal(ws)}"] if ws is not None else [])
            every = f"SELECT *, {DURATION_SQL} AS duration_s FROM jobs WHERE {' AND '.join(scope)} ORDER BY created_at DESC"
            cells: list[Text] = [cell(jt.type, 9), _num(jt.total)]
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

    def on_resize(self) -> None:
        if self.warnings:  # wrapped for the old width
            self._fill_warnings()

    def _fill_warnings(self) -> None:
        t = self.table("warnings")
        keep = t.cursor_coordinate if t.row_count else None
        self._reset(t, ("check", 24), ("rows", 8), ("what it means", None))
        # The message wraps in the width the first two columns leave (a DataTable cell does not wrap).
        room = max(24, (t.size.width or self.app.size.width) - 24 - 8 - 3 * 2 - 4)
        for i, w in enumerate(self.warnings):
            lines = textwrap.wrap(cell(w.message, 400).plain, room) or [""]
            t.add_row(Text(w.kind.replace("_", " "), style="bold yellow"), _num(w.count), Text("\n".join(lines)),
                      height=len(lines))
            t.jumps[(i, None)] = w.sql
        if not self.warnings:
            done = self.checks_done >= len(WARNING_KINDS)
            t.add_row(Text("none found" if done else "checking…", style="green" if done else "dim"), Text(""), Text(""))
        if keep is not None and keep.row < t.row_count:
            t.move_cursor(row=keep.row, animate=False)
        notes = self.notes + (self.figures.notes if self.figures else [])
        self.query_one("#ov-notes", Static).update(Text("\n".join(f"note: {n}" for n in notes)))

    # -- jumps -----------------------------------------------------------------------------------------
    def action_jump(self) -> None:
        table = self.focused
        if not isinstance(table, FigureTable) or not table.row_count:
            return
        sql = table.sql_at(table.cursor_coordinate)
        if sql is None:
            self.notify("no rows behind this cell", severity="warning")
            return
        self.run_worker(show_sql(self.app, sql), group="ov-jump", exclusive=True)

    @on(DataTable.RowSelected)
    @on(DataTable.CellSelected)
    def _selected(self, event: DataTable.RowSelected | DataTable.CellSelected) -> None:
        event.stop()
        self.action_jump()

    def select_item(self, value: str) -> None:
        """Focus a figure table by name (tables, accuracy, sets, integrations, jobs, warnings)."""
        if self.query(f"#ov-{value}"):
            self.table(value).focus()

    def on_unmount(self) -> None:
        self._stop_warnings()
