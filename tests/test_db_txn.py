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
    with (
        pytest.raises(TimedOut),
        write_txn(conn, max_wait_s=0.3, timeout_error=lambda exc: TimedOut(str(exc))),
    ):
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


# ------------------------------------------------------------------ introspection (data/introspect.py)

HOSTILE = ['we"ird', "with space", "ünï", "x'y", "select", "--"]


def test_introspection_reads_hostile_names_views_and_without_rowid(tmp_path: Path) -> None:
    from iofold_tui.data import introspect
    from iofold_tui.data.db import quote_ident, rowid_column

    p = tmp_path / "h.sqlite"
    conn = sqlite3.connect(p)
    for name in HOSTILE:
        conn.execute(f"CREATE TABLE {quote_ident(name)} ({quote_ident(name + 'c')}, b)")
    conn.execute('CREATE TABLE kv ("k""ey" TEXT, v, PRIMARY KEY (v, "k""ey")) WITHOUT ROWID')
    conn.execute("CREATE TABLE gone (a)")
    conn.execute('CREATE VIEW "v w" AS SELECT a FROM gone')
    conn.execute("CREATE VIEW ok AS SELECT 1 AS one")
    conn.execute("DROP TABLE gone")
    conn.commit()
    conn.close()
    ro = connect(p, read_only=True)
    assert set(HOSTILE) <= set(introspect.table_names(ro))
    assert introspect.view_names(ro) == ["v w", "ok"]
    cols = introspect.schema_columns(ro)
    assert all(cols[name] == [name + "c", "b"] for name in HOSTILE)
    assert cols["v w"] == [] and cols["ok"] == ["one"]  # a view over a dropped table: present, unusable
    assert introspect.primary_key(ro, "kv") == ["v", 'k"ey']
    assert rowid_column(ro, "kv") == '"v"'
    assert introspect.primary_key(ro, 'we"ird') == [] and rowid_column(ro, 'we"ird') == "rowid"
    assert introspect.columns(ro, "no such table") == []
    assert introspect.view_sql(ro, "OK") == "CREATE VIEW ok AS SELECT 1 AS one"
    assert introspect.view_sql(ro, "nope") is None
    assert ro.execute("PRAGMA recursive_triggers").fetchone()[0] == 0  # no connection setting changed
