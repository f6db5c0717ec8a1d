"""The one write-transaction helper (data/db.write_txn) and the one definition of "locked" (db.is_busy)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from iofold_tui.data.db import connect, is_busy, is_readonly, write_txn


class TimedOut(Exception):
    pass


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "t.sqlite"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return p


def _quick(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    conn.execute("PRAGMA busy_timeout = 10")
    return conn


def test_commits_and_rolls_back(path: Path) -> None:
    conn = _quick(path)
    with write_txn(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ZeroDivisionError), write_txn(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        _ = 1 / 0
    assert not conn.in_transaction
    assert [r[0] for r in conn.execute("SELECT x FROM t")] == [1]


def test_waits_for_another_writer_then_commits(path: Path) -> None:
    other = _quick(path)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.2)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    conn = _quick(path)
    with write_txn(conn, max_wait_s=10):
        assert released.is_set()
        conn.execute("INSERT INTO t VALUES (1)")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_gives_up_after_max_wait_with_the_callers_error(path: Path) -> None:
    other = _quick(path)
    other.execute("BEGIN IMMEDIATE")
    conn = _quick(path)
    start = time.monotonic()
    with pytest.raises(TimedOut), write_txn(conn, max_wait_s=0.3, timeout_error=lambda exc: TimedOut(str(exc))):
        pass
    assert 0.3 <= time.monotonic() - start < 5
    with pytest.raises(sqlite3.OperationalError) as info, write_txn(conn, max_wait_s=0.1):
        pass
    assert is_busy(info.value)
    assert not conn.in_transaction
    other.execute("ROLLBACK")


def test_read_only_refusal_is_not_busy(path: Path) -> None:
    conn = connect(path, read_only=True)
    with pytest.raises(sqlite3.OperationalError) as info, write_txn(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    assert is_readonly(info.value) and not is_busy(info.value)  # no retrying a write that can never succeed
    assert not conn.in_transaction


def test_is_busy_is_one_definition() -> None:
    assert is_busy(sqlite3.OperationalError("database is locked"))  # raised by Python code (a shim)
    assert not is_busy(sqlite3.OperationalError("no such table: x"))
    assert not is_busy(sqlite3.IntegrityError("database is locked"))
    extended = sqlite3.OperationalError("database is locked")
    extended.sqlite_errorcode = sqlite3.SQLITE_BUSY | (2 << 8)  # type: ignore[attr-defined]  # BUSY_SNAPSHOT
    assert is_busy(extended)
    other = sqlite3.OperationalError("database is locked")
    other.sqlite_errorcode = sqlite3.SQLITE_ERROR  # type: ignore[attr-defined]
    assert not is_busy(other)  # SQLite's own code wins over the text
