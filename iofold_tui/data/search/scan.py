"""Search without the index: the same result set as the sidecar, by scanning ``traces`` in rowid chunks.

Each chunk: a LIKE prefilter in SQL (``query.prefilter``, a superset of the matches) picks candidate
rows, ``extract`` turns them into the index's fields, and an in-memory FTS5 table with the sidecar's
exact definition judges them with the same MATCH string. Same text, same tokenizer, same query: the
same set. Chunked by rowid range so a worker reports progress and stops between chunks; memory is
bounded by the chunk size. Regex mode matches a Python ``re`` against the same fields.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iofold_tui.data.search.extract import COLUMNS, extract
from iofold_tui.data.search.query import Node, SearchSyntaxError, prefilter, to_match

Progress = Callable[[int, int], None]
FTS_ARGS = ", ".join(COLUMNS) + ", tokenize = 'unicode61'"
SELECT_RAW = ("t.rowid, CAST(t.id AS BLOB), CAST(t.trace_id AS BLOB), CAST(t.input_preview AS BLOB), "
              "CAST(t.output_preview AS BLOB), CAST(t.steps AS BLOB), t.timestamp")
MAX_REGEX = 500


@dataclass
class ScanResult:
    hits: list[tuple[object, int]] = field(default_factory=list)  # (timestamp, rowid)
    complete: bool = True
    scanned: int = 0
    seconds: float = 0.0

    def rowids_newest_first(self) -> list[int]:
        return [rid for _, rid in sorted(self.hits, key=_newest_key)]


def _sort_class(value: object) -> tuple[int, object]:
    """SQLite's ordering of mixed types: NULL < numbers < text < blob."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value.encode("utf-8", "surrogatepass"))
    return (3, bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode())


class _Desc:
    __slots__ = ("key",)

    def __init__(self, key: tuple[int, object]) -> None:
        self.key = key

    def __lt__(self, other: _Desc) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.key == other.key


def _newest_key(hit: tuple[object, int]) -> tuple[_Desc, int]:
    """``ORDER BY timestamp DESC, rowid ASC`` (the trace list's newest-first order)."""
    return (_Desc(_sort_class(hit[0])), hit[1])


def compile_regex(pattern: str) -> re.Pattern[str]:
    if not pattern:
        raise SearchSyntaxError("empty regex")
    if len(pattern) > MAX_REGEX:
        raise SearchSyntaxError(f"regex too long (at most {MAX_REGEX} characters)")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise SearchSyntaxError(f"invalid regex: {exc}") from None


def _bounds(conn: sqlite3.Connection) -> tuple[int, int] | None:
    row = conn.execute("SELECT min(rowid), max(rowid) FROM traces").fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def _walk(conn: sqlite3.Connection, condition: str | None, chunk: int, progress: Progress | None,
          cancelled: Callable[[], bool], judge: Callable[[list[tuple[Any, ...]]], list[tuple[object, int]]],
          result: ScanResult) -> ScanResult:
    start = time.perf_counter()
    bounds = _bounds(conn)
    if bounds is None:
        return result
    low, high = bounds
    where = "t.rowid >= ? AND t.rowid < ?" + (f" AND {condition}" if condition else "")
    sql = f"SELECT {SELECT_RAW} FROM traces t WHERE {where}"
    position = low
    while position <= high:
        if cancelled():
            result.complete = False
            break
        end = position + chunk
        batch: list[tuple[Any, ...]] = []
        for row in conn.execute(sql, (position, end)):
            batch.append(tuple(row))
            if len(batch) >= 500:
                result.hits.extend(judge(batch))
                batch = []
        if batch:
            result.hits.extend(judge(batch))
        result.scanned = min(end, high + 1) - low
        position = end
        if progress:
            progress(result.scanned, high + 1 - low)
    result.seconds = time.perf_counter() - start
    return result


def scan(conn: sqlite3.Connection, node: Node, *, chunk: int = 20_000, progress: Progress | None = None,
         cancelled: Callable[[], bool] = lambda: False) -> ScanResult:
    """Every trace matching ``node``, without the index."""
    match = to_match(node)
    mem = sqlite3.connect(":memory:")
    mem.execute(f"CREATE VIRTUAL TABLE m USING fts5({FTS_ARGS})")
    placeholders = ",".join("?" * (len(COLUMNS) + 1))

    def judge(rows: list[tuple[Any, ...]]) -> list[tuple[object, int]]:
        ts = {int(r[0]): r[6] for r in rows}
        mem.executemany(f"INSERT INTO m(rowid, {', '.join(COLUMNS)}) VALUES ({placeholders})",
                        [(int(r[0]), *extract(*r[1:6])) for r in rows])
        hits = [
            (ts[int(rid)], int(rid))
            for (rid,) in mem.execute("SELECT rowid FROM m WHERE m MATCH ?", (match,))
        ]
        mem.execute("DELETE FROM m")
        return hits

    try:
        return _walk(conn, prefilter(node), chunk, progress, cancelled, judge, ScanResult())
    finally:
        mem.close()


def regex_scan(
    conn: sqlite3.Connection,
    pattern: str,
    *,
    chunk: int = 20_000,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> ScanResult:
    """Every trace whose fields (the index's text) match ``pattern`` (case-insensitive)."""
    rx = compile_regex(pattern)

    def judge(rows: list[tuple[Any, ...]]) -> list[tuple[object, int]]:
        return [(r[6], int(r[0])) for r in rows if any(rx.search(v) for v in extract(*r[1:6]) if v)]

    return _walk(conn, None, chunk, progress, cancelled, judge, ScanResult())
