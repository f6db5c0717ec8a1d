"""open_source: every source kind and every bad input gives a clear one-line error (exit 2 in the CLI)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import SCHEMA, build_db

from iofold_tui.data.errors import SourceError
from iofold_tui.data.source.loader import open_source


def test_sqlite_file_by_header_not_extension(tmp_path: Path) -> None:
    db = build_db(tmp_path / "traces.backup")  # no .sqlite extension
    opened = open_source(db)
    assert opened.kind == "sqlite"
    assert opened.schema.generation == "v1.0"
    assert opened.schema.view == "standard"
    assert opened.read_only_reason is None
    assert opened.db.query_one("SELECT count(*) FROM traces")[0] == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello world, not a database\n", "not a D1/SQL export"),
        (b"\x00\x01\x02binary junk" * 50, "binary data"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_source(path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "nope.sqlite")


def test_truncated_sqlite(tmp_path: Path) -> None:
    db = build_db(tmp_path / "full.sqlite")
    data = db.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated"):
        open_source(cut)


def test_corrupt_sqlite(tmp_path: Path) -> None:
    db = build_db(tmp_path / "full.sqlite")
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1 (sqlite_master) overwritten
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"corrupt|malformed|not a database"):
        open_source(bad)


def test_empty_database_and_unknown_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("PRAGMA user_version = 1").connection.commit()
    with pytest.raises(SourceError, match=r"empty database|empty file"):
        open_source(empty)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE recipes (id, title)")
    with pytest.raises(SourceError, match="unknown schema"):
        open_source(other)


def test_later_generation_named_with_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE agents (id TEXT PRIMARY KEY);"
            "CREATE TABLE traces (id TEXT PRIMARY KEY, trace_id TEXT, steps TEXT, spans TEXT);"
            "CREATE TABLE feedback (id TEXT PRIMARY KEY, trace_id TEXT, agent_id TEXT, rating TEXT);"
        )
    with pytest.raises(SourceError) as info:
        open_source(path)
    assert "v2" in str(info.value)
    assert "eval_sets" in str(info.value)


def test_missing_view_is_reported_not_fatal(tmp_path: Path) -> None:
    db = build_db(tmp_path / "noview.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW eval_comparison")
    opened = open_source(db)
    assert opened.schema.view == "missing"
    assert any("eval_comparison" in n for n in opened.notes)


def test_customised_view_detected(tmp_path: Path) -> None:
    db = build_db(tmp_path / "custom.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW eval_comparison")
        conn.execute("CREATE VIEW eval_comparison AS SELECT id AS execution_id, eval_id FROM eval_executions")
    assert open_source(db).schema.view == "customised"


def test_read_only_flag_and_file_permissions(tmp_path: Path) -> None:
    db = build_db(tmp_path / "ro.sqlite")
    opened = open_source(db, read_only=True)
    assert opened.read_only_reason == "opened with --read-only"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        opened.db.conn().execute("DELETE FROM feedback")
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    db.chmod(0o444)
    assert "not writable" in (open_source(db).read_only_reason or "")


def test_locked_database(tmp_path: Path) -> None:
    db = build_db(tmp_path / "locked.sqlite")
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SourceError, match="locked"):
            open_source(db)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_demo_is_fresh_each_time() -> None:
    first = open_source(None, demo=True)
    first.db.conn().execute("DELETE FROM feedback")
    first.db.close()
    second = open_source(None, demo=True)
    assert second.kind == "demo"
    assert second.db.query_one("SELECT count(*) FROM feedback")[0] == 5


def test_extra_tables_and_columns_are_fine(tmp_path: Path) -> None:
    db = build_db(tmp_path / "extra.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE jobs ADD COLUMN metadata JSON")
        conn.execute("CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT)")
    opened = open_source(db)
    assert opened.schema.generation.startswith("v1.0")
    assert opened.schema.has("jobs", "metadata")


def test_concurrent_writer_does_not_fail_a_write(tmp_path: Path) -> None:
    """Database.write retries through another process's lock instead of failing."""
    db_path = build_db(tmp_path / "busy.sqlite")
    opened = open_source(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        released.wait(0.3)
        holder.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    opened.db.write(
        lambda c: c.execute("UPDATE feedback SET notes = 'x' WHERE id = (SELECT min(id) FROM feedback)")
    )
    thread.join()
    holder.close()
    assert opened.db.query_one("SELECT count(*) FROM feedback WHERE notes = 'x'")[0] == 1


def test_close_while_a_worker_queries_interrupts_instead_of_crashing(tmp_path: Path) -> None:
    """The app quits while a worker still reads: its query is interrupted, the process does not crash."""
    opened = open_source(build_db(tmp_path / "close.sqlite"))
    running, outcome = threading.Event(), []

    def worker() -> None:
        conn = opened.db.conn()
        conn.set_progress_handler(lambda: running.set() or 0, 1000)  # the query is executing
        try:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=worker)
    thread.start()
    assert running.wait(10)
    opened.db.close()  # must not pull the connection from under the running query
    thread.join(10)
    assert not thread.is_alive() and outcome == ["interrupted"]


def test_data_version_is_comparable_across_worker_threads(tmp_path: Path) -> None:
    """The watcher runs on whichever pool thread is free: the version must come from one connection."""
    opened = open_source(build_db(tmp_path / "watch.sqlite"))
    seen: list[int] = []
    for _ in range(3):  # three threads, each with its own conn(): no change, so no movement
        thread = threading.Thread(target=lambda: seen.append(opened.db.data_version()))
        thread.start()
        thread.join()
    assert len(set(seen)) == 1
    other = sqlite3.connect(opened.db.path)
    with other:
        other.execute("UPDATE feedback SET notes = 'other process' WHERE id = (SELECT min(id) FROM feedback)")
    other.close()
    assert opened.db.data_version() != seen[0]
    opened.db.close()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "missing.sqlite", "no such file"),
        (lambda p: (p / "junk.bin").write_bytes(b"junk" * 10) and p / "junk.bin", "not a D1/SQL export"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path: Path, make, expected: str) -> None:
    target = make(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "iofold_tui", "info", str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "c")},
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_schema_sql_is_the_one_migration() -> None:
    """iofold's seed keeps its first migration identical to schema.sql: one file, linked, never a copy."""
    migration = SCHEMA.parent / "migrations" / "001_initial_schema.sql"
    assert migration.is_symlink() and migration.resolve() == SCHEMA.resolve()


def _export_text() -> str:
    """schema + seed in the shape of a `wrangler d1 export` file (first line, no BEGIN/COMMIT)."""
    return (
        "PRAGMA defer_foreign_keys=TRUE;\n"
        + SCHEMA.read_text()
        + "\n"
        + (SCHEMA.parent / "seed.sql").read_text()
    )


def test_d1_export_opens_as_a_cached_working_copy(tmp_path: Path) -> None:
    import hashlib

    export = tmp_path / "db.sql"
    export.write_text(_export_text())
    digest = hashlib.sha256(export.read_bytes()).hexdigest()
    opened = open_source(export)
    assert opened.kind == "d1-export"
    assert opened.db.path != export and opened.db.query_one("SELECT count(*) FROM traces")[0] == 5
    assert opened.read_only_reason is None
    assert opened.history_path.parent == opened.db.path.parent  # the label history lives beside the copy
    assert opened.db.query_one("PRAGMA journal_mode")[0] == "wal"
    first_inode = opened.db.path.stat().st_ino
    again = open_source(export)
    assert again.db.path == opened.db.path and again.db.path.stat().st_ino == first_inode  # no reload
    assert hashlib.sha256(export.read_bytes()).hexdigest() == digest  # the export is never modified


def test_wrangler_project_directory(tmp_path: Path) -> None:
    folder = tmp_path / "proj" / ".wrangler" / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
    folder.mkdir(parents=True)
    build_db(folder / ("ab" * 32 + ".sqlite"))
    opened = open_source(tmp_path / "proj")
    assert opened.kind == "wrangler-dir"
    assert opened.db.query_one("SELECT count(*) FROM traces")[0] == 5
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"no D1 database|no .*database"):
        open_source(empty)
