"""The live-D1 connection shim without a server (issue 19): parameter binding for D1 (named -> positional,
over 100 parameters or BLOBs inlined as literals) must mean exactly what SQLite would have run; the cursor
behaves like sqlite3's; what D1 cannot run is handled locally. A fake client runs statements on SQLite."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iofold_tui.data.source.d1.api import D1Error, Result, scrub
from iofold_tui.data.source.d1.cache import PageCache
from iofold_tui.data.source.d1.client import D1Client
from iofold_tui.data.source.d1.params import bind, is_read
from iofold_tui.data.source.d1.remote import Remote, RemoteConnection, RemoteDatabase

values = st.one_of(
    st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30), st.binary(max_size=10))


def run(sql: str, params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(":memory:")
    return conn.execute(sql, params).fetchall()


@settings(max_examples=150, deadline=None)
@given(st.lists(values, max_size=140).filter(lambda v: sum(isinstance(x, float) for x in v) <= 100),
       st.sampled_from(["plain", "numbered", "quoted"]))
def test_bind_means_what_sqlite_would_have_run(params: list[Any], style: str) -> None:
    n = len(params)
    if style == "plain":
        sql = "SELECT " + (", ".join("?" for _ in params) or "1")
        args: Any = params
    elif style == "numbered":  # ?NNN, reused and out of order
        sql = "SELECT " + (", ".join(f"?{n - i}" for i in range(n)) or "1") + (", ?1" if n else "")
        args = params
    else:  # placeholders inside strings, quoted names and comments are text, not parameters
        sql = "SELECT '?', \"?\" AS \"a?b\", " + (", ".join("?" for _ in params) or "1") + " -- ?\n"
        args = params
    text, bound = bind(sql, args)
    assert len(bound) <= 100
    assert run(text, bound) == run(sql, args)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), values,
                       min_size=1, max_size=8))
def test_named_parameters_become_positional(params: dict[str, Any]) -> None:
    names = list(params)
    sql = "SELECT " + ", ".join(f":{k}" for k in names) + ", " + ", ".join(f"@{k}" for k in reversed(names))
    text, bound = bind(sql, params)
    assert run(text, bound) == run(sql, params)


def test_reads_and_writes_are_told_apart() -> None:
    assert is_read("SELECT 1") and is_read("  -- c\n/* x */ WITH a AS (SELECT 1) SELECT * FROM a")
    assert is_read("PRAGMA table_info(traces)")
    assert not is_read("WITH a AS (SELECT 1) DELETE FROM t WHERE x IN a")
    assert not is_read("UPDATE feedback SET rating = 'x'") and not is_read("INSERT INTO t VALUES (1)")


def test_page_cache_is_bounded_and_expires() -> None:
    cache = PageCache(ttl_s=0.05)
    for i in range(600):
        cache.put((str(i), ()), Result(["a"], [(i,)], {}))
    assert cache.get(("0", ())) is None and cache.get(("599", ())) is not None
    time.sleep(0.06)
    assert cache.get(("599", ())) is None and cache.get(("599", ()), stale_ok=True) is not None


class FakeClient(D1Client):
    """D1Client whose requests run on a local SQLite database (the network part is tested with wrangler)."""

    def __init__(self, path: Path) -> None:
        super().__init__("acct", "00000000-0000-4000-8000-000000000000", "tok-abc", api_base="http://fake.invalid/v4")
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.sent: list[str] = []
        self.down = False

    def raw(self, sql: str, params: Any = (), *, retries: int = 3) -> Result:
        self.sent.append(sql)
        if self.down:
            raise D1Error("network", "cannot connect to fake.invalid (network down?)")
        cur = self.db.execute(sql, list(params))
        rows = cur.fetchall()
        return Result([d[0] for d in cur.description or ()], rows, {"changes": self.db.total_changes})

    def batch(self, statements: Any, *, retries: int = 3) -> list[Result]:
        out = []
        for sql, params in statements:
            before = self.db.total_changes
            cur = self.db.execute(sql, list(params))
            out.append(Result([d[0] for d in cur.description or ()], cur.fetchall(),
                              {"changes": self.db.total_changes - before}))
        return out


@pytest.fixture
def remote(seed_db: Path) -> Remote:
    return Remote(FakeClient(seed_db))


def test_the_shim_behaves_like_a_sqlite3_connection(remote: Remote, tmp_path: Path) -> None:
    db = RemoteDatabase(remote, tmp_path / "x.d1")
    conn = db.conn()
    row = conn.execute("SELECT id, step_count FROM traces ORDER BY rowid LIMIT 1").fetchone()
    assert row["id"] == row[0] == "trace_001" and tuple(row.keys()) == ("id", "step_count")
    for sql in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "PRAGMA busy_timeout = 5",
                "SAVEPOINT a", "RELEASE a"):
        conn.execute(sql)  # no-ops: D1 runs each request as its own transaction
    for sql in ("CREATE TEMP TABLE t (a)", "ATTACH 'x' AS y", "VACUUM"):
        with pytest.raises(sqlite3.OperationalError, match="live D1"):
            conn.execute(sql)
    assert conn.execute("PRAGMA database_list").fetchall()[0][1] == "main"
    cur = conn.executemany("UPDATE traces SET step_count = ? WHERE id = ?",
                           [(9, "trace_001"), (9, "trace_002")])
    assert cur.rowcount == 2
    # the write dropped the cached pages: the new value is read
    assert conn.execute("SELECT step_count FROM traces ORDER BY rowid LIMIT 1").fetchone()[0] == 9
    # the SQL console's read-only mode holds on the shim (its authorizer cannot run remotely)
    from iofold_tui.data.db import connect

    ro = connect(db.path, read_only=True)
    assert isinstance(ro, RemoteConnection) and ro.query_only
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("DELETE FROM traces")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("PRAGMA user_version = 3")
    db.close()


def test_data_version_moves_with_others_writes_not_only_own(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    import iofold_tui.data.source.d1.remote as mod

    monkeypatch.setattr(mod, "PROBE_S", 0.0)
    v0, o0 = remote.data_version(), remote.others_version()
    client: FakeClient = remote.client  # type: ignore[assignment]
    client.db.execute("INSERT INTO eval_sets (id, workspace_id, name) "
                      "SELECT 'es_new', id, 'new' FROM workspaces")
    assert remote.data_version() > v0 and remote.others_version() > o0
    conn = RemoteConnection(remote)
    o1 = remote.others_version()
    conn.execute("INSERT INTO eval_sets (id, workspace_id, name) "
                 "SELECT 'es_new2', id, 'new2' FROM workspaces")
    assert remote.others_version() == o1  # our own write: the panes need no reload for it


def test_offline_reads_serve_cached_pages_and_fail_in_one_line_otherwise(remote: Remote) -> None:
    conn = RemoteConnection(remote)
    first = conn.execute("SELECT id FROM traces ORDER BY rowid").fetchall()
    remote.client.down = True  # type: ignore[attr-defined]
    remote.cache.ttl_s = 0
    assert conn.execute("SELECT id FROM traces ORDER BY rowid").fetchall() == first
    with pytest.raises(sqlite3.OperationalError) as exc:
        conn.execute("SELECT id FROM traces ORDER BY rowid DESC").fetchall()
    assert "\n" not in str(exc.value) and remote.offline


def test_the_token_is_scrubbed_from_messages() -> None:
    D1Client("a", "db", "tok-super-secret-42")
    assert scrub("bearer tok-super-secret-42 refused") == "bearer *** refused"
    assert "tok-super" not in repr(D1Client("a", "db", "tok-super-secret-42"))


def test_a_read_that_scanned_many_rows_is_kept_longer_and_still_dropped_on_a_change() -> None:
    """D1 bills rows read (its ``meta.rows_read``): a count over a large table must not be rescanned every
    cache period; the change probe / our writes still drop it (``clear``)."""
    import iofold_tui.data.source.d1.cache as mod

    cache = PageCache(ttl_s=0.2)
    scanned = Result(["count(*)"], [(1_000_000,)], {"rows_read": mod.EXPENSIVE_ROWS_READ})
    page = Result(["id"], [("t1",)], {"rows_read": 1})
    cache.put(("SELECT count(*) FROM traces WHERE x", ()), scanned)
    cache.put(("SELECT id FROM traces LIMIT 1", ()), page)
    time.sleep(0.3)
    assert cache.get(("SELECT count(*) FROM traces WHERE x", ())) is scanned
    assert cache.get(("SELECT id FROM traces LIMIT 1", ())) is None
    assert cache.get(("SELECT id FROM traces LIMIT 1", ()), stale_ok=True) is page
    cache.clear()
    assert cache.get(("SELECT count(*) FROM traces WHERE x", ())) is None



def test_a_launch_that_read_less_does_not_replace_a_fuller_launch_recording(tmp_path: Path) -> None:
    """A launch quit before its rows (or opened offline) records only the schema reads: replaying that
    next time would cost the first page a round trip again."""
    import json

    from iofold_tui.data.source.d1.remote import _fewer_than_saved

    saved = tmp_path / "x.warm.json"
    saved.write_text(json.dumps({"database_id": "d", "statements": [["SELECT 1", []], ["SELECT ?", [2]]]}))
    assert _fewer_than_saved(saved, [("SELECT 1", [])])
    assert not _fewer_than_saved(saved, [("SELECT 1", []), ("SELECT ?", [2])])  # the same: rewritten
    assert not _fewer_than_saved(saved, [("SELECT 1", []), ("SELECT 3", [])])  # a different launch
    assert not _fewer_than_saved(tmp_path / "none.json", [("SELECT 1", [])])


@pytest.mark.parametrize("workspaces", [1, 2])
def test_the_first_launch_guess_reads_the_page_the_list_asks_for(seed_db: Path, workspaces: int) -> None:
    """first_launch.py: the statement sent (eval set chosen in SQL) returns the rows of the list's own
    statement for the eval set the app picks from the catalog rows (the same rule, in Python)."""
    from iofold_tui.data.source.d1 import first_launch as fl

    conn = sqlite3.connect(seed_db)
    if workspaces == 2:  # a workspace sorting first, with an eval set of its own
        conn.execute("INSERT INTO workspaces (id, name, created_at) "
                     "VALUES ('ws_a', '0 first by name', '2025-01-01')")
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name, created_at, updated_at) "
                     "VALUES ('set_zz', 'ws_a', 'zz last by name', '2025-01-01', '2025-01-01')")
    guess = fl.first_page_guess()
    assert guess is not None
    text, _values, sent, sent_values = guess
    results = [Result([], [], {})]  # the schema statement in front of FIRST_LAUNCH_READS
    for sql, params in fl.FIRST_LAUNCH_READS:
        cur = conn.execute(sql, params)
        results.append(Result([d[0] for d in cur.description or ()], [tuple(r) for r in cur.fetchall()], {}))
    chosen = fl.app_eval_set(results)
    assert chosen == ("set_zz" if workspaces == 2 else "set_response_quality")
    key = fl.page_key(guess, chosen)
    assert key[0] == text and chosen in key[1]
    assert conn.execute(sent, sent_values).fetchall() == conn.execute(key[0], key[1]).fetchall()


# lone surrogates too (a D1 JSON answer can carry them)
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
ANY_TEXT = st.text(st.one_of(st.characters(), SURROGATES))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.floats(allow_nan=False), ANY_TEXT, st.binary()), max_size=6))
@example(["a\ud800", b"\x00\xff", None, 2**63 - 1, -0.0])
def test_what_an_offline_launch_saved_comes_back_value_for_value(values: list[Any]) -> None:
    """Every SQLite value a launch read (NULL, 64-bit ints, floats, any text — lone surrogates too —,
    BLOBs) is kept exactly, for that database only."""
    import tempfile

    from iofold_tui.data.source.d1.offline import load_offline, save_offline

    path = Path(tempfile.mkdtemp()) / "x.offline.json"
    save_offline(path, "db", [("SELECT ?", values, Result(["a"], [tuple(values)], {}))])
    [(sql, params, res)] = load_offline(path, "db")
    assert (sql, params, res.rows) == ("SELECT ?", values, [tuple(values)])
    assert load_offline(path, "another db") == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
