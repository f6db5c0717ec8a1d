"""The overview: what the seed README's monitoring queries compute, per workspace, each figure one Enter
away from its rows (the SQL pane runs the figure's ``sql``, read-only); the figure tables are in
``overview_tables.py``.

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
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from iofold_tui.data.db import file_fingerprint
from iofold_tui.data.inspect.checks import KINDS as WARNING_KINDS
from iofold_tui.data.inspect.checks import DataWarning, detect_warnings
from iofold_tui.data.inspect.overview import Overview, overview
from iofold_tui.data.text import plural
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.overview_tables import (
    FigureTable,
    fill_accuracy,
    fill_integrations,
    fill_jobs,
    fill_sets,
    fill_tables,
    num_cell,
    reset,
)
from iofold_tui.ui.panes.sql import show_sql, workspace_scope
from iofold_tui.ui.text import cell

WARNINGS_TTL_S = 60.0
Fingerprint = list[int | str]
CachedWarnings = tuple[float, Fingerprint, list[DataWarning], list[str]]  # when, fingerprint, found, notes


class WarningCache:
    """Warning results per (database, workspace), valid ``ttl`` seconds while the files are unchanged.

    The fingerprint is the size and mtime of the database and its -wal file: any commit moves it.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[tuple[str, str | None], CachedWarnings] = {}  # by (path, workspace)

    @staticmethod
    def fingerprint(path: Path) -> Fingerprint:
        return file_fingerprint(path)

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
            yield Static("Jobs by type and status (Enter on a status cell lists those jobs)",
                         classes="ov-title")
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
                if n:
                    status.append(f"  ·  {plural(n, 'warning')}", style="bold red")
                else:
                    status.append("  ·  no warnings", style="green")
                if self.checks_state == "cached":
                    status.append(" (cached; r rechecks)", style="dim")
            status.append("  ·  Enter on a figure: its rows (SQL pane)", style="dim")
        self.set_status(status)

    def _fill(self) -> None:
        figures = self.figures
        assert figures is not None
        focus = self.focused if isinstance(self.focused, FigureTable) else None
        keep = (focus.id, focus.cursor_coordinate) if focus is not None else None
        fill_tables(self.table("tables"), figures)
        fill_accuracy(self.table("accuracy"), figures)
        fill_sets(self.table("sets"), figures)
        fill_integrations(self.table("integrations"), figures)
        fill_jobs(self.table("jobs"), figures)
        self._fill_warnings()
        if keep is not None and keep[0]:
            table = self.query_one(f"#{keep[0]}", FigureTable)
            table.move_cursor(row=keep[1].row, column=keep[1].column, animate=False)
            table.focus()
        elif focus is None:
            self.table("tables").focus()

    def on_resize(self) -> None:
        if self.warnings:  # wrapped for the old width
            self._fill_warnings()

    def _fill_warnings(self) -> None:
        t = self.table("warnings")
        keep = t.cursor_coordinate if t.row_count else None
        reset(t, ("check", 24), ("rows", 8), ("what it means", None))
        # The message wraps in the width the first two columns leave (a DataTable cell does not wrap).
        room = max(24, (t.size.width or self.app.size.width) - 24 - 8 - 3 * 2 - 4)
        for i, w in enumerate(self.warnings):
            lines = textwrap.wrap(cell(w.message, 400).plain, room) or [""]
            t.add_row(Text(w.kind.replace("_", " "), style="bold yellow"), num_cell(w.count),
                      Text("\n".join(lines)), height=len(lines))
            t.jumps[(i, None)] = w.sql
        if not self.warnings:
            done = self.checks_done >= len(WARNING_KINDS)
            state = Text("none found", style="green") if done else Text("checking…", style="dim")
            t.add_row(state, Text(""), Text(""))
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
