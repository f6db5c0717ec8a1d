"""Schema introspection of one connection, through sqlite-utils: the package's one reader of
``sqlite_master`` and ``PRAGMA table_info`` / ``index_list``.

Read-only by construction: the sqlite-utils ``Database`` wraps the caller's connection without setting
a PRAGMA or running plugins, so read-only, immutable and D1 (data/source/d1/remote.py) connections work
unchanged; names are quoted by sqlite-utils' ``quote_identifier`` (the same rule as ``db.quote_ident``),
so any table name (quotes, spaces, non-ASCII) is read as it is. Names starting with ``sqlite_`` are
SQLite's own and left out.

An ATTACHed database (the agreement's copies and label history, data/labels/agreement_open.py) is the
one case sqlite-utils cannot address: its ``Table`` reads ``PRAGMA table_info(name)``, which SQLite
resolves in the first schema holding that name. ``attached_columns`` and ``attached_unique_keys`` are
the one place that reads ``PRAGMA "<schema>".table_info(...)`` / ``index_list`` / ``index_info``, with
schema, table and index names quoted by the same ``quote_identifier`` (``db.quote_ident`` itself is out
of reach: data/db.py imports this module).
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys


def _load_on_first_use(name: str) -> None:
    """Register module ``name`` so that importing it is free and its code runs on first attribute access
    (``importlib.util.LazyLoader``); a module already imported is left as it is."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # what `from dateutil import parser` reads


# sqlite-utils imports dateutil.parser (with dateutil.tz, zoneinfo and ctypes) for its `convert` recipes,
# which iofold-tui never calls: ~8 ms of every launch before the first frame (data/db.py imports this
# module on the way to schema detection). Deferred, it loads only if something uses it.
_load_on_first_use("dateutil.parser")

import sqlite_utils  # noqa: E402 - after the deferral above
from sqlite_utils.db import Table, quote_identifier  # noqa: E402


def _utils(conn: sqlite3.Connection) -> sqlite_utils.Database:
    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


class _Listed(Table):
    """A table whose name was just read from ``sqlite_master``: ``Table.exists()`` would read the whole
    list again for every table (quadratic on a database with thousands of tables)."""

    def exists(self) -> bool:
        return True


def _user(name: object) -> bool:
    return not str(name).startswith("sqlite_")


def table_names(conn: sqlite3.Connection) -> list[str]:
    """The user's tables (virtual tables and their shadow tables included), in ``sqlite_master`` order."""
    return [str(n) for n in _utils(conn).table_names() if _user(n)]


def view_names(conn: sqlite3.Connection) -> list[str]:
    return [str(n) for n in _utils(conn).view_names() if _user(n)]


def view_sql(conn: sqlite3.Connection, name: str) -> str | None:
    """The ``CREATE VIEW`` text of ``name`` (names compare without case, as SQLite's), None without one."""
    db = _utils(conn)
    for view in db.view_names():
        if str(view).lower() == name.lower():
            return str(db.view(str(view)).schema or "")
    return None


def columns(conn: sqlite3.Connection, name: str) -> list[str]:
    """The columns of table or view ``name`` in order ([] when there is none). A view over a dropped table
    raises ``sqlite3.DatabaseError``."""
    return [str(c.name) for c in _Listed(_utils(conn), name).columns]


def column_set(conn: sqlite3.Connection, name: str) -> set[str]:
    return set(columns(conn, name))


def schema_columns(conn: sqlite3.Connection, *, views: bool = True) -> dict[str, list[str]]:
    """Every user table (and view, unless ``views`` is False) with its columns; a view that cannot be
    read (over a missing table) maps to []."""
    db = _utils(conn)
    names = [n for n in db.table_names() if _user(n)]
    if views:
        names += [n for n in db.view_names() if _user(n)]
    found: dict[str, list[str]] = {}
    for name in names:
        try:
            found[str(name)] = [str(c.name) for c in _Listed(db, str(name)).columns]
        except sqlite3.DatabaseError:
            found[str(name)] = []
    return found


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    """The declared PRIMARY KEY columns in key order ([] when the table has only its rowid)."""
    keyed = sorted((c for c in _Listed(_utils(conn), table).columns if c.is_pk), key=lambda c: int(c.is_pk))
    return [str(c.name) for c in keyed]


def indexes(conn: sqlite3.Connection, table: str) -> list[tuple[str, list[str]]]:
    """(index name, its columns in order) for each index on ``table``."""
    return [(str(i.name), [str(c) for c in i.columns]) for i in _Listed(_utils(conn), table).indexes]


def attached_columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    """The columns of ``table`` in the schema ``schema`` (``main``, ``temp`` or an ATTACHed name) in order,
    [] when that schema has no such table."""
    sql = f"PRAGMA {quote_identifier(schema)}.table_info({quote_identifier(table)})"
    return [str(r[1]) for r in conn.execute(sql)]


def attached_unique_keys(conn: sqlite3.Connection, schema: str, table: str) -> list[list[str]]:
    """The columns (in index order) of each UNIQUE index of ``table`` in the schema ``schema``, its PRIMARY
    KEY's automatic index included (a rowid table's INTEGER PRIMARY KEY has none)."""
    quoted = quote_identifier(schema)
    keys: list[list[str]] = []
    for index in conn.execute(f"PRAGMA {quoted}.index_list({quote_identifier(table)})").fetchall():
        if index[2]:
            info = conn.execute(f"PRAGMA {quoted}.index_info({quote_identifier(str(index[1]))})")
            keys.append([str(r[2]) for r in info])
    return keys
