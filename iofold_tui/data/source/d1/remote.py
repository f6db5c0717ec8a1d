"""A live D1 database as a source: ``iofold-tui d1://DATABASE``.

Every pane runs plain SQLite SQL on a connection from ``Database.conn()`` / ``fresh()``. ``RemoteDatabase``
gives them :class:`RemoteConnection`, a small DB-API shim: ``execute(sql, params)`` returns a cursor
(fetchone/fetchmany/fetchall/description, ``sqlite3.Row`` rows when asked for), ``executemany``, no-op
transactions; each statement is one HTTP request to D1's ``/raw`` endpoint (rows as arrays). So keyset
paging, filters, detail, evals, matrix and overview run unchanged — their SQL is SQLite's, D1 is SQLite.

What the remote cannot run is handled here:
  - ``PRAGMA data_version`` -> a cheap change probe (``max(rowid)`` of the tables labels and runs touch,
    1 row read each, at most every PROBE_S) plus this process's own writes; a colleague's relabel in place
    shows up when the page cache expires (d1/cache.py; the seed README advises 60 s for matrix statistics);
  - connection PRAGMAs (busy_timeout, query_only, foreign_keys, cache_size…) and BEGIN/COMMIT/ROLLBACK/
    SAVEPOINT: no-ops (D1 runs each request as its own transaction);
  - ``CREATE TEMP …`` / ``ATTACH`` / ``DETACH``: refused with sqlite3.OperationalError — every caller already
    has a path for "TEMP unavailable" (a read-only or immutable file refuses them too); readers that ATTACH
    (annotator agreement, import-labels) read a labels-only copy instead (pull.labels_file);
  - more than 100 bound parameters (D1's limit; ``IN (?,…)`` id lists): the values are inlined as literals.
Reads are cached (an LRU of (sql, params) -> rows, invalidated by the probe and own writes, expired after
d1/cache.py), so scrolling back, re-rendering the overview or the matrix costs no request, and when the
network is down what was seen stays usable; an uncached read fails with the client's one-line message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from iofold_tui.data.db import REMOTE_OPENERS, Database
from iofold_tui.data.source.d1.api import D1Error, Result
from iofold_tui.data.source.d1.cache import PageCache
from iofold_tui.data.source.d1.client import D1Client
from iofold_tui.data.source.d1.cursor import RemoteCursor
from iofold_tui.data.source.d1.offline import save_offline
from iofold_tui.data.source.d1.params import bind, is_read, strip_comments

PROBE_S = 5.0
WARM_S = 4.0  # a launch's reads, replayed as one batch by the next launch
WARM_MAX = 60
_PROBE_SQL = ("SELECT (SELECT max(rowid) FROM feedback), (SELECT max(rowid) FROM eval_executions), "
              "(SELECT max(rowid) FROM evals), (SELECT max(rowid) FROM traces), "
              "(SELECT max(rowid) FROM eval_sets)")
_NOOP = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_LOCAL_PRAGMA = re.compile(
    r"^\s*PRAGMA\s+(?:main\.)?(busy_timeout|foreign_keys|cache_size|journal_mode|synchronous|"
    r"temp_store|mmap_size|recursive_triggers|case_sensitive_like|trusted_schema|locking_mode)\b",
    re.IGNORECASE)
_QUERY_ONLY = re.compile(r"^\s*PRAGMA\s+(?:main\.)?query_only\s*(?:=\s*([^\s;]+))?\s*;?\s*$", re.IGNORECASE)
_DATABASE_LIST = re.compile(r"^\s*PRAGMA\s+database_list\s*;?\s*$", re.IGNORECASE)
_DATA_VERSION = re.compile(r"^\s*PRAGMA\s+(?:main\.)?data_version\s*;?\s*$", re.IGNORECASE)
# D1's own tables (_cf_…): PRAGMAs on them are not authorized
_CF_PRAGMA = re.compile(r"^\s*PRAGMA\s+(?:main\.)?\w+\s*\(\s*[\"'`\[]?_cf_", re.IGNORECASE)
_REFUSED = re.compile(r"^\s*(CREATE\s+(TEMP|TEMPORARY)\b|ATTACH\b|DETACH\b|VACUUM\b)|\btemp\.", re.IGNORECASE)
def _fewer_than_saved(path: Path, items: list[tuple[str, list[Any]]]) -> bool:
    """``items`` is a strict subset of the recording saved at ``path``."""
    try:
        saved = json.loads(path.read_text())["statements"]
        old = {(str(sql), json.dumps(params)) for sql, params in saved}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    new = {(sql, json.dumps(params)) for sql, params in items}
    return new < old


class Remote:
    """What every connection of one remote source shares: the client, the page cache, the change probe."""

    def __init__(self, client: D1Client, *, read_only_reason: str | None = None) -> None:
        self.client = client
        self.cache = PageCache()
        self.read_only_reason = read_only_reason
        self._probe_lock = threading.Lock()
        self._probe_at = 0.0
        self._probe_value: tuple[Any, ...] | None = None
        self._own_writes = 0
        self._version = 1
        self._others = 1
        self._wrote_since_probe = False
        self.offline: str | None = None  # the last failure's message while the remote is unreachable
        self._recording: list[tuple[str, list[Any]]] | None = None
        self._record_until = 0.0

    def start_recording(self, path: Path, database_id: str, offline: Path | None = None) -> None:
        """Note the reads of the first WARM_S seconds (what a launch asks); saved to ``path`` so the next
        launch sends them all in one batch (``warm_up``), and with their results to ``offline`` so the next
        launch can open without the network (d1/offline.py)."""
        self._recording = []
        self._record_until = time.monotonic() + WARM_S

        def save() -> None:
            items, self._recording = self._recording or [], None
            if _fewer_than_saved(path, items):
                return  # a launch quit early (or offline) must not replace a fuller recording
            with contextlib.suppress(OSError, TypeError, ValueError):
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(json.dumps({"database_id": database_id, "statements": items[:WARM_MAX]}))
                os.replace(tmp, path)
            if offline is not None:
                seen = [(sql, params, res) for sql, params in items[:WARM_MAX]
                        if (res := self.cache.get((sql, tuple(params)), stale_ok=True)) is not None]
                save_offline(offline, database_id, seen)

        timer = threading.Timer(WARM_S, save)
        timer.daemon = True
        timer.start()

    def _record(self, text: str, values: list[Any]) -> None:
        rec = self._recording
        if rec is not None and len(rec) < WARM_MAX and time.monotonic() < self._record_until \
                and (text, values) not in rec:
            rec.append((text, list(values)))

    def note_write(self, own: bool = True) -> None:
        with self._probe_lock:
            self._own_writes += 1
            self._version += 1
            self._wrote_since_probe = True
        self.cache.clear()

    def others_version(self) -> int:
        """Like ``data_version`` but moved only by changes this process did not make (a probe that moved
        with no own write since the previous probe)."""
        self.data_version()
        return self._others

    def data_version(self) -> int:
        """Moves when the remote changed (probe) or this process wrote; the probe runs at most every
        PROBE_S."""
        with self._probe_lock:
            if time.monotonic() - self._probe_at < PROBE_S:
                return self._version
            self._probe_at = time.monotonic()
        try:
            value = self.client.raw(_PROBE_SQL, retries=0).rows[0]
            self.offline = None
        except D1Error as exc:
            self.offline = str(exc)
            return self._version
        with self._probe_lock:
            if self._probe_value is not None and value != self._probe_value:
                self._version += 1
                if not self._wrote_since_probe:
                    self._others += 1
                self.cache.clear()
            self._probe_value = value
            self._wrote_since_probe = False
            return self._version

    def run(self, sql: str, params: Sequence[Any] | dict[str, Any], *, cached: bool = True) -> Result:
        text, values = bind(sql, params)
        if is_read(text):
            key = (text, tuple(values))
            if cached:
                self._record(text, values)
            hit = self.cache.get(key) if cached else None
            if hit is not None:
                return hit
            try:
                result = self.client.raw(text, values)
            except D1Error as exc:
                if exc.retryable:
                    self.offline = str(exc)
                    stale = self.cache.get(key, stale_ok=True) if cached else None
                    if stale is not None:
                        return stale
                raise
            self.offline = None
            self.cache.put(key, result)
            return result
        if self.read_only_reason:
            raise sqlite3.OperationalError(f"attempt to write a readonly database ({self.read_only_reason})")
        try:
            result = self.client.batch([(text, values)], retries=0)[0]
        except D1Error as exc:
            if exc.kind == "forbidden":
                self.read_only_reason = f"the API token cannot write ({exc})"
                raise sqlite3.OperationalError(f"attempt to write a readonly database ({exc})") from None
            raise
        self.note_write()
        return result


class RemoteConnection:
    """A DB-API-like connection whose statements run on D1 (see the module docstring)."""

    def __init__(self, remote: Remote, *, cached: bool = True) -> None:
        self.remote = remote
        self.cached = cached  # False: every read asks D1 (label writes read the row they replace)
        self.memo: dict[tuple[Any, ...], Result] | None = None  # one-shot answers (see RemoteLabelStore)
        self.row_factory: Any = None
        self.text_factory: Any = str
        self.in_transaction = False
        # PRAGMA query_only = 1 (the SQL console's read-only mode): writes refused here
        self.query_only = False
        self.isolation_level = None
        self.total_changes = 0
        self._closed = False
        self._executing: set[int] = set()  # threads with a statement of this connection in flight

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> RemoteCursor:
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        s = strip_comments(sql)
        m = _QUERY_ONLY.match(s)
        if m:
            if m.group(1) is None:
                return RemoteCursor(self, Result(["query_only"], [(int(self.query_only),)], {}))
            self.query_only = m.group(1).strip("'\"").lower() in ("1", "on", "true", "yes")
            return RemoteCursor(self)
        if _NOOP.match(s) or _LOCAL_PRAGMA.match(s) or _CF_PRAGMA.match(s):
            return RemoteCursor(self)
        if self.query_only and (not is_read(s) or (s[:6].upper() == "PRAGMA" and "=" in s)):
            raise sqlite3.OperationalError("attempt to write a readonly database (read-only mode)")
        if _DATABASE_LIST.match(s):  # D1 refuses it; no file behind "main" (callers treat it as in-memory)
            return RemoteCursor(self, Result(["seq", "name", "file"], [(0, "main", "")], {}))
        if _DATA_VERSION.match(s):
            return RemoteCursor(self, Result(["data_version"], [(self.remote.data_version(),)], {}))
        if _REFUSED.search(s):
            raise sqlite3.OperationalError(
                "not available on a live D1 database (TEMP tables, ATTACH, VACUUM)")
        memo_key = (sql, tuple(params) if not isinstance(params, dict) else tuple(sorted(params.items())))
        if self.memo is not None and memo_key in self.memo:
            return RemoteCursor(self, self.memo.pop(memo_key))
        me, reading = threading.get_ident(), is_read(s)
        if reading:  # only reads can be cut: a write cut in flight may still land on D1
            self._executing.add(me)
        try:
            result = self.remote.run(sql, params, cached=self.cached)
        finally:
            self._executing.discard(me)
        if self.memo is not None and result.columns:
            self.memo[memo_key] = result
        self.total_changes += result.changes
        return RemoteCursor(self, result)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> RemoteCursor:
        """One request for all rows (a D1 batch, atomic per chunk)."""
        items = [bind(sql, p) for p in seq]
        if self.query_only:
            raise sqlite3.OperationalError("attempt to write a readonly database (read-only mode)")
        if not items:
            return RemoteCursor(self)
        if self.remote.read_only_reason:
            raise sqlite3.OperationalError(
                f"attempt to write a readonly database ({self.remote.read_only_reason})")
        results = self.remote.client.batch(items, retries=0)
        self.remote.note_write()
        cur = RemoteCursor(self)
        cur.rowcount = sum(r.changes for r in results)
        self.total_changes += cur.rowcount
        return cur

    def executescript(self, script: str) -> RemoteCursor:
        raise sqlite3.OperationalError("scripts are not run on a live D1 database")

    def cursor(self) -> RemoteCursor:
        return RemoteCursor(self)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def interrupt(self) -> None:
        """Like sqlite3's: a statement of this connection in flight ends now with "interrupted" (its
        request's socket is cut; D1 may still finish a read, which is harmless)."""
        self.remote.client.abort(set(self._executing))

    def set_authorizer(self, *_: Any) -> None:
        pass  # the SQL console's read-only guard: D1 itself and the token decide (read-only: writes refused)

    def set_progress_handler(self, *_: Any) -> None:
        pass

    def create_function(self, *_: Any, **__: Any) -> None:
        raise sqlite3.NotSupportedError("Python functions cannot run inside D1")

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> RemoteConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class RemoteDatabase(Database):
    """``Database`` over D1: same methods, remote connections. ``path`` is a local placeholder in the cache
    dir (keys for prefs and sidecars; never opened as SQLite by the panes that go through ``conn()``)."""

    def __init__(self, remote: Remote, path: Path) -> None:
        super().__init__(path, read_only_reason=remote.read_only_reason)
        self.remote = remote
        REMOTE_OPENERS[str(path)] = self._open

    def _open(self, *, read_only: bool = False) -> RemoteConnection:
        conn = RemoteConnection(self.remote)
        conn.row_factory = sqlite3.Row
        conn.query_only = read_only
        return conn

    @property
    def read_only_reason(self) -> str | None:
        return self.remote.read_only_reason

    @read_only_reason.setter
    def read_only_reason(self, value: str | None) -> None:
        if hasattr(self, "remote"):
            self.remote.read_only_reason = value

    def conn(self) -> RemoteConnection:  # type: ignore[override]
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = RemoteConnection(self.remote)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @contextmanager
    def fresh(self) -> Iterator[RemoteConnection]:  # type: ignore[override]
        conn = RemoteConnection(self.remote)
        conn.row_factory = sqlite3.Row
        yield conn

    def write(self, fn: Any) -> Any:
        if self.read_only_reason:
            from iofold_tui.data.errors import ReadOnlyError

            raise ReadOnlyError(self.read_only_reason)
        return fn(self.conn())

    def data_version(self) -> int:
        return self.remote.data_version()

    def interrupt_all(self) -> None:
        pass

    def close(self) -> None:
        self.remote.client.cancelled.set()
        self.remote.client.close()
        REMOTE_OPENERS.pop(str(self.path), None)
        self._local = threading.local()

    def status(self) -> str:
        """For the status line: ``D1 42 ms`` (the last round trip), or why it is offline."""
        if self.remote.offline:  # short: the header is one line at 80 columns; failing reads say why
            return "D1 offline"
        rtt = self.remote.client.stats.last_rtt_ms
        return "D1" if rtt is None else f"D1 {rtt:.0f} ms"
