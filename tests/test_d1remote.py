"""A live D1 database as a source (issue 19), against a real D1 binding served by ``wrangler dev --local``
(tests/fixtures/d1_api_worker) — no internet: the REST contract, paging, the matrix, errors and retries,
launch round trips, the client's connections, search. Labels: test_d1remote_labels.py."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _d1_helpers import (
    BULK,
    ES,
    client,
    open_remote,
    run_cli,
    wait_for,
)
from d1_api_tools import ACCOUNT, DB_ID, TOKEN_RO, TOKEN_RW, D1Api, FaultProxy

from iofold_tui.data.source.d1.api import D1Error
from iofold_tui.data.source.d1.client import D1Client

pytestmark = pytest.mark.wrangler


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
    r = run_cli(["index", "d1://iofold"], base, tmp_path)
    assert r.returncode == 2 and "no search index for a live D1" in r.stderr


def test_opening_the_tui_on_a_bad_d1_target_is_one_line_and_exit_2(env: D1Api, tmp_path: Path) -> None:
    """The TUI's open overlaps the network with importing the UI (a thread): its errors still come out as
    one line and exit code 2, before any screen is drawn."""
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base, "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data")}
    for args, expected in ((["d1://no-such-db"], "no D1 database named"),
                           (["open", "d1://iofold"], "401")):
        env_vars = base if expected != "401" else {**base, "CLOUDFLARE_API_TOKEN": "wrong-token-x"}
        r = run_cli(args, env_vars, tmp_path)
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
