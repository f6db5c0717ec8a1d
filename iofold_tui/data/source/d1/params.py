"""Statements for D1's REST API: which ones only read, and parameters rewritten to what D1 accepts
(positional only, at most MAX_PARAMS; past that, and for BLOBs, values inlined as literals that mean the
same value). tests/test_d1_shim.py checks with hypothesis that a rewritten statement means what SQLite would
have run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from iofold_tui.data.source.d1.api import MAX_PARAMS

_COMMENTS = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)+", re.DOTALL)
_READ = re.compile(r"^\s*(SELECT|WITH|VALUES|PRAGMA|EXPLAIN)\b", re.IGNORECASE)
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def strip_comments(sql: str) -> str:
    """``sql`` without its leading comments and blanks."""
    return _COMMENTS.sub("", sql, count=1)


def is_read(sql: str) -> bool:
    s = strip_comments(sql)
    if not _READ.match(s):
        return False
    return not (s[:4].upper() == "WITH" and _WRITE_WORD.search(s))


def sql_literal(value: Any) -> str:  # any SQLite value
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex() + "'"
    text = str(value)
    if "\x00" in text:  # a NUL cannot appear in SQL text: the exact bytes, as TEXT
        return "CAST(X'" + text.encode("utf-8").hex() + "' AS TEXT)"
    return "'" + text.replace("'", "''") + "'"


_MARK = object()  # a placeholder's place in the split statement


def bind(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[str, list[Any]]:
    """Positional ``params`` for D1: named parameters (``:name``, ``@name``, ``$name``) become positional;
    more than D1's 100 (or any BLOB) are inlined as literals. Placeholders inside strings, quoted names and
    comments are left alone."""
    named = isinstance(params, dict)
    values = list(params) if not named else []
    out: list[Any] = []
    ordered: list[Any] = []
    i, n, pos = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"`[":
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if sql[j] == close:
                    if close != "]" and j + 1 < n and sql[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "?":
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            idx = int(sql[i + 1:j]) - 1 if j > i + 1 else pos
            pos = idx + 1
            ordered.append(values[idx] if idx < len(values) else None)
            out.append(_MARK)
            i = j
        elif c in ":@$" and isinstance(params, dict) and i + 1 < n \
                and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            ordered.append(params[sql[i + 1:j]])
            out.append(_MARK)
            i = j
        else:
            out.append(c)
            i += 1
    inline = len(ordered) > MAX_PARAMS or any(isinstance(v, (bytes, bytearray, memoryview)) for v in ordered)
    if not inline:
        return "".join("?" if part is _MARK else part for part in out), ordered
    # Floats stay parameters while they fit: SQLite's reading of a decimal literal is not always the exact
    # double (the last bit of extreme values); past 100 floats they are inlined as repr (17 digits) anyway.
    keep_floats = sum(isinstance(v, float) for v in ordered) <= MAX_PARAMS
    k = iter(ordered)
    text: list[str] = []
    kept: list[Any] = []
    for part in out:
        if part is not _MARK:
            text.append(part)
            continue
        value = next(k)
        if keep_floats and isinstance(value, float):
            text.append("?")
            kept.append(value)
        else:
            text.append(sql_literal(value))
    return "".join(text), kept
