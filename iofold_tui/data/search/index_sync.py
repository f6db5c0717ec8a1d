"""Keeping the sidecar full-text index current with the user's database (``SidecarSync``).

0. the database file and its -wal have the size and mtime recorded at the last complete sync: done
   (a few ``stat`` calls).
1. quick check — one pass over the ``traces(timestamp)`` index only (count, sum of rowids, sum of
   timestamp codes for rowid ≤ the last indexed max) equal to what was recorded at the last sync: no row
   at or below that rowid was added, deleted or re-timestamped, so only rows above it (new traces get
   higher rowids) are read and indexed.
2. otherwise — per bucket of 4,096 rowids the same aggregates from the timestamp index against the same
   from the sidecar's ``docs``; buckets that differ are compared row by row (a fingerprint of the columns
   stored before ``steps`` in the row record: id, trace_id, timestamp, length(metadata)); new/changed rows
   are (re)indexed, missing ones deleted. ``verify=True`` (``iofold-tui index --verify``) compares those
   fingerprints for every bucket, from the table's leaf pages (the overflow pages holding the steps JSON
   are not read).
Traces are immutable after import in iofold (imports skip existing traces), so an in-place edit that
keeps a row's rowid and timestamp is found only by ``--verify``, and one of only ``steps`` only by
``--rebuild``. The sidecar is keyed by what the user named: a wrangler local file that changed
underneath (rows in its -wal) goes through the same check; a re-exported D1 ``.sql`` (a new working
copy) keeps the sidecar of the ``.sql`` path and is diffed against it (rowids follow the export's row
order, so rows after a deleted one shift and their buckets are re-read).

FTS5 rowids are not trace rowids but order keys (``_new_key``): spaced ``GAP`` apart in the trace
list's order (timestamp DESC, rowid ASC) at a build, a new trace takes the midpoint of its neighbours'
keys, so ``ORDER BY rowid DESC`` — a reverse walk of the doclists that stops after a page — is newest
first. A gap that runs out makes a rebuild.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iofold_tui.data import introspect
from iofold_tui.data.db import file_fingerprint, quote_ident, write_txn
from iofold_tui.data.search.extract import COLUMNS, extract_all
from iofold_tui.data.search.scan import SELECT_RAW

GAP = 1 << 36  # spacing of order keys at a build: room for 36 halvings between two neighbours
BUCKET_SHIFT = 12
BATCH = 500
Progress = Callable[[int, int], None]

TSX = "coalesce(CAST(julianday({ts}) * 86400000 AS INTEGER) % 1000003, length({ts}), 0)"
FP = (
    "((coalesce(length(t.id), 0) * 1009 + coalesce(unicode(substr(t.id, -1)), 0) * 31"
    " + coalesce(unicode(substr(t.id, -2, 1)), 0) * 17 + coalesce(unicode(substr(t.id, -3, 1)), 0) * 7"
    " + coalesce(length(t.trace_id), 0) * 101 + coalesce(unicode(substr(t.trace_id, -1)), 0) * 13"
    " + coalesce(length(t.metadata), 0) * 3 + " + TSX.format(ts="t.timestamp") + ") % 2147483647)"
)


class NoRoom(Exception):
    """No integer left between two neighbours' order keys: the index is rebuilt."""


def read_meta(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def write_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def indexed_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(fp) FROM docs").fetchone()[0])  # pending rows have no fp


def _ts_index(conn: sqlite3.Connection) -> str | None:
    """An index on traces whose first column is timestamp (the quick check reads only it)."""
    try:
        for name, cols in introspect.indexes(conn, "traces"):
            if cols and cols[0] == "timestamp":
                return name
    except sqlite3.DatabaseError:
        return None
    return None


@dataclass
class SyncReport:
    added: int = 0
    changed: int = 0
    deleted: int = 0
    total: int = 0
    seconds: float = 0.0
    path: str = ""
    mode: str = ""  # "up to date", "tail", "diff", "build"
    complete: bool = True

    def summary(self) -> str:
        verb = "built" if self.mode == "build" else "updated"
        if self.mode == "up to date":
            return f"index up to date: {self.total:,} traces ({self.seconds:.2f} s)"
        return (
            f"index {verb}: {self.total:,} traces, {self.added:,} added, {self.changed:,} changed, "
            f"{self.deleted:,} deleted in {self.seconds:.2f} s" + ("" if self.complete else " (cancelled)")
        )



class SidecarSync:
    """One sidecar connection brought up to date with a database (``sync``)."""

    def __init__(self, conn: sqlite3.Connection, batch: int = BATCH) -> None:
        self.conn = conn
        self.batch = batch  # rows per transaction (and per cancel check)

    def _quick(self, db: sqlite3.Connection, upto: int) -> list[int]:
        index = _ts_index(db)
        hint = f"INDEXED BY {quote_ident(index)}" if index else ""
        row = db.execute(
            f"SELECT count(*), coalesce(sum(rowid), 0), coalesce(sum({TSX.format(ts='timestamp')}), 0) "
            f"FROM traces {hint} WHERE +rowid <= ?", (upto,)).fetchone()
        return [int(row[0]), int(row[1]), int(row[2])]

    def sync(self, db: sqlite3.Connection, *, path: Path, progress: Progress | None = None,
             cancelled: Callable[[], bool] = lambda: False, verify: bool = False) -> SyncReport:
        """Bring the sidecar up to date with ``db`` (build it when new). Safe to cancel and resume; raises
        NoRoom when the order keys ran out (the caller removes the sidecar and builds it again)."""
        start = time.perf_counter()
        conn = self.conn
        report = SyncReport(path=str(path))
        # Fast path: the database file and its -wal unchanged since the last complete sync (a few stats).
        files = json.dumps(_file_stamp(db))
        if not verify and files == read_meta(self.conn, "files"):
            report.mode, report.total = "up to date", indexed_count(self.conn)
            report.seconds = time.perf_counter() - start
            return report
        side_max = int(conn.execute("SELECT coalesce(max(rid), 0) FROM docs").fetchone()[0])
        stored = read_meta(self.conn, "quick")
        db_max = int(db.execute("SELECT coalesce(max(rowid), 0) FROM traces").fetchone()[0])
        below = self._quick(db, side_max)  # one pass over the timestamp index
        quick_now = [a + b for a, b in zip(below, self._tail_quick(db, side_max, db_max), strict=True)]
        if conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 0:
            report.mode = "build"
            todo_ranges: list[tuple[int, int]] = [(0, db_max)]
            deleted: list[int] = []
        elif (
            not verify
            and stored is not None
            and json.loads(stored)[0] == side_max
            and below == json.loads(stored)[1]
        ):
            report.mode = "tail"
            todo_ranges, deleted = self._diff_range(db, side_max + 1, db_max)
        else:
            report.mode = "diff"
            todo_ranges, deleted = self._diff_buckets(db, verify)
        self._delete(deleted)
        report.deleted = len(deleted)
        if report.mode == "build" and not self._place_all(db, progress, cancelled):
            report.complete = False
        else:
            report.complete = self._index_ranges(db, todo_ranges, report, progress, cancelled)
        if report.complete:
            write_meta(self.conn, "quick", json.dumps([db_max, quick_now]))
            write_meta(self.conn, "files", files)
        if report.added or report.changed or report.deleted or read_meta(self.conn, "stamp") is None:
            write_meta(self.conn, "stamp", f"{time.time_ns()}")
        report.total = indexed_count(self.conn)
        report.seconds = time.perf_counter() - start
        if report.mode != "build" and not (report.added or report.changed or report.deleted):
            report.mode = "up to date"
        return report

    def _diff_range(
        self, db: sqlite3.Connection, low: int, high: int
    ) -> tuple[list[tuple[int, int]], list[int]]:
        """Row-by-row fingerprint comparison of rowids in [low, high] (and everything the sidecar has
        above)."""
        ours = {
            int(r): fp for r, fp in self.conn.execute("SELECT rid, fp FROM docs WHERE rid >= ?", (low,))
        }
        todo: list[int] = []
        for rid, fp in db.execute(
            f"SELECT t.rowid, {FP} FROM traces t WHERE t.rowid >= ? AND t.rowid <= ?", (low, high)
        ):
            if ours.pop(int(rid), None) != int(fp):
                todo.append(int(rid))
        return _ranges(todo), sorted(ours)

    def _tail_quick(self, db: sqlite3.Connection, low: int, high: int) -> list[int]:
        """The quick aggregate of rowids in (low, high]: a rowid range of the table, only the new rows."""
        row = db.execute(
            f"SELECT count(*), coalesce(sum(rowid), 0), coalesce(sum({TSX.format(ts='timestamp')}), 0) "
            "FROM traces WHERE rowid > ? AND rowid <= ?",
            (low, high),
        ).fetchone()
        return [int(row[0]), int(row[1]), int(row[2])]

    def _diff_buckets(self, db: sqlite3.Connection, verify: bool) -> tuple[list[tuple[int, int]], list[int]]:
        """Buckets of 4,096 rowids whose aggregates differ, then row-by-row fingerprints inside them.

        Normally the aggregates are (count, sum of rowids, sum of timestamp codes) from the timestamp
        index alone against the same from ``docs``; ``verify`` compares the fingerprint of every row's
        leading columns instead (a pass over the table's leaf pages)."""
        if verify:
            sql = "SELECT {r} >> {s}, count(*), coalesce(sum({fp}), 0), 0 FROM {t} GROUP BY 1"
            theirs_sql = sql.format(r="t.rowid", s=BUCKET_SHIFT, fp=FP, t="traces t")
            ours_sql = sql.format(r="rid", s=BUCKET_SHIFT, fp="fp", t="docs")
        else:
            index = _ts_index(db)
            sql = ("SELECT {r} >> {s}, count(*), coalesce(sum({r}), 0), coalesce(sum({tsx}), 0) "
                   "FROM {t} GROUP BY 1")
            theirs_sql = sql.format(r="rowid", s=BUCKET_SHIFT, tsx=TSX.format(ts="timestamp"),
                                    t="traces" + (f" INDEXED BY {quote_ident(index)}" if index else ""))
            ours_sql = sql.format(r="rid", s=BUCKET_SHIFT, tsx=TSX.format(ts="ts"), t="docs")
        theirs = {int(b): tuple(int(x) for x in rest) for b, *rest in db.execute(theirs_sql)}
        ours = {int(b): tuple(int(x) for x in rest) for b, *rest in self.conn.execute(ours_sql)}
        pending = {
            int(r) >> BUCKET_SHIFT for (r,) in self.conn.execute("SELECT rid FROM docs WHERE fp IS NULL")
        }
        todo: list[tuple[int, int]] = []
        deleted: list[int] = []
        for bucket in sorted(set(theirs) | set(ours)):
            if theirs.get(bucket) == ours.get(bucket) and bucket not in pending:
                continue
            low, high_b = bucket << BUCKET_SHIFT, ((bucket + 1) << BUCKET_SHIFT) - 1
            mine = {
                int(r): fp
                for r, fp in self.conn.execute(
                    "SELECT rid, fp FROM docs WHERE rid BETWEEN ? AND ?", (low, high_b)
                )
            }
            changed: list[int] = []
            for rid, fp in db.execute(
                f"SELECT t.rowid, {FP} FROM traces t WHERE t.rowid BETWEEN ? AND ?", (low, high_b)
            ):
                if mine.pop(int(rid), None) != int(fp):
                    changed.append(int(rid))
            todo += _ranges(changed)
            deleted += sorted(mine)
        return todo, deleted

    def _delete(self, rids: list[int]) -> None:
        conn = self.conn
        for i in range(0, len(rids), BATCH):
            with write_txn(conn):
                for rid in rids[i:i + BATCH]:
                    self._delete_one(rid)

    def _delete_one(self, rid: int) -> bool:
        """Remove one trace; False when it was not indexed (absent, or only pending from a build)."""
        conn = self.conn
        row = conn.execute(
            "SELECT d.key, b.body FROM docs d LEFT JOIN bodies b ON b.key = d.key WHERE d.rid = ?", (rid,)
        ).fetchone()
        if row is None:
            return False
        if row[1] is not None:
            values = json.loads(zlib.decompress(row[1]))
            conn.execute(
                f"INSERT INTO fts(fts, rowid, {', '.join(COLUMNS)}) VALUES ('delete', ?, "
                f"{','.join('?' * len(COLUMNS))})",
                (int(row[0]), *values),
            )
            conn.execute("DELETE FROM bodies WHERE key = ?", (int(row[0]),))
        conn.execute("DELETE FROM docs WHERE rid = ?", (rid,))
        conn.execute("DELETE FROM tools WHERE rid = ?", (rid,))
        conn.execute("DELETE FROM errors WHERE rid = ?", (rid,))
        return True

    def _index_ranges(self, db: sqlite3.Connection, ranges: list[tuple[int, int]], report: SyncReport,
                      progress: Progress | None, cancelled: Callable[[], bool]) -> bool:
        """Index the rows in ``ranges``; False when cancelled before the end."""
        total = sum(high - low + 1 for low, high in ranges) if ranges else 0
        if ranges and ranges[0][0] == 0 and len(ranges) == 1:  # a build: count rows, not the rowid span
            total = int(db.execute("SELECT count(*) FROM traces").fetchone()[0])
        done = 0
        conn = self.conn
        insert_fts = (
            f"INSERT INTO fts(rowid, {', '.join(COLUMNS)}) VALUES (?, {','.join('?' * len(COLUMNS))})"
        )
        for low, high in ranges:
            position = low
            while position <= high:
                if cancelled():
                    return False
                rows = db.execute(
                    f"SELECT {SELECT_RAW}, {FP} FROM traces t WHERE t.rowid >= ? AND t.rowid <= ? "
                    f"ORDER BY t.rowid LIMIT {int(self.batch)}",
                    (position, high),
                ).fetchall()
                if not rows:
                    break
                with write_txn(conn):
                    for r in rows:
                        rid = int(r[0])
                        pending = conn.execute(
                            "SELECT key, ts FROM docs WHERE rid = ? AND fp IS NULL", (rid,)
                        ).fetchone()
                        if pending is not None and pending[1] == r[6]:  # placed by the build's first pass
                            key = int(pending[0])
                            report.added += 1
                        else:
                            if self._delete_one(rid) and pending is None:
                                report.changed += 1
                            else:
                                report.added += 1
                            key = self._new_key(r[6], rid)
                        values, tools, errors = extract_all(*r[1:6])
                        conn.execute(insert_fts, (key, *values))
                        body = zlib.compress(
                            json.dumps(values, ensure_ascii=False).encode("utf-8", "surrogatepass"), 1
                        )
                        if pending is not None and key == int(pending[0]):
                            conn.execute("UPDATE docs SET fp = ? WHERE rid = ?", (int(r[7]), rid))
                        else:
                            conn.execute("INSERT INTO docs VALUES (?, ?, ?, ?)", (rid, key, r[6], int(r[7])))
                        conn.execute("INSERT INTO bodies VALUES (?, ?)", (key, body))
                        conn.executemany(
                            "INSERT OR IGNORE INTO tools VALUES (?, ?)", [(t, rid) for t in tools]
                        )
                        conn.executemany(
                            "INSERT OR IGNORE INTO errors VALUES (?, ?)", [(e, rid) for e in errors]
                        )
                done += len(rows)
                position = int(rows[-1][0]) + 1
                if progress:
                    progress(min(done, total) if total else done, max(total, done))
        return True

    def _new_key(self, ts: Any, rid: int) -> int:
        """An FTS rowid between the keys of the trace's neighbours in list order (timestamp DESC, rowid ASC),
        so ``ORDER BY rowid DESC`` in FTS5 is the trace list's newest-first order."""
        conn = self.conn
        # Each a range of the docs_ts index (an OR of the two would scan it).
        newer = (
            conn.execute(
                "SELECT key FROM docs WHERE ts = ? AND rid < ? ORDER BY ts, rid DESC LIMIT 1", (ts, rid)
            ).fetchone()
            or conn.execute(
                "SELECT key FROM docs WHERE ts > ? ORDER BY ts ASC, rid DESC LIMIT 1", (ts,)
            ).fetchone()
        )
        older = (
            conn.execute(
                "SELECT key FROM docs WHERE ts = ? AND rid > ? ORDER BY ts DESC, rid LIMIT 1", (ts, rid)
            ).fetchone()
            or conn.execute(
                "SELECT key FROM docs WHERE ts < ? ORDER BY ts DESC, rid ASC LIMIT 1", (ts,)
            ).fetchone()
        )
        if newer is None and older is None:
            return 0
        if newer is None:
            return int(older[0]) + GAP
        if older is None:
            return int(newer[0]) - GAP
        low, high = int(older[0]), int(newer[0])
        if high - low < 2:
            raise NoRoom
        return (low + high) // 2

    def _place_all(
        self, db: sqlite3.Connection, progress: Progress | None, cancelled: Callable[[], bool]
    ) -> bool:
        """A build's first pass: every trace's order key, from one walk of the timestamp order (rows are
        then pending, fp NULL, until their text is indexed)."""
        conn = self.conn
        total = int(db.execute("SELECT count(*) FROM traces").fetchone()[0])
        cur = db.execute("SELECT rowid, timestamp FROM traces ORDER BY timestamp DESC, rowid ASC")
        position = total
        while True:
            if cancelled():
                return False
            rows = cur.fetchmany(20_000)
            if not rows:
                return True
            with write_txn(conn):
                conn.executemany("INSERT INTO docs VALUES (?, ?, ?, NULL)",
                                 [(int(r[0]), (position - i) * GAP, r[1]) for i, r in enumerate(rows)])
            position -= len(rows)



def _file_stamp(db: sqlite3.Connection) -> list[Any]:
    """Size and mtime of the connection's main file and its -wal (None for an in-memory database)."""
    try:
        row = next((r for r in db.execute("PRAGMA database_list") if r[1] == "main"), None)
    except sqlite3.DatabaseError:
        return [time.time_ns()]
    return file_fingerprint(Path(row[2]) if row is not None and row[2] else None)


def _ranges(rowids: list[int]) -> list[tuple[int, int]]:
    """Consecutive rowids as (low, high) ranges."""
    out: list[tuple[int, int]] = []
    for rid in sorted(rowids):
        if out and rid == out[-1][1] + 1:
            out[-1] = (out[-1][0], rid)
        else:
            out.append((rid, rid))
    return out
