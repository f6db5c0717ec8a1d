"""SQLite connections for one opened source.

Every thread gets its own connection (sqlite3 connections must not be shared between the UI's thread
workers). Every write transaction in the package, on the user's database and on iofold-tui's own sidecar
files, goes through ``write_txn()``: BEGIN IMMEDIATE with the connection's busy timeout, then bounded
retries with backoff, COMMIT (retried the same way), ROLLBACK on any error. A second writer (wrangler
dev, a script) delays a label instead of failing it. ``is_busy()`` is the one definition of "locked".
"""

from __future__ import annotations

import codecs
import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, TypeVar

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.introspect import primary_key

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
WRITE_WAIT_S = 30.0  # how long a write waits for another process's lock, busy timeouts included


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
        pk = primary_key(conn, table)
        return quote_ident(pk[0]) if pk else "rowid"


class RowidAs:
    """A connection whose SQL says ``rowid`` for a table that has none (``WITHOUT ROWID``): each
    ``rowid`` in the text is read as the table's primary key. Only for the queries of that one table."""

    _WORD = re.compile(r"\browid\b", re.IGNORECASE)

    def __init__(self, conn: sqlite3.Connection, column: str) -> None:
        self._conn = conn
        self._column = column

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(self._WORD.sub(self._column, sql), params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def with_rowid(conn: sqlite3.Connection, table: str) -> sqlite3.Connection:
    """``conn`` itself when ``table`` has a rowid, else a :class:`RowidAs` reading rowid as its key."""
    column = rowid_column(conn, table)
    return conn if column == "rowid" else RowidAs(conn, column)  # type: ignore[return-value]


# A source that is not a file (a live D1 database: source/d1/remote.py) registers an opener for its local
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


# ---------------------------------------------------------------------------------------- transactions

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy")


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(exc: BaseException) -> bool:
    """The one definition of "another connection holds the lock": an ``OperationalError`` whose primary
    result code is SQLITE_BUSY or SQLITE_LOCKED (extended codes such as SQLITE_BUSY_SNAPSHOT included).
    An error raised by Python code rather than by SQLite (no ``sqlite_errorcode``, e.g. a DB-API shim)
    is judged by SQLite's own message for those codes."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = _primary_code(exc)
    if code is None:
        return str(exc).startswith(_BUSY_TEXT)
    return code in _BUSY_CODES


def is_readonly(exc: BaseException) -> bool:
    """SQLite refused a write: a read-only file, connection or directory (SQLITE_READONLY)."""
    return _primary_code(exc) == sqlite3.SQLITE_READONLY


def _retry_busy(conn: sqlite3.Connection, sql: str, deadline: float,
                timeout_error: Callable[[sqlite3.OperationalError], BaseException] | None) -> None:
    """``conn.execute(sql)``, retried with backoff (20 ms doubling to 0.5 s) while :func:`is_busy` and
    ``deadline`` (``time.monotonic()``) is not passed; then ``timeout_error(exc)`` or the error itself."""
    delay = 0.02
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                if timeout_error is None:
                    raise
                raise timeout_error(exc) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)


def begin_immediate(conn: sqlite3.Connection, deadline: float,
                    timeout_error: Callable[[sqlite3.OperationalError], BaseException] | None = None) -> None:
    """BEGIN IMMEDIATE, waiting for another writer until ``deadline``; a database SQLite refuses to write
    raises :class:`ReadOnlyError`."""
    try:
        _retry_busy(conn, "BEGIN IMMEDIATE", deadline, timeout_error)
    except sqlite3.OperationalError as exc:
        if is_readonly(exc):
            raise ReadOnlyError(f"the database refused the write: {exc}") from None
        raise


@contextmanager
def write_txn(conn: sqlite3.Connection, *, max_wait_s: float = WRITE_WAIT_S,
              lock: AbstractContextManager[Any] | None = None,
              timeout_error: Callable[[sqlite3.OperationalError], BaseException] | None = None,
              ) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn`` (autocommit mode, ``isolation_level=None``)::

        with write_txn(conn) as conn:
            conn.execute("INSERT ...")

    BEGIN IMMEDIATE and COMMIT wait for another process's lock (the connection's busy timeout, then
    retries with backoff) for at most ``max_wait_s`` in all; then ``timeout_error(exc)`` is raised (default:
    the busy error itself). Any error in the body rolls back. ``lock`` (e.g. a ``threading.RLock``) is held
    for the whole transaction, for connections shared between threads."""
    with lock if lock is not None else nullcontext():
        deadline = time.monotonic() + max_wait_s
        begin_immediate(conn, deadline, timeout_error)
        try:
            yield conn
            _retry_busy(conn, "COMMIT", deadline, timeout_error)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


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
        row: sqlite3.Row | None = self.conn().execute(sql, params).fetchone()
        return row

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one committed transaction (:func:`write_txn`)."""
        if self.read_only_reason:
            raise ReadOnlyError(self.read_only_reason)
        with write_txn(self.conn()) as conn:
            return fn(conn)

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


def file_fingerprint(db_path: Path | None) -> list[int | str]:
    """Size, mtime and header of a database file and its -wal: any commit moves one of them. Caches of
    figures computed from the file key on it. mtime alone can miss a write in the same clock tick, so the
    headers are read too: the database's file change counter moves on every rollback-mode commit, the
    -wal header's salts and checkpoint sequence whenever the WAL restarts (appends change its size).
    No file (None): a value equal to no other, so nothing is reused."""
    if db_path is None:
        return [time.time_ns()]
    out: list[int | str] = []
    for path, (offset, size) in ((Path(db_path), (24, 4)), (Path(f"{db_path}-wal"), (0, 32))):
        try:
            st = path.stat()
            with path.open("rb") as fh:
                fh.seek(offset)
                head = fh.read(size).hex()
            out += [st.st_size, st.st_mtime_ns, head]
        except OSError:
            out += [-1, -1, ""]
    return out
