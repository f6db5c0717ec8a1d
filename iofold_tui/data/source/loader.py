"""Open anything a user may point iofold-tui at, through one function: ``open_source``.

A SQLite file (recognised by its header), a ``wrangler d1 export`` .sql file (loaded into a cached
working copy, the .sql is never touched), a wrangler project directory (its local D1 file, opened in
place so rows still in the ``-wal`` are seen), or the built-in demo.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

from iofold_tui.data import paths
from iofold_tui.data.db import Database, connect, is_busy
from iofold_tui.data.errors import SourceError
from iofold_tui.data.source.opened import OpenedSource, SourceKind
from iofold_tui.data.source.schema import SchemaInfo, detect

SQLITE_HEADER = b"SQLite format 3\x00"
Progress = Callable[[int, int], None]


def _check_sqlite_file(path: Path) -> None:
    """Header, size and truncation checks that cost microseconds, before SQLite sees the file."""
    size = path.stat().st_size
    if size == 0:
        raise SourceError(path, "empty file (0 bytes)")
    with path.open("rb") as fh:
        header = fh.read(100)
    if not header.startswith(SQLITE_HEADER):
        raise SourceError(path, "not a SQLite database or D1 export")
    if len(header) < 100:
        raise SourceError(path, "truncated SQLite file (header incomplete)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    page_count = struct.unpack(">I", header[28:32])[0]
    change_counter, valid_for = header[24:28], header[92:96]
    # The in-header page count is only trustworthy when "version-valid-for" matches the change counter.
    wal = path.with_name(path.name + "-wal")
    if change_counter == valid_for and page_count and size < page_size * page_count and not wal.exists():
        raise SourceError(path, f"truncated SQLite file ({size:,} of {page_size * page_count:,} bytes)")


def _writability(path: Path) -> str | None:
    if not os.access(path, os.W_OK):
        return "the file is not writable (permissions)"
    if not os.access(path.parent, os.W_OK):
        return "its folder is not writable (SQLite needs it for the journal)"
    return None


def _probe(path: Path, read_only_reason: str | None) -> tuple[Database, SchemaInfo]:
    """Open and classify; map SQLite's errors to one-line messages."""
    immutable = False
    try:
        conn = connect(path, read_only=read_only_reason is not None)
        conn.execute("PRAGMA busy_timeout = 2000")
        try:
            info = detect(conn, path)
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        msg = str(exc)
        if is_busy(exc):
            raise SourceError(path, "database is locked by another process "
                                    "(try again, or close the other writer)") from None
        if read_only_reason and "unable to open" in msg:
            # A WAL database in a read-only folder cannot create its -shm: read it as immutable.
            immutable = True
            conn = connect(path, immutable=True)
            try:
                info = detect(conn, path)
            finally:
                conn.close()
        else:
            raise SourceError(path, f"cannot open: {msg}") from None
    except sqlite3.DatabaseError as exc:
        raise SourceError(path, f"corrupt SQLite database ({exc})") from None
    return Database(path, read_only_reason=read_only_reason, immutable=immutable), info


def _history_for(db_path: Path) -> Path:
    folder = paths.data_dir() / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{paths.path_key(db_path)}.sqlite"


def open_source(
    target: str | Path | None,
    *,
    demo: bool = False,
    read_only: bool = False,
    progress: Progress | None = None,
) -> OpenedSource:
    """Open a source for browsing and labelling. Raises SourceError with a one-line message."""
    if demo:
        return _open_demo()
    if isinstance(target, str) and target.startswith("d1://"):  # a live D1 database (source/d1/opening.py)
        from iofold_tui.data.source.d1.opening import open_remote

        remote: OpenedSource = open_remote(target, read_only=read_only)
        return remote
    if target is None:
        raise SourceError(None, "no source given (a .sqlite file, a wrangler d1 export .sql, "
                                "a wrangler project dir, or --demo)")
    origin = Path(target).expanduser()
    if not origin.exists():
        raise SourceError(origin, "no such file or directory")
    notes: list[str] = []
    if origin.is_dir():
        from iofold_tui.data.source.wrangler_state import pick_database

        db_path = pick_database(origin)
        kind: SourceKind = "wrangler-dir"
        notes.append(f"wrangler local D1: {db_path.name}")
    elif _is_sqlite(origin):
        db_path, kind = origin, "sqlite"
    else:  # anything else must be a D1 export; the loader names what is wrong with it when it is not
        from iofold_tui.data.source.export.cache import open_export

        db_path, report = open_export(origin, progress=progress)
        kind = "d1-export"
        notes.extend(report.summary_lines())
        _use_wal(db_path)
    try:
        _check_sqlite_file(db_path)
        reason = "opened with --read-only" if read_only else _writability(db_path)
        db, info = _probe(db_path, reason)
    except SourceError as exc:
        if kind != "d1-export":
            raise
        # The working copy is ours, in the cache: name the file the user gave.
        raise SourceError(origin, exc.problem) from None
    notes.extend(info.warnings)
    if kind == "d1-export":
        history = db_path.with_name(db_path.name + ".labels.sqlite")
    else:
        history = _history_for(db_path)
    if kind == "d1-export":
        _register_copy(db_path, history, origin)
    return OpenedSource(kind=kind, origin=origin, db=db, schema=info, history_path=history, notes=notes)


def _register_copy(db_path: Path, history: Path, origin: Path) -> None:
    """Note which D1 database this export copy is of (labels/carry.py finds older copies by it)."""
    from iofold_tui.data.labels.carry import read_identity, register_copy

    with contextlib.suppress(sqlite3.Error, OSError):
        with contextlib.closing(connect(db_path, read_only=True)) as conn:
            identity = read_identity(conn)
        register_copy(history, identity, origin.resolve())


def _use_wal(path: Path) -> None:
    """Our own working copy (never the user's file) goes to WAL: a label commit then costs one append
    and fsync instead of a rollback journal's several; readers never block the writer."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == SQLITE_HEADER


def _open_demo() -> OpenedSource:
    """A fresh copy of the demo (schema/ + seed) every launch, with a fresh label history."""
    from iofold_tui.data.source.demo.build import build_demo_db

    folder = paths.cache_dir() / "demo"
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    db_path = build_demo_db(folder / "demo.sqlite")
    db, info = _probe(db_path, None)
    return OpenedSource(kind="demo", origin=db_path, db=db, schema=info,
                        history_path=folder / "demo.labels.sqlite", notes=list(info.warnings))
