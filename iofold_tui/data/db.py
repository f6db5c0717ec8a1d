"""SQLite connections for one opened source.

Every thread gets its own connection (sqlite3 connections must not be shared between the UI's thread
workers). Writes go through ``write()``: BEGIN IMMEDIATE with a busy timeout and bounded retries, so a
second writer (wrangler dev, a script) delays a label instead of failing it.
"""

from __future__ import annotations

import codecs
import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from iofold_tui.data.errors import ReadOnlyError

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
WRITE_RETRIES = 5


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: every byte that is not UTF-8 becomes a visible ``⟨\\xFF⟩``."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(f"⟨\\x{b:02X}⟩" for b in bad), exc.end


UNDECODABLE = "iofold-undecodable"
codecs.register_error(UNDECODABLE, _mark_undecodable)

# TEXT values that are not valid UTF-8 (CAST(X'ff' AS TEXT), lone surrogates written as CESU-8) would
# fail a whole query with "Could not decode to UTF-8"; every connection decodes tolerantly instead, and
# the bad bytes stay visible as ⟨\xFF⟩. A partial of ``str`` runs in C: no Python frame per value.
decode_text = functools.partial(str, encoding="utf-8", errors=UNDECODABLE)


def tolerant(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Make ``conn`` decode any TEXT value (used by every connection the app opens on user data)."""
    conn.text_factory = decode_text
    return conn


def quote_ident(name: object) -> str:
    """An SQL identifier, double-quoted with embedded quotes doubled: the one way names enter SQL text."""
    return '"' + str(name).replace('"', '""') + '"'


def rowid_column(conn: sqlite3.Connection, table: str) -> str:
    """``rowid``, or for a ``WITHOUT ROWID`` table its (first) primary-key column, quoted: the unique,
    indexed tie-breaker keyset paging needs (``no such column: rowid`` otherwise)."""
    try:
        conn.execute(f"SELECT rowid FROM {quote_ident(table)} LIMIT 0")
        return "rowid"
    except sqlite3.OperationalError:
        pk = sorted((r[5], r[1]) for r in conn.execute(f"PRAGMA table_info({quote_ident(table)})") if r[5])
        return quote_ident(pk[0][1]) if pk else "rowid"


class RowidAs:
    """A connection whose SQL says ``rowid`` for a table that has none (``WITHOUT ROWID``): each
    ``rowid`` in the text is read as the table's primary key. Only for the queries of that one table."""

    _WORD = re.compile(r"\browid\b", re.IGNORECASE)

    def __init__(self, conn: sqlite3.Connection, column: str) -> None:
        self._conn = conn
        self._column = column

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(self._WORD.sub(self._column, sql), params)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - everything else is the connection's
        return getattr(self._conn, name)


def with_rowid(conn: sqlite3.Connection, table: str) -> sqlite3.Connection:
    """``conn`` itself when ``table`` has a rowid, else a :class:`RowidAs` reading rowid as its key."""
    column = rowid_column(conn, table)
    return conn if column == "rowid" else RowidAs(conn, column)  # type: ignore[return-value]


# A source that is not a file (a live D1 database: source/d1remote.py) registers an opener for its local
# placeholder path; ``connect`` on that path returns the opener's connection (same execute/cursor interface),
# so code that opens ``db.path`` itself (SQL console, matrix grid) works on it unchanged.
REMOTE_OPENERS: dict[str, Callable[..., Any]] = {}


def connect(path: Path, *, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """Open ``path`` (read-only through a URI so SQLite itself refuses writes)."""
    opener = REMOTE_OPENERS.get(str(path))
    if opener is not None:
        return opener(read_only=read_only or immutable)  # type: ignore[no-any-return]
    if read_only or immutable:
        flags = "mode=ro&immutable=1" if immutable else "mode=ro"
        uri = f"{Path(path).resolve().as_uri()}?{flags}"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    tolerant(conn)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class Database:
    """An opened iofold database: per-thread connections plus a safe write path."""

    def __init__(self, path: Path, *, read_only_reason: str | None = None, immutable: bool = False) -> None:
        self.path = Path(path)
        self.read_only_reason = read_only_reason
        self.immutable = immutable
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=self.read_only, immutable=self.immutable)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def fresh(self) -> Iterator[sqlite3.Connection]:
        """A private connection, e.g. for a query the user may interrupt."""
        conn = connect(self.path, read_only=self.read_only, immutable=self.immutable)
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, params).fetchone()

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one committed transaction; retry when another process holds the lock."""
        if self.read_only_reason:
            raise ReadOnlyError(self.read_only_reason)
        conn = self.conn()
        delay = 0.05
        for attempt in range(WRITE_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    if attempt == WRITE_RETRIES - 1:
                        raise
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        raise sqlite3.OperationalError("database is locked")

    def data_version(self) -> int:
        """Changes by *other* connections bump this; used to refresh views when the file changed underneath.
        Always read on one dedicated connection: the value is local to a connection, and thread workers run
        on whichever pool thread is free (each with its own ``conn()``)."""
        with self._lock:
            if self._watch is None:
                self._watch = connect(self.path, read_only=self.read_only, immutable=self.immutable)
                self._all.append(self._watch)
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def interrupt_all(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.interrupt()

    def close(self) -> None:
        """Close this thread's connection and the watcher's; let go of the others. Closing a connection
        another thread is running a query on crashes the sqlite3 module (a worker still reading when the
        app quits): those are interrupted, and closed when that thread lets go of them."""
        mine = getattr(self._local, "conn", None)
        with self._lock:
            for conn in self._all:
                if conn is mine or conn is self._watch:
                    with suppress(sqlite3.ProgrammingError):
                        conn.close()
                else:
                    conn.interrupt()
            self._all.clear()
            self._watch = None
        self._local = threading.local()  # the other threads' references go with it
