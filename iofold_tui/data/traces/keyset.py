"""Keyset paging over ``(timestamp, rowid)`` that is exact for any value SQLite can store in ``timestamp``.

SQLite does not enforce declared types: a user's ``traces.timestamp`` may hold NULL, numbers, text or
BLOBs, in any mix, with duplicates. ``ORDER BY ts DESC, rowid ASC`` is a total order over all of them
(NULL < numbers < text < BLOB, NULL sorting last when descending); a cursor must therefore keep the raw
value with its storage class (never ``str(value or "")``) and the "strictly after" condition must agree
with that order. ``ts < ?`` is false for NULL on either side, so the NULL rows form their own segment:

    SQL order ``ts DESC, rowid ASC``:  [non-NULL rows] then [NULL rows, rowid ASC]
    SQL order ``ts ASC, rowid DESC``:  [NULL rows, rowid DESC] then [non-NULL rows]

``segments`` gives the (where, params) of each segment still ahead of a cursor, in walk order; every one
is an index range on ``traces(timestamp)`` (``ts <= ?``, ``ts IS NULL``, ``ts IS NOT NULL``), so the
timestamp index keeps driving. The cursor value is bound as stored, so comparison affinity (a NUMERIC
or TEXT column) treats it exactly as it treated the stored value.
"""

from __future__ import annotations

from typing import Any

Where = tuple[list[str], list[Any]]


def order_by(desc: bool, ts: str = "t.timestamp", rid: str = "t.rowid") -> str:
    """The SQL order: ``desc`` is ``ts DESC, rowid ASC``; the other direction is its exact reverse."""
    return f"{ts} DESC, {rid} ASC" if desc else f"{ts} ASC, {rid} DESC"


def segments(key: tuple[Any, int] | None, desc: bool, ts: str = "t.timestamp",
             rid: str = "t.rowid") -> list[Where]:
    """WHERE terms of the row groups strictly after ``key`` in SQL order ``desc``, in the order to walk
    them (run each with ``order_by(desc)`` until the page is full). ``key`` None: the whole order."""
    if key is None:
        return [([], [])]
    value, rowid = key
    if value is None:
        if desc:  # NULLs come last: only the NULLs after this rowid are left
            return [([f"{ts} IS NULL", f"{rid} > ?"], [rowid])]
        return [([f"{ts} IS NULL", f"{rid} < ?"], [rowid]), ([f"{ts} IS NOT NULL"], [])]
    if desc:
        return [([f"{ts} <= ?", f"({ts} < ? OR {rid} > ?)"], [value, value, rowid]), ([f"{ts} IS NULL"], [])]
    return [([f"{ts} >= ?", f"({ts} > ? OR {rid} < ?)"], [value, value, rowid])]
