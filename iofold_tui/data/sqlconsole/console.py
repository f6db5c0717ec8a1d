"""The SQL console core: one statement at a time on a private connection, streamed in pages.

Read-only unless writes are enabled for the session (the UI confirms first). ``execute`` and
``fetch_page`` block, so the UI calls them from a worker; ``interrupt`` may be called from any thread.
Nothing raises to the caller for bad SQL: errors, refusals and interruptions come back as values.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from iofold_tui.data.db import connect
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.sqlconsole.guard import WRITE_KEYWORDS, ReadOnlyAuthorizer, leading_keyword
from iofold_tui.data.sqlconsole.history import SqlHistory

PROGRESS_STEPS = 10_000  # VM instructions between cancellation checks
# A result column whose name says it holds a secret (integrations.api_key_encrypted, *_token, password…)
# is masked unless the user asks to see it (`sql --show-secrets`, the SQL pane's toggle key).
_SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|credential|api_?auth", re.IGNORECASE)
_NOT_SECRET = frozenset({"key"})  # json_each()/json_tree()'s own column: the JSON key, not a secret


def is_secret_column(name: str) -> bool:
    return name.lower() not in _NOT_SECRET and _SECRET_NAME.search(name) is not None


def mask(value: object) -> str:
    """What a secret cell shows: that something is there and its length, never the value."""
    return f"•••••• hidden ({len(value) if isinstance(value, str | bytes) else 'a'} "\
           f"{'chars' if isinstance(value, str) else 'bytes' if isinstance(value, bytes) else 'value'})"
Cell = str | None  # None is SQL NULL; everything else is display-safe one-line text


@dataclass(frozen=True)
class Page:
    rows: list[tuple[Cell, ...]]
    done: bool  # no more rows (or the statement stopped)
    error: str | None = None
    interrupted: bool = False


@dataclass
class ResultCursor:
    """The outcome of one statement. Rows (if any) are pulled page by page with ``fetch_page``."""

    sql: str
    columns: list[str] = field(default_factory=list)
    message: str = ""  # one line: "3 rows changed", the error, the refusal…
    error: str | None = None
    refused: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0
    rows_fetched: int = 0
    done: bool = True
    masked: tuple[int, ...] = ()  # indexes of the columns shown masked (secret names)
    _cursor: sqlite3.Cursor | None = field(default=None, repr=False)
    _console: SqlConsole | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def fetch_page(self, n: int = 200) -> Page:
        """The next ``n`` rows; never more than asked for is read from SQLite."""
        if self.done or self._cursor is None or self._console is None:
            return Page([], True, self.error, self.interrupted)
        return self._console._fetch(self, max(1, n))

    def close(self) -> None:
        if self._cursor is not None:
            with contextlib.suppress(sqlite3.Error):
                self._cursor.close()
        self._cursor = None
        self.done = True


def _one_line_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return one_line(text[0] if text else type(exc).__name__, 300)


class SqlConsole:
    """A private connection for user SQL. ``write_hint`` names how the UI enables writes."""

    write_hint = "enable writes for this session to run it"

    def __init__(self, db_path: Path, *, allow_writes: bool = False, immutable: bool = False,
                 writes_blocked: str | None = None, cell_width: int = 500) -> None:
        self.db_path = Path(db_path)
        self.immutable = immutable
        self.writes_blocked = writes_blocked  # why this source can never be written, if so
        self.cell_width = cell_width
        self.show_secrets = False  # secret-named columns are masked (see is_secret_column)
        self.history = SqlHistory(self.db_path)
        self._allow_writes = False
        self._conn: sqlite3.Connection | None = None
        self._guard = ReadOnlyAuthorizer()
        self._lock = threading.RLock()
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._current: ResultCursor | None = None
        if allow_writes:
            self.set_allow_writes(True)

    # -- connection ---------------------------------------------------------------------------
    @property
    def allow_writes(self) -> bool:
        return self._allow_writes

    @property
    def running(self) -> bool:
        return self._running.is_set()

    def wait_running(self, timeout: float) -> bool:
        """Block until a statement is executing or fetching (e.g. before offering "cancel")."""
        return self._running.wait(timeout)

    def set_allow_writes(self, allow: bool) -> None:
        """Switch the session's write mode (reopens the connection; an open result is closed).

        Raises ReadOnlyError when the source itself cannot be written (``writes_blocked``).
        """
        if allow and (self.writes_blocked or self.immutable):
            raise ReadOnlyError(self.writes_blocked or "this source is opened immutable")
        self.interrupt()  # a running statement would hold the lock; the mode switch ends it anyway
        with self._lock:
            self._close_conn()
            self._allow_writes = allow

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.db_path, read_only=not self._allow_writes, immutable=self.immutable)
            conn.row_factory = None  # plain tuples: cheaper, and column names come from description
            # connect() already decodes invalid UTF-8 tolerantly (bad bytes shown as ⟨\xFF⟩).
            if not self._allow_writes:
                conn.execute("PRAGMA query_only = 1")
                conn.set_authorizer(self._guard)
            conn.set_progress_handler(self._should_stop, PROGRESS_STEPS)
            self._conn = conn
        return self._conn

    def _should_stop(self) -> int:
        return 1 if self._cancel.is_set() else 0

    def _close_conn(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Close the unfinished result, if any. An open result holds a read transaction, which keeps
        other connections' commits waiting on a rollback-journal database: call this when the pane hides."""
        with self._lock:
            if self._current is not None:
                self._current.close()
                self._current = None

    def close(self) -> None:
        self.interrupt()
        with self._lock:
            self._close_conn()

    def interrupt(self) -> None:
        """Stop the running statement (from any thread): it ends with the error "interrupted"."""
        self._cancel.set()  # caught by the progress handler even if the statement has not started yet
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                conn.interrupt()

    # -- statements ---------------------------------------------------------------------------
    def _refusal(self, what: str) -> str:
        return f"refused: the console is read-only and this statement writes ({what}); {self.write_hint}"

    def execute(self, sql: str) -> ResultCursor:
        """Run one statement; rows stay in SQLite until ``fetch_page``. Never raises for bad SQL."""
        text = sql.strip()
        result = ResultCursor(sql=text)
        keyword = leading_keyword(text)
        if not keyword:
            result.error = result.message = "nothing to run"
            return result
        self.history.append(text)
        with self._lock:
            if self._current is not None:
                self._current.close()
                self._current = None
            if not self._allow_writes and keyword in WRITE_KEYWORDS:
                result.refused = True
                result.error = result.message = self._refusal(keyword)
                return result
            started = time.perf_counter()
            self._cancel.clear()
            self._guard.denied = None
            self._running.set()
            try:
                conn = self._connection()
                before = conn.total_changes
                cursor = conn.execute(text)
            except (sqlite3.Error, sqlite3.Warning, ValueError) as exc:  # ValueError: NUL in the SQL text
                self._fail(result, exc)
                return result
            finally:
                self._running.clear()
                result.elapsed_s = time.perf_counter() - started
            if cursor.description is None:
                changed = conn.total_changes - before
                result.message = f"{changed:,} row(s) changed" if changed else "done"
                cursor.close()
                return result
            result.columns = [one_line(d[0], 80) for d in cursor.description]
            if not self.show_secrets:
                result.masked = tuple(
                    i for i, d in enumerate(cursor.description) if is_secret_column(str(d[0]))
                )
            result.message = f"{len(result.columns)} column(s)"
            result.done = False
            result._cursor = cursor
            result._console = self
            self._current = result
            return result

    def _fail(self, result: ResultCursor, exc: BaseException) -> None:
        message = _one_line_error(exc)
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.Warning) and "one statement" in message:
            message = "one statement at a time: run the statements separately"
        elif self._guard.denied is not None and "not authorized" in message:
            result.refused = True
            message = self._refusal(self._guard.denied)
        elif message == "interrupted":
            result.interrupted = True
        result.error = result.message = message
        result.done = True

    def _cell(self, value: object) -> Cell:
        if value is None:
            return None
        if type(value) is int or type(value) is float:  # sqlite3 yields only these, str, bytes, None
            return str(value)  # no control characters possible: skip the sanitizer (2× faster pages)
        return one_line(value, self.cell_width)

    def _fetch(self, result: ResultCursor, n: int) -> Page:
        with self._lock:
            cursor = result._cursor
            if cursor is None or result.done:
                return Page([], True, result.error, result.interrupted)
            self._cancel.clear()
            self._running.set()
            try:
                raw = cursor.fetchmany(n)
            except (sqlite3.Error, ValueError) as exc:  # runtime errors surface while stepping
                self._fail(result, exc)
                result.close()
                return Page([], True, result.error, result.interrupted)
            finally:
                self._running.clear()
        rows = [tuple(map(self._cell, row)) for row in raw]
        if result.masked:
            rows = [tuple(mask(v) if i in result.masked and v is not None else c
                          for i, (v, c) in enumerate(zip(row, cells, strict=True)))
                    for row, cells in zip(raw, rows, strict=True)]
        result.rows_fetched += len(rows)
        if len(raw) < n:
            result.close()
            result.message = f"{result.rows_fetched:,} row(s)"
        return Page(rows, result.done)
