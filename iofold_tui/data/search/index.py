"""The sidecar full-text index: build, keep current, search; degrade to the scan when it is unusable.

The sidecar is a SQLite file in ``cache_dir()/search/<path_key(source)>.fts.sqlite`` — never a table in
the user's database. It holds a contentless FTS5 table (columns = ``extract.COLUMNS``), ``docs`` (per
trace rowid: its timestamp, a cheap fingerprint, and the zlib-compressed indexed text that a contentless
FTS5 delete needs), ``tools``/``errors`` (per-trace tool names and normalised errors, for facets) and a
small cache table.

Keeping it current without re-reading the table (``sync``) is ``index_sync.SidecarSync``.

FTS5 rowids are not trace rowids but order keys (``SidecarSync._new_key``): spaced ``GAP`` apart in the trace
list's order (timestamp DESC, rowid ASC) at a build, a new trace takes the midpoint of its neighbours'
keys, so ``ORDER BY rowid DESC`` — a reverse walk of the doclists that stops after a page — is newest
first. A gap that runs out makes a rebuild.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iofold_tui.data import paths
from iofold_tui.data.search.index_sync import (
    BATCH,
    NoRoom,
    Progress,
    SidecarSync,
    SyncReport,
    indexed_count,
    read_meta,
)
from iofold_tui.data.search.query import Node, SearchSyntaxError, parse, to_match
from iofold_tui.data.search.scan import FTS_ARGS, ScanResult, regex_scan, scan
from iofold_tui.data.traces.query import preview_columns

FORMAT = 2

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS docs(rid INTEGER PRIMARY KEY, key INTEGER NOT NULL UNIQUE, ts, fp INTEGER);
CREATE INDEX IF NOT EXISTS docs_ts ON docs(ts DESC, rid);
CREATE INDEX IF NOT EXISTS docs_pending ON docs(rid) WHERE fp IS NULL;
CREATE TABLE IF NOT EXISTS bodies(key INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5({FTS_ARGS}, content = '');
CREATE TABLE IF NOT EXISTS tools(tool TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY(tool, rid))
  WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tools_rid ON tools(rid);
CREATE TABLE IF NOT EXISTS errors(msg TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY(msg, rid))
  WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS errors_rid ON errors(rid);
CREATE TABLE IF NOT EXISTS cache(key TEXT PRIMARY KEY, stamp TEXT NOT NULL, value TEXT NOT NULL);
"""



class IndexUnavailable(Exception):
    """The sidecar cannot be used (missing cache dir, corrupt, another format); the message says why."""


def source_key(kind: str, origin: Path, db_path: Path) -> Path:
    """What the sidecar is keyed by: the user's ``.sql`` for a D1 export (a re-export's new working copy
    is diffed against the old index), else the database file itself."""
    return Path(origin) if kind == "d1-export" else Path(db_path)


def trace_rows(db: sqlite3.Connection, rowids: list[int]) -> list[dict[str, Any]]:
    """Display fields of ``rowids`` (raw database text: sanitise before showing), in the given order."""
    if not rowids:
        return []
    got = {}
    for r in db.execute(
        f"SELECT {preview_columns()}, t.step_count, t.has_errors FROM traces t "
        "WHERE t.rowid IN (SELECT value FROM json_each(?))", (json.dumps(rowids),)):
        got[int(r[0])] = {
            "rowid": int(r[0]),
            "id": r[1],
            "trace_id": r[2],
            "timestamp": r[3],
            "source": r[4],
            "input_preview": r[5],
            "output_preview": r[6],
            "step_count": r[7],
            "has_errors": bool(r[8]),
        }
    return [got[rid] for rid in rowids if rid in got]


def sidecar_path(source_key: Path) -> Path:
    return paths.cache_dir() / "search" / f"{paths.path_key(Path(source_key))}.fts.sqlite"


@dataclass
class SearchResult:
    rowids: list[int]  # in the asked order, at most ``limit``
    total: int  # every match (for the header)
    used_index: bool
    order: str
    note: str | None = None
    complete: bool = True
    ms: float = 0.0
    all_rowids: list[int] | None = field(default=None, repr=False)  # every match, when asked for


class SearchIndex:
    """The sidecar of one source. Thread-safe use: one SearchIndex per thread (it owns one connection)."""

    def __init__(self, source_key: Path | str, *, path: Path | None = None) -> None:
        self.source_key = Path(source_key)
        try:
            self.path = path or sidecar_path(self.source_key)
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise IndexUnavailable(f"cache dir unavailable ({where}{exc.strerror or exc})") from None
        self._conn: sqlite3.Connection | None = None
        self.batch = BATCH  # rows per transaction (and per cancel check)

    # ------------------------------------------------------------ connection
    def exists(self) -> bool:
        return self.path.is_file()

    def conn(self, *, create: bool = False) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not create and not self.path.is_file():
            raise IndexUnavailable("no search index yet (run `iofold-tui index SOURCE`)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            fmt = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if fmt is None:
                if conn.execute("SELECT count(*) FROM docs").fetchone()[0]:
                    raise sqlite3.DatabaseError("no format recorded")
                conn.execute(
                    "INSERT INTO meta VALUES ('format', ?), ('source', ?)", (FORMAT, str(self.source_key))
                )
            elif int(fmt[0]) != FORMAT:
                raise sqlite3.DatabaseError(f"index format {fmt[0]}, expected {FORMAT}")
        except (sqlite3.DatabaseError, OSError, ValueError, TypeError) as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise IndexUnavailable(f"search index unusable ({exc})") from None
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def remove(self) -> None:
        """Delete the sidecar (corrupt or --rebuild); it is only a cache."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()

    def count(self) -> int:
        return indexed_count(self.conn())

    def building(self) -> bool:
        """A build started and not finished (rows placed but not indexed yet)."""
        return self.conn().execute("SELECT 1 FROM docs WHERE fp IS NULL LIMIT 1").fetchone() is not None

    def stamp(self) -> str:
        """Changes whenever the indexed data changes (facet cache key)."""
        return str(read_meta(self.conn(), "stamp") or "")

    # ------------------------------------------------------------ keeping current

    # ------------------------------------------------------------ keeping current
    def sync(self, db: sqlite3.Connection, *, progress: Progress | None = None,
             cancelled: Callable[[], bool] = lambda: False, verify: bool = False) -> SyncReport:
        """Bring the sidecar up to date with ``db`` (build it when new). Safe to cancel and resume."""
        try:
            return SidecarSync(self.conn(create=True), self.batch).sync(
                db, path=self.path, progress=progress, cancelled=cancelled, verify=verify)
        except NoRoom:  # the order keys ran out between two neighbours: build it again
            self.remove()
            return self.sync(db, progress=progress, cancelled=cancelled)

    # ------------------------------------------------------------ searching
    def search(self, node: Node, *, order: str = "newest", limit: int | None = 50, want_all: bool = False,
               count: bool = True) -> SearchResult:
        """The first ``limit`` matches in ``order`` (newest / relevance); ``total`` counts them all (-1 when
        ``count`` is False and there are more than ``limit``)."""
        start = time.perf_counter()
        match = to_match(node)
        conn = self.conn()
        try:
            lim = -1 if limit is None else int(limit)
            # FTS5 rowids are order keys (see _new_key): newest first is a reverse walk of the doclists.
            by = "rank" if order == "relevance" else "rowid DESC"
            sql = (f"SELECT d.rid FROM (SELECT rowid AS k, row_number() OVER () AS pos FROM "
                   f"(SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY {by} LIMIT ?)) "
                   "JOIN docs d ON d.key = k ORDER BY pos")
            rowids = [int(r[0]) for r in conn.execute(sql, (match, lim))]
            if limit is not None and len(rowids) < limit:
                total = len(rowids)
            else:
                total = (
                    int(conn.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (match,)).fetchone()[0])
                    if count
                    else -1
                )
            every = None
            if want_all:
                every = (
                    rowids
                    if limit is None
                    else [
                        int(r[0])
                        for r in conn.execute(
                            "SELECT d.rid FROM fts JOIN docs d ON d.key = fts.rowid WHERE fts MATCH ? ORDER "
                            "BY fts.rowid DESC",
                            (match,),
                        )
                    ]
                )  # newest first, so a caller's cap keeps the newest
        except (
            sqlite3.OperationalError
        ) as exc:  # a MATCH we built is always valid: anything else is the index
            raise IndexUnavailable(f"search index unusable ({exc})") from None
        return SearchResult(
            rowids, total, True, order, ms=(time.perf_counter() - start) * 1000, all_rowids=every
        )

    # ------------------------------------------------------------ cache
    def cached(self, key: str, compute: Callable[[], Any], stamp: str | None = None) -> tuple[Any, bool]:
        """``compute()`` through the sidecar's cache, valid while ``stamp`` (default: the index stamp) is
        unchanged."""
        conn = self.conn()
        stamp = self.stamp() if stamp is None else stamp
        row = conn.execute("SELECT stamp, value FROM cache WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] == stamp:
            return json.loads(row[1]), True
        value = compute()
        conn.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, stamp, json.dumps(value)))
        return value, False




@contextlib.contextmanager
def opened_index(source_key: Path | str) -> Iterator[SearchIndex]:
    index = SearchIndex(source_key)
    try:
        yield index
    finally:
        index.close()


def run_search(
    db: sqlite3.Connection,
    source_key: Path | str | None,
    text: str,
    *,
    order: str = "newest",
    limit: int | None = 50,
    regex: bool = False,
    update: bool = True,
    want_all: bool = False,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> SearchResult:
    """Search through the sidecar when it is usable, else by scanning (same result set), with a note.

    SearchSyntaxError for a bad query (the caller shows the message). ``update`` first brings an existing
    sidecar up to date (cheap when nothing changed); a missing sidecar is not built here (that is a
    background job / ``iofold-tui index``): the scan answers meanwhile.
    """
    start = time.perf_counter()
    if regex:
        res = regex_scan(db, text, progress=progress, cancelled=cancelled)
        return _from_scan(res, order, limit, "regex mode scans every trace", start, want_all)
    node = parse(text)
    note: str | None = None
    if source_key is not None:
        index: SearchIndex | None = None
        try:
            index = SearchIndex(source_key)
            if index.exists() and index.building():
                note = "search index being built: scanning meanwhile"
            elif index.exists():
                if update:
                    index.sync(db, cancelled=cancelled)
                result = index.search(node, order=order, limit=limit, want_all=want_all)
                result.ms = (time.perf_counter() - start) * 1000
                return result
            note = "no search index yet: scanning (build it with `iofold-tui index SOURCE`)"
        except IndexUnavailable as exc:
            note = f"{exc}: scanning instead"
        except sqlite3.DatabaseError as exc:
            note = f"search index unusable ({exc}): scanning instead"
        finally:
            if index is not None:
                index.close()
    else:
        note = "no search index for an in-memory source: scanning"
    res = scan(db, node, progress=progress, cancelled=cancelled)
    return _from_scan(res, order, limit, note, start, want_all)


def _from_scan(res: ScanResult, order: str, limit: int | None, note: str | None, start: float,
               want_all: bool) -> SearchResult:
    ordered = res.rowids_newest_first()
    if order == "relevance":
        note = (note + "; " if note else "") + "relevance needs the index: newest first"
    return SearchResult(ordered if limit is None else ordered[:limit], len(ordered), False, "newest", note,
                        res.complete, (time.perf_counter() - start) * 1000, ordered if want_all else None)


def describe_error(exc: Exception) -> str:
    if isinstance(exc, SearchSyntaxError):
        return f"search: {exc}"
    return str(exc)


def sidecar_size(index: SearchIndex) -> int:
    return sum(
        os.path.getsize(f"{index.path}{s}") for s in ("", "-wal") if os.path.exists(f"{index.path}{s}")
    )
