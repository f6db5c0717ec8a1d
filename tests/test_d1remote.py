"""A live D1 database through its REST API (issue 19), against a real D1 binding served by ``wrangler dev
--local`` (tests/fixtures/d1_api_worker) — no internet. One server per module (~10 s to start)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from d1_api_tools import ACCOUNT, DB_ID, TOKEN_RO, TOKEN_RW, D1Api, FaultProxy

from iofold_tui.data.labels.writer import LabelWriter, WriterEvent, WriterTiming
from iofold_tui.data.source.d1.api import D1Error
from iofold_tui.data.source.d1.client import D1Client

pytestmark = pytest.mark.wrangler
ES = "set_response_quality"
EVAL = "eval_response_quality_v1"
BULK = 1200


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def api() -> Iterator[D1Api]:
    server = D1Api().start()
    try:
        server.exec(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BULK}) "
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, metadata, "
            "steps, input_preview, output_preview, step_count, has_errors) "
            "SELECT printf('bulk_%05d', i), 'ws_demo', 'int_langfuse_demo', printf('ext-%05d', i), "
            "CASE WHEN i % 3 = 0 THEN 'langsmith' ELSE 'langfuse' END, "
            "printf('2025-10-%02d %02d:%02d:00', 1 + i % 28, i % 24, i % 60), '{}', "
            "'[{\"role\": \"user\", \"content\": \"q' || i || '\"}]', "
            "'question ' || i, 'answer ' || i, 1, i % 7 = 0 FROM n",
            "INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
            "SELECT 'fb_' || id, 'set_response_quality', id, "
            "CASE WHEN rowid % 2 = 0 THEN 'positive' ELSE 'negative' END, "
            "NULL, '2025-10-30 00:00:00', '2025-10-30 00:00:00' "
            "FROM traces WHERE id LIKE 'bulk_%' AND rowid % 3 = 0",
            "INSERT INTO eval_executions "
            "(id, eval_id, trace_id, result, reason, execution_time_ms, executed_at) "
            "SELECT 'ex_' || id, 'eval_response_quality_v1', id, rowid % 4 <> 0, 'r', 3, "
            "'2025-10-31 00:00:00' FROM traces WHERE id LIKE 'bulk_%' AND rowid % 2 = 0")
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(api: D1Api, monkeypatch: pytest.MonkeyPatch) -> D1Api:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN_RW)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("IOFOLD_D1_API_BASE", api.api_base)
    api.faults()
    return api


@pytest.fixture
def proxy(api: D1Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    p = FaultProxy(api.port)
    monkeypatch.setenv("IOFOLD_D1_API_BASE", p.api_base)
    yield p
    p.close()


def open_remote(read_only: bool = False) -> Any:
    from iofold_tui.data.source.loader import open_source

    return open_source("d1://iofold", read_only=read_only)


def client(api_base: str, token: str = TOKEN_RW, **kw: Any) -> D1Client:
    return D1Client(ACCOUNT, DB_ID, token, api_base=api_base, **kw)


def remote_row(api: D1Api, trace_id: str) -> dict[str, Any] | None:
    sql = "SELECT id, rating, notes, updated_at FROM feedback WHERE eval_set_id = ? AND trace_id = ?"
    rows = api.exec((sql, [ES, trace_id]))[0]["results"]
    return rows[0] if rows else None


def colleague_labels(api: D1Api, trace_id: str, rating: str, at: str) -> None:
    api.exec(("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
              "VALUES ('fb_colleague_' || ?2, ?1, ?2, ?3, NULL, ?4, ?4) ON CONFLICT (eval_set_id, trace_id) "
              "DO UPDATE SET rating = excluded.rating, updated_at = excluded.updated_at",
              [ES, trace_id, rating, at]))


# -- the contract and the shim -----------------------------------------------------------------------

def test_opens_by_name_and_reads_like_sqlite(env: D1Api, tmp_path: Path) -> None:
    opened = open_remote()
    assert opened.kind == "d1-remote" and opened.schema.generation == "v1.0"
    conn = opened.db.conn()
    row = conn.execute("SELECT id, step_count FROM traces WHERE id = ?", ("trace_001",)).fetchone()
    assert row["id"] == "trace_001" and row[1] == 3  # sqlite3.Row: by name and by index
    named = conn.execute("SELECT count(*) AS n FROM traces WHERE source = :s", {"s": "langsmith"}).fetchone()
    assert named["n"] == BULK // 3
    ids = [f"bulk_{i:05d}" for i in range(1, 301)]  # 300 parameters: over D1's 100, inlined
    marks = ",".join("?" * len(ids))
    assert conn.execute(f"SELECT count(*) FROM traces WHERE id IN ({marks})", ids).fetchone()[0] == 300
    assert conn.execute("PRAGMA data_version").fetchone()[0] >= 1
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("CREATE TEMP TABLE t AS SELECT 1")
    cur = conn.execute("SELECT id FROM traces ORDER BY rowid LIMIT 5")
    assert [d[0] for d in cur.description] == ["id"]
    assert len(cur.fetchmany(2)) == 2 and len(cur.fetchall()) == 3


def test_keyset_paging_matches_a_pulled_copy_and_never_uses_offset(env: D1Api, tmp_path: Path) -> None:
    from iofold_tui.data.source.d1.pull import pull
    from iofold_tui.data.traces.query import TraceFilter, TraceQuery

    opened = open_remote()
    sent: list[str] = []
    raw = opened.db.remote.client.raw
    opened.db.remote.client.raw = lambda sql, params=(), **kw: (sent.append(sql), raw(sql, params, **kw))[1]
    copy = tmp_path / "copy.sqlite"
    report = pull(client(env.api_base), copy)
    assert report.tables["traces"] == BULK + 5
    local = sqlite3.connect(copy)
    local.row_factory = sqlite3.Row
    for flt in (TraceFilter(eval_set_id=ES),
                TraceFilter(eval_set_id=ES, rating="positive", newest_first=False),
                TraceFilter(eval_set_id=ES, sources=("langsmith",), has_errors=True)):
        pages = []
        for conn in (opened.db.conn(), local):
            q, got = TraceQuery(conn, flt), []
            page = q.first_page(100)
            while True:
                got += [r.id for r in page.rows]
                if not page.has_after:
                    break
                page = q.page_after(page.rows[-1].key, 100)
            pages.append(got)
        assert pages[0] == pages[1] and len(pages[0]) > 0
    assert sent and not any("OFFSET" in s.upper() for s in sent)
    # scrolling back over a page already seen costs no request (the page cache)
    before = opened.db.remote.client.stats.requests
    TraceQuery(opened.db.conn(), TraceFilter(eval_set_id=ES)).first_page(100)
    assert opened.db.remote.client.stats.requests == before


def test_matrix_statistics_on_d1_equal_the_local_copy(env: D1Api, tmp_path: Path) -> None:
    from iofold_tui.data.matrix.report import stats_report
    from iofold_tui.data.source.d1.pull import pull

    copy = tmp_path / "copy.sqlite"
    pull(client(env.api_base), copy)
    local = sqlite3.connect(copy)
    local.row_factory = sqlite3.Row
    opened = open_remote()
    remote = stats_report(opened.db.conn(), ES)
    assert remote == stats_report(local, ES)
    evals = remote["eval_sets"][0]["evals"]
    assert len(evals) == 1 and json.dumps(evals[0]).count("bulk") == 0  # statistics, not rows
    assert sum(v for v in remote["eval_sets"][0]["labels"].values() if isinstance(v, int)) > 400
    before = opened.db.remote.client.stats.requests
    assert stats_report(opened.db.conn(), ES) == remote  # cached: no request
    assert opened.db.remote.client.stats.requests == before


# -- labels --------------------------------------------------------------------------------------------

def _store_and_writer(opened: Any) -> tuple[Any, LabelWriter, list[WriterEvent]]:
    from iofold_tui.data.labels.remote_store import RemoteLabelStore

    store = RemoteLabelStore(opened.db.remote, opened.db.path, history_path=opened.history_path)
    events: list[WriterEvent] = []
    writer = LabelWriter(store, events.append, WriterTiming(0.05, 0.05, 0.2)).start()
    return store, writer, events


def test_label_is_pending_then_acknowledged_then_undone(env: D1Api) -> None:
    opened = open_remote()
    store, writer, events = _store_and_writer(opened)
    try:
        before = remote_row(env, "bulk_00010")
        assert before is not None and before["rating"] == "negative"
        store.queue_label(ES, "bulk_00010", "positive", note="looks right")
        assert [i.trace_id for i in store.queued()] == ["bulk_00010"]  # pending: in the sidecar first
        writer.wake()
        wait_for(lambda: any(e.kind == "applied" for e in events), what="ack")
        assert not store.queued()
        row = remote_row(env, "bulk_00010")
        assert row is not None and (row["rating"], row["notes"]) == ("positive", "looks right")
        # the shim's cached pages were dropped: the panes read the new label
        sql = "SELECT rating FROM feedback WHERE trace_id = ?"
        got = opened.db.conn().execute(sql, ("bulk_00010",)).fetchone()
        assert got[0] == "positive"
        store.queue_travel(undo=True)
        writer.wake()
        wait_for(lambda: remote_row(env, "bulk_00010") == before,
                 what="undo on D1 (the row exactly as before)")
    finally:
        writer.stop()
        store.close()


def test_a_colleagues_newer_label_is_flagged_not_overwritten(env: D1Api) -> None:
    opened = open_remote()
    store, writer, events = _store_and_writer(opened)
    try:
        writer.stop()  # hold the intent while the colleague writes
        store.queue_label(ES, "bulk_00012", "negative")
        colleague_labels(env, "bulk_00012", "neutral", "2099-01-01 00:00:00")
        writer = LabelWriter(store, events.append, WriterTiming(0.05, 0.05, 0.2)).start()
        failed = wait_for(lambda: [e for e in events if e.kind == "failed"], what="conflict")
        assert "conflict" in (failed[0].applied.error or "")
        assert remote_row(env, "bulk_00012")["rating"] == "neutral"  # theirs kept
        assert not store.queued()
        # ...and the lost key waits in the conflict queue, to be taken in one key
        from iofold_tui.data.labels.conflict_queue import load_conflicts, resolve

        queued = [c for c in load_conflicts(opened.db.path) if c.trace_id == "bulk_00012"]
        assert [(c.eval_set_id, c.theirs_rating) for c in queued] == [(ES, "negative")]
        assert "colleague" in queued[0].origin
        writer.stop()
        resolve(store, queued[0], "theirs")
        assert remote_row(env, "bulk_00012")["rating"] == "negative"
        assert not [c for c in load_conflicts(opened.db.path) if c.trace_id == "bulk_00012"]
    finally:
        writer.stop()
        store.close()


def test_offline_labels_stay_queued_and_land_when_the_network_returns(env: D1Api, proxy: FaultProxy) -> None:
    opened = open_remote()
    store, writer, events = _store_and_writer(opened)
    proxy.set_down(True)
    try:
        for tid in ("bulk_00020", "bulk_00022", "bulk_00024"):
            store.queue_label(ES, tid, "neutral")
        writer.wake()
        busy = wait_for(lambda: [e for e in events if e.kind == "busy"], what="busy while offline")
        assert "network" in (busy[0].applied.error or "") or "connect" in (busy[0].applied.error or "")
        assert len(store.queued()) == 3
        # the app quits while offline: the intents stay in the sidecar
        writer.stop()
        store.close()
        assert remote_row(env, "bulk_00020") is None or remote_row(env, "bulk_00020")["rating"] != "neutral"
        proxy.set_down(False)
        store, writer, events = _store_and_writer(open_remote())
        writer.wake()
        wait_for(lambda: not store.queued(), what="queued labels written")
        relabelled = ("bulk_00020", "bulk_00022", "bulk_00024")
        assert all(remote_row(env, t)["rating"] == "neutral" for t in relabelled)
        # cached pages keep working while the network is down
        conn = opened.db.conn()
        first = conn.execute("SELECT id FROM traces ORDER BY rowid LIMIT 3").fetchall()
        proxy.set_down(True)
        opened.db.remote.cache.ttl_s = 0  # even expired: shown rather than failing
        assert conn.execute("SELECT id FROM traces ORDER BY rowid LIMIT 3").fetchall() == first
        with pytest.raises(sqlite3.OperationalError, match="network"):
            conn.execute("SELECT id FROM traces ORDER BY rowid LIMIT 4").fetchall()
    finally:
        proxy.set_down(False)
        writer.stop()
        store.close()


def test_with_the_network_down_a_launch_opens_on_what_the_last_one_saw_and_labels_queue(
        env: D1Api, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    import stat

    import iofold_tui.data.source.d1.remote as mod
    from iofold_tui.data.source import catalog
    from iofold_tui.data.source.d1.offline import offline_path
    from iofold_tui.data.traces.query import TraceFilter, TraceQuery

    monkeypatch.setattr(mod, "WARM_S", 0.3)
    first = open_remote()
    conn = first.db.conn()
    catalog.eval_sets(conn, None)
    shown = [r.id for r in TraceQuery(conn, TraceFilter(eval_set_id=ES)).first_page(100).rows]
    saved = offline_path(first.db.path)
    wait_for(lambda: saved.exists() and "traces" in saved.read_text(),
             what="the launch saved for offline use")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600  # trace text: this user's only
    assert TOKEN_RW not in saved.read_text()
    proxy.set_down(True)
    try:
        second = open_remote()  # no network: opens on what the first launch saw
        assert second.db.remote.offline and "D1 offline" in second.db.status()
        conn = second.db.conn()
        eval_set_ids = [e.id for e in catalog.eval_sets(conn, None)]
        assert eval_set_ids and ES in eval_set_ids
        assert [r.id for r in TraceQuery(conn, TraceFilter(eval_set_id=ES)).first_page(100).rows] == shown
        with pytest.raises(sqlite3.OperationalError, match=r"network|connect"):
            conn.execute("SELECT id FROM traces WHERE id = 'never-read'").fetchall()
        store, writer, events = _store_and_writer(second)
        try:
            store.queue_label(ES, shown[0], "neutral")
            writer.wake()
            wait_for(lambda: [e for e in events if e.kind == "busy"], what="pending while offline")
            proxy.set_down(False)
            wait_for(lambda: not store.queued(), what="the label written when the network returned")
            assert remote_row(env, shown[0])["rating"] == "neutral"
        finally:
            writer.stop()
            store.close()
    finally:
        proxy.set_down(False)


def test_read_only_token_makes_the_source_read_only(env: D1Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN_RO)
    opened = open_remote()
    store, writer, events = _store_and_writer(opened)
    try:
        store.queue_label(ES, "bulk_00030", "positive")
        writer.wake()
        failed = wait_for(lambda: [e for e in events if e.kind == "failed"], what="refused write")
        assert "403" in (failed[0].applied.error or "")
        assert opened.db.read_only_reason and "cannot write" in opened.db.read_only_reason
        assert store.read_only
    finally:
        writer.stop()
        store.close()
    assert open_remote(read_only=True).db.read_only_reason == "opened with --read-only"


# -- injected faults -------------------------------------------------------------------------------------

def test_429_with_retry_after_and_5xx_are_retried(env: D1Api) -> None:
    c = client(env.api_base)
    env.faults(fail=[{"status": 429, "retry_after": 1, "times": 1}, {"status": 500, "times": 1},
                     {"status": 503, "times": 1}])
    t0 = time.monotonic()
    assert c.raw("SELECT 1 AS one").rows == [(1,)]
    assert time.monotonic() - t0 >= 1.0  # waited as told
    assert c.stats.failures == 3
    # a 429 whose Retry-After is past the caller's budget: no request is sent until it is over
    env.faults(fail=[{"status": 429, "retry_after": 300, "times": 1}])
    c2 = client(env.api_base)
    with pytest.raises(D1Error) as exc:
        c2.raw("SELECT 1")
    assert exc.value.kind == "rate"
    sent = env.stats()["requests"]
    with pytest.raises(D1Error, match="resume in"):
        c2.raw("SELECT 1")
    assert env.stats()["requests"] == sent
    env.faults(fail=[{"status": 500, "times": 10}])
    with pytest.raises(D1Error) as exc:
        client(env.api_base, sleep=lambda s: None).raw("SELECT 1")
    assert exc.value.kind == "server" and "\n" not in str(exc.value)
    env.faults()


def test_each_failure_kind_has_one_line(env: D1Api, proxy: FaultProxy) -> None:
    cases: list[tuple[D1Client, str, str]] = [
        (client(env.api_base, token="wrong-token-123"), "auth", "SELECT 1"),
        (client(env.api_base), "sql", "SELECT nope FROM nowhere"),
        (client(env.api_base, token=TOKEN_RO), "forbidden", "DELETE FROM jobs WHERE 0"),
        (D1Client(ACCOUNT, DB_ID, TOKEN_RW, api_base="http://127.0.0.1:9/client/v4", sleep=lambda s: None),
         "network", "SELECT 1"),
        (D1Client(ACCOUNT, DB_ID, TOKEN_RW, api_base="http://no-such-host.invalid/client/v4",
                  sleep=lambda s: None),
         "network", "SELECT 1"),
    ]
    for c, kind, sql in cases:
        with pytest.raises(D1Error) as exc:
            c.raw(sql) if sql.startswith("SELECT") else c.batch([(sql, [])])
        assert exc.value.kind == kind, (kind, str(exc.value))
        assert "\n" not in str(exc.value) and "token-" not in str(exc.value)
    env.faults(delay_ms=1500)
    with pytest.raises(D1Error) as exc:
        client(env.api_base, timeout_s=0.5, sleep=lambda s: None).raw("SELECT 1", retries=1)
    assert exc.value.kind == "timeout"
    env.faults()
    proxy.set_down(True)
    with pytest.raises(D1Error) as exc:
        D1Client(ACCOUNT, DB_ID, TOKEN_RW, api_base=proxy.api_base, sleep=lambda s: None).raw("SELECT 1")
    assert exc.value.kind == "network" and "dropped" in str(exc.value)
    proxy.set_down(False)


def test_dropped_connection_mid_session_is_retried(env: D1Api, proxy: FaultProxy) -> None:
    c = D1Client(ACCOUNT, DB_ID, TOKEN_RW, api_base=proxy.api_base)
    assert c.raw("SELECT 1").rows == [(1,)]  # a kept-alive connection...
    proxy.set_down(True)  # ...is cut
    proxy.set_down(False)
    assert c.raw("SELECT 2").rows == [(2,)]


# -- the command line: pull, push, open, and the token never shown -----------------------------------

def _cli(args: list[str], env_vars: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "iofold-tui"), *args], env=env_vars, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_pull_label_offline_push_and_token_never_leaks(env: D1Api, tmp_path: Path) -> None:
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": "", "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data"),
            "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "cache")}
    outputs: list[str] = []
    copy = tmp_path / "copy.sqlite"
    r = _cli(["pull", "--api-base", env.api_base, "d1://iofold", str(copy)], base, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 0, r.stderr
    assert "rows in 10 tables" in r.stdout
    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.data.source.loader import open_source

    os.environ["IOFOLD_TUI_DATA_DIR"] = base["IOFOLD_TUI_DATA_DIR"]
    opened = open_source(str(copy))
    with LabelStore(opened.db.path, history_path=opened.history_path) as store:
        store.set_label(ES, "bulk_00040", "neutral")
        store.set_label(ES, "bulk_00042", "positive")
    colleague_labels(env, "bulk_00042", "negative", "2099-01-02 00:00:00")  # meanwhile
    r = _cli(["push", "--api-base", env.api_base, str(copy), "d1://iofold"], base, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 1, r.stderr  # one conflict
    assert "1 applied" in r.stdout and "1 conflict" in r.stdout
    assert remote_row(env, "bulk_00040")["rating"] == "neutral"
    assert remote_row(env, "bulk_00042")["rating"] == "negative"
    bad = {**base, "CLOUDFLARE_API_TOKEN": "secret-wrong-token-zz9"}
    r = _cli(["info", "--api-base", env.api_base, "d1://iofold"], bad, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "401" in r.stderr
    r = _cli(["info", "--api-base", env.api_base, "d1://iofold"], base, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 0 and "v1.0" in r.stdout
    for token in (TOKEN_RW, "secret-wrong-token-zz9"):
        assert not any(token in o for o in outputs)
        for f in tmp_path.rglob("*"):
            if f.is_file() and f != copy:
                with contextlib.suppress(OSError):
                    assert token.encode() not in f.read_bytes(), f


def test_the_tui_shows_rows_the_round_trip_and_a_pending_label(env: D1Api) -> None:
    import asyncio

    from iofold_tui.ui.app import IofoldApp

    async def run() -> None:
        app = IofoldApp(open_remote())
        async with app.run_test(size=(120, 30)) as pilot:
            from iofold_tui.ui.pane import PaneHeader

            await wait_async(pilot, lambda: "trace_005" in app.export_screenshot())
            header = str(app.screen.query_one(PaneHeader).render())
            assert "D1" in header and "ms" in header
            await pilot.press("x")
            await wait_async(pilot, lambda: remote_row(env, "trace_005")["rating"] == "negative")

    async def wait_async(pilot: Any, cond: Callable[[], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            await pilot.pause(0.05)

    asyncio.run(run())


def test_status_and_json_shapes(env: D1Api) -> None:
    c = client(env.api_base)
    res = c.batch([("SELECT 1 AS a", []), ("UPDATE jobs SET progress = progress WHERE 0", [])])
    assert res[0].columns == ["a"] and res[0].rows == [(1,)]
    assert set(res[1].meta) >= {"changed_db", "changes", "duration", "last_row_id", "rows_read",
                                "rows_written", "size_after"}
    assert c.resolve_database("iofold") == DB_ID
    with pytest.raises(D1Error, match="no D1 database named"):
        c.resolve_database("nope")
    assert c.stats.last_rtt_ms is not None and json.dumps(c.stats.last_rtt_ms)


def test_run_eval_reads_and_writes_in_batches_and_undoes(env: D1Api, tmp_path: Path) -> None:
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base, "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data"),
            "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "cache")}

    def executions() -> int:
        sql = "SELECT count(*) AS n FROM eval_executions WHERE eval_id = ?"
        return env.exec((sql, [EVAL]))[0]["results"][0]["n"]

    before = executions()
    env.faults()  # resets the request count
    r = _cli(["run-eval", "d1://iofold", EVAL, "--traces", "all", "--json", "--unconfined"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    requests = env.stats()["requests"]
    assert executions() == BULK + 5
    assert requests < (BULK + 5) / 10, requests  # batches, not a request per trace
    r = _cli(["undo-run", "d1://iofold"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    assert executions() == before


def test_quick_relabels_are_not_conflicts_and_older_labels_are_replaced(env: D1Api) -> None:
    colleague_labels(env, "bulk_00050", "negative", "2020-01-01 00:00:00")  # older than any key press
    opened = open_remote()
    store, writer, events = _store_and_writer(opened)
    try:
        writer.stop()
        store.queue_label(ES, "bulk_00050", "positive")
        store.queue_label(ES, "bulk_00050", "neutral", note="second thought")
        writer = LabelWriter(store, events.append, WriterTiming(0.05, 0.05, 0.2)).start()
        wait_for(lambda: not store.queued(), what="both written")
        assert not [e for e in events if e.kind == "failed"]
        row = remote_row(env, "bulk_00050")
        assert (row["rating"], row["notes"]) == ("neutral", "second thought")
        assert row["id"] == "fb_colleague_bulk_00050"  # relabelled in place: the row keeps its id
        assert len([s for s in store.recent_steps(10) if s.changes[0].trace_id == "bulk_00050"]) == 2
    finally:
        writer.stop()
        store.close()


def test_a_later_launch_replays_the_first_launchs_reads_in_one_request(
        env: D1Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import iofold_tui.data.source.d1.remote as mod
    from iofold_tui.data.source import catalog
    from iofold_tui.data.traces.query import TraceFilter, TraceQuery

    monkeypatch.setattr(mod, "WARM_S", 0.3)

    def launch_reads(opened: Any) -> None:  # what the app reads before rows are on screen
        conn = opened.db.conn()
        catalog.workspaces(conn)
        catalog.eval_sets(conn, None)
        TraceQuery(conn, TraceFilter(eval_set_id=ES)).first_page(100)

    first = open_remote()
    launch_reads(first)
    warm = first.db.path.with_name(first.db.path.name + ".warm.json")
    wait_for(lambda: warm.exists() and "traces" in warm.read_text(), what="the launch recorded")
    second = open_remote()
    launch_reads(second)
    assert second.db.remote.client.stats.requests == 1


def test_a_first_launch_ever_is_the_name_lookup_and_one_batch_with_the_first_page(
        env: D1Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing recorded yet, the reads every launch makes and a guess at the first page go with the
    schema in one batch; the app's launch still asks exactly those texts (else FIRST_LAUNCH_READS or the
    guess is stale and first launches slow down)."""
    import asyncio

    import iofold_tui.data.source.d1.remote as mod
    from iofold_tui.data import paths
    from iofold_tui.data.source.d1.first_launch import FIRST_LAUNCH_READS
    from iofold_tui.ui.app import IofoldApp

    for f in (paths.data_dir() / "d1").glob("*.warm.json"):
        f.unlink()
    asked: list[tuple[str, tuple[Any, ...]]] = []
    original = mod.Remote._record

    def record(self: Any, text: str, values: list[Any]) -> None:
        asked.append((text, tuple(values)))
        original(self, text, values)

    monkeypatch.setattr(mod.Remote, "_record", record)
    opened = open_remote()
    stats = opened.db.remote.client.stats
    assert stats.requests == 2  # the database's id by its name, then the schema and the launch reads

    async def run() -> int:
        app = IofoldApp(opened, pane="traces")
        async with app.run_test(size=(120, 30)) as pilot:
            deadline = time.monotonic() + 15
            while "trace_005" not in app.export_screenshot():
                assert time.monotonic() < deadline, "no rows on screen"
                await pilot.pause(0.02)
            return int(stats.requests)

    on_screen = asyncio.run(run())
    # the first page was guessed in the batch (first_launch.py): at most the change probe came after it
    assert on_screen <= 3, on_screen
    missing = [q for q in FIRST_LAUNCH_READS if q not in asked]
    assert not missing, f"the app no longer reads these at launch: {missing}"
    # ...and the guessed page is exactly what the list's own statement reads
    page = next((sql, params) for sql, params in asked if "LEFT JOIN feedback" in sql)
    remote = opened.db.remote
    cached = remote.cache.get(page, stale_ok=True)
    assert cached is not None and cached.rows
    assert remote.run(page[0], list(page[1]), cached=False).rows == cached.rows


def test_connections_are_reused_across_threads_and_a_closed_idle_one_is_replaced_silently(
        env: D1Api, proxy: FaultProxy) -> None:
    """The UI's queries run on short-lived threads: each must not pay a new connection (TCP + TLS on the
    real API); and a kept-alive connection the server closed while idle is not a failure."""
    import threading

    c = client(proxy.api_base)
    for i in range(12):
        t = threading.Thread(target=c.raw, args=(f"SELECT {i}",))
        t.start()
        t.join()
    assert proxy.accepted <= 2, proxy.accepted
    proxy.set_down(True)  # the server drops its idle keep-alive connections...
    proxy.set_down(False)
    failures, accepted = c.stats.failures, proxy.accepted
    assert c.raw("SELECT 'again'").rows == [("again",)]  # ...the next request goes on a new one, no error
    assert c.stats.failures == failures and proxy.accepted == accepted + 1


def test_interrupt_cuts_a_slow_read_at_once_and_the_connection_stays_usable(env: D1Api) -> None:
    import threading

    opened = open_remote()
    remote = opened.db.remote
    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            with opened.db.fresh() as conn:
                holder["conn"] = conn
                conn.execute("SELECT count(*) FROM traces WHERE trace_id > 'slow'").fetchall()
            outcome["rows"] = True
        except sqlite3.OperationalError as exc:
            outcome["error"] = str(exc)

    holder: dict[str, Any] = {}
    env.faults(delay_ms=8000)
    try:
        t = threading.Thread(target=read)
        t.start()
        wait_for(lambda: holder.get("conn") is not None and remote.client._busy, what="the request in flight")
        t0 = time.monotonic()
        holder["conn"].interrupt()
        t.join(5)
        assert not t.is_alive() and time.monotonic() - t0 < 2
        assert outcome == {"error": "interrupted"}
    finally:
        env.faults()
    with opened.db.fresh() as conn:
        assert conn.execute("SELECT 41 + 1").fetchone()[0] == 42


def test_step_search_scans_on_d1_and_no_index_is_built_for_it(env: D1Api, tmp_path: Path) -> None:
    from iofold_tui.data.search.index import run_search, source_key
    from iofold_tui.data.source.d1.pull import pull

    copy = tmp_path / "copy.sqlite"
    pull(client(env.api_base), copy)
    local = sqlite3.connect(copy)
    opened = open_remote()
    for query in ("question 83", "answer", "SMTP", "\"order #48213\""):
        with opened.db.fresh() as conn:
            key = source_key(opened.kind, opened.origin, opened.db.path)
            remote = run_search(conn, key, query, limit=None, want_all=True)
        assert not remote.used_index
        assert remote.all_rowids == run_search(local, None, query, limit=None, want_all=True).all_rowids
        assert query != "answer" or len(remote.all_rowids or []) >= BULK
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base}
    r = _cli(["index", "d1://iofold"], base, tmp_path)
    assert r.returncode == 2 and "no search index for a live D1" in r.stderr


def test_a_bulk_step_is_one_transaction_and_undoes_exactly(env: D1Api) -> None:
    opened = open_remote()
    from iofold_tui.data.labels.remote_store import RemoteLabelStore

    store = RemoteLabelStore(opened.db.remote, opened.db.path, history_path=opened.history_path)
    ids = [f"bulk_{i:05d}" for i in range(100, 400)]  # labelled, unlabelled and mixed ratings
    before = {t: remote_row(env, t) for t in ids[:5]}
    try:
        requests = opened.db.remote.client.stats.requests
        step = store.set_labels(ES, ids, "neutral")
        assert step is not None and len(step.changes) > 250
        assert opened.db.remote.client.stats.requests - requests <= 3  # read, then ONE batch
        assert all(remote_row(env, t)["rating"] == "neutral" for t in ids[::37])
        # a colleague changes one row: the undo of the step is refused as a whole, nothing half-done
        colleague_labels(env, ids[7], "positive", "2099-01-03 00:00:00")
        from iofold_tui.data.labels.store_types import UndoConflictError

        with pytest.raises(UndoConflictError):
            store.undo()
        assert remote_row(env, ids[8])["rating"] == "neutral"
        store.undo(force=True)
        assert {t: remote_row(env, t) for t in ids[:5]} == before
    finally:
        store.close()


def test_a_row_that_moves_while_a_step_is_sent_rolls_the_whole_step_back(
        env: D1Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import iofold_tui.data.labels.remote_store as rs
    from iofold_tui.data.labels.store_types import LockedError

    opened = open_remote()
    store = rs.RemoteLabelStore(opened.db.remote, opened.db.path, history_path=opened.history_path)
    ids = [f"bulk_{i:05d}" for i in range(500, 560)]
    before = {t: remote_row(env, t) for t in ids}
    original = rs.plan_statements

    def racing(writes: Any) -> Any:  # a colleague relabels one of the rows in between
        colleague_labels(env, ids[30], "positive", "2099-01-04 00:00:00")
        return original(writes)

    monkeypatch.setattr(rs, "plan_statements", racing)
    try:
        with pytest.raises(LockedError, match="changed on D1"):
            store.set_labels(ES, ids, "neutral")
        after = {t: remote_row(env, t) for t in ids}
        untouched = [t for t in ids if t != ids[30]]
        assert {t: after[t] for t in untouched} == {t: before[t] for t in untouched}
        assert not store.can_undo() or store.peek_undo().changes[0].trace_id not in ids
    finally:
        store.close()


def test_copy_only_label_commands_refuse_the_live_database_in_one_line(env: D1Api, tmp_path: Path) -> None:
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base}
    header = "eval_set_id,trace_id,action,rating,notes,changed_at,feedback_id\r\n"
    (tmp_path / "labels.csv").write_text(header)
    for args in (["export-labels", "d1://iofold"], ["carry-labels", "d1://iofold"],
                 ["push", "d1://iofold", "d1://iofold"]):
        r = _cli(args, base, tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "copies of a D1 database" in r.stderr, r.stderr


def test_agreement_and_import_labels_work_on_the_live_database_through_a_labels_only_copy(
        env: D1Api, tmp_path: Path) -> None:
    """D1 cannot ATTACH: both read a fresh labels-only copy (no trace steps pulled); import writes through
    the live store's conditional statements."""
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base, "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data"),
            "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "cache")}
    copy = tmp_path / "colleague.sqlite"
    assert _cli(["pull", "d1://iofold", str(copy)], base, tmp_path).returncode == 0
    with contextlib.closing(sqlite3.connect(copy)) as c, c:
        flipped = [r[0] for r in c.execute("SELECT trace_id FROM feedback WHERE eval_set_id = ? AND rating "
                                           "IN ('positive', 'negative') ORDER BY trace_id LIMIT 2", (ES,))]
        c.executemany("UPDATE feedback SET rating = CASE rating WHEN 'positive' THEN 'negative' "
                      "ELSE 'positive' END WHERE eval_set_id = ? AND trace_id = ?",
                      [(ES, t) for t in flipped])
    r = _cli(["agreement", "d1://iofold", str(copy), "--eval-set", ES, "--json"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)["eval_sets"][0]
    pair = report["pairs"][0]
    labelled = env.exec(("SELECT count(*) AS n FROM feedback WHERE eval_set_id = ? "
                         "AND rating IN ('positive', 'negative', 'neutral')", [ES]))[0]["results"][0]["n"]
    assert (pair["overlap"], pair["agree"]) == (labelled, labelled - 2)
    made = list((tmp_path / "cache").rglob("*.labels-copy.sqlite"))
    assert len(made) == 1
    with contextlib.closing(sqlite3.connect(made[0])) as c:
        assert [r[1] for r in c.execute("PRAGMA table_info(traces)")] == ["id", "workspace_id"]
        copied = c.execute("SELECT count(*) FROM feedback WHERE eval_set_id = ?", (ES,)).fetchone()[0]
        assert copied == labelled

    free = [r["id"] for r in env.exec(("SELECT id FROM traces WHERE id LIKE 'bulk_%' AND id NOT IN (SELECT "
                                       "trace_id FROM feedback WHERE eval_set_id = ?) ORDER BY id LIMIT 2",
                                       [ES]))[0]["results"]]
    labels = tmp_path / "labels.csv"
    labels.write_text("eval_set_id,trace_id,rating,notes\r\n"
                      f"{ES},{free[0]},neutral,from a file\r\n{ES},{free[1]},positive,\r\n")
    r = _cli(["import-labels", "d1://iofold", str(labels), "--apply"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    row = remote_row(env, free[0])
    assert row is not None and (row["rating"], row["notes"]) == ("neutral", "from a file")
    assert remote_row(env, free[1])["rating"] == "positive"


def test_opening_the_tui_on_a_bad_d1_target_is_one_line_and_exit_2(env: D1Api, tmp_path: Path) -> None:
    """The TUI's open overlaps the network with importing the UI (a thread): its errors still come out as
    one line and exit code 2, before any screen is drawn."""
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base, "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data")}
    for args, expected in ((["d1://no-such-db"], "no D1 database named"),
                           (["open", "d1://iofold"], "401")):
        env_vars = base if expected != "401" else {**base, "CLOUDFLARE_API_TOKEN": "wrong-token-x"}
        r = _cli(args, env_vars, tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "\x1b[" not in r.stdout


def test_hostile_values_come_through_d1_without_breaking_a_pane(env: D1Api) -> None:
    from iofold_tui.data.traces.detail import load_trace
    from iofold_tui.data.traces.query import TraceFilter, TraceQuery

    env.exec("INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, metadata, "
             "steps, input_preview, output_preview, step_count, has_errors) VALUES ('zz_hostile', 'ws_demo', "
             "'int_langfuse_demo', 'ext-hostile', X'00ff', '2099-12-31 23:59:59', CAST(X'ff7b' AS TEXT), "
             "'[{\"role\": \"user\", \"content\": \"[bold red]x[/] \\u001b[31m\\u0000\"}]', "
             "'a' || char(0) || 'b' || char(10) || '[link=x]', 9.5, 9223372036854775807, 'many')")
    opened = open_remote()
    page = TraceQuery(opened.db.conn(), TraceFilter(eval_set_id=ES)).first_page(20)
    assert page.rows[0].id == "zz_hostile"
    detail = load_trace(opened.db.conn(), "zz_hostile")
    assert detail is not None
    env.exec("DELETE FROM traces WHERE id = 'zz_hostile'")
