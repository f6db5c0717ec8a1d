"""The streaming splitter of ``wrangler d1 export`` files (spec §6): ``iter_statements`` yields one
``Statement`` at a time, classified, and its memory is bounded by the largest statement."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import IO, NamedTuple, cast

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


def leading_end(text: str) -> int:
    """Where the first token of ``text`` starts: after whitespace and comments."""
    return _lead(text).end()
