"""Labels on a live D1 database (issue 19), against ``wrangler dev --local`` (no internet): pending then
acknowledged, conflicts with a colleague, offline labels, read-only tokens, bulk steps, pull/push, run-eval,
agreement and import-labels. One server per module (~10 s to start)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _d1_helpers import (
    BULK,
    ES,
    EVAL,
    colleague_labels,
    open_remote,
    remote_row,
    run_cli,
    store_and_writer,
    wait_for,
)
from d1_api_tools import ACCOUNT, TOKEN_RO, TOKEN_RW, D1Api, FaultProxy

from iofold_tui.data.labels.writer import LabelWriter, WriterTiming

pytestmark = pytest.mark.wrangler


def test_label_is_pending_then_acknowledged_then_undone(env: D1Api) -> None:
    opened = open_remote()
    store, writer, events = store_and_writer(opened)
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
    store, writer, events = store_and_writer(opened)
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
    store, writer, events = store_and_writer(opened)
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
        store, writer, events = store_and_writer(open_remote())
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
        store, writer, events = store_and_writer(second)
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
    store, writer, events = store_and_writer(opened)
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


def test_pull_label_offline_push_and_token_never_leaks(env: D1Api, tmp_path: Path) -> None:
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": "", "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data"),
            "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "cache")}
    outputs: list[str] = []
    copy = tmp_path / "copy.sqlite"
    r = run_cli(["pull", "--api-base", env.api_base, "d1://iofold", str(copy)], base, tmp_path)
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
    r = run_cli(["push", "--api-base", env.api_base, str(copy), "d1://iofold"], base, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 1, r.stderr  # one conflict
    assert "1 applied" in r.stdout and "1 conflict" in r.stdout
    assert remote_row(env, "bulk_00040")["rating"] == "neutral"
    assert remote_row(env, "bulk_00042")["rating"] == "negative"
    bad = {**base, "CLOUDFLARE_API_TOKEN": "secret-wrong-token-zz9"}
    r = run_cli(["info", "--api-base", env.api_base, "d1://iofold"], bad, tmp_path)
    outputs += [r.stdout, r.stderr]
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "401" in r.stderr
    r = run_cli(["info", "--api-base", env.api_base, "d1://iofold"], base, tmp_path)
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


def test_run_eval_reads_and_writes_in_batches_and_undoes(env: D1Api, tmp_path: Path) -> None:
    base = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN_RW, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "IOFOLD_D1_API_BASE": env.api_base, "IOFOLD_TUI_DATA_DIR": str(tmp_path / "data"),
            "IOFOLD_TUI_CACHE_DIR": str(tmp_path / "cache")}

    def executions() -> int:
        sql = "SELECT count(*) AS n FROM eval_executions WHERE eval_id = ?"
        return env.exec((sql, [EVAL]))[0]["results"][0]["n"]

    before = executions()
    env.faults()  # resets the request count
    args = ["run-eval", "d1://iofold", EVAL, "--traces", "all", "--json", "--unconfined"]
    r = run_cli(args, base, tmp_path)
    assert r.returncode == 0, r.stderr
    requests = env.stats()["requests"]
    assert executions() == BULK + 5
    assert requests < (BULK + 5) / 10, requests  # batches, not a request per trace
    r = run_cli(["undo-run", "d1://iofold"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    assert executions() == before


def test_quick_relabels_are_not_conflicts_and_older_labels_are_replaced(env: D1Api) -> None:
    colleague_labels(env, "bulk_00050", "negative", "2020-01-01 00:00:00")  # older than any key press
    opened = open_remote()
    store, writer, events = store_and_writer(opened)
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
        r = run_cli(args, base, tmp_path)
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
    assert run_cli(["pull", "d1://iofold", str(copy)], base, tmp_path).returncode == 0
    with contextlib.closing(sqlite3.connect(copy)) as c, c:
        flipped = [r[0] for r in c.execute("SELECT trace_id FROM feedback WHERE eval_set_id = ? AND rating "
                                           "IN ('positive', 'negative') ORDER BY trace_id LIMIT 2", (ES,))]
        c.executemany("UPDATE feedback SET rating = CASE rating WHEN 'positive' THEN 'negative' "
                      "ELSE 'positive' END WHERE eval_set_id = ? AND trace_id = ?",
                      [(ES, t) for t in flipped])
    r = run_cli(["agreement", "d1://iofold", str(copy), "--eval-set", ES, "--json"], base, tmp_path)
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
    r = run_cli(["import-labels", "d1://iofold", str(labels), "--apply"], base, tmp_path)
    assert r.returncode == 0, r.stderr
    row = remote_row(env, free[0])
    assert row is not None and (row["rating"], row["notes"]) == ("neutral", "from a file")
    assert remote_row(env, free[1])["rating"] == "positive"
