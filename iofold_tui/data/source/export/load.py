"""Loading a D1 export into a new SQLite working copy, statement by statement into a temp file renamed
when done: statements SQLite rejects are reported, the rest still loads."""

from __future__ import annotations

import ast
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from iofold_tui.data import introspect
from iofold_tui.data.errors import SourceError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.export.pipeline import Progress, RowBatch, SplitPipeline
from iofold_tui.data.source.export.report import MAX_ERRORS_KEPT, LoadError, LoadReport, is_internal
from iofold_tui.data.source.export.statements import IncompleteInput, Statement, leading_end

_HEAD_BYTES = 65536
_FIRST_STATEMENT = re.compile(
    r"(?:PRAGMA\s+\w+|CREATE\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)*(?:TABLE|INDEX|VIEW|TRIGGER)\b"
    r"|(?:INSERT(?:\s+OR\s+[A-Za-z]+)?|REPLACE)\s+INTO\b|BEGIN(?:\s+TRANSACTION)?\s*;|DELETE\s+FROM\b"
    r"|DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER)\b)", re.I)
# Statements that could touch files outside the working copy or change how we load: never run.
_REFUSED = {"attach", "detach", "vacuum"}
_HARMLESS_PRAGMAS = {"defer_foreign_keys", "foreign_keys"}
_JS_NUMBERS = re.compile(r"no such column: -?(Infinity|NaN)\b")


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
    pos = leading_end(text)
    if pos >= len(text) and len(head) < _HEAD_BYTES:
        raise SourceError(path, "empty export: only comments, no SQL statements")
    if not _FIRST_STATEMENT.match(text, pos):
        first = one_line(text[pos:pos + 40], 40)
        raise SourceError(path, f"not a D1/SQL export (starts with {first!r}, expected SQL such as "
                                "PRAGMA/CREATE TABLE/INSERT)")


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

    def run(self, items: Iterable[Statement | RowBatch]) -> None:
        conn, rep = self.conn, self.report
        conn.execute("BEGIN")
        for item in items:
            if type(item) is RowBatch:  # the hot path
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
            pipeline = SplitPipeline(fh, size, progress)
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
