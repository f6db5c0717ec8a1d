"""The contradiction matrix: traces × eval versions of the current eval set, with exact per-version stats.

Threads: grid queries (pages, jumps, the "most contradicted" TEMP table, row refreshes after a relabel)
run in workers on ONE private connection held by the pane under a lock, because the TEMP table lives on
that connection. Statistics run on their own connection (a cache hit shows at once; the unscoped view
count follows), so a 4-second aggregate on a million traces never blocks paging. Widgets are touched
only on the UI thread; a ``generation`` counter drops pages of superseded queries and a ``stats token``
keeps incremental updates off statistics they were not meant for.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, Static

from iofold_tui.data.db import connect, with_rowid
from iofold_tui.data.evals.versions import EvalSummary, list_evals
from iofold_tui.data.matrix.grid import (
    FILTERS,
    Cursor,
    MatrixPage,
    MatrixQuery,
    MatrixRow,
    cells_for_confusion,
    first_page,
    jump_to,
    last_page,
    next_contradiction,
    page_after,
    page_before,
    previous_contradiction,
    refresh_trace,
    row_for,
)
from iofold_tui.data.matrix.report import cached_stats
from iofold_tui.data.matrix.stats import MatrixStats, add_view_counts
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source import catalog
from iofold_tui.data.text import plural
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.ui import labeling
from iofold_tui.ui.paged_table import Direction
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.matrix_widgets import (
    CONFUSION_TITLES,
    FILTER_TITLES,
    CellDetailScreen,
    SourceDate,
    SourceDateScreen,
    StatsTable,
    VersionPicker,
    contradiction_mark,
    matrix_cell,
    stats_notes,
    version_title,
)
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.text import cell, rating_text
from iofold_tui.ui.widgets import PickOne, Prompt

MIN_INPUT = 12  # the grid's input preview is dropped rather than shown narrower
PAGE_SIZE = 100
DRILL_CAP = 50_000  # trace ids handed to the trace list from one confusion cell
INCREMENTAL_LIMIT = 1_000  # an undo/redo step larger than this recomputes the statistics instead
SORTS: tuple[tuple[str, bool, str], ...] = (
    ("time", True, "newest first"), ("time", False, "oldest first"), ("contradicted", True, "most contradicted first"),
)


# ---------------------------------------------------------------- messages (worker -> UI thread)

class PageLoaded(Message):
    def __init__(self, page: MatrixPage, direction: Direction | Literal["around"], generation: int,
                 versions: list[EvalSummary] | None = None) -> None:
        super().__init__()
        self.page, self.direction, self.generation, self.versions = page, direction, generation, versions


class MoveTo(Message):
    def __init__(self, trace_id: str, generation: int) -> None:
        super().__init__()
        self.trace_id, self.generation = trace_id, generation


class GridNote(Message):
    def __init__(self, text: str, severity: Literal["information", "warning", "error"] = "information") -> None:
        super().__init__()
        self.text, self.severity = text, severity


class EvalLocated(Message):
    def __init__(self, eval_id: str, eval_set_id: str) -> None:
        super().__init__()
        self.eval_id, self.eval_set_id = eval_id, eval_set_id


class StatsLoaded(Message):
    def __init__(self, token: int, stats: list[MatrixStats], cached: bool, ms: float) -> None:
        super().__init__()
        self.token, self.stats, self.cached, self.ms = token, stats, cached, ms


class Signature(Message):
    def __init__(self, token: int, signature: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.token, self.signature = token, signature


class ViewCounts(Message):
    def __init__(self, token: int, counts: dict[str, tuple[int | None, int | None]]) -> None:
        super().__init__()
        self.token, self.counts = token, counts


class StatsChecked(Message):
    def __init__(self, token: int, labels: dict[str, int], signature: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.token, self.labels, self.signature = token, labels, signature


@dataclass(frozen=True)
class Refreshed:
    trace_id: str
    old: str | None
    new: str | None
    row: MatrixRow | None  # with the displayed versions; None = no longer a row of the set
    states: dict[str, str]  # eval id -> pass / fail / error / not_run, for every version in the stats


class Relabelled(Message):
    def __init__(self, items: list[Refreshed], token: int | None, generation: int, error: str | None = None,
                 t0: float | None = None) -> None:
        super().__init__()
        self.items, self.token, self.generation, self.error = items, token, generation, error
        self.t0 = t0  # perf_counter() of the label key, for ``relabel_ms``


class DrillReady(Message):
    def __init__(self, ids: list[str], more: bool, title: str) -> None:
        super().__init__()
        self.ids, self.more, self.title = ids, more, title


# ---------------------------------------------------------------- helpers

def _exec_signature(conn: sqlite3.Connection, eval_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per eval: executions and the newest rowid (index-only), to notice runs added underneath."""
    out: dict[str, tuple[int, int]] = {}
    for eval_id in eval_ids:
        n, top = conn.execute("SELECT COUNT(*), coalesce(MAX(rowid), 0) FROM eval_executions WHERE eval_id = ?",
                              (eval_id,)).fetchone()
        out[eval_id] = (int(n), int(top))
    return out


def _run_niced(fn: Callable[[], None]) -> None:
    """Run ``fn`` in a fresh thread at a lower priority (Linux nices threads one by one) and wait for it,
    so paging wins the CPU over a statistics scan. A fresh thread because Textual's worker threads are
    pooled and an unprivileged process cannot take a nice level back."""
    def target() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: just slower paging
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        fn()

    thread = threading.Thread(target=target, name="iofold-matrix-stats", daemon=True)
    thread.start()
    thread.join()


def _label_counts(conn: sqlite3.Connection, eval_set_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT rating, COUNT(*) FROM feedback WHERE eval_set_id = ? GROUP BY rating", (eval_set_id,))
    return {str(r): int(n) for r, n in rows if r in ("positive", "negative", "neutral")}


def _implied_labels(s: MatrixStats) -> dict[str, int]:
    """Label counts of the set as the (incrementally updated) statistics see them."""
    out = {r: sum(s.cells[r].values()) for r in ("positive", "negative", "neutral")}
    return {r: n for r, n in out.items() if n}


class MatrixPane(Pane):
    pane_title = "Matrix"
    requires = ("evals", "eval_executions")
    BINDINGS = [
        Binding("f", "pick_filter", "Filter", id="matrix.filter"),
        *[Binding(str(i), f"set_filter('{name}')", FILTER_TITLES[name], id=f"matrix.filter_{name}", show=False)
          for i, name in enumerate(FILTERS)],
        Binding("d", "source_date", "Src/date", id="matrix.source_date"),
        Binding("slash", "search", "Search", id="matrix.search"),
        Binding("c", "clear_filters", "Clear", id="matrix.clear", show=False),
        Binding("o", "cycle_sort", "Sort", id="matrix.sort"),
        Binding("e", "pick_versions", "Versions", id="matrix.versions"),
        Binding("right_square_bracket", "next_contradiction", "Jump ≠", id="matrix.next_contradiction",
                key_display="]/["),
        Binding("left_square_bracket", "previous_contradiction", "Previous ≠", id="matrix.previous_contradiction",
                show=False),
        Binding("tab", "toggle_focus", "Stats", id="matrix.focus"),
        Binding("colon", "goto", "Go to id", id="matrix.goto", show=False),
        Binding("t", "open_trace", "Trace", id="matrix.trace", show=False),
        Binding("escape", "close_search", "Close search", id="matrix.close_search", show=False, priority=True),
        *labeling.label_bindings("matrix", digits=False),
        Binding("r", "run_eval", "Run eval", id="matrix.run_eval"),
        Binding("u", "undo", "Undo", id="matrix.undo"),
        Binding("U", "redo", "Redo", id="matrix.redo", show=False),
    ]
    AUTO_FOCUS = "#mx-grid"
    DEFAULT_CSS = """
    MatrixPane #mx-grid { height: 1fr; }
    MatrixPane #mx-stats { height: auto; max-height: 10; border-top: solid $panel; }
    MatrixPane #mx-notes { height: auto; max-height: 7; padding: 0 1; background: $boost; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._label_t0: dict[str, float] = {}  # trace -> when its label key was pressed (queued labels)
        self.generation = 0
        self.set_id: str | None = None
        self.chosen: dict[str, tuple[str, ...]] = {}  # per eval set: the versions shown (absent = all)
        self.versions: list[EvalSummary] = []
        self.filter = "all"
        self.where = SourceDate((), None, None)
        self.text = ""
        self.sort_index = 0
        self.page: MatrixPage | None = None
        self.column_ids: tuple[str, ...] = ()
        self.focus_eval: str | None = None  # column to put the cursor on once it exists
        self.sorting = False
        # statistics
        self.stats: list[MatrixStats] | None = None
        self.stats_token = 0
        self.stats_cached = False
        self.stats_ms: float | None = None
        self.stats_dirty = False  # labels changed while the statistics were being computed
        self.executions_changed = False  # a local eval run rewrote executions: recompute on the next reload
        self.view_pending = False
        self.relabelled = False
        self.relabels_in_flight = 0
        self.stats_after_page = False
        self.recheck = False  # a stats check arrived while relabels were in flight
        self.signature: dict[str, tuple[int, int]] = {}
        self._stats_conn: sqlite3.Connection | None = None
        # the grid's own connection (TEMP tables are per connection)
        self._gconn: sqlite3.Connection | None = None
        self._glock = threading.Lock()
        self._notes_key: tuple[object, ...] | None = None
        self._status_key: tuple[object, ...] | None = None
        # ms from a label key to the statistics updated by it being on screen (the bench reads it)
        self.relabel_ms: deque[float] = deque(maxlen=10_000)

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="search input/output previews (Enter keeps, Esc clears)", id="search-bar")
        yield RowTable(id="mx-grid", cursor_type="cell")
        yield StatsTable(id="mx-stats")
        yield Static(id="mx-notes")

    @property
    def grid(self) -> RowTable:
        return self.query_one("#mx-grid", RowTable)

    @property
    def stats_table(self) -> StatsTable:
        return self.query_one("#mx-stats", StatsTable)

    # -- the query ---------------------------------------------------------------------------------------
    def query_now(self) -> MatrixQuery:
        assert self.set_id is not None
        sort, newest, _ = SORTS[self.sort_index]
        return MatrixQuery(self.set_id, eval_ids=self.chosen.get(self.set_id), filter=self.filter,
                           sources=self.where.sources, date_from=self.where.date_from, date_to=self.where.date_to,
                           text=self.text, sort=sort, newest_first=newest, page_size=PAGE_SIZE)  # type: ignore[arg-type]

    def titles(self) -> dict[str, str]:
        same = len({v.name for v in self.versions}) <= 1
        by_id = {v.eval_id: v for v in self.stats or []}
        out = {v.id: (f"v{v.version}" if same else f"{one_line(v.name, 10)} v{v.version}") for v in self.versions}
        for eval_id in self.column_ids:
            out.setdefault(eval_id, version_title(by_id.get(eval_id), eval_id, same))
        return out

    # -- loading -----------------------------------------------------------------------------------------
    def reload(self) -> None:
        app = self.iofold
        set_id = app.state.eval_set_id
        pending = getattr(app, "pending_matrix_eval", None)
        if pending:
            app.pending_matrix_eval = None
        if set_id is None:
            self.set_id, self.page, self.stats = None, None, None
            self.grid.clear(columns=True)
            self.stats_table.clear()
            self.query_one("#mx-notes", Static).update(
                Text("No eval set in this workspace: create one in review mode (R, then c).", style="bold yellow"))
            self.set_status()
            return
        if pending and pending not in {v.id for v in self.versions} | {set_id} and set_id == self.set_id:
            self._grid_job(self._locate_job(pending))  # maybe an eval of another set: switch to it
            return
        if pending:
            self._want_column(pending)
        if set_id != self.set_id or self.page is None:
            self._open_set(set_id)
        else:
            self._refresh_same()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        pending = getattr(self.iofold, "pending_matrix_eval", None)
        if pending and not self.stale:
            self.reload()

    def _open_set(self, set_id: str) -> None:
        self.set_id = set_id
        self.generation += 1
        self.page, self.versions, self.column_ids = None, [], ()
        self.grid.clear(columns=True)
        self.set_status(Text("loading…", style="dim"))
        q, gen = self.query_now(), self.generation
        self.sorting = q.sort == "contradicted"

        def job(conn: sqlite3.Connection) -> Message:
            evals = list_evals(conn, set_id)
            versions = sorted((s for s, _ in evals.rows), key=lambda s: (s.version, s.id))
            return PageLoaded(first_page(conn, q), "first", gen, versions)

        self._grid_job(job)
        # The statistics start once the first page is on screen: on a big file their scan would
        # otherwise compete with the page's few index probes for the disk.
        self.stats_after_page = True
        self.stats_token += 1  # results still arriving for the previous set are dropped
        self.stats, self.stats_ms = None, None
        self._show_stats()

    def action_run_eval(self) -> None:
        """Re-run the eval under the cursor (else the first version shown) in the local sandbox."""
        from iofold_tui.ui.run_eval import start_eval_run

        column = self._cursor_column() or ""
        eval_id = column[2:] if column.startswith("v:") else (self.column_ids[0] if self.column_ids else None)
        if eval_id is None:
            self.notify("no eval version in this eval set", severity="warning")
            return
        start_eval_run(self.app, eval_id)

    def on_eval_results_applied(self) -> None:
        """A batch of a local run was written: redraw the visible cells now; the statistics are
        recomputed when the run ends (the app reloads the pane then)."""
        self.executions_changed = True  # updates in place: the cheap signature check cannot see them
        if self.page is not None:
            self.generation += 1
            self._load_page("around", focus_id=self.grid.cursor_key)

    def _refresh_same(self) -> None:
        """Data may have changed underneath: the page around the cursor again, and the stats if needed."""
        self.generation += 1
        self._load_page("around", focus_id=self.grid.cursor_key)
        if self.executions_changed:
            self.executions_changed = False
            self._load_stats()
        else:
            self._start_check()

    def _start_check(self) -> None:
        if self.stats and self.set_id is not None:
            self._check_stats(self.stats_token, self.set_id, [s.eval_id for s in self.stats])

    def _conn(self) -> sqlite3.Connection:
        """The grid connection; only ever called with ``_glock`` held, from a worker."""
        if self._gconn is None:
            db = self.iofold.db
            # a `traces` table WITHOUT ROWID pages on its primary key
            self._gconn = with_rowid(connect(db.path, read_only=db.read_only, immutable=db.immutable), "traces")
        return self._gconn

    @work(thread=True, exclusive=True, group="mx-grid")
    def _grid_job(self, job: Callable[[sqlite3.Connection], Message | None]) -> None:
        self._run_job(job)

    @work(thread=True, group="mx-relabel")
    def _relabel_job(self, job: Callable[[sqlite3.Connection], Message | None]) -> None:
        self._run_job(job)  # never exclusive: every relabel's statistics delta must arrive exactly once

    def _run_job(self, job: Callable[[sqlite3.Connection], Message | None]) -> None:
        with self._glock:
            try:
                message = job(self._conn())
            except sqlite3.Error as exc:
                message = GridNote(f"matrix query failed: {one_line(str(exc), 200)}", "error")
        if message is not None:
            self.post_message(message)

    def _load_page(self, direction: Direction | Literal["around"], focus_id: str | None = None) -> None:
        if self.set_id is None:
            return
        rows = self.page.rows if self.page else []
        cursor: Cursor | None = None
        if direction == "after" and rows:
            cursor = rows[-1].cursor
        elif direction == "before" and rows:
            cursor = rows[0].cursor
        elif direction in ("after", "before") or (direction == "around" and not focus_id):
            direction = "first"
        q, gen = self.query_now(), self.generation
        if q.sort == "contradicted":
            self.sorting = True
            self.update_status()

        def job(conn: sqlite3.Connection) -> Message:
            page: MatrixPage | None
            if direction == "around" and focus_id:
                page = jump_to(conn, q, focus_id) or first_page(conn, q)
            elif direction == "last":
                page = last_page(conn, q)
            elif direction == "after" and cursor:
                page = page_after(conn, q, cursor)
            elif direction == "before" and cursor:
                page = page_before(conn, q, cursor)
            else:
                page = first_page(conn, q)
            return PageLoaded(page, direction, gen)

        self._grid_job(job)

    # -- the grid ----------------------------------------------------------------------------------------
    def _grid_layout(self, eval_ids: tuple[str, ...], total: int) -> list[tuple[str, str, int]]:
        """(key, header, width) of the grid's columns for ``total`` cells: every version column always (an
        80-column terminal shows three), the note, source and input dropped in that order when they do not
        fit, the time as "MM-DD HH:MM" below 120 columns. The input preview takes what is left."""
        titles = self.titles()
        versions = []
        for eval_id in eval_ids:
            title = one_line(titles.get(eval_id, eval_id), 16 if total >= 120 else 10)
            versions.append((f"v:{eval_id}", title, max(8, len(title))))
        fixed = [("n", "≠", 2), ("time", "time", 16 if total >= 120 else 11), ("trace", "trace", 14 if total >= 100 else 12),
                 ("src", "source", 8), ("human", "human", 6), ("note", "note", 16)]
        room = total - 4  # the vertical scrollbar, and no horizontal one
        optional = ["note", "src", "input"]  # dropped first to last

        def cost(cols: list[tuple[str, str, int]], with_input: bool) -> int:
            return sum(w + 2 for _, _, w in cols) + (MIN_INPUT + 2 if with_input else 0)

        cols, with_input = fixed + versions, True
        for key in optional:
            if cost(cols, with_input) <= room:
                break
            if key == "input":
                with_input = False
            else:
                cols = [c for c in cols if c[0] != key]
        if with_input:
            cols.append(("input", "input", max(MIN_INPUT, room - cost(cols, False) - 2)))
        return cols

    def _build_columns(self, eval_ids: tuple[str, ...]) -> None:
        table = self.grid
        table.clear(columns=True)
        for key, label, width in self._grid_layout(eval_ids, table.size.width or self.app.size.width):
            table.add_column(label, width=width, key=key)
        self.column_ids = eval_ids

    def on_resize(self) -> None:
        """Lay the grid out again for the new width (columns dropped or back, the input takes the rest)."""
        self.query_one("#mx-notes", Static).styles.max_height = 3 if self.size.height < 30 else 7
        table = self.grid
        if not table.columns:
            return
        layout = self._grid_layout(self.column_ids, table.size.width or self.app.size.width)
        if [k for k, _, _ in layout] == [str(k) for k in table.columns]:
            for key, _, width in layout:
                table.set_column_width(key, width)
            return
        cursor = table.cursor_key
        self._build_columns(self.column_ids)
        if self.page is not None:
            table.show_page(((r.trace_id, self._cells(r)) for r in self.page.rows), has_before=self.page.has_before,
                            has_after=self.page.has_after, focus_key=cursor)

    def _cells(self, row: MatrixRow) -> list[Text | str]:
        """The row's cells for the grid's columns as laid out now (``_grid_layout``)."""
        stamp = row.timestamp.replace("T", " ")
        values: dict[str, Text | str] = {
            "n": contradiction_mark(row),
            "time": cell(stamp[:16] if self.grid.columns.get("time") is None or self.grid.columns["time"].width >= 16
                         else stamp[5:16], 16),
            "trace": cell(row.trace_id, 40),
            "src": cell(row.source, 20),
            "human": rating_text(row.rating),
            "note": cell(row.note or "", 60, style="italic"),
            "input": cell(preview_text(row.input_preview), 200),
        }
        for c in row.cells:
            values[f"v:{c.eval_id}"] = matrix_cell(c)
        return [values.get(str(key), Text("")) for key in self.grid.columns]

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self.generation:
            return
        page = message.page
        if message.versions is not None:
            self.versions = message.versions
        self.sorting = False
        if self.stats_after_page:
            self.stats_after_page = False
            self._load_stats()
        column = self._cursor_column()
        if page.eval_ids != self.column_ids or not self.grid.columns:
            self._build_columns(page.eval_ids)
        self.page = page
        self.grid.show_page(((r.trace_id, self._cells(r)) for r in page.rows), has_before=page.has_before,
                            has_after=page.has_after, focus_key=page.focus_id,
                            cursor="last" if message.direction in ("before", "last") else "first")
        self._place_column(column)
        if self.stats is not None:
            self._show_stats()
        self.update_status()
        if not self.query_one("#search-bar", Input).has_focus and not self.stats_table.has_focus:
            self.grid.focus()  # (the hidden search bar must never keep the focus: it would eat the keys)

    def _cursor_column(self) -> str | None:
        table = self.grid
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).column_key.value)
        except Exception:  # noqa: BLE001 - no cell under the cursor during a rebuild
            return None

    def _place_column(self, previous: str | None) -> None:
        keys = [str(k.value) for k in self.grid.columns]
        wanted = f"v:{self.focus_eval}" if self.focus_eval else previous
        if wanted not in keys:
            wanted = f"v:{self.column_ids[0]}" if self.column_ids else "trace"
        elif self.focus_eval:
            self.focus_eval = None
        self.grid.move_cursor(column=keys.index(wanted), animate=False)

    def _want_column(self, eval_id: str) -> None:
        """Focus ``eval_id``'s column (adding it to the chosen versions if the user had hidden it)."""
        self.focus_eval = eval_id
        if self.set_id and self.set_id in self.chosen and eval_id not in self.chosen[self.set_id]:
            self.chosen[self.set_id] = tuple(v.id for v in self.versions
                                             if v.id in self.chosen[self.set_id] or v.id == eval_id)
            self._requery()
        elif f"v:{eval_id}" in {str(k.value) for k in self.grid.columns}:
            self._place_column(None)

    def on_move_to(self, message: MoveTo) -> None:
        if message.generation != self.generation or self.page is None:
            return
        ids = [r.trace_id for r in self.page.rows]
        if message.trace_id in ids:
            self.grid.move_cursor(row=ids.index(message.trace_id), animate=False)

    def on_grid_note(self, message: GridNote) -> None:
        self.sorting = False
        if self.stats_after_page:
            self.stats_after_page = False
            self._load_stats()
        self.notify(message.text, severity=message.severity)
        self.update_status()

    @on(RowTable.Boundary, "#mx-grid")
    def _boundary(self, event: RowTable.Boundary) -> None:
        self._load_page(event.direction)

    @on(RowTable.CellSelected, "#mx-grid")
    def _cell_chosen(self, event: RowTable.CellSelected) -> None:
        trace_id, column = str(event.cell_key.row_key.value), str(event.cell_key.column_key.value)
        if not column.startswith("v:") or self.set_id is None:
            self._open_trace(trace_id)
            return
        eval_id = column[2:]
        row = self._row(trace_id)
        agreement = next((c.agreement for c in row.cells if c.eval_id == eval_id), None) if row else None
        self.app.push_screen(CellDetailScreen(trace_id, eval_id, self.set_id, agreement))

    def _row(self, trace_id: str | None) -> MatrixRow | None:
        if self.page is None or trace_id is None:
            return None
        return next((r for r in self.page.rows if r.trace_id == trace_id), None)

    def _open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(trace_id))

    def action_open_trace(self) -> None:
        if self.grid.cursor_key:
            self._open_trace(self.grid.cursor_key)

    def action_toggle_focus(self) -> None:
        (self.stats_table if self.grid.has_focus else self.grid).focus()

    # -- status ------------------------------------------------------------------------------------------
    def set_status(self, status: Text | str = "") -> None:
        """The app calls this with no text on a refresh: keep showing the matrix's own status line."""
        shown = status or (self.status_text() if self.set_id else "")
        text = shown if isinstance(shown, Text) else Text(shown)
        key = (text.plain, tuple(text.spans), str(text.style), tuple(self.context_parts()))
        if key != self._status_key:  # the same header again would only cost a layout pass
            self._status_key = key
            super().set_status(shown)

    def update_status(self) -> None:
        self.set_status(self.status_text())

    def status_text(self) -> Text:
        status = Text()
        status.append(FILTER_TITLES[self.filter], style="bold cyan" if self.filter != "all" else "bold")
        status.append(f"  ·  {SORTS[self.sort_index][2]}")
        parts = []
        if self.where.sources:
            parts.append("source=" + ",".join(one_line(s, 20) for s in self.where.sources))
        if self.where.date_from or self.where.date_to:
            parts.append(f"{self.where.date_from or '…'}→{self.where.date_to or '…'}")
        if self.text:
            parts.append(f'"{one_line(self.text, 30)}"')
        if parts:
            status.append("  ·  " + " · ".join(parts), style="cyan")
        if self.sorting:
            status.append("  ·  sorting… (ranking contradicted traces)", style="bold yellow")
        elif self.page is not None:
            rows = len(self.page.rows)
            status.append(f"  ·  {rows} row{'s' if rows != 1 else ''} on this page" if rows else "  ·  no rows match",
                          style="" if rows else "bold yellow")
            if self.page.has_after:
                status.append(" (more below)", style="dim")
            status.append(f"  ·  query {self.page.query_ms:.1f} ms", style="dim")
        if self.stats is None:
            status.append("  ·  statistics: computing…", style="yellow")
        elif self.relabelled:
            status.append("  ·  stats updated incrementally", style="cyan")
        elif self.stats_ms is not None:
            status.append(f"  ·  stats {'cached' if self.stats_cached else f'{self.stats_ms / 1000:.1f} s'}", style="dim")
        return status

    # -- statistics --------------------------------------------------------------------------------------
    def _load_stats(self) -> None:
        if self.set_id is None:
            return
        self.stats_token += 1
        self.stats, self.stats_ms, self.stats_dirty, self.relabelled = None, None, False, False
        self.view_pending = True
        if self._stats_conn is not None:  # a superseded aggregate: stop it instead of letting it pile up
            self._stats_conn.interrupt()
        self._show_stats()
        self._stats_worker(self.stats_token, self.set_id)

    @work(thread=True, exclusive=True, group="mx-stats")
    def _stats_worker(self, token: int, set_id: str) -> None:
        _run_niced(lambda: self._compute_stats(token, set_id))

    def _compute_stats(self, token: int, set_id: str) -> None:
        db = self.iofold.db
        with db.fresh() as conn:
            self._stats_conn = conn
            try:
                started = time.perf_counter()
                result = cached_stats(conn, db.path, set_id)
                ms = (time.perf_counter() - started) * 1000
                self.post_message(StatsLoaded(token, result.stats, result.hit, ms))
                # Off the critical path: counting a million index entries per version takes a moment.
                self.post_message(Signature(token, _exec_signature(conn, [s.eval_id for s in result.stats])))
                copies = [MatrixStats.from_dict(s.to_dict()) for s in result.stats]
                add_view_counts(conn, copies)
                self.post_message(ViewCounts(token, {s.eval_id: (s.view_rows, s.view_contradictions) for s in copies}))
            except sqlite3.OperationalError as exc:
                if "interrupt" not in str(exc):
                    self.post_message(GridNote(f"statistics failed: {one_line(str(exc), 200)}", "error"))
            except (sqlite3.Error, OSError, ValueError) as exc:  # a thread's traceback would garble the screen
                self.post_message(GridNote(f"statistics failed: {one_line(str(exc), 200)}", "error"))
            finally:
                if self._stats_conn is conn:
                    self._stats_conn = None

    def on_stats_loaded(self, message: StatsLoaded) -> None:
        if message.token != self.stats_token:
            return
        if self.stats_dirty:  # labels moved while these were computed: they may or may not include them
            self._load_stats()
            return
        self.stats, self.stats_cached, self.stats_ms = message.stats, message.cached, message.ms
        self.signature = {}
        self._show_stats()
        self.update_status()

    def on_signature(self, message: Signature) -> None:
        if message.token == self.stats_token:
            self.signature = message.signature

    def on_view_counts(self, message: ViewCounts) -> None:
        if message.token != self.stats_token or self.stats is None:
            return
        for s in self.stats:
            s.view_rows, s.view_contradictions = message.counts.get(s.eval_id, (None, None))
        self.view_pending = False
        self._show_stats()

    @work(thread=True, exclusive=True, group="mx-check")
    def _check_stats(self, token: int, set_id: str, eval_ids: list[str]) -> None:
        """Cheap index-only counts: are labels and runs what the (incremental) statistics assume?"""
        def check() -> None:
            try:
                with self.iofold.db.fresh() as conn:
                    labels, runs = _label_counts(conn, set_id), _exec_signature(conn, eval_ids)
            except sqlite3.Error:
                return  # the statistics stay as they are; the next reload checks again
            self.post_message(StatsChecked(token, labels, runs))

        _run_niced(check)

    def on_stats_checked(self, message: StatsChecked) -> None:
        if message.token != self.stats_token or not self.stats:
            return
        if self.relabels_in_flight:  # our own relabels are not applied yet: compare once they are
            self.recheck = True
            return
        runs_moved = bool(self.signature) and message.signature != self.signature  # {} = baseline still counting
        if message.labels != _implied_labels(self.stats[0]) or runs_moved:
            self._load_stats()

    def shown_stats(self) -> list[MatrixStats]:
        if self.stats is None:
            return []
        by_id = {s.eval_id: s for s in self.stats}
        ids = self.column_ids or tuple(by_id)
        return [by_id[i] for i in ids if i in by_id]

    def _show_stats(self) -> None:
        shown, titles = self.shown_stats(), self.titles()
        self.stats_table.show(shown, titles)
        if self.stats is None:
            text = Text("computing statistics… (the grid is usable meanwhile)", style="yellow")
        elif not self.stats:
            text = Text("This eval set has no eval versions yet: the grid shows its labelled traces.", style="yellow")
        else:
            text = stats_notes(shown, titles, computing=False, cached=self.stats_cached,
                               view_pending=self.view_pending, relabelled=self.relabelled)
        key = (text.plain, tuple(text.spans), str(text.style))
        if key != self._notes_key:  # an unchanged note costs no layout pass (it would delay the repaint)
            self._notes_key = key
            self.query_one("#mx-notes", Static).update(text)

    # -- filters and sort --------------------------------------------------------------------------------
    def _requery(self, direction: Direction = "first") -> None:
        self.generation += 1
        self._load_page(direction)
        self.update_status()

    def action_set_filter(self, name: str) -> None:
        if name in FILTERS and name != self.filter:
            self.filter = name
            self._requery()

    def action_pick_filter(self) -> None:
        options = [(name, f"{i}  {FILTER_TITLES[name]}") for i, name in enumerate(FILTERS)]

        def chosen(value: str | None) -> None:
            if value:
                self.action_set_filter(value)

        self.app.push_screen(PickOne("Show rows (digit keys pick directly)", options, self.filter), chosen)

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.notify(f"sort: {SORTS[self.sort_index][2]}")
        self._requery()

    def action_source_date(self) -> None:
        def done(result: SourceDate | None) -> None:
            if result is not None and result != self.where:
                self.where = result
                self._requery()

        self._with_sources(lambda sources: self.app.push_screen(SourceDateScreen(self.where, sources), done))

    @work(thread=True, group="mx-sources")
    def _with_sources(self, callback: Callable[[list[str]], object]) -> None:
        ws = self.iofold.state.workspace_id if len(self.iofold.state.workspaces) > 1 else None
        with self.iofold.db.fresh() as conn:
            sources = catalog.sources(conn, ws)
        self.app.call_from_thread(callback, sources)

    def action_clear_filters(self) -> None:
        self.query_one("#search-bar", Input).remove_class("visible")
        self.filter, self.where, self.text = "all", SourceDate((), None, None), ""
        self._requery()

    def action_search(self) -> None:
        bar = self.query_one("#search-bar", Input)
        bar.value = self.text
        bar.add_class("visible")
        bar.focus()

    @on(Input.Changed, "#search-bar")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != self.text:
            self.text = event.value
            self._requery()

    @on(Input.Submitted, "#search-bar")
    def _search_done(self, _: Input.Submitted) -> None:
        self.grid.focus()
        if not self.text:
            self.query_one("#search-bar", Input).remove_class("visible")

    def action_close_search(self) -> None:
        bar = self.query_one("#search-bar", Input)
        if bar.has_focus:
            bar.value = ""
            bar.remove_class("visible")
            self.grid.focus()

    def action_pick_versions(self) -> None:
        if not self.versions or self.set_id is None:
            self.notify("this eval set has no eval versions", severity="warning")
            return
        set_id = self.set_id
        current = self.chosen.get(set_id) or tuple(v.id for v in self.versions)
        options = [(v.id, f"{v.name} v{v.version}  ({v.status}, {v.id})") for v in self.versions]

        def done(picked: tuple[str, ...] | None) -> None:
            if picked is None or set_id != self.set_id:
                return
            everything = tuple(v.id for v in self.versions)
            if picked == everything:
                self.chosen.pop(set_id, None)
            else:
                self.chosen[set_id] = picked
            self._requery()

        self.app.push_screen(VersionPicker(options, current), done)

    # -- jumps ---------------------------------------------------------------------------------------------
    def _jump(self, forward: bool) -> None:
        if self.set_id is None:
            return
        row = self._row(self.grid.cursor_key)
        start = row.cursor if row else None
        q, gen = self.query_now(), self.generation
        ids = {r.trace_id for r in self.page.rows} if self.page else set()

        def job(conn: sqlite3.Connection) -> Message:
            found = next_contradiction(conn, q, start) if forward else previous_contradiction(conn, q, start)
            if found is None:
                return GridNote(f"no contradiction {'below' if forward else 'above'} this row")
            if found.trace_id in ids:
                return MoveTo(found.trace_id, gen)
            page = jump_to(conn, q, found.trace_id)
            return PageLoaded(page, "around", gen) if page else GridNote("that contradiction is filtered out")

        self._grid_job(job)

    def action_next_contradiction(self) -> None:
        self._jump(True)

    def action_previous_contradiction(self) -> None:
        self._jump(False)

    def action_goto(self) -> None:
        def go(value: str | None) -> None:
            if value and value.strip():
                self.select_item(value.strip())

        self.app.push_screen(Prompt("Go to a trace (id or external id), an eval version or an eval set"), go)

    def select_item(self, value: str) -> None:
        """An eval set (name or id), an eval version (its column) or a trace (its row)."""
        state = self.iofold.state
        es = next((e for e in state.eval_sets if value in (e.id, e.name)), None)
        if es is not None:
            if es.id != state.eval_set_id:
                state.eval_set_id = es.id
                self.iofold.refresh_panes()
            return
        if value in {v.id for v in self.versions}:
            self._want_column(value)
            return
        self._grid_job(self._locate_job(value))

    def _locate_job(self, value: str) -> Callable[[sqlite3.Connection], Message | None]:
        q, gen = (self.query_now(), self.generation) if self.set_id else (None, self.generation)

        def job(conn: sqlite3.Connection) -> Message | None:
            found = conn.execute("SELECT eval_set_id FROM evals WHERE id = ?", (value,)).fetchone()
            if found is not None:
                return EvalLocated(value, str(found[0]))
            page = jump_to(conn, q, value) if q else None
            if page is None:
                return GridNote(f"{one_line(value, 60)}: no such eval, or a trace not shown with these filters",
                                "warning")
            return PageLoaded(page, "around", gen)

        return job

    def on_eval_located(self, message: EvalLocated) -> None:
        state = self.iofold.state
        if message.eval_set_id not in {es.id for es in state.eval_sets}:
            self.notify(f"eval {one_line(message.eval_id, 40)} is not in this workspace", severity="warning")
            return
        self.focus_eval = message.eval_id
        if message.eval_set_id != state.eval_set_id:
            state.eval_set_id = message.eval_set_id
            self.iofold.refresh_panes()
        else:
            self._want_column(message.eval_id)

    # -- drill-down from the statistics --------------------------------------------------------------------
    @on(StatsTable.Drill)
    def _drill(self, event: StatsTable.Drill) -> None:
        titles = self.titles()
        title = f"{titles.get(event.eval_id, event.eval_id)} {CONFUSION_TITLES[event.cell]}"
        self.notify(f"collecting {title}…")
        self._drill_worker(event.eval_id, event.cell, title)

    @work(thread=True, exclusive=True, group="mx-drill")
    def _drill_worker(self, eval_id: str, cell_name: str, title: str) -> None:
        ids: list[str] = []
        after: str | None = None
        with self.iofold.db.fresh() as conn:
            while len(ids) < DRILL_CAP:
                page = cells_for_confusion(conn, eval_id, cell_name, after=after, limit=min(5_000, DRILL_CAP - len(ids)))
                ids += page.trace_ids
                after = page.next_after
                if after is None:
                    break
        self.post_message(DrillReady(ids, after is not None, title))

    def on_drill_ready(self, message: DrillReady) -> None:
        if not message.ids:
            self.notify(f"no traces in {message.title}", severity="warning")
            return
        app = self.iofold
        app.open_review_queue(tuple(message.ids))  # exactly those traces: other trace filters are dropped
        capped = f" (the first {len(message.ids):,} by trace id)" if message.more else ""
        app.notify(f"review queue: {plural(len(message.ids), 'trace')}, {message.title}{capped}. "
                   "f in review mode (or c in the trace list) drops it.", timeout=10)

    # -- relabelling ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True  # label keys stay enabled where labelling is off: pressing one says why

    def action_label(self, rating: str) -> None:
        t0 = time.perf_counter()
        reason = labeling.disabled_reason(self.app)
        trace_id = self.grid.cursor_key
        if reason or self.set_id is None:
            self.notify(f"labelling disabled: {reason}" if reason else "pick an eval set first (v)", severity="warning")
            return
        if trace_id is None:
            return
        try:  # queued: the writer thread writes it (never waiting for the lock here); see on_label_applied
            labeling.label_queue(self.app).label(self.set_id, trace_id, rating)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self._label_t0[trace_id] = t0

    def on_label_applied(self, applied: object) -> None:
        """A queued label / undo / redo reached the database: the rows and the statistics follow."""
        intent, result = getattr(applied, "intent", None), getattr(applied, "result", None)
        if intent is None or result is None or getattr(applied, "outcome", "") != "applied":
            return
        if intent.kind in ("undo", "redo"):
            self._after_travel(result, undo=intent.kind == "undo")
            return
        if getattr(result, "eval_set_id", None) != self.set_id:
            return
        old = result.old.rating if result.old else None
        new = result.new.rating if result.new else None
        if old != new:
            self._apply_transitions([(result.trace_id, old, new)], self._label_t0.pop(result.trace_id, None))

    def action_undo(self) -> None:
        if labeling.explain_disabled(self.app):
            return
        with contextlib.suppress(labeling.LabelActionError):
            labeling.label_queue(self.app).travel(undo=True)

    def action_redo(self) -> None:
        if labeling.explain_disabled(self.app):
            return
        with contextlib.suppress(labeling.LabelActionError):
            labeling.label_queue(self.app).travel(undo=False)

    def _after_travel(self, step: object, *, undo: bool) -> None:
        changes = [c for c in getattr(step, "changes", []) if c.eval_set_id == self.set_id]
        moves = []
        for c in changes:
            before, after = (c.new, c.old) if undo else (c.old, c.new)
            old, new = (before.rating if before else None), (after.rating if after else None)
            if old != new:
                moves.append((c.trace_id, old, new))
        if len(moves) > INCREMENTAL_LIMIT:
            self._load_stats()
            self._refresh_same()
        elif moves:
            self._apply_transitions(moves)

    def _apply_transitions(self, moves: list[tuple[str, str | None, str | None]], t0: float | None = None) -> None:
        """Labels moved (committed already): patch the grid's TEMP table, the rows and the statistics."""
        if self.set_id is None:
            return
        if self.stats is None:
            self.stats_dirty = True
            token: int | None = None
            stat_ids: list[str] = [v.id for v in self.versions]
        else:
            token = self.stats_token
            stat_ids = [s.eval_id for s in self.stats]
        q, gen, set_id = self.query_now(), self.generation, self.set_id
        plain = MatrixQuery(set_id, eval_ids=q.eval_ids)  # the row whatever the filters say
        every = MatrixQuery(set_id, eval_ids=tuple(stat_ids))

        self.relabels_in_flight += 1

        def job(conn: sqlite3.Connection) -> Message:
            items = []
            try:
                for trace_id, old, new in moves:
                    refresh_trace(conn, q, trace_id)
                    row = row_for(conn, plain, trace_id)
                    if set(stat_ids) <= {c.eval_id for c in (row.cells if row else ())}:
                        full = row
                    else:
                        full = row_for(conn, every, trace_id)
                    states = {c.eval_id: c.state for c in (full.cells if full else ())}
                    items.append(Refreshed(trace_id, old, new, row, states))
            except sqlite3.Error as exc:  # still answer, so the in-flight count and the stats stay right
                return Relabelled([], None, gen, one_line(str(exc), 200))
            return Relabelled(items, token, gen, t0=t0)

        self._relabel_job(job)

    def on_relabelled(self, message: Relabelled) -> None:
        self.relabels_in_flight -= 1
        if message.error:
            self.notify(f"refreshing the relabelled rows failed: {message.error}", severity="error")
            self._load_stats()
            self._refresh_same()
            return
        if message.token is not None and message.token == self.stats_token and self.stats is not None:
            try:
                for item in message.items:
                    for s in self.stats:
                        s.relabel(item.old, item.new, item.states.get(s.eval_id, "not_run"))
                self.relabelled = True
                if message.t0 is not None:  # measured once the updated statistics are painted
                    t0 = message.t0
                    self.call_after_refresh(lambda: self.relabel_ms.append((time.perf_counter() - t0) * 1000))
            except ValueError:  # the statistics did not match the database: recompute them
                self._load_stats()
        if message.generation == self.generation and self.page is not None:
            for item in message.items:
                self._replace_row(item)
        self._show_stats()
        self.update_status()
        if self.recheck and not self.relabels_in_flight:
            self.recheck = False
            self._start_check()

    def _replace_row(self, item: Refreshed) -> None:
        assert self.page is not None
        index = next((i for i, r in enumerate(self.page.rows) if r.trace_id == item.trace_id), None)
        if index is None:
            return
        old = self.page.rows[index]
        row = item.row or replace(old, rating=item.new, feedback_id=None, note=None)
        if row.cells and tuple(c.eval_id for c in row.cells) != self.column_ids:
            return  # the versions changed meanwhile; the next page load shows the row
        self.page.rows[index] = row
        keys = [str(k) for k in self.grid.columns]
        self.grid.update_cells(row.trace_id, dict(zip(keys, self._cells(row), strict=True)))

    # -- teardown -------------------------------------------------------------------------------------------
    def on_unmount(self) -> None:
        for conn in (self._stats_conn, self._gconn):
            if conn is not None:
                conn.interrupt()
        with self._glock:
            if self._gconn is not None:
                self._gconn.close()
                self._gconn = None
