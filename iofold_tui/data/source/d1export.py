"""Load ``wrangler d1 export`` files (spec §6) into a SQLite working copy.

Three layers: ``iter_statements`` (a streaming splitter whose memory is bounded by the largest
statement), ``load_export`` (statement by statement into a temp file, renamed when done; statements
SQLite rejects are reported, the rest still loads) and ``open_export`` (a cache keyed by the export's
size, mtime and sampled content, so re-opening an unchanged export is instant). The ``.sql`` is only
ever opened for reading.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, NamedTuple, cast

from iofold_tui.data import introspect, paths
from iofold_tui.data.db import quote_ident
from iofold_tui.data.errors import SourceError
from iofold_tui.data.sanitize import one_line

Progress = Callable[[int, int], None]

# --------------------------------------------------------------------------------------------------
# Splitter

# One run of complete top-level tokens. Possessive everywhere, so a line that stops in the middle of
# a construct (a string spanning lines) costs linear time. The run stops only at a top-level ';' or
# at the opening of a construct that does not close on this line.
_TOP = re.compile(
    r"""(?:[^'";`\[\-/]++"""
    r"""|'[^']*+(?:''[^']*+)*+'"""
    r'''|"[^"]*+(?:""[^"]*+)*+"'''
    r"""|`[^`]*+(?:``[^`]*+)*+`"""
    r"""|\[[^\]]*+\]"""
    r"""|--[^\n]*+"""
    r"""|/\*(?:[^*]++|\*(?!/))*+\*/"""
    r"""|-(?!-)|/(?!\*))*+"""
)
_OPENERS = {"'": "'", '"': '"', "`": "`", "[": "]", "/": "*/"}
_CONSTRUCT_NAMES = {"'": "a string literal", '"': "a quoted identifier", "`": "a quoted identifier",
                    "]": "a quoted identifier", "*/": "a /* comment"}
_LEAD = re.compile(r"(?:\s++|--[^\n]*+|/\*.*?(?:\*/|\Z))*+", re.S)
# _TOP, _LEAD and _SPACE match every string (each part is optional): typed so, once, instead of an
# Optional check per line.
_AlwaysMatches = Callable[..., "re.Match[str]"]
_top = cast(_AlwaysMatches, _TOP.match)
_lead = cast(_AlwaysMatches, _LEAD.match)
_SPACE = cast(_AlwaysMatches, re.compile(r"\s*+").match)
_NAME = r"""(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s(.;,"'`\[]+)"""
_CREATE = re.compile(
    rf"CREATE\s+(?:(?:TEMP|TEMPORARY)\s+)?(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(TABLE|INDEX|VIEW|TRIGGER)\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:{_NAME}\s*\.\s*)?({_NAME})", re.I)
_INSERT = re.compile(
    rf"(?:INSERT(?:\s+OR\s+[A-Za-z]+)?|REPLACE)\s+INTO\s+(?:{_NAME}\s*\.\s*)?({_NAME})", re.I
)
_DELETE = re.compile(rf"DELETE\s+FROM\s+(?:{_NAME}\s*\.\s*)?({_NAME})", re.I)
_PRAGMA = re.compile(r"PRAGMA\s+(?:\w+\s*\.\s*)?(\w+)", re.I)
_WORD = re.compile(r"[A-Za-z]+")
_TRANSACTION_WORDS = {"begin", "commit", "end", "rollback", "savepoint", "release"}


class Statement(NamedTuple):  # a NamedTuple: built once per row, it must be cheap
    sql: str
    line: int  # 1-based line of the statement's first token
    # "insert", "create table|index|view|trigger", "delete", "pragma", "transaction", "empty",
    # or its first keyword
    kind: str
    name: str | None = None  # the table inserted into / object created / pragma set
    terminated: bool = True  # False only for a last statement without its ';'


class IncompleteInput(ValueError):
    """The input ends inside a string, quoted identifier or statement."""

    def __init__(self, statement_line: int, construct: str, construct_line: int) -> None:
        self.line = statement_line
        self.construct_line = construct_line
        where = f"{construct} opened at line {construct_line}"
        super().__init__(f"file ends inside {where} (statement starting at line {statement_line})")


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] in "\"'`[":
        inner = name[1:-1]
        return inner if name[0] == "[" else inner.replace(name[0] * 2, name[0])
    return name


def classify(sql: str, pos: int = 0) -> tuple[str, str | None]:
    """(kind, name) of the statement starting at ``pos`` (after any leading comments)."""
    if sql.startswith("INSERT INTO ", pos):  # the common line: skip the keyword scan
        m = _INSERT.match(sql, pos)
        return ("insert", _unquote(m.group(1))) if m else ("insert", None)
    word = _WORD.match(sql, pos)
    if word is None:
        return ("empty" if sql[pos:].strip() in ("", ";") else "other"), None
    verb = word.group().lower()
    if verb == "create":
        m = _CREATE.match(sql, pos)
        return (f"create {m.group(1).lower()}", _unquote(m.group(2))) if m else ("create", None)
    if verb in ("insert", "replace"):
        m = _INSERT.match(sql, pos)
        return "insert", (_unquote(m.group(1)) if m else None)
    if verb == "delete":
        m = _DELETE.match(sql, pos)
        return "delete", (_unquote(m.group(1)) if m else None)
    if verb == "pragma":
        m = _PRAGMA.match(sql, pos)
        return "pragma", (m.group(1).lower() if m else None)
    if verb in _TRANSACTION_WORDS:
        return "transaction", None
    return verb, None


def _statement(text: str, line: int, terminated: bool = True) -> Statement:
    lead = _lead(text).end()
    if lead:
        line += text.count("\n", 0, lead)
        text = text[lead:]
    if not terminated:
        text = text.rstrip()
    kind, name = classify(text)
    return Statement(text, line, kind, name, terminated)


def _one_line_statement(text: str, line: int) -> Statement:
    """The common wrangler line ``INSERT INTO "t" VALUES(...);`` without the regexes."""
    if text.startswith('INSERT INTO "'):
        q = text.find('"', 13)
        if q > 13 and text[q + 1] != '"':
            return Statement(text, line, "insert", text[13:q])
    return _statement(text, line)


def iter_statements(stream: IO[bytes] | IO[str] | Iterable[str] | Iterable[bytes]) -> Iterator[Statement]:
    """Split SQL into statements, reading line by line (binary or text streams, or any iterable of lines).

    Lines must keep their line ends (files opened in binary mode, or text mode with ``newline=''``).
    Raises ``IncompleteInput`` if the input ends inside a string, quoted identifier or trigger body.
    """
    parts: list[str] = []  # the current statement's text so far
    start = 0  # line where the current statement's text begins
    state: str | None = None  # closing delimiter of an open construct spanning lines
    opened_at = 0  # line where that construct was opened
    lineno = 0
    top, space = _top, _SPACE
    for raw in stream:
        # surrogateescape keeps invalid UTF-8 visible to the loader (it rejects that statement).
        line = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        lineno += 1
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]  # a byte-order mark left by a Windows editor
        if not parts and state is None:
            n = len(line)
            end = top(line).end()
            if end < n and line[end] == ";" and space(line, end + 1).end() >= n and line[0] == "I":
                yield _one_line_statement(line[: end + 1], lineno)  # fast path: one INSERT, one line
                continue
            if line.isspace():
                continue
            start = lineno
        pos = seg = 0
        n = len(line)
        while True:
            if state is not None:
                pos = _close(line, pos, state)
                if pos < 0:
                    break
                state = None
            end = top(line, pos).end()
            if end >= n:
                break
            ch = line[end]
            if ch != ";":
                state, opened_at = _OPENERS[ch], lineno
                pos = end + (2 if ch == "/" else 1)
                continue
            pos = end + 1
            text = line[seg:pos] if not parts else "".join(parts) + line[seg:pos]
            stmt = _statement(text, start)
            if stmt.kind == "create trigger" and not sqlite3.complete_statement(stmt.sql):
                continue  # a ';' inside BEGIN ... END
            parts.clear()
            seg = pos
            yield stmt
            if space(line, pos).end() >= n:
                break
            start = lineno
        if seg == 0:
            parts.append(line)
        elif seg < n and not line[seg:].isspace():
            parts.append(line[seg:])
    if state is not None and state != "*/":  # SQLite itself accepts a comment left open at the end
        raise IncompleteInput(start, _CONSTRUCT_NAMES[state], opened_at)
    if parts:
        text = "".join(parts)
        lead = _lead(text).end()
        if lead < len(text):
            yield _statement(text, start, terminated=False)


def _close(line: str, pos: int, closer: str) -> int:
    """Index just past ``closer`` in ``line`` from ``pos`` (doubled quotes are escapes), or -1."""
    while True:
        i = line.find(closer, pos)
        if i < 0:
            return -1
        end = i + len(closer)
        if closer in "'\"`" and line.startswith(closer, end):
            pos = end + 1
            continue
        return end


# --------------------------------------------------------------------------------------------------
# Loader

_HEAD_BYTES = 65536
_FIRST_STATEMENT = re.compile(
    r"(?:PRAGMA\s+\w+|CREATE\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)*(?:TABLE|INDEX|VIEW|TRIGGER)\b"
    r"|(?:INSERT(?:\s+OR\s+[A-Za-z]+)?|REPLACE)\s+INTO\b|BEGIN(?:\s+TRANSACTION)?\s*;|DELETE\s+FROM\b"
    r"|DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER)\b)", re.I)
# Statements that could touch files outside the working copy or change how we load: never run.
_REFUSED = {"attach", "detach", "vacuum"}
_HARMLESS_PRAGMAS = {"defer_foreign_keys", "foreign_keys"}
MAX_ERRORS_KEPT = 200
BATCH_ROWS = 50  # rows per combined INSERT (more is slower: SQLite's program for it grows)
BATCH_BYTES = 1 << 20
PIPE_ITEMS, PIPE_BYTES, PIPE_DEPTH = 64, 256 << 10, 4  # handed over from the splitting thread at a time
_JS_NUMBERS = re.compile(r"no such column: -?(Infinity|NaN)\b")


@dataclass
class LoadError:
    line: int
    message: str
    snippet: str  # already passed through sanitize.one_line


@dataclass
class LoadReport:
    source: str
    size: int = 0
    seconds: float = 0.0
    statements: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # rows inserted per table
    tables: list[str] = field(default_factory=list)  # CREATE TABLE seen, in order
    views: list[str] = field(default_factory=list)
    indexes: int = 0
    triggers: int = 0
    internal_tables: list[str] = field(default_factory=list)  # d1_migrations, _cf_*, sqlite_sequence
    errors: list[LoadError] = field(default_factory=list)  # the first MAX_ERRORS_KEPT
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    from_cache: bool = False

    @property
    def has_schema(self) -> bool:
        return bool(self.tables)

    @property
    def has_data(self) -> bool:
        return any(n for table, n in self.rows.items() if not is_internal(table))

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("from_cache")
        return json.dumps({"format": CACHE_FORMAT, **data}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> LoadReport:
        data = json.loads(text)
        if data.pop("format", None) != CACHE_FORMAT:
            raise ValueError("cache format changed")
        data["errors"] = [LoadError(**e) for e in data["errors"]]
        return cls(**data)

    def summary_lines(self) -> list[str]:
        """Short human-readable lines (already safe to show) for the UI/CLI."""
        how = "reused cached working copy" if self.from_cache else f"loaded in {self.seconds:.1f} s"
        lines = [f"D1 export: {self.statements:,} statements, {self.size / 1e6:,.1f} MB ({how})"]
        if self.has_data:
            top = sorted(self.rows.items(), key=lambda kv: -kv[1])[:6]
            lines.append("rows: " + ", ".join(f"{one_line(t, 40)} {n:,}" for t, n in top)
                         + (", …" if len(self.rows) > 6 else ""))
        elif self.has_schema:
            lines.append("export holds the schema only, no rows (made with --no-data?)")
        if self.has_schema and self.has_data and not self.indexes:
            lines.append("export has no indexes (made with --table?): browsing may be slower")
        if self.internal_tables:
            lines.append("internal tables: " + ", ".join(one_line(t, 40) for t in self.internal_tables))
        if self.error_count:
            first = self.errors[0]
            lines.append(f"{self.error_count:,} statement(s) rejected by SQLite and skipped; first at line "
                         f"{first.line}: {one_line(first.message, 120)}")
        lines.extend(one_line(w, 300) for w in self.warnings)
        return lines


CACHE_FORMAT = 1


def is_internal(table: str) -> bool:
    """Tables wrangler/D1/SQLite keep for themselves, not the user's data."""
    return table in ("sqlite_sequence", "d1_migrations") or table.startswith("_cf_")


def _check_head(path: Path, head: bytes) -> None:
    """Decide by content that this is SQL text worth loading (cheap: the first 64 KB)."""
    if not head.strip():
        raise SourceError(path, "empty file: not a wrangler d1 export")
    if head.startswith(b"SQLite format 3\x00"):
        raise SourceError(path, "this is a SQLite database, not a SQL export")
    if b"\x00" in head:
        raise SourceError(path, "not a D1/SQL export (binary data)")
    text = head.decode("utf-8", "replace")
    if text.count("\ufffd") > len(text) // 10:  # a stray bad byte is a row error later, not this
        raise SourceError(path, "not a D1/SQL export (not UTF-8 text)")
    text = text.removeprefix("\ufeff")
    pos = _lead(text).end()
    if pos >= len(text) and len(head) < _HEAD_BYTES:
        raise SourceError(path, "empty export: only comments, no SQL statements")
    if not _FIRST_STATEMENT.match(text, pos):
        first = one_line(text[pos:pos + 40], 40)
        raise SourceError(path, f"not a D1/SQL export (starts with {first!r}, expected SQL such as "
                                "PRAGMA/CREATE TABLE/INSERT)")


class _Batch(NamedTuple):
    """Consecutive one-row ``INSERT INTO "t" VALUES(...);`` lines sent to SQLite as one statement."""

    table: str
    sql: str
    rows: list[Statement]


def _combine(rows: list[Statement], head: str) -> Statement | _Batch:
    if len(rows) == 1:
        return rows[0]
    cut = len(head) - 1  # keep each row's "(...)"
    return _Batch(rows[0].name or "?", head[:cut] + ",".join([r.sql[cut:-1] for r in rows]) + ";", rows)


def group_rows(statements: Iterable[Statement]) -> Iterator[Statement | _Batch]:
    """Batch consecutive wrangler-style INSERT lines of one table; other statements pass through.

    One SQLite call per ~50 rows instead of one per row is what keeps pace with the sqlite3 CLI.
    """
    rows: list[Statement] = []
    head = ""
    size = 0
    for stmt in statements:
        if stmt.kind == "insert":
            sql = stmt.sql
            if rows and size < BATCH_BYTES and len(rows) < BATCH_ROWS and sql.startswith(head) \
                    and sql.endswith(");"):
                rows.append(stmt)
                size += len(sql)
                continue
            if rows:
                yield _combine(rows, head)
                rows = []
            name = stmt.name
            if name and '"' not in name:
                head = f"INSERT INTO {quote_ident(name)} VALUES("
                if sql.startswith(head) and sql.endswith(");"):
                    rows, size = [stmt], len(sql)
                    continue
        elif rows:
            yield _combine(rows, head)
            rows = []
        yield stmt
    if rows:
        yield _combine(rows, head)


class _Pipeline:
    """Split on a worker thread while the caller's thread runs SQLite.

    sqlite3 releases the GIL while it parses and steps, so splitting the next rows overlaps with
    inserting the current ones. The queue is bounded: memory stays a few batches deep. Progress is
    reported from the caller's thread, never from the worker.
    """

    _END = object()

    def __init__(self, fh: IO[bytes], total: int, progress: Progress | None) -> None:
        self.fh, self.total, self.progress = fh, total, progress
        self.queue: queue.Queue[object] = queue.Queue(maxsize=PIPE_DEPTH)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="d1export-split", daemon=True)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            batch: list[Statement | _Batch] = []
            size = 0
            for item in group_rows(iter_statements(self.fh)):
                # Hand the GIL back now and then: the SQLite thread, whose work does not hold it,
                # would otherwise wait a whole switch interval (5 ms) each time it needs it.
                time.sleep(0)
                batch.append(item)
                size += len(item.sql)
                if len(batch) >= PIPE_ITEMS or size >= PIPE_BYTES:
                    if not self._put((batch, self.fh.tell())):
                        return
                    batch, size = [], 0
            if self._put((batch, self.total)):
                self._put(self._END)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._put(exc)

    def __iter__(self) -> Iterator[Statement | _Batch]:
        self.thread.start()
        step = max(self.total // 200, 1 << 20)
        mark = step
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            batch, done = cast("tuple[list[Statement | _Batch], int]", item)
            if self.progress and (done >= mark or done == self.total):
                self.progress(done, self.total)
                mark = done + step
            yield from batch

    def close(self) -> None:
        """Stop the worker (also when the caller gave up half-way) before the file is closed."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def _connect_for_load(path: Path) -> sqlite3.Connection:
    # cached_statements=0: every INSERT is unique, caching would only pin the largest ones in memory.
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=0)
    # journal_mode=MEMORY, not OFF: a failing multi-row INSERT must roll back its own partial rows.
    # Pages new in this transaction are never journaled, so the journal stays tiny on a fresh file.
    for pragma in ("journal_mode=MEMORY", "synchronous=OFF", "foreign_keys=OFF", "locking_mode=EXCLUSIVE",
                   "cache_size=-32768", "temp_store=FILE"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class _Loader:
    """Runs statements into one connection and fills the report."""

    def __init__(self, path: Path, conn: sqlite3.Connection, report: LoadReport) -> None:
        self.path, self.conn, self.report = path, conn, report

    def error(self, stmt: Statement, message: str) -> None:
        rep = self.report
        rep.error_count += 1
        if len(rep.errors) < MAX_ERRORS_KEPT:
            m = _JS_NUMBERS.search(message)
            if m:
                message += f" (D1 wrote a JavaScript {m.group(1)} as a bare word; the row was skipped)"
            rep.errors.append(LoadError(stmt.line, message, one_line(stmt.sql[:200], 120)))

    def run(self, items: Iterable[Statement | _Batch]) -> None:
        conn, rep = self.conn, self.report
        conn.execute("BEGIN")
        for item in items:
            if type(item) is _Batch:  # the hot path
                rep.statements += len(item.rows)
                try:
                    conn.execute(item.sql)  # journal_mode=MEMORY: a failure leaves no partial rows
                except (sqlite3.Error, sqlite3.Warning, ValueError):
                    for stmt in item.rows:  # retry row by row to blame the right lines
                        if self.execute(stmt):
                            self.count(stmt.name, 1)
                else:
                    self.count(item.table, len(item.rows))
                continue
            stmt = item  # type: ignore[assignment]
            rep.statements += 1
            if stmt.kind == "insert":
                if self.execute(stmt):
                    self.count(stmt.name, 1)
            elif not self.skip(stmt) and self.execute(stmt):
                self.note(stmt)
        if conn.in_transaction:
            conn.execute("COMMIT")

    def count(self, table: str | None, n: int) -> None:
        key = table or "?"
        self.report.rows[key] = self.report.rows.get(key, 0) + n

    def execute(self, stmt: Statement) -> bool:
        try:
            self.conn.execute(stmt.sql)
            return True
        except (sqlite3.Error, sqlite3.Warning, ValueError) as exc:  # ValueError: NUL or invalid UTF-8
            self.failed(stmt, exc)
            return False

    def skip(self, stmt: Statement) -> bool:
        kind, name = stmt.kind, stmt.name
        if kind in ("transaction", "empty"):
            return True  # our own transaction wraps the load (D1 exports have none anyway)
        if kind == "pragma":
            if name not in _HARMLESS_PRAGMAS and not any(
                f"PRAGMA {name} " in w for w in self.report.warnings
            ):
                self.report.warnings.append(f"line {stmt.line}: PRAGMA {name} ignored")
            return True
        if kind in _REFUSED:
            self.error(stmt, f"{kind.upper()} is not allowed in an export (statement skipped)")
            return True
        if kind == "create table" and name and name.lower() == "sqlite_sequence":
            self.internal(name)
            return True  # SQLite creates it itself with the first AUTOINCREMENT table
        return False

    def failed(self, stmt: Statement, exc: Exception) -> None:
        message = str(exc) if not isinstance(exc, UnicodeError) else "invalid UTF-8 in statement"
        if message.startswith("no such table:"):
            table = message.split(":", 1)[1].strip()
            if table == "sqlite_sequence":
                return  # `DELETE FROM sqlite_sequence` in an export without AUTOINCREMENT tables
            if not self.report.tables:
                raise SourceError(self.path, f'data-only export: no CREATE TABLE for "{one_line(table, 60)}" '
                                  "(made with --no-schema); run wrangler d1 export without --no-schema")
        if not stmt.terminated and ("incomplete input" in message or "syntax error" in message):
            raise SourceError(self.path, f"truncated export: file ends inside the statement starting at "
                              f"line {stmt.line}")
        self.error(stmt, message)
        if not self.conn.in_transaction:  # some errors end the transaction: keep loading in a new one
            self.conn.execute("BEGIN")

    def note(self, stmt: Statement) -> None:
        rep, kind, name = self.report, stmt.kind, stmt.name or "?"
        if kind == "create table":
            rep.tables.append(name)
            if is_internal(name):
                self.internal(name)
        elif kind == "create view":
            rep.views.append(name)
        elif kind == "create index":
            rep.indexes += 1
        elif kind == "create trigger":
            rep.triggers += 1
        elif kind == "delete" and name == "sqlite_sequence":
            self.internal(name)
        if not stmt.terminated:
            rep.warnings.append(f"the last statement (line {stmt.line}) has no terminating ';'")

    def internal(self, name: str) -> None:
        if name not in self.report.internal_tables:
            self.report.internal_tables.append(name)


def _code_warnings(conn: sqlite3.Connection) -> list[str]:
    """D1's newline round-trip bug (spec §6): flag eval code it may have altered."""
    cols = introspect.column_set(conn, "evals")
    if not {"id", "code"} <= cols:
        return []
    hazard, broken = [], []
    for eval_id, code in conn.execute(
            "SELECT id, code FROM evals WHERE typeof(code) = 'text' AND instr(code, char(10)) > 0 "
            "AND length(code) < 1000000 LIMIT 2000"):
        if "\\n" in code:
            hazard.append(str(eval_id))
        try:
            ast.parse(code)  # parsing only, never executed
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            broken.append(str(eval_id))
    out = []
    if hazard:
        out.append(f"{len(hazard)} eval(s) have code with both a newline and a literal \\n: a D1 "
                   f"export/import round trip alters it ({', '.join(hazard[:5])})")
    if broken:
        out.append(f"{len(broken)} eval(s) have code that does not parse as Python; if it held \\n escapes, "
                   f"wrangler d1 export turned them into real newlines ({', '.join(broken[:5])})")
    return out


def load_export(sql_path: Path, dest: Path, *, progress: Progress | None = None) -> LoadReport:
    """Build a SQLite working copy of a D1 export at ``dest`` (atomically: temp file, then rename)."""
    sql_path, dest = Path(sql_path), Path(dest)
    try:
        size = sql_path.stat().st_size
        with sql_path.open("rb") as fh:
            _check_head(sql_path, fh.read(_HEAD_BYTES))
    except OSError as exc:
        raise SourceError(sql_path, f"cannot read: {exc.strerror or exc}") from None
    report = LoadReport(source=str(sql_path.resolve()), size=size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.loading-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    ok = False
    conn = None
    try:
        conn = _connect_for_load(tmp)
        with sql_path.open("rb", buffering=1 << 20) as fh:
            pipeline = _Pipeline(fh, size, progress)
            try:
                _Loader(sql_path, conn, report).run(pipeline)
            except IncompleteInput as exc:
                raise SourceError(sql_path, f"truncated export: {exc}") from None
            finally:
                pipeline.close()
        if not report.statements:
            raise SourceError(sql_path, "empty export: no SQL statements")
        report.warnings.extend(_code_warnings(conn))
        conn.execute("PRAGMA journal_mode=DELETE")  # a normal database from here on
        conn.close()
        report.seconds = round(time.perf_counter() - started, 3)
        os.replace(tmp, dest)
        ok = True
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SourceError(sql_path, f"cannot build the working copy: {reason}") from None
    finally:
        if not ok:
            if conn is not None:
                conn.close()
            tmp.unlink(missing_ok=True)
    return report


# --------------------------------------------------------------------------------------------------
# Cache

_SAMPLE_BLOCK = 16384
_SAMPLES = 32
_FULL_HASH_LIMIT = 4 << 20


def export_key(sql_path: Path) -> str:
    """Size + mtime + a hash of sampled blocks (whole file when small): milliseconds even for 1 GB."""
    st = sql_path.stat()
    digest = hashlib.blake2b(f"{CACHE_FORMAT}:{st.st_size}:{st.st_mtime_ns}".encode(), digest_size=12)
    with sql_path.open("rb") as fh:
        if st.st_size <= _FULL_HASH_LIMIT:
            digest.update(fh.read())
        else:
            for i in range(_SAMPLES + 1):
                fh.seek((st.st_size - _SAMPLE_BLOCK) * i // _SAMPLES)
                digest.update(fh.read(_SAMPLE_BLOCK))
    return digest.hexdigest()


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40] or "export"


def _evict_older(folder: Path, source: str, keep: Path) -> None:
    """Drop working copies of earlier versions of the same export (same path, other content)."""
    for report_file in folder.glob("*.report.json"):
        db = report_file.with_name(report_file.name.removesuffix(".report.json") + ".sqlite")
        if db == keep:
            continue
        try:
            if json.loads(report_file.read_text()).get("source") == source:
                db.unlink(missing_ok=True)
                report_file.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue


def open_export(sql_path: Path, *, progress: Progress | None = None) -> tuple[Path, LoadReport]:
    """The working copy of ``sql_path`` from the cache, loading it first if the export is new or changed."""
    sql_path = Path(sql_path)
    try:
        key = export_key(sql_path)
    except OSError as exc:
        raise SourceError(sql_path, f"cannot read: {exc.strerror or exc}") from None
    folder = paths.cache_dir() / "exports"
    db = folder / f"{_safe_stem(sql_path)}-{key}.sqlite"
    report_file = db.with_name(db.name.removesuffix(".sqlite") + ".report.json")
    if db.is_file() and report_file.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            report = LoadReport.from_json(report_file.read_text())
            report.from_cache = True
            return db, report
    report = load_export(sql_path, db, progress=progress)
    tmp = report_file.with_name(f"{report_file.name}.{os.getpid()}")
    tmp.write_text(report.to_json())
    os.replace(tmp, report_file)
    _evict_older(folder, report.source, db)
    return db, report
