"""The trace list's state without widgets: the filter the list was built for, the page on screen and where
it sits among the matches, the pages read ahead, the count, the jump target, the bulk selection, the order
(time, or rowids precomputed per filter) and the full-text search in progress.

The pane (``ui/panes/traces.py``) is a view over one ``TraceListModel``: it runs the model's jobs in workers
(``Pane.run_query``; a newer query of the same group makes an older result stale) and feeds the results back
through the model's transitions. Jobs capture what they need when they are built (the filter, the order), so
a worker never reads state the UI thread is changing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from iofold_tui.data.db import Database
from iofold_tui.data.traces.query import PAGE_ROWS, TraceFilter, TracePage, TraceQuery, total_traces
from iofold_tui.ui.models.traces_search import REGEX_PREFIX, ScanState

if TYPE_CHECKING:
    from iofold_tui.data.search.order import Ordered, OrderedQuery

PAGE_SIZE = PAGE_ROWS
# A jump lands in a part of the file nothing has read yet: a page there costs a few random reads per row
# (previews sit after the large steps column), so it reads one screenful; the pages on either side come
# from the read-ahead as usual.
JUMP_PAGE_SIZE = 50
SELECT_CHUNK = 2_000  # ids resolved per keyset page when selecting everything that matches
BULK_LIMIT = 100_000  # one undo step of at most this many labels; narrow the filter beyond
TIME_ORDERS = ("newest", "oldest")  # walk the timestamp index; every other order is computed per filter

Direction = Literal["first", "last", "after", "before"]
PageDirection = Direction | Literal["around"]
Key = tuple[Any, int]  # a row's keyset position (TraceRow.key)
Query: TypeAlias = "TraceQuery | OrderedQuery"


# ---------------------------------------------------------------- results of the jobs

@dataclass
class PageLoaded:
    page: TracePage
    direction: PageDirection


@dataclass
class JumpMissed:
    """A jump's trace is not in the list (``exists``: it is filtered out); the first page when none was
    shown yet (``--select`` of a missing id)."""

    trace_id: str
    exists: bool
    first: TracePage | None


@dataclass
class Counted:
    matching: int
    total: int


@dataclass
class Positioned:
    page: TracePage  # the page the position was counted for
    position: int


@dataclass
class OrderResult:
    key: str
    flt: TraceFilter
    ordered: Ordered | None
    error: str = ""


@dataclass
class Reload:
    """What a reload shows: a page around ``focus_id`` (its neighbours in ``candidates`` if it is gone), else
    the first page, read right here when ``first_now`` (no worker); and whether the order is recomputed."""

    focus_id: str | None
    candidates: tuple[str, ...]
    first_now: bool
    recompute_order: bool


class PendingLabel(Protocol):
    """A label still queued for the writer (ui/labeling.Intent)."""

    kind: str
    rating: str | None


def pending_mark(intent: PendingLabel | None) -> str | None:
    """The rating cell of a label still queued (another process holds the lock): "⧗ pos" fits the 5-cell
    column; None when nothing is queued for the row (it shows the stored rating)."""
    if intent is None or intent.kind != "label":
        return None
    return f"⧗ {(intent.rating or 'none')[:3]}"


# ---------------------------------------------------------------- the model

@dataclass
class TraceListModel:
    db: Database
    source_key: Callable[[], Path]  # what the source's full-text index is keyed by (data.search.index)
    page: TracePage | None = None
    first_index: int | None = 0  # index of the page's first row among the matches, when known
    matching: int | None = None
    total: int | None = None
    last_filter: TraceFilter | None = None
    shown_once: bool = False
    # (direction, edge key) -> the page read ahead in the background; at most two
    prefetched: dict[tuple[str, Key], TracePage] = field(default_factory=dict)
    selected: set[str] = field(default_factory=set)  # ids to label in bulk; survive paging and filters
    jump_target: str | None = None  # the id the last ":" jump (or --select) asked for
    at_id: str | None = None  # "at <id>" in the header while that jump's page is on screen
    # An order other than time (data/search/order.py): the matching rowids in that order, computed in a
    # worker for one filter; None while the list walks the timestamp index.
    ordered: Ordered | None = None
    ordered_for: TraceFilter | None = None
    order_key: str = "newest"
    order_note: str = ""  # an order being computed
    scan: ScanState = field(default_factory=ScanState)  # the full-text search behind ``/``

    # -- the list ------------------------------------------------------------------------------------
    def _query_maker(self, flt: TraceFilter) -> Callable[[sqlite3.Connection], Query]:
        """How a worker builds the list's query: the timestamp walk, or the order on screen for ``flt``."""
        ordered = self.ordered if self.ordered is not None and flt == self.ordered_for else None

        def make(conn: sqlite3.Connection) -> Query:
            if ordered is None:
                return TraceQuery(conn, flt)
            from iofold_tui.data.search.order import OrderedQuery

            return OrderedQuery(conn, ordered.rowids, flt.eval_set_id)

        return make

    def new_list(self) -> None:
        """Another list (the filter or the order changed): the count and the pages read ahead no longer
        apply."""
        self.matching = None
        self.prefetched = {}

    def reload(self, flt: TraceFilter, focus_id: str | None, cursor_key: str | None,
               start_id: str | None) -> Reload:
        """Show ``flt``'s list again (``start_id``: ``--select`` on the first show). With the same filter
        (data changed underneath) the cursor's trace stays put; if another process deleted it, the next row
        still there, else the one before."""
        candidates: tuple[str, ...] = ()
        if focus_id is None and flt == self.last_filter and self.page is not None:
            focus_id = cursor_key
            ids = [r.id for r in self.page.rows]
            if focus_id in ids:
                at = ids.index(focus_id)
                candidates = tuple(ids[at + 1:at + 11] + ids[max(0, at - 10):at][::-1])
        self.last_filter = flt
        recompute = self.order_key not in TIME_ORDERS and flt != self.ordered_for
        if recompute:
            self.ordered = self.ordered_for = None  # the time order meanwhile
        self.new_list()
        self.page = None
        if not self.shown_once and start_id:
            focus_id = self.jump_target = start_id
        # The pane's very first page, unfiltered: read on the UI thread so the first frame has rows.
        first_now = not focus_id and not self.shown_once and not flt.describe() and flt.workspace_id is None
        self.shown_once = True
        return Reload(focus_id or None, candidates, first_now, recompute)

    def first_page_now(self, flt: TraceFilter) -> PageLoaded:
        """100 rows down the timestamp index (~1.5 ms on 1M traces, independent of the size), on this
        thread: through a worker they came two full frames (~150 ms) later."""
        return PageLoaded(TraceQuery(self.db.conn(), flt).first_page(PAGE_SIZE), "first")

    def jump(self, trace_id: str) -> None:
        """``:`` or ``--select``: the page around ``trace_id`` comes next; the count stays (same filter)."""
        self.jump_target = trace_id
        self.prefetched = {}

    def page_request(self, direction: PageDirection, flt: TraceFilter, focus_id: str | None = None,
                     candidates: tuple[str, ...] = ()) -> PageLoaded | Callable[[], PageLoaded | JumpMissed]:
        """The page ``direction`` of the one on screen: already read ahead (no query on the key press), else
        the job that reads it. The keyset position is taken here, on the UI thread."""
        rows = self.page.rows if self.page else []
        key: Key | None = None
        if direction == "after" and rows:
            key = rows[-1].key
        elif direction == "before" and rows:
            key = rows[0].key
        elif direction in ("after", "before"):
            direction = "first"
        ready = self.prefetched.get((direction, key)) if key is not None else None
        if ready is not None:
            return PageLoaded(ready, direction)
        make, db, nothing_shown, want = self._query_maker(flt), self.db, self.page is None, direction

        def job() -> PageLoaded | JumpMissed:
            query = make(db.conn())
            if want == "around" and focus_id:
                page = query.around(focus_id, JUMP_PAGE_SIZE)
                for other in candidates:  # the row under the cursor was deleted underneath: its neighbour
                    if page is not None:
                        break
                    page = query.around(other, JUMP_PAGE_SIZE)
                if page is None and candidates:
                    page = query.first_page(PAGE_SIZE)
                if page is None:
                    return JumpMissed(focus_id, query.exists(focus_id),
                                      query.first_page(PAGE_SIZE) if nothing_shown else None)
                return PageLoaded(page, "around")
            if want == "last":
                return PageLoaded(query.last_page(PAGE_SIZE), want)
            if want == "after" and key:
                return PageLoaded(query.page_after(key, PAGE_SIZE), want)
            if want == "before" and key:
                return PageLoaded(query.page_before(key, PAGE_SIZE), want)
            return PageLoaded(query.first_page(PAGE_SIZE), want)

        return job

    def at_edge(self, direction: PageDirection, row_id: str | None) -> bool:
        """A request for the page ``direction`` of the one shown, made with the cursor on ``row_id``, still
        concerns the page shown (keys typed while a page was swapped in ask again at the old page's edge:
        from the new page they would skip one)."""
        rows = self.page.rows if self.page else []
        if direction not in ("after", "before") or not rows:
            return True
        return (rows[-1] if direction == "after" else rows[0]).id == row_id

    def page_loaded(self, result: PageLoaded) -> list[tuple[str, Key]]:
        """A page arrived: where it sits among the matches; returns the neighbours to read ahead."""
        page, previous, direction = result.page, self.page, result.direction
        if direction == "first":
            self.first_index = 0
        elif direction == "after" and previous is not None and self.first_index is not None:
            self.first_index += len(previous.rows)
        elif direction == "before" and self.first_index is not None:
            self.first_index = max(0, self.first_index - len(page.rows))
        elif direction == "last":
            self.first_index = None if self.matching is None else max(0, self.matching - len(page.rows))
        elif direction == "around":
            self.first_index = None  # counted by ``position_job``
        self.page = page
        self.at_id = page.focus_id if direction == "around" and page.focus_id == self.jump_target else None
        self.prefetched = {}
        keys: list[tuple[str, Key]] = []
        if page.rows and page.has_after:
            keys.append(("after", page.rows[-1].key))
        if page.rows and page.has_before:
            keys.append(("before", page.rows[0].key))
        return keys

    def prefetch_job(self, keys: list[tuple[str, Key]],
                     flt: TraceFilter) -> Callable[[], dict[tuple[str, Key], TracePage]]:
        """Read the pages before and after the visible one (a 6 GB file is mostly cold on disk: a page costs
        ~100 random reads), so crossing a page edge shows rows without waiting for the disk."""
        make, db = self._query_maker(flt), self.db

        def job() -> dict[tuple[str, Key], TracePage]:
            found: dict[tuple[str, Key], TracePage] = {}
            try:
                query = make(db.conn())
                for direction, key in keys:
                    fetch = query.page_after if direction == "after" else query.page_before
                    found[(direction, key)] = fetch(key, PAGE_SIZE)
            except sqlite3.Error:  # e.g. another process's EXCLUSIVE lock: reading ahead is only a guess,
                pass  # and the key press reads the page itself (saying so if that fails too)
            return found

        return job

    def prefetch_arrived(self, found: dict[tuple[str, Key], TracePage]) -> None:
        self.prefetched = found

    def position_job(self, page: TracePage, flt: TraceFilter) -> Callable[[], Positioned]:
        """Where a jump's page sits in the list ("rows k–m of N" in the header)."""
        make, db, key = self._query_maker(flt), self.db, page.rows[0].key

        def job() -> Positioned:
            return Positioned(page, make(db.conn()).position(key))

        return job

    def positioned(self, result: Positioned) -> bool:
        """True when the position is of the page still on screen (it is taken)."""
        if result.page is not self.page:
            return False
        self.first_index = result.position
        return True

    def count_job(self, flt: TraceFilter) -> Callable[[], Counted]:
        make, db = self._query_maker(flt), self.db

        def job() -> Counted:
            conn = db.conn()
            total = total_traces(conn, flt.workspace_id)
            query = make(conn)
            plain = flt == flt.cleared() and flt.step_rowids is None and isinstance(query, TraceQuery)
            return Counted(total if plain else query.count(), total)

        return job

    def counted(self, result: Counted) -> None:
        self.matching, self.total = result.matching, result.total
        if self.first_index is None and self.page and not self.page.has_after:  # the last page: its place
            self.first_index = max(0, self.matching - len(self.page.rows))

    def rows_shown(self, top: int, visible: int) -> str | None:
        """"rows 24–46 of 5,000" for the rows on screen (``top``: the first's index in the page); None while
        the matches are being counted."""
        if self.matching is None:
            return None
        if not self.matching:
            shown = "no rows"
        elif not visible:
            shown = "—"
        elif self.first_index is not None:
            shown = f"rows {self.first_index + top + 1:,}–{self.first_index + top + visible:,}"
        else:
            shown = "rows ?"  # a jump's position is being counted
        return f"{shown} of {self.matching:,}"

    # -- selection -----------------------------------------------------------------------------------
    def toggle(self, trace_id: str) -> None:
        self.selected.symmetric_difference_update({trace_id})

    def select_job(self, flt: TraceFilter) -> Callable[[], list[str] | None]:
        """Every trace id matching ``flt`` (keyset pages, so memory holds ids only); None: more than
        ``BULK_LIMIT`` match."""
        make, db = self._query_maker(flt), self.db

        def job() -> list[str] | None:
            ids: list[str] = []
            with db.fresh() as conn:
                query = make(conn)
                page = query.first_page(SELECT_CHUNK)
                while True:
                    ids.extend(r.id for r in page.rows)
                    if len(ids) > BULK_LIMIT:
                        return None
                    if not page.has_after or not page.rows:
                        return ids
                    page = query.page_after(page.rows[-1].key, SELECT_CHUNK)

        return job

    # -- order ---------------------------------------------------------------------------------------
    def order_label(self, flt: TraceFilter) -> str:
        if self.ordered is not None and flt == self.ordered_for:
            from iofold_tui.data.search.order import ORDERS

            label = ORDERS[self.ordered.key][0]
            return f"{label} ({self.ordered.note})" if self.ordered.note else label
        return f"{'newest' if flt.newest_first else 'oldest'} first"

    def order_choices(self, flt: TraceFilter, search_query: str, has_eval_set: bool) -> tuple[list[str], str]:
        """The orders ``o`` offers (relevance after a search; rating and contradicted with an eval set) and
        the current one."""
        from iofold_tui.data.search.order import ORDERS

        relevance = bool(search_query) and not search_query.startswith(REGEX_PREFIX)  # bm25 needs words
        keys = [k for k in ORDERS if k != "relevance" or relevance]
        if not has_eval_set:
            keys = [k for k in keys if k not in ("rating", "contradicted")]
        time_order = "newest" if flt.newest_first else "oldest"
        current = self.order_key if self.order_key not in TIME_ORDERS else time_order
        return keys, current

    def time_order(self, key: str) -> None:
        self.order_key, self.ordered, self.ordered_for, self.order_note = key, None, None, ""

    def start_order(self, key: str) -> None:
        from iofold_tui.data.search.order import ORDERS

        self.order_key = key
        self.order_note = f"ordering by {ORDERS[key][0].removeprefix('by ')}…"

    def order_job(self, key: str, flt: TraceFilter, search_query: str,
                  say: Callable[[str], object]) -> Callable[[], OrderResult]:
        """The cost said first (``say``, from the worker), then the order computed; the list keeps its
        current order meanwhile."""
        db, source_key = self.db, self.source_key

        def job() -> OrderResult:
            from iofold_tui.data.search import order

            try:
                with db.fresh() as conn:
                    cost = order.order_cost(conn, key, flt.eval_set_id, flt)
                    say(f"{order.ORDERS[key][1]}: {cost}; the list keeps its order until it is ready")
                    result = order.ordered_rowids(conn, flt, key, source_key=source_key(), db_path=db.path,
                                                  query=search_query)
            except (ValueError, sqlite3.DatabaseError) as exc:
                return OrderResult(key, flt, None, str(exc))
            return OrderResult(key, flt, result)

        return job

    def order_ready(self, result: OrderResult, flt: TraceFilter) -> Literal["stale", "failed", "ready"]:
        """"stale": the filter or the order changed meanwhile (a newer computation is on its way);
        "failed": back to the time order; "ready": the list shows the new order from its first page."""
        if result.flt != flt or result.key != self.order_key:
            return "stale"
        self.order_note = ""
        if result.ordered is None:
            self.order_key = "newest" if result.flt.newest_first else "oldest"
            return "failed"
        self.ordered, self.ordered_for = result.ordered, result.flt
        self.jump_target = self.at_id = None
        self.new_list()
        return "ready"
