"""The contradiction matrix's state, without widgets: what the grid shows (set, versions, filters, sort,
the page), the statistics and their freshness, relabels in flight, and the queries behind them.

The pane (``ui/panes/matrix.py``) is a view over one ``MatrixModel``: it runs the model's jobs in workers
(``Pane.run_query``: a newer query of the same group makes an older result stale) and feeds the results
back through the model's transitions, which answer what the view must do next.

Threads: grid jobs run on ONE private connection under a lock (``GridConnection``), because the "most
contradicted" TEMP table lives on that connection. Statistics run on a connection of their own at a lower
priority, so a 4-second aggregate on a million traces never blocks paging. Statistics are identified by the
list object holding them: a relabel delta or a freshness check computed against one list is applied only
while that same list is shown (a recompute replaces it).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from iofold_tui.data.db import Database, connect, with_rowid
from iofold_tui.data.evals.lookup import eval_set_of
from iofold_tui.data.evals.versions import EvalSummary, list_evals
from iofold_tui.data.matrix.freshness import (
    confusion_trace_ids,
    execution_signature,
    label_counts,
)
from iofold_tui.data.matrix.grid import (
    MatrixPage,
    MatrixQuery,
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
from iofold_tui.data.matrix.report import cached_stats
from iofold_tui.data.matrix.stats import MatrixStats, add_view_counts
from iofold_tui.data.sanitize import one_line

PAGE_SIZE = 100
DRILL_CAP = 50_000  # trace ids handed to the trace list from one confusion cell
INCREMENTAL_LIMIT = 1_000  # an undo/redo step larger than this recomputes the statistics instead
MIN_INPUT = 12  # the grid's input preview is dropped rather than shown narrower
SORTS: tuple[tuple[str, bool, str], ...] = (
    ("time", True, "newest first"), ("time", False, "oldest first"), ("contradicted", True, "most contradicted first"),
)
Direction = Literal["first", "last", "after", "before", "around"]
Move = tuple[str, str | None, str | None]  # trace id, old rating, new rating
T = TypeVar("T")


@dataclass(frozen=True)
class SourceDate:
    sources: tuple[str, ...]
    date_from: str | None
    date_to: str | None


# ---------------------------------------------------------------- results of the jobs

@dataclass
class PageLoaded:
    page: MatrixPage
    direction: Direction
    versions: list[EvalSummary] | None = None


@dataclass
class MoveTo:
    trace_id: str


@dataclass
class GridNote:
    text: str
    severity: Literal["information", "warning", "error"] = "information"


@dataclass
class EvalLocated:
    eval_id: str
    eval_set_id: str


@dataclass(frozen=True)
class Refreshed:
    trace_id: str
    old: str | None
    new: str | None
    row: MatrixRow | None  # with the displayed versions; None = no longer a row of the set
    states: dict[str, str]  # eval id -> pass / fail / error / not_run, for every version in the stats


@dataclass
class Relabelled:
    items: list[Refreshed]
    stats: list[MatrixStats] | None  # the statistics the delta is for (None: they were being computed)
    error: str | None = None
    t0: float | None = None  # perf_counter() of the label key, for ``relabel_ms``


@dataclass
class StatsLoaded:
    stats: list[MatrixStats]
    cached: bool
    ms: float


@dataclass
class StatsExtra:
    """Off the critical path: the execution signature and the unscoped view's counts."""
    stats: list[MatrixStats]
    signature: dict[str, tuple[int, int]]
    counts: dict[str, tuple[int | None, int | None]]


@dataclass
class StatsChecked:
    stats: list[MatrixStats]
    labels: dict[str, int]
    signature: dict[str, tuple[int, int]]


GridResult = PageLoaded | MoveTo | GridNote | EvalLocated | None


# ---------------------------------------------------------------- helpers

def run_niced(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread at a lower priority (Linux nices threads one by one) and wait for it,
    so paging wins the CPU over a statistics scan. A fresh thread because worker threads are pooled and an
    unprivileged process cannot take a nice level back."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: just slower paging
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="iofold-matrix-stats", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def implied_labels(s: MatrixStats) -> dict[str, int]:
    """Label counts of the set as the (incrementally updated) statistics see them."""
    out = {r: sum(s.cells[r].values()) for r in ("positive", "negative", "neutral")}
    return {r: n for r, n in out.items() if n}


def version_title(s: MatrixStats | None, eval_id: str, same_name: bool) -> str:
    if s is None:
        return one_line(eval_id, 14)
    return f"v{s.version}" if same_name else f"{one_line(s.name, 10)} v{s.version}"


def grid_layout(eval_ids: Iterable[str], titles: dict[str, str], total: int) -> list[tuple[str, str, int]]:
    """(key, header, width) of the grid's columns for ``total`` cells: every version column always (an
    80-column terminal shows three), the note, source and input dropped in that order when they do not
    fit, the time as "MM-DD HH:MM" below 120 columns. The input preview takes what is left."""
    versions = []
    for eval_id in eval_ids:
        title = one_line(titles.get(eval_id, eval_id), 16 if total >= 120 else 10)
        versions.append((f"v:{eval_id}", title, max(8, len(title))))
    fixed = [("n", "≠", 2), ("time", "time", 16 if total >= 120 else 11), ("trace", "trace", 14 if total >= 100 else 12),
             ("src", "source", 8), ("human", "human", 6), ("note", "note", 16)]
    room = total - 4  # the vertical scrollbar, and no horizontal one

    def cost(cols: list[tuple[str, str, int]], with_input: bool) -> int:
        return sum(w + 2 for _, _, w in cols) + (MIN_INPUT + 2 if with_input else 0)

    cols, with_input = fixed + versions, True
    for key in ("note", "src", "input"):  # dropped first to last
        if cost(cols, with_input) <= room:
            break
        if key == "input":
            with_input = False
        else:
            cols = [c for c in cols if c[0] != key]
    if with_input:
        cols.append(("input", "input", max(MIN_INPUT, room - cost(cols, False) - 2)))
    return cols


class GridConnection:
    """The grid's own connection (TEMP tables are per connection), used by one job at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:  # a `traces` table WITHOUT ROWID pages on its primary key
                db = self.db
                self._conn = with_rowid(connect(db.path, read_only=db.read_only, immutable=db.immutable), "traces")
            return job(self._conn)

    def interrupt(self) -> None:
        if self._conn is not None:
            self._conn.interrupt()

    def close(self) -> None:
        self.interrupt()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# ---------------------------------------------------------------- the model

@dataclass
class MatrixModel:
    db: Database
    set_id: str | None = None
    chosen: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per eval set: versions shown (absent = all)
    versions: list[EvalSummary] = field(default_factory=list)
    filter: str = "all"
    where: SourceDate = field(default_factory=lambda: SourceDate((), None, None))
    text: str = ""
    sort_index: int = 0
    page: MatrixPage | None = None
    column_ids: tuple[str, ...] = ()
    focus_eval: str | None = None  # column to put the cursor on once it exists
    sorting: bool = False
    # statistics and their freshness
    stats: list[MatrixStats] | None = None
    stats_cached: bool = False
    stats_ms: float | None = None
    stats_dirty: bool = False  # labels changed while the statistics were being computed
    executions_changed: bool = False  # a local eval run rewrote executions: recompute on the next reload
    view_pending: bool = False
    relabelled: bool = False
    relabels_in_flight: int = 0
    stats_after_page: bool = False  # start the statistics once the first page is shown
    recheck: bool = False  # a stats check arrived while relabels were in flight
    signature: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.grid = GridConnection(self.db)
        self._stats_conn: sqlite3.Connection | None = None

    # -- what the grid shows -------------------------------------------------------------------------------
    def query(self) -> MatrixQuery:
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

    def layout(self, total: int) -> list[tuple[str, str, int]]:
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
            self.chosen[self.set_id] = tuple(v.id for v in self.versions if v.id in chosen or v.id == eval_id)
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
                return GridNote(f"{one_line(value, 60)}: no such eval, or a trace not shown with these filters",
                                "warning")
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

    # -- statistics ------------------------------------------------------------------------------------------
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

    def stats_loaded(self, result: StatsLoaded) -> bool:
        """True: labels moved while these were computed (they may or may not include them): recompute."""
        if self.stats_dirty:
            return True
        self.stats, self.stats_cached, self.stats_ms = result.stats, result.cached, result.ms
        self.signature = {}
        return False

    def extra_job(self) -> Callable[[], StatsExtra]:
        """The execution signature and the unscoped view's counts of the statistics now shown."""
        stats, db = self.stats, self.db
        assert stats is not None

        def compute() -> StatsExtra:
            with db.fresh() as conn:
                signature = execution_signature(conn, [s.eval_id for s in stats])
                copies = [MatrixStats.from_dict(s.to_dict()) for s in stats]
                add_view_counts(conn, copies)
            return StatsExtra(stats, signature, {s.eval_id: (s.view_rows, s.view_contradictions) for s in copies})

        return lambda: run_niced(compute)

    def extra_loaded(self, result: StatsExtra) -> bool:
        if result.stats is not self.stats or self.stats is None:
            return False
        self.signature = result.signature
        for s in self.stats:
            s.view_rows, s.view_contradictions = result.counts.get(s.eval_id, (None, None))
        self.view_pending = False
        return True

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

    def stats_checked(self, result: StatsChecked) -> bool:
        """True: the statistics no longer describe the database: recompute them."""
        if result.stats is not self.stats or not self.stats:
            return False
        if self.relabels_in_flight:  # our own relabels are not applied yet: compare once they are
            self.recheck = True
            return False
        runs_moved = bool(self.signature) and result.signature != self.signature  # {} = baseline still counting
        return result.labels != implied_labels(self.stats[0]) or runs_moved

    # -- relabels ----------------------------------------------------------------------------------------------
    def travel_moves(self, changes: Iterable[object], *, undo: bool) -> list[Move]:
        """The label moves of an undo/redo step in this set."""
        moves = []
        for c in changes:
            if getattr(c, "eval_set_id", None) != self.set_id:
                continue
            before, after = (c.new, c.old) if undo else (c.old, c.new)  # type: ignore[attr-defined]
            old, new = (before.rating if before else None), (after.rating if after else None)
            if old != new:
                moves.append((c.trace_id, old, new))  # type: ignore[attr-defined]
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

    def relabel_done(self, result: Relabelled | None) -> Literal["applied", "stale", "recompute"]:
        """Apply a relabel's delta to the statistics it was computed for ("stale": they were replaced
        meanwhile; "recompute": the delta failed or did not fit: recompute the statistics)."""
        self.relabels_in_flight -= 1
        if result is None or result.error:
            return "recompute"
        if result.stats is None or result.stats is not self.stats:
            return "stale"
        try:
            for item in result.items:
                for s in self.stats:
                    s.relabel(item.old, item.new, item.states.get(s.eval_id, "not_run"))
        except ValueError:  # the statistics did not match the database: recompute them
            return "recompute"
        self.relabelled = True
        return "applied"

    def take_recheck(self) -> bool:
        due = self.recheck and not self.relabels_in_flight
        if due:
            self.recheck = False
        return due

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

    # -- drill-down ---------------------------------------------------------------------------------------------
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
