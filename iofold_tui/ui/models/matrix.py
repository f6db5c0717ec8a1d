"""The contradiction matrix's state, without widgets: what the grid shows (set, versions, filters, sort,
the page), relabels in flight, and the queries behind them; the statistics' state and freshness
transitions are its base ``StatsState`` (``matrix_stats_state.py``).

The pane (``ui/panes/matrix.py``) is a view over one ``MatrixModel``: it runs the model's jobs in workers
(``Pane.run_query``: a newer query of the same group makes an older result stale) and feeds the results
back through the model's transitions, which answer what the view must do next.

Threads: grid jobs run on ONE private connection under a lock (``GridConnection``), because the "most
contradicted" TEMP table lives on that connection. Statistics run on a connection of their own at a lower
priority (``run_niced``), so a 4-second aggregate on a million traces never blocks paging.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from iofold_tui.data.db import Database
from iofold_tui.data.evals.lookup import eval_set_of
from iofold_tui.data.evals.versions import EvalSummary, list_evals
from iofold_tui.data.labels.history import LabelChange
from iofold_tui.data.matrix.freshness import (
    confusion_trace_ids,
    execution_signature,
    label_counts,
)
from iofold_tui.data.matrix.grid import (
    MatrixPage,
    MatrixRow,
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
from iofold_tui.data.matrix.grid_query import MatrixQuery, Sort
from iofold_tui.data.matrix.report import cached_stats
from iofold_tui.data.matrix.stats import MatrixStats, add_view_counts
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.models.matrix_layout import Column, grid_layout, version_title
from iofold_tui.ui.models.matrix_results import (
    Direction,
    EvalLocated,
    GridNote,
    GridResult,
    Move,
    MoveTo,
    PageLoaded,
    Refreshed,
    Relabelled,
    SourceDate,
    StatsChecked,
    StatsExtra,
    StatsLoaded,
)
from iofold_tui.ui.models.matrix_stats_state import StatsState
from iofold_tui.ui.models.matrix_threads import GridConnection, run_niced

PAGE_SIZE = 100
DRILL_CAP = 50_000  # trace ids handed to the trace list from one confusion cell
SORTS: tuple[tuple[Sort, bool, str], ...] = (
    ("time", True, "newest first"),
    ("time", False, "oldest first"),
    ("contradicted", True, "most contradicted first"),
)


@dataclass
class MatrixModel(StatsState):
    db: Database
    set_id: str | None = None
    # per eval set: the versions shown (absent = all)
    chosen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    versions: list[EvalSummary] = field(default_factory=list)
    filter: str = "all"
    where: SourceDate = field(default_factory=lambda: SourceDate((), None, None))
    text: str = ""
    sort_index: int = 0
    page: MatrixPage | None = None
    column_ids: tuple[str, ...] = ()
    focus_eval: str | None = None  # column to put the cursor on once it exists
    sorting: bool = False
    stats_after_page: bool = False  # start the statistics once the first page is shown

    def __post_init__(self) -> None:
        self.grid = GridConnection(self.db)
        self._stats_conn: sqlite3.Connection | None = None

    # -- what the grid shows -----------------------------------------------------------------------------
    def query(self) -> MatrixQuery:
        assert self.set_id is not None
        sort, newest, _ = SORTS[self.sort_index]
        where = self.where
        return MatrixQuery(
            self.set_id, eval_ids=self.chosen.get(self.set_id), filter=self.filter,
            sources=where.sources, date_from=where.date_from, date_to=where.date_to,
            text=self.text, sort=sort, newest_first=newest, page_size=PAGE_SIZE,
        )

    def titles(self) -> dict[str, str]:
        same = len({v.name for v in self.versions}) <= 1
        by_id = {v.eval_id: v for v in self.stats or []}
        out = {
            v.id: (f"v{v.version}" if same else f"{one_line(v.name, 10)} v{v.version}")
            for v in self.versions
        }
        for eval_id in self.column_ids:
            out.setdefault(eval_id, version_title(by_id.get(eval_id), eval_id, same))
        return out

    def layout(self, total: int) -> list[Column]:
        return grid_layout(self.column_ids, self.titles(), total)

    def row(self, trace_id: str | None) -> MatrixRow | None:
        if self.page is None or trace_id is None:
            return None
        return next((r for r in self.page.rows if r.trace_id == trace_id), None)

    def shown_stats(self) -> list[MatrixStats]:
        if self.stats is None:
            return []
        by_id = {s.eval_id: s for s in self.stats}
        ids = self.column_ids or tuple(by_id)
        return [by_id[i] for i in ids if i in by_id]

    def choose_versions(self, picked: tuple[str, ...]) -> None:
        assert self.set_id is not None
        if picked == tuple(v.id for v in self.versions):
            self.chosen.pop(self.set_id, None)
        else:
            self.chosen[self.set_id] = picked

    def want_column(self, eval_id: str) -> bool:
        """Focus ``eval_id``'s column once shown; True when the user had hidden it (the grid must requery)."""
        self.focus_eval = eval_id
        chosen = self.chosen.get(self.set_id or "")
        if self.set_id and chosen is not None and eval_id not in chosen:
            shown = (v.id for v in self.versions if v.id in chosen or v.id == eval_id)
            self.chosen[self.set_id] = tuple(shown)
            return True
        return False

    def clear_filters(self) -> None:
        self.filter, self.where, self.text = "all", SourceDate((), None, None), ""

    # -- grid jobs (built on the UI thread, run in a worker) ------------------------------------------------
    def open_set(self, set_id: str) -> Callable[[], PageLoaded]:
        """Show another eval set: its first page (with its versions); the statistics follow the page."""
        self.set_id = set_id
        self.page, self.versions, self.column_ids = None, [], ()
        q = self.query()
        self.sorting = q.sort == "contradicted"
        self.stats_after_page = True
        self.stats, self.stats_ms = None, None

        def job(conn: sqlite3.Connection) -> PageLoaded:
            versions = sorted((s for s, _ in list_evals(conn, set_id).rows), key=lambda s: (s.version, s.id))
            return PageLoaded(first_page(conn, q), "first", versions)

        return lambda: self.grid.run(job)

    def page_job(self, direction: Direction, focus_id: str | None = None) -> Callable[[], PageLoaded] | None:
        if self.set_id is None:
            return None
        rows = self.page.rows if self.page else []
        cursor = None
        if direction == "after" and rows:
            cursor = rows[-1].cursor
        elif direction == "before" and rows:
            cursor = rows[0].cursor
        elif direction in ("after", "before") or (direction == "around" and not focus_id):
            direction = "first"
        q = self.query()
        if q.sort == "contradicted":
            self.sorting = True

        def job(conn: sqlite3.Connection) -> PageLoaded:
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
            return PageLoaded(page, direction, None)

        return lambda: self.grid.run(job)

    def jump_job(self, forward: bool, from_trace: str | None) -> Callable[[], GridResult]:
        """The next (previous) contradiction after the row ``from_trace``."""
        row = self.row(from_trace)
        start = row.cursor if row else None
        q = self.query()
        ids = {r.trace_id for r in self.page.rows} if self.page else set()

        def job(conn: sqlite3.Connection) -> GridResult:
            found = next_contradiction(conn, q, start) if forward else previous_contradiction(conn, q, start)
            if found is None:
                return GridNote(f"no contradiction {'below' if forward else 'above'} this row")
            if found.trace_id in ids:
                return MoveTo(found.trace_id)
            page = jump_to(conn, q, found.trace_id)
            return PageLoaded(page, "around") if page else GridNote("that contradiction is filtered out")

        return lambda: self.grid.run(job)

    def locate_job(self, value: str) -> Callable[[], GridResult]:
        """An eval version (maybe of another set) or a trace of the grid."""
        q = self.query() if self.set_id else None

        def job(conn: sqlite3.Connection) -> GridResult:
            set_id = eval_set_of(conn, value)
            if set_id is not None:
                return EvalLocated(value, set_id)
            page = jump_to(conn, q, value) if q else None
            if page is None:
                what = f"{one_line(value, 60)}: no such eval, or a trace not shown with these filters"
                return GridNote(what, "warning")
            return PageLoaded(page, "around")

        return lambda: self.grid.run(job)

    def page_loaded(self, result: PageLoaded) -> bool:
        """A page arrived; True when the statistics should start now."""
        if result.versions is not None:
            self.versions = result.versions
        self.sorting = False
        self.page = result.page
        return self._stats_due()

    def grid_failed(self) -> bool:
        """A grid job failed; True when the statistics should start now."""
        self.sorting = False
        return self._stats_due()

    def _stats_due(self) -> bool:
        due, self.stats_after_page = self.stats_after_page, False
        return due

    # -- statistics --------------------------------------------------------------------------------------
    def stats_job(self) -> Callable[[], StatsLoaded | None] | None:
        """Recompute the statistics (the shown ones are dropped; a superseded aggregate is interrupted)."""
        if self.set_id is None:
            return None
        set_id, db = self.set_id, self.db
        self.stats, self.stats_ms, self.stats_dirty, self.relabelled = None, None, False, False
        self.view_pending = True
        if self._stats_conn is not None:
            self._stats_conn.interrupt()

        def compute() -> StatsLoaded | None:
            with db.fresh() as conn:
                self._stats_conn = conn
                try:
                    started = time.perf_counter()
                    result = cached_stats(conn, db.path, set_id)
                    return StatsLoaded(result.stats, result.hit, (time.perf_counter() - started) * 1000)
                except sqlite3.OperationalError as exc:
                    if "interrupt" in str(exc):
                        return None  # superseded: a newer computation is on its way
                    raise
                finally:
                    if self._stats_conn is conn:
                        self._stats_conn = None

        return lambda: run_niced(compute)

    def extra_job(self) -> Callable[[], StatsExtra]:
        """The execution signature and the unscoped view's counts of the statistics now shown."""
        stats, db = self.stats, self.db
        assert stats is not None

        def compute() -> StatsExtra:
            with db.fresh() as conn:
                signature = execution_signature(conn, [s.eval_id for s in stats])
                copies = [MatrixStats.from_dict(s.to_dict()) for s in stats]
                add_view_counts(conn, copies)
            counts = {s.eval_id: (s.view_rows, s.view_contradictions) for s in copies}
            return StatsExtra(stats, signature, counts)

        return lambda: run_niced(compute)

    def check_job(self) -> Callable[[], StatsChecked] | None:
        """Cheap index-only counts: are labels and runs what the (incremental) statistics assume?"""
        if not self.stats or self.set_id is None:
            return None
        stats, set_id, db = self.stats, self.set_id, self.db
        eval_ids = [s.eval_id for s in stats]

        def check() -> StatsChecked:
            with db.fresh() as conn:
                return StatsChecked(stats, label_counts(conn, set_id), execution_signature(conn, eval_ids))

        return lambda: run_niced(check)

    # -- relabels ----------------------------------------------------------------------------------------
    def travel_moves(self, changes: Iterable[LabelChange], *, undo: bool) -> list[Move]:
        """The label moves of an undo/redo step in this set."""
        moves = []
        for c in changes:
            if c.eval_set_id != self.set_id:
                continue
            before, after = (c.new, c.old) if undo else (c.old, c.new)
            old, new = (before.rating if before else None), (after.rating if after else None)
            if old != new:
                moves.append((c.trace_id, old, new))
        return moves

    def relabel_job(self, moves: list[Move], t0: float | None = None) -> Callable[[], Relabelled] | None:
        """Labels moved (committed already): the TEMP table, the rows and the statistics delta."""
        if self.set_id is None:
            return None
        if self.stats is None:
            self.stats_dirty = True
            stat_ids = [v.id for v in self.versions]
        else:
            stat_ids = [s.eval_id for s in self.stats]
        stats, q, set_id = self.stats, self.query(), self.set_id
        plain = MatrixQuery(set_id, eval_ids=q.eval_ids)  # the row whatever the filters say
        every = MatrixQuery(set_id, eval_ids=tuple(stat_ids))
        self.relabels_in_flight += 1

        def job(conn: sqlite3.Connection) -> Relabelled:
            items = []
            try:
                for trace_id, old, new in moves:
                    refresh_trace(conn, q, trace_id)
                    row = row_for(conn, plain, trace_id)
                    full = row if set(stat_ids) <= {c.eval_id for c in (row.cells if row else ())} else \
                        row_for(conn, every, trace_id)
                    states = {c.eval_id: c.state for c in (full.cells if full else ())}
                    items.append(Refreshed(trace_id, old, new, row, states))
            except sqlite3.Error as exc:  # still answer, so the in-flight count and the stats stay right
                return Relabelled([], None, one_line(str(exc), 200))
            return Relabelled(items, stats, t0=t0)

        return lambda: self.grid.run(job)

    def replace_row(self, item: Refreshed) -> MatrixRow | None:
        """The page's row of a relabelled trace, updated (None: not on this page, or versions changed)."""
        if self.page is None:
            return None
        index = next((i for i, r in enumerate(self.page.rows) if r.trace_id == item.trace_id), None)
        if index is None:
            return None
        row = item.row or replace(self.page.rows[index], rating=item.new, feedback_id=None, note=None)
        if row.cells and tuple(c.eval_id for c in row.cells) != self.column_ids:
            return None  # the versions changed meanwhile; the next page load shows the row
        self.page.rows[index] = row
        return row

    # -- drill-down --------------------------------------------------------------------------------------
    def drill_job(self, eval_id: str, cell: str) -> Callable[[], tuple[list[str], bool]]:
        db = self.db

        def job() -> tuple[list[str], bool]:
            with db.fresh() as conn:
                return confusion_trace_ids(conn, eval_id, cell, DRILL_CAP)

        return job

    def close(self) -> None:
        if self._stats_conn is not None:
            self._stats_conn.interrupt()
        self.grid.close()
