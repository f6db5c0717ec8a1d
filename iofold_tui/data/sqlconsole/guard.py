"""Read-only enforcement for the SQL console: a statement check plus a SQLite authorizer.

Three layers, because each alone has holes: the connection is opened ``mode=ro`` (yet SQLite still
lets a read-only connection ATTACH a new file, ``VACUUM INTO`` a file and create TEMP tables), the
authorizer denies every action that is not a read at prepare time (nothing runs), and the leading
keyword is checked first so the refusal names the statement plainly.
"""

from __future__ import annotations

import re
import sqlite3

# Leading keywords of statements that write (WITH … INSERT is caught by the authorizer).
WRITE_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "CREATE", "DROP", "ALTER",
                            "ATTACH", "DETACH", "VACUUM", "REINDEX", "ANALYZE"})
# Pragmas that may take an argument and still only read.
READ_PRAGMAS_WITH_ARG = frozenset({"table_info", "table_xinfo", "table_list", "index_info", "index_xinfo",
                                   "index_list", "foreign_key_list", "foreign_key_check", "integrity_check",
                                   "quick_check"})
# Pragmas that write (or rewrite the file) even without an argument.
WRITE_PRAGMAS = frozenset({"optimize", "incremental_vacuum", "wal_checkpoint", "shrink_memory"})

_READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_TRANSACTION,
    getattr(sqlite3, "SQLITE_SAVEPOINT", 32),
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"}
_ACTION_NAMES = {
    1: "CREATE INDEX",
    2: "CREATE TABLE",
    3: "CREATE TEMP INDEX",
    4: "CREATE TEMP TABLE",
    5: "CREATE TEMP TRIGGER",
    6: "CREATE TEMP VIEW",
    7: "CREATE TRIGGER",
    8: "CREATE VIEW",
    9: "DELETE",
    10: "DROP INDEX",
    11: "DROP TABLE",
    12: "DROP TEMP INDEX",
    13: "DROP TEMP TABLE",
    14: "DROP TEMP TRIGGER",
    15: "DROP TEMP VIEW",
    16: "DROP TRIGGER",
    17: "DROP VIEW",
    18: "INSERT",
    19: "PRAGMA",
    23: "UPDATE",
    24: "ATTACH",
    25: "DETACH",
    26: "ALTER TABLE",
    27: "REINDEX",
    28: "ANALYZE",
    29: "CREATE VIRTUAL TABLE",
    30: "DROP VIRTUAL TABLE",
}
_COMMENTS = re.compile(r"\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)", re.S)


def leading_keyword(sql: str) -> str:
    """The first word of the statement after whitespace and comments, upper-cased ("" when none)."""
    pos = 0
    while True:
        m = _COMMENTS.match(sql, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    word = re.match(r"[A-Za-z_]+", sql[pos:])
    return word.group(0).upper() if word else ""


class ReadOnlyAuthorizer:
    """SQLite authorizer callback that denies writes; remembers what it denied for the message."""

    def __init__(self) -> None:
        self.denied: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES:
            # Reported while SQLite sets up table-valued pragmas (pragma_table_info...); real schema
            # writes first need a CREATE/DROP/ALTER action or writable_schema, all denied.
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if (arg2 is None and name not in WRITE_PRAGMAS) or name in READ_PRAGMAS_WITH_ARG:
                return sqlite3.SQLITE_OK
            self.denied = f"PRAGMA {name}" + (f" = {arg2}" if arg2 is not None else "")
            return sqlite3.SQLITE_DENY
        what = _ACTION_NAMES.get(action, f"action {action}")
        self.denied = f"{what} {arg1}" if arg1 and action not in (24, 25) else what
        return sqlite3.SQLITE_DENY
