"""The full-text search behind the trace list's ``/``, without widgets: the search itself as the list takes
it (``step_search``, run in a worker with progress and a way to stop) and the state of the one in progress
(``ScanState``, kept by ``ui.models.traces.TraceListModel``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from iofold_tui.data.text import plural
from iofold_tui.data.traces.query import TraceFilter

REGEX_PREFIX = "re:"  # "/" then re:PATTERN scans with a regular expression
SEARCH_CAP = 200_000  # matches of a full-text search the list filters to (the rest: narrow the query)


@dataclass
class SearchOutcome:
    """A full-text search as the list takes it: its matches (at most ``SEARCH_CAP``) and what to say."""

    rowids: list[int]
    complete: bool  # every trace was searched and every match kept
    notes: list[str]  # told to the user as they are
    error: str = ""  # a syntax error: nothing was searched
    build_index: bool = False  # no usable index: build it in the background


def step_search(conn: sqlite3.Connection, index_key: Path, needle: str, *, remote: bool,
                progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> SearchOutcome:
    """``/``: the query language through the sidecar index when built, else a scan with progress;
    ``re:PATTERN`` is always a scan (a Python regular expression, case-insensitive). ``remote``: a live D1
    source, where the scan runs remotely and an index would copy every step."""
    from iofold_tui.data.search.index import run_search
    from iofold_tui.data.search.query import SearchSyntaxError

    regex = needle.startswith(REGEX_PREFIX)
    try:
        result = run_search(conn, index_key, needle.removeprefix(REGEX_PREFIX) if regex else needle,
                            limit=SEARCH_CAP, regex=regex, progress=progress, cancelled=cancelled,
                            want_all=True)
    except SearchSyntaxError as exc:
        return SearchOutcome([], False, [], f"search: {exc}")
    matches, note = result.all_rowids or [], result.note or ""
    notes = [note] if note else []
    if len(matches) > SEARCH_CAP:
        notes.append(f"{len(matches):,} matches: the list keeps the newest {SEARCH_CAP:,} "
                     "(narrow the query for the rest)")
    build = not result.used_index and ("no search index" in note or "unusable" in note) and not remote
    complete = result.complete and result.total <= SEARCH_CAP
    return SearchOutcome(matches[:SEARCH_CAP], complete, notes, "", build)


@dataclass
class ScanState:
    note: str = ""  # a search in progress, or stopped early: said in the list's header
    needle: str | None = None  # the query of the last search started
    done: float = 0.0  # percent of the scan done

    def start(self, needle: str) -> None:
        self.needle, self.done = needle, 0.0
        self.note = f'searching steps for "{needle}"… (Esc stops)'

    def progress(self, done: int, total: int) -> float:
        self.done = 100 * done / max(total, 1)
        return self.done

    def finished(self, flt: TraceFilter, rowids: list[int] | None, found: int,
                 complete: bool) -> tuple[str, TraceFilter | None]:
        """The search ended: (its query, the list's new filter); no filter when it was stopped before any
        match (the list stays as it was)."""
        needle = self.needle if self.needle is not None else flt.step_text
        if not complete and not found:
            self.note = ""
            return needle, None
        self.note = "" if complete else (
            f"step search stopped after {self.done:.0f}%: {plural(found, 'match', 'matches')} so far")
        return needle, replace(flt, step_text=needle, step_rowids=tuple(rowids or ()))
