"""A cursor over one D1 statement's answer: as much of ``sqlite3.Cursor`` as the app uses (description,
fetchone/fetchmany/fetchall, iteration, ``sqlite3.Row`` rows when the connection asks for them)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from iofold_tui.data.source.d1.api import Result

if TYPE_CHECKING:
    from iofold_tui.data.source.d1.remote import RemoteConnection


class RemoteCursor:
    """The answer of one statement, as much of ``sqlite3.Cursor`` as the app uses."""

    arraysize = 1

    def __init__(self, conn: RemoteConnection, result: Result | None = None) -> None:
        self.connection = conn
        self._rows: list[Any] = []
        self._at = 0
        self.description: tuple[tuple[str, None, None, None, None, None, None], ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        if result is not None:
            self._load(result)

    def _load(self, result: Result) -> None:
        self.description = tuple((c, None, None, None, None, None, None) for c in result.columns) or None
        factory = self.connection.row_factory
        if factory is sqlite3.Row and result.columns:
            proto = _row_cursor(tuple(result.columns))
            self._rows = [sqlite3.Row(proto, r) for r in result.rows]
        elif callable(factory) and factory is not sqlite3.Row:
            self._rows = [factory(self, r) for r in result.rows]
        else:
            self._rows = list(result.rows)
        self.rowcount = result.changes if not result.columns else -1
        last = result.meta.get("last_row_id")
        self.lastrowid = int(last) if isinstance(last, int) else None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> RemoteCursor:
        cur = self.connection.execute(sql, params)
        keep = ("_rows", "_at", "description", "rowcount", "lastrowid")
        self.__dict__.update({k: cur.__dict__[k] for k in keep})
        return self

    def fetchone(self) -> Any:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        out = self._rows[self._at:self._at + size]
        self._at += len(out)
        return out

    def fetchall(self) -> list[Any]:
        out = self._rows[self._at:]
        self._at = len(self._rows)
        return out

    def __iter__(self) -> Iterator[Any]:
        while self._at < len(self._rows):
            self._at += 1
            yield self._rows[self._at - 1]

    def close(self) -> None:
        self._rows = []


_PROTO_LOCK = threading.Lock()
_PROTO: dict[tuple[str, ...], sqlite3.Cursor] = {}
_MEM = sqlite3.connect(":memory:", check_same_thread=False)


def _row_cursor(columns: tuple[str, ...]) -> sqlite3.Cursor:
    """A real sqlite3 cursor whose description names ``columns``: ``sqlite3.Row`` needs one to index by
    name."""
    with _PROTO_LOCK:
        cur = _PROTO.get(columns)
        if cur is None:
            cur = _MEM.cursor()
            names = ", ".join(f"NULL AS \"{c.replace(chr(34), chr(34) * 2)}\"" for c in columns)
            cur.execute("SELECT " + names)
            cur.fetchall()
            if len(_PROTO) > 2000:
                _PROTO.clear()
            _PROTO[columns] = cur
        return cur
