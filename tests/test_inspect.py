"""Overview figures, warnings, jobs and integrations on databases with known contents."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from _inspect_helpers import build_inspect_db, connect_rows, copy_db

from iofold_tui.data.inspect.checks import (
    CONFLICTING,
    INFLATED,
    NEWLINE_HAZARD,
    ORPHAN_EXECUTIONS,
    ORPHAN_FEEDBACK,
    STALE_COUNTERS,
    STALE_JOBS,
    detect_warnings,
)
from iofold_tui.data.inspect.checks import KINDS as WARNING_KINDS
from iofold_tui.data.inspect.integrations import list_integrations
from iofold_tui.data.inspect.job_payloads import describe_job_payload
from iofold_tui.data.inspect.jobs import JobCursor, list_jobs
from iofold_tui.data.inspect.overview import overview


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_inspect_db(tmp_path_factory.mktemp("inspect") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    return copy_db(template, tmp_path / "inspect.sqlite")


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = connect_rows(db)
    yield c
    c.close()


def _counts(conn: sqlite3.Connection, ws: str | None) -> dict[str, int]:
    warnings, notes = detect_warnings(conn, ws)
    assert notes == []
    return {w.kind: w.count for w in warnings}


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


# -- overview figures --------------------------------------------------------------------------

def test_table_counts_scoped_per_workspace(conn: sqlite3.Connection) -> None:
    a = {t.table: t.count for t in overview(conn, "ws_a", warnings=False).tables}
    assert a == {
        "workspaces": 1,
        "users": 2,
        "workspace_members": 2,
        "integrations": 2,
        "traces": 6,
        "eval_sets": 2,
        "feedback": 8,
        "evals": 4,
        "eval_executions": 7,
        "jobs": 7,
    }
    b = {t.table: t.count for t in overview(conn, "ws_b", warnings=False).tables}
    assert b == {
        "workspaces": 1,
        "users": 1,
        "workspace_members": 1,
        "integrations": 1,
        "traces": 2,
        "eval_sets": 1,
        "feedback": 2,
        "evals": 1,
        "eval_executions": 1,
        "jobs": 1,
    }
    everything = {t.table: t.count for t in overview(conn, None, warnings=False).tables}
    assert everything["traces"] == 8 and everything["eval_executions"] == 8 and everything["workspaces"] == 2


def test_table_count_sql_lists_the_counted_rows(conn: sqlite3.Connection) -> None:
    for figure in overview(conn, "ws_a", warnings=False).tables:
        assert len(_rows(conn, figure.sql)) == figure.count, figure.table


def test_eval_set_label_progress(conn: sqlite3.Connection) -> None:
    sets = {s.id: s for s in overview(conn, "ws_a", warnings=False).eval_sets}
    assert set(sets) == {"set_q", "set_s"}
    q, s = sets["set_q"], sets["set_s"]
    assert (q.positive, q.negative, q.neutral, q.total, q.minimum_examples) == (3, 1, 1, 5, 5)
    assert q.ready and q.progress == 1.0
    assert (s.positive, s.negative, s.neutral, s.total) == (1, 2, 0, 3)
    assert not s.ready and s.progress == pytest.approx(0.75)
    assert len(_rows(conn, q.sql)) == 5
    assert [x.id for x in overview(conn, "ws_b", warnings=False).eval_sets] == ["set_b"]


def test_accuracy_buckets_with_boundaries(conn: sqlite3.Connection) -> None:
    # ev_q1 0.95 high, ev_q2 exactly 0.8 medium, ev_s1 0.5 low, ev_s2 NULL; ev_b1 exactly 0.9 high (ws_b).
    a = {b.bucket: b for b in overview(conn, "ws_a", warnings=False).accuracy}
    assert {k: v.count for k, v in a.items()} == {"high": 1, "medium": 1, "low": 1, "none": 1}
    assert [r[0] for r in _rows(conn, a["medium"].sql)] == ["ev_q2"]
    assert [r[0] for r in _rows(conn, a["none"].sql)] == ["ev_s2"]
    b = {x.bucket: x.count for x in overview(conn, "ws_b", warnings=False).accuracy}
    assert b == {"high": 1, "medium": 0, "low": 0, "none": 0}
    all_ws = {x.bucket: x.count for x in overview(conn, None, warnings=False).accuracy}
    assert all_ws["high"] == 2


def test_integrations_counted_by_platform_and_status(conn: sqlite3.Connection) -> None:
    ov = overview(conn, "ws_a", warnings=False)
    assert {(c.platform, c.status): c.count for c in ov.integration_counts} == {
        ("langfuse", "active"): 1, ("langsmith", "error"): 1}
    err = next(c for c in ov.integration_counts if c.status == "error")
    cur = conn.execute(err.sql)
    listed = cur.fetchall()
    assert [r["id"] for r in listed] == ["int_a2"] and "api_key_encrypted" not in [
        d[0] for d in cur.description
    ]
    assert {i.id for i in ov.integrations} == {"int_a1", "int_a2"}


def test_jobs_by_type_and_status(conn: sqlite3.Connection) -> None:
    ov = overview(conn, "ws_a", warnings=False)
    groups = {(g.type, g.status): (g.count, g.avg_duration_s) for g in ov.job_groups}
    assert groups == {
        ("execute", "cancelled"): (1, 5.0),
        ("execute", "queued"): (1, None),
        ("execute", "running"): (1, None),
        ("generate", "completed"): (1, 60.0),
        ("import", "completed"): (2, 25.0),
        ("import", "failed"): (1, 10.0),
    }
    types = {t.type: t for t in ov.job_types}
    assert types["import"].total == 3 and types["import"].failure_rate == pytest.approx(1 / 3)
    assert types["import"].avg_duration_s == 20.0
    assert types["generate"].failure_rate == 0.0 and types["generate"].avg_duration_s == 60.0
    assert types["execute"].failure_rate is None and types["execute"].avg_duration_s == 5.0
    failed = next(g for g in ov.job_groups if g.status == "failed")
    assert [r["id"] for r in conn.execute(failed.sql)] == ["j2"]
    b = overview(conn, "ws_b", warnings=False).job_types
    assert [(t.type, t.total, t.failure_rate, t.avg_duration_s) for t in b] == [("generate", 1, 1.0, 100.0)]


def test_overview_lists_workspaces_and_survives_missing_tables(tmp_path: Path) -> None:
    path = tmp_path / "partial.sqlite"
    c = sqlite3.connect(path)
    c.executescript("CREATE TABLE workspaces (id TEXT PRIMARY KEY, name TEXT);"
                    "INSERT INTO workspaces VALUES ('w1', 'One');"
                    "CREATE TABLE traces (id TEXT PRIMARY KEY, workspace_id TEXT);"
                    "INSERT INTO traces VALUES ('t', 'w1');")
    ov = overview(c, "w1")
    assert [w.id for w in ov.workspaces] == ["w1"]
    assert {t.table: t.count for t in ov.tables} == {"workspaces": 1, "traces": 1}
    assert ov.eval_sets == [] and ov.job_groups == [] and ov.warnings == []
    assert any("jobs" in n for n in ov.notes) and any("skipped" in n for n in ov.notes)
    c.close()


# -- warnings ----------------------------------------------------------------------------------

def test_every_warning_kind_triggers_in_workspace_a(conn: sqlite3.Connection) -> None:
    assert _counts(conn, "ws_a") == {
        INFLATED: 1,
        CONFLICTING: 1,
        ORPHAN_EXECUTIONS: 1,
        ORPHAN_FEEDBACK: 1,
        STALE_COUNTERS: 1,
        NEWLINE_HAZARD: 1,
        STALE_JOBS: 1,
    }  # j5 "running" since 2025
    assert set(WARNING_KINDS) == set(_counts(conn, "ws_a"))


def test_warnings_scoped_to_workspace_b_and_unscoped(conn: sqlite3.Connection) -> None:
    assert _counts(conn, "ws_b") == {INFLATED: 1, STALE_COUNTERS: 1, NEWLINE_HAZARD: 1}
    assert _counts(conn, None) == {INFLATED: 2, CONFLICTING: 1, ORPHAN_EXECUTIONS: 1, ORPHAN_FEEDBACK: 1,
                                   STALE_COUNTERS: 2, NEWLINE_HAZARD: 2, STALE_JOBS: 1}
    assert _counts(conn, "no_such_ws") == {}


def test_warning_sql_lists_exactly_the_rows(conn: sqlite3.Connection) -> None:
    warnings = {w.kind: w for w in detect_warnings(conn, "ws_a")[0]}
    inflated = conn.execute(warnings[INFLATED].sql).fetchall()
    assert [(r["eval_id"], r["stored"], r["recomputed"]) for r in inflated] == [("ev_q1", 4, 2)]
    conflicting = conn.execute(warnings[CONFLICTING].sql).fetchall()
    assert [r["trace_id"] for r in conflicting] == ["t1"]
    assert "quality=positive" in conflicting[0]["labels"] and "safety=negative" in conflicting[0]["labels"]
    assert [r[0] for r in _rows(conn, warnings[ORPHAN_EXECUTIONS].sql)] == ["x6"]
    assert [r[0] for r in _rows(conn, warnings[ORPHAN_FEEDBACK].sql)] == ["f5"]
    stale = conn.execute(warnings[STALE_COUNTERS].sql).fetchall()
    assert [(r["eval_id"], r["stored"], r["actual"]) for r in stale] == [("ev_q1", 5, 6)]
    assert [r[0] for r in _rows(conn, warnings[NEWLINE_HAZARD].sql)] == ["ev_q1"]
    for w in warnings.values():
        assert w.count == len(_rows(conn, w.sql)) and "\n" not in w.message


def test_warnings_clear_when_the_data_is_fixed(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE jobs SET status = 'failed', completed_at = '2025-01-04 00:00:00' WHERE id = 'j5'")
    conn.execute(
        "UPDATE evals SET contradiction_count = 2, execution_count = 6, code = 'def f(t): return True, \"\"' "
        "WHERE id = 'ev_q1'"
    )
    conn.execute("UPDATE feedback SET rating = 'neutral' WHERE id = 'f6'")  # neutral vs positive: no conflict
    conn.execute("DELETE FROM eval_executions WHERE trace_id = 'gone_trace'")
    conn.execute("DELETE FROM feedback WHERE trace_id = 'gone_trace'")
    assert _counts(conn, "ws_a") == {STALE_COUNTERS: 1}  # ev_q1 now counts 6 but has 5 executions
    conn.execute("UPDATE evals SET execution_count = 5 WHERE id = 'ev_q1'")
    assert _counts(conn, "ws_a") == {}


def test_errored_execution_is_not_a_contradiction(conn: sqlite3.Connection) -> None:
    # x1 (fail on a positive trace) is a contradiction; once it errored it no longer is.
    conn.execute("UPDATE evals SET contradiction_count = 2 WHERE id = 'ev_q1'")
    assert INFLATED not in _counts(conn, "ws_a")
    conn.execute("UPDATE eval_executions SET error = 'Timeout' WHERE id = 'x1'")
    rows = conn.execute({w.kind: w for w in detect_warnings(conn, "ws_a")[0]}[INFLATED].sql).fetchall()
    assert [(r["eval_id"], r["stored"], r["recomputed"]) for r in rows] == [("ev_q1", 2, 1)]


def test_recount_without_the_view_matches_the_view(conn: sqlite3.Connection) -> None:
    with_view = {w.kind: w.count for w in detect_warnings(conn, None)[0]}
    conn.execute("DROP VIEW eval_comparison")
    without = {w.kind: w.count for w in detect_warnings(conn, None)[0]}
    assert without == with_view and without[INFLATED] == 2


def test_seed_database_has_no_warnings(seed_conn: sqlite3.Connection) -> None:
    warnings, notes = detect_warnings(seed_conn, None)
    assert warnings == [] and notes == []
    ov = overview(seed_conn, None)
    assert {t.table: t.count for t in ov.tables}["traces"] == 5
    assert [(s.positive, s.negative) for s in ov.eval_sets] == [(3, 2)]


# -- jobs --------------------------------------------------------------------------------------

def test_list_jobs_newest_first_with_durations_and_filters(conn: sqlite3.Connection) -> None:
    page = list_jobs(conn, "ws_a")
    assert [j.id for j in page.rows] == [
        "j7",
        "j6",
        "j5",
        "j4",
        "j3",
        "j2",
        "j1",
    ] and page.next_cursor is None
    by_id = {j.id: j for j in page.rows}
    assert by_id["j1"].duration_s == 30.0 and by_id["j4"].duration_s == 60.0
    assert by_id["j6"].duration_s is None and by_id["j5"].duration_s is None
    assert by_id["j5"].elapsed_s is not None and by_id["j5"].elapsed_s > 0
    assert by_id["j5"].progress_pct == 30
    assert [j.id for j in list_jobs(conn, "ws_a", status="completed").rows] == ["j4", "j3", "j1"]
    assert [j.id for j in list_jobs(conn, "ws_a", status="completed", type="import").rows] == ["j3", "j1"]
    assert [j.id for j in list_jobs(conn, "ws_b").rows] == ["j8"]
    assert len(list_jobs(conn, None).rows) == 8


def test_list_jobs_keyset_paging_with_ties_and_null_timestamps(db: Path) -> None:
    c = connect_rows(db)
    c.execute("DELETE FROM jobs")
    rows = [(f"p{i:02d}", "ws_a", "import", "queued", f"2025-05-{1 + i // 3:02d} 00:00:00" if i % 7 else None)
            for i in range(25)]  # three jobs share each timestamp; every 7th has none
    c.executemany(
        "INSERT INTO jobs (id, workspace_id, type, status, created_at) VALUES (?, ?, ?, ?, ?)", rows
    )
    c.execute("UPDATE jobs SET created_at = NULL WHERE created_at IS NULL")
    expected = [r[0] for r in c.execute("SELECT id FROM jobs ORDER BY created_at DESC, id DESC")]
    seen: list[str] = []
    cursor: JobCursor | None = None
    pages = 0
    while True:
        page = list_jobs(c, "ws_a", limit=4, cursor=cursor)
        assert len(page.rows) <= 4
        seen += [j.id for j in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected and len(seen) == 25 and pages == 7
    plan = " ".join(
        str(r[3])
        for r in c.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE workspace_id = 'ws_a' ORDER BY created_at DESC, id "
            "DESC"
        )
    )
    assert "SCAN" in plan or "SEARCH" in plan
    c.close()


def test_metadata_column_absent_then_present(conn: sqlite3.Connection) -> None:
    job = {j.id: j for j in list_jobs(conn, "ws_a").rows}["j4"]
    assert not job.has_metadata_column and job.metadata is None
    assert list(job.describe()) == ["context", "result"]
    conn.execute("ALTER TABLE jobs ADD COLUMN metadata JSON")
    conn.execute(
        "UPDATE jobs SET metadata = ? WHERE id = 'j4'",
        (json.dumps({"workspaceId": "ws_a", "evalSetId": "set_q"}),),
    )
    job = {j.id: j for j in list_jobs(conn, "ws_a").rows}["j4"]
    assert job.has_metadata_column and list(job.describe()) == ["context", "metadata", "result"]
    assert ("Eval set", "set_q") in job.describe()["metadata"].fields


def test_describe_import_payloads() -> None:
    ctx = describe_job_payload(
        "import",
        json.dumps(
            {
                "integration_id": "int_1",
                "filters": {"date_from": "2025-01-01", "date_to": "2025-01-31", "limit": 100},
            }
        ),
    )
    assert ctx.valid and ctx.warning is None
    assert ctx.fields == [("Integration", "int_1"), ("Filters", ""), ("  From", "2025-01-01"),
                          ("  To", "2025-01-31"), ("  Limit", "100")]
    errors = [{"trace_id": f"tr{i}", "error": f"bad {i}"} for i in range(12)]
    res = describe_job_payload(
        "import", json.dumps({"imported": 7, "skipped": 2, "failed": 12, "errors": errors})
    )
    assert res.fields[:4] == [("Imported", "7"), ("Skipped", "2"), ("Failed", "12"), ("Errors", "12")]
    assert ("  tr0", "bad 0") in res.fields and ("  …", "2 more") in res.fields
    assert '"imported": 7' in res.pretty and res.pretty.count("\n") > 3


def test_describe_generate_payloads() -> None:
    ctx = describe_job_payload("generate", json.dumps({"workspaceId": "ws_a", "evalSetId": "set_q"}))
    assert ctx.fields == [("Workspace", "ws_a"), ("Eval set", "set_q")]
    res = describe_job_payload(
        "generate",
        json.dumps(
            {
                "eval_id": "ev_1",
                "accuracy": 0.875,
                "test_results": {
                    "correct": 7,
                    "incorrect": 1,
                    "errors": 0,
                    "total": 8,
                    "details": [{"traceId": "t"}],
                },
            }
        ),
    )
    assert res.fields[0] == ("Eval", "ev_1") and res.fields[1] == ("Accuracy", "87.5 %")
    assert (
        res.fields[2][0] == "Test results"
        and "correct 7" in res.fields[2][1]
        and "1 details" in res.fields[2][1]
    )


def test_describe_execute_payloads() -> None:
    all_traces = describe_job_payload("execute", json.dumps({"workspaceId": "ws", "evalId": "ev"}))
    assert all_traces.fields == [("Workspace", "ws"), ("Eval", "ev"), ("Traces", "all traces")]
    some = describe_job_payload(
        "execute", json.dumps({"evalId": "ev", "traceIds": [f"t{i}" for i in range(15)]})
    )
    assert (
        some.fields[1][0] == "Traces"
        and some.fields[1][1].startswith("15: t0, t1")
        and "5 more" in some.fields[1][1]
    )
    res = describe_job_payload(
        "execute", json.dumps({"completed": 9, "failed": 1, "errors": ["Timeout on t3"], "extra": True})
    )
    assert res.fields == [
        ("Completed", "9"),
        ("Failed", "1"),
        ("Errors", "1"),
        ("  •", "Timeout on t3"),
        ("extra", "yes"),
    ]


def test_describe_invalid_and_odd_payloads() -> None:
    bad = describe_job_payload("import", '{"imported": 3,\x1b[31m')
    assert not bad.valid and bad.warning is not None and bad.warning.startswith("invalid JSON")
    assert bad.fields[0][0] == "raw" and "\x1b" not in bad.fields[0][1] and "\x1b" not in bad.pretty
    assert "␛" in bad.pretty
    listed = describe_job_payload("execute", "[1, 2]")
    assert listed.valid and listed.warning is not None and listed.fields == [("value", "[1, 2]")]
    assert describe_job_payload("import", None).fields == []
    unknown = describe_job_payload("train", json.dumps({"epochs": 3}))
    assert unknown.fields == [("epochs", "3")]


def test_job_with_invalid_context_lists_and_describes(conn: sqlite3.Connection) -> None:
    job = {j.id: j for j in list_jobs(conn, "ws_a").rows}["j6"]
    payload = job.describe()["context"]
    assert not payload.valid and payload.pretty == "{not json"


# -- integrations ------------------------------------------------------------------------------

def test_integrations_never_expose_the_key(conn: sqlite3.Connection) -> None:
    found = {i.id: i for i in list_integrations(conn, "ws_a")}
    assert set(found) == {"int_a1", "int_a2"}
    a1, a2 = found["int_a1"], found["int_a2"]
    assert a1.api_key == "set" and a2.api_key == "empty"
    assert (a1.trace_count, a2.trace_count) == (5, 1)
    assert a2.status == "error" and a2.error_message == "HTTP 401 unauthorized" and not a2.config_valid
    assert a1.last_synced_at == "2025-01-02T00:00:00Z"
    assert '"project_id": "p1"' in a1.config_pretty and "sk-lf-zzz" not in a1.config_pretty
    everything = repr(list_integrations(conn, None)) + repr(overview(conn, None))
    assert "SECRET" not in everything and "enc-B" not in everything
    assert [i.id for i in list_integrations(conn, "ws_b", trace_counts=False)] == ["int_b1"]
    assert list_integrations(conn, "ws_b", trace_counts=False)[0].trace_count is None


def test_whitespace_key_counts_as_empty(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE integrations SET api_key_encrypted = '   ' WHERE id = 'int_b1'")
    assert list_integrations(conn, "ws_b")[0].api_key == "empty"


def test_customised_view_count_matches_listing(conn: sqlite3.Connection) -> None:
    # A view already scoped by eval set is "customised": both the count and the listing use the tables.
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'eval_comparison'").fetchone()[0]
    conn.execute("DROP VIEW eval_comparison")
    conn.execute(sql.replace("LEFT JOIN feedback f ON f.trace_id = e.trace_id",
                             "LEFT JOIN feedback f ON f.trace_id = e.trace_id AND f.rating IS NOT NULL"))
    warnings = {w.kind: w for w in detect_warnings(conn, None)[0]}
    assert warnings[INFLATED].count == 2 == len(_rows(conn, warnings[INFLATED].sql))
    assert "eval_comparison" not in warnings[INFLATED].sql


def test_warning_subset_and_interrupt_propagates(conn: sqlite3.Connection) -> None:
    only = detect_warnings(conn, "ws_a", kinds=[NEWLINE_HAZARD, CONFLICTING])[0]
    assert sorted(w.kind for w in only) == [CONFLICTING, NEWLINE_HAZARD]
    conn.set_progress_handler(lambda: 1, 100)  # as if the user cancelled the worker
    with pytest.raises(sqlite3.OperationalError, match="interrupt"):
        detect_warnings(conn, "ws_a", kinds=[ORPHAN_EXECUTIONS])
