"""schema/seed.sql and the synthetic database generator (iofold_tui.data.source.demo.build)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from iofold_tui.data.errors import SourceError
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.demo import build

TABLES = (
    "users",
    "workspaces",
    "workspace_members",
    "integrations",
    "traces",
    "eval_sets",
    "feedback",
    "evals",
    "eval_executions",
    "jobs",
)
STEP_KEYS = {"step_id", "timestamp", "messages_added", "tool_calls", "input", "output", "metadata"}


def run_eval(code: str, name: str, trace_id: str, steps: object) -> tuple[bool, str]:
    namespace: dict = {}
    exec(compile(code, f"<eval {name}>", "exec"), namespace)
    return namespace[name]({"trace_id": trace_id, "steps": steps})


def table_digest(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in TABLES:
            h = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY id"):
                h.update(repr(row).encode())
            out[table] = h.hexdigest()
        return out
    finally:
        conn.close()


def master(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"), key=lambda r: (r[0], r[1]))
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------ seed


def test_seed_has_no_transaction_statements() -> None:
    text = (schema_dir() / "seed.sql").read_text()
    outside_strings = re.sub(r"--[^\n]*", "", re.sub(r"'(?:[^']|'')*'", "''", text))
    assert not re.search(r"\b(BEGIN|COMMIT|ROLLBACK|TRANSACTION)\b", outside_strings, re.I)
    assert outside_strings.count(";") >= 10  # the regex above really saw the statements


def test_seed_counts(seed_conn: sqlite3.Connection) -> None:
    one = lambda sql: seed_conn.execute(sql).fetchone()[0]  # noqa: E731
    assert one("SELECT count(*) FROM workspaces") == 1
    assert one("SELECT count(*) FROM users") == 1
    assert one("SELECT role FROM workspace_members") == "owner"
    assert one("SELECT platform FROM integrations") == "langfuse"
    assert one("SELECT count(*) FROM traces") == 5
    assert one("SELECT sum(has_errors) FROM traces") == 1
    ratings = dict(seed_conn.execute("SELECT rating, count(*) FROM feedback GROUP BY rating").fetchall())
    assert ratings == {"positive": 3, "negative": 2}
    assert one("SELECT count(*) FROM feedback WHERE notes IS NULL OR notes = ''") == 0
    assert one("SELECT name FROM eval_sets") == "response-quality"
    assert one("SELECT minimum_examples FROM eval_sets") == 5
    ev = seed_conn.execute("SELECT * FROM evals").fetchall()
    assert len(ev) == 1 and ev[0]["status"] == "active" and ev[0]["accuracy"] == 1.0
    # every execution agrees with the label of the eval's own set
    agree = one("""SELECT count(*) FROM eval_executions x JOIN evals e ON e.id = x.eval_id
                   JOIN feedback f ON f.trace_id = x.trace_id AND f.eval_set_id = e.eval_set_id
                   WHERE (f.rating = 'positive') = (x.result = 1) AND x.error IS NULL""")
    assert agree == one("SELECT count(*) FROM eval_executions") == 5
    assert one("SELECT count(*) FROM eval_comparison WHERE is_contradiction = 1") == 0
    assert ev[0]["execution_count"] == 5 and ev[0]["contradiction_count"] == 0
    job = seed_conn.execute("SELECT * FROM jobs").fetchone()
    assert (job["type"], job["status"], job["progress"]) == ("import", "completed", 100)
    assert job["started_at"] <= job["completed_at"]
    assert json.loads(job["context"])["integration_id"] == one("SELECT id FROM integrations")
    assert set(json.loads(job["context"])["filters"]) == {"date_from", "date_to", "limit"}
    assert json.loads(job["result"])["imported"] == 5


def test_seed_eval_code_reproduces_stored_results(seed_conn: sqlite3.Connection) -> None:
    ev = seed_conn.execute("SELECT * FROM evals").fetchone()
    imports = {alias.name for node in ast.walk(ast.parse(ev["code"])) if isinstance(node, ast.Import)
               for alias in node.names}
    assert imports <= {"json", "re"} and "\\n" not in ev["code"]  # avoids the D1 export round-trip bug
    rows = seed_conn.execute("""SELECT x.result, x.reason, x.execution_time_ms, t.id, t.steps
                                FROM eval_executions x JOIN traces t ON t.id = x.trace_id
                                ORDER BY t.id""").fetchall()
    details = {d["trace_id"]: d for d in json.loads(ev["test_results"])["details"]}
    for row in rows:
        passed, reason = run_eval(ev["code"], ev["name"], row["id"], json.loads(row["steps"]))
        assert (int(passed), reason) == (row["result"], row["reason"])
        assert details[row["id"]]["predicted"] is passed and details[row["id"]]["match"] is True
        assert details[row["id"]]["execution_time_ms"] == row["execution_time_ms"]
    results = json.loads(ev["test_results"])
    assert (results["correct"], results["incorrect"], results["errors"], results["total"]) == (5, 0, 0, 5)
    assert json.loads(ev["training_trace_ids"]) == [r["id"] for r in rows]


def test_seed_steps_use_all_three_producer_shapes(seed_conn: sqlite3.Connection) -> None:
    shapes = set()
    for row in seed_conn.execute("SELECT * FROM traces"):
        steps = json.loads(row["steps"])
        assert row["step_count"] == len(steps) and all(set(s) >= STEP_KEYS for s in steps)
        assert len(row["input_preview"]) <= 200 and len(row["output_preview"]) <= 200
        for s in steps:
            if "type" in s["metadata"]:
                shapes.add("langfuse")
            elif "span_id" in s["metadata"]:
                shapes.add("span")
            elif isinstance(s["input"], str) and isinstance(s["output"], str):
                shapes.add("chat")
        calls = [c for s in steps for c in s["tool_calls"]]
        assert row["has_errors"] == int(any("error" in c for c in calls))
    assert shapes == {"langfuse", "span", "chat"}


def test_build_demo_db_replaces_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "demo.sqlite"
    out.write_text("not a database")
    assert build.build_demo_db(out) == out
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 5
    conn.close()
    assert not list(tmp_path.glob(".*partial"))


# ------------------------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def synth_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "build.sqlite"
    calls: list[tuple[int, int]] = []
    report = build.generate(
        path, traces=2000, seed=7, hostile=True, progress=lambda d, t: calls.append((d, t))
    )
    assert report.traces == 2000 + report.hostile_traces and calls[-1] == (report.traces, report.traces)
    return path


@pytest.fixture
def conn(synth_db: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(synth_db)
    c.row_factory = sqlite3.Row
    yield c
    c.close()


def test_generate_is_deterministic(tmp_path: Path, synth_db: Path) -> None:
    again = build.generate(tmp_path / "again.sqlite", traces=2000, seed=7, hostile=True).path
    assert table_digest(again) == table_digest(synth_db)
    other = build.generate(tmp_path / "other.sqlite", traces=2000, seed=8).path
    first = "SELECT steps, timestamp FROM traces ORDER BY id LIMIT 1"
    assert (
        sqlite3.connect(other).execute(first).fetchone()
        != sqlite3.connect(synth_db).execute(first).fetchone()
    )


def test_worker_pool_gives_the_same_chunks() -> None:
    """In a fresh interpreter: the pool forks only while no other thread runs, and a test process may
    still have one from an earlier test (the pool then falls back to inline: nothing to compare)."""
    code = textwrap.dedent("""
        from iofold_tui.data.source.demo import chunks
        from iofold_tui.data.source.demo.plan import CHUNK, make_plan
        plan = make_plan(CHUNK + 20, 2, 1, 3, 1, 200, False)
        inline = [chunks.make_chunk(plan, k) for k in range(plan.chunks)]
        chunks.POOL_MIN_TRACES = 0
        with chunks.worker_pool(plan) as pool:
            assert pool is not None, "no pool"
            pooled = list(chunks.all_chunks(plan, pool))
        assert len(pooled) == len(inline) == 2
        for a, b in zip(pooled, inline, strict=True):
            assert (a.traces, a.feedback, a.executions) == (b.traces, b.feedback, b.executions)
            assert a.imports == b.imports
        print("same")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0 and proc.stdout.strip() == "same", proc.stderr[-2000:]


def test_schema_is_exactly_schema_sql(synth_db: Path, schema_db: Path) -> None:
    assert master(synth_db) == master(schema_db)
    c = sqlite3.connect(synth_db)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert c.execute("PRAGMA foreign_key_check").fetchall() == []
    c.close()


def test_traces_are_varied_and_realistic(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT * FROM traces WHERE id NOT LIKE 'trace_hostile%'").fetchall()
    assert len(rows) == 2000
    assert {r["source"] for r in rows} == {"langfuse", "langsmith", "openai"}
    assert 0.03 < sum(r["has_errors"] for r in rows) / len(rows) < 0.08
    months = {r["timestamp"][:7] for r in rows}
    assert len(months) >= 6
    for r in rows[:300]:
        steps = json.loads(r["steps"])
        assert r["step_count"] == len(steps) and all(set(s) >= STEP_KEYS for s in steps)
        errored = any("error" in c for s in steps for c in s["tool_calls"])
        assert bool(r["has_errors"]) == errored
        assert len(r["input_preview"]) <= 200
    sizes = [len(r["steps"]) for r in rows]
    assert 1000 < sum(sizes) / len(sizes) < 3000
    broken = conn.execute("SELECT status, error_message FROM integrations WHERE status = 'error'").fetchall()
    assert len(broken) == 1 and broken[0]["error_message"]


def test_labels_overlap_conflict_and_include_neutral(conn: sqlite3.Connection) -> None:
    per_set = conn.execute("SELECT eval_set_id, count(*) n, sum(rating = 'neutral') neu FROM feedback "
                           "GROUP BY eval_set_id").fetchall()
    assert len(per_set) == 3
    for row in per_set:
        assert 0.25 < row["n"] / 2000 < 0.36 and 0.05 < row["neu"] / row["n"] < 0.16
    overlap = conn.execute("SELECT count(*) FROM (SELECT trace_id FROM feedback GROUP BY trace_id "
                           "HAVING count(*) > 1)").fetchone()[0]
    conflicts = conn.execute("""SELECT count(*) FROM feedback a JOIN feedback b ON a.trace_id = b.trace_id
                                AND a.eval_set_id < b.eval_set_id AND a.rating = 'positive'
                                AND b.rating = 'negative'""").fetchone()[0]
    assert overlap > 100 and conflicts > 5


def test_evals_versions_executions_and_stored_counters(conn: sqlite3.Connection) -> None:
    evals = conn.execute("SELECT * FROM evals ORDER BY id").fetchall()
    assert len(evals) == 6
    for ev in evals:
        assert ev["status"] == ("active" if ev["version"] == 2 else "archived")
        if ev["version"] == 2:
            parent = conn.execute(
                "SELECT eval_set_id, version FROM evals WHERE id = ?", (ev["parent_eval_id"],)
            ).fetchone()
            assert tuple(parent) == (ev["eval_set_id"], 1)
        results = json.loads(ev["test_results"])
        assert results["total"] == len(results["details"]) == len(json.loads(ev["training_trace_ids"])) > 0
        assert ev["accuracy"] == pytest.approx(results["correct"] / results["total"], abs=1e-4)
        stats = conn.execute("SELECT count(*), sum(error IS NOT NULL), sum(error IS NOT NULL AND result = 0) "
                             "FROM eval_executions WHERE eval_id = ?", (ev["id"],)).fetchone()
        assert ev["execution_count"] == stats[0] and 0.97 * 2000 < stats[0] <= 2007
        assert stats[1] == stats[2] > 0  # errored executions are stored with result 0
        view = conn.execute("SELECT count(*) FROM eval_comparison WHERE eval_id = ? AND is_contradiction = 1",
                            (ev["id"],)).fetchone()[0]
        scoped = conn.execute(
            "SELECT count(*) FROM eval_comparison WHERE eval_id = ? AND is_contradiction = 1 "
            "AND eval_set_id = ?",
            (ev["id"], ev["eval_set_id"]),
        ).fetchone()[0]
        assert ev["contradiction_count"] == view > scoped  # stored the inflated way, as real data has it
    errored = conn.execute("SELECT avg(error IS NOT NULL) FROM eval_executions").fetchone()[0]
    assert 0.01 < errored < 0.04


def test_generated_eval_code_runs_on_generated_traces(conn: sqlite3.Connection) -> None:
    traces = conn.execute(
        "SELECT id, steps FROM traces WHERE id NOT LIKE 'trace_hostile%' LIMIT 40"
    ).fetchall()
    for ev in conn.execute("SELECT name, code FROM evals"):
        for t in traces:
            passed, reason = run_eval(ev["code"], ev["name"], t["id"], json.loads(t["steps"]))
            assert isinstance(passed, bool) and reason


def test_jobs_cover_every_type_and_status(conn: sqlite3.Connection) -> None:
    pairs = {(r[0], r[1]) for r in conn.execute("SELECT type, status FROM jobs")}
    assert pairs == {(t, s) for t in ("import", "generate", "execute")
                     for s in ("queued", "running", "completed", "failed", "cancelled")}
    for job in conn.execute("SELECT * FROM jobs"):
        context = json.loads(job["context"])
        keys = {"import": {"integration_id", "filters"}, "generate": {"workspaceId", "evalSetId"},
                "execute": {"workspaceId", "evalId"}}[job["type"]]
        assert keys <= set(context)
        if job["status"] == "completed":
            assert json.loads(job["result"]) and job["started_at"] <= job["completed_at"]
        if job["status"] == "queued":
            assert job["started_at"] is None


def test_hostile_traces(conn: sqlite3.Connection) -> None:
    rows = {r["id"]: r for r in conn.execute("SELECT * FROM traces WHERE id LIKE 'trace_hostile%'")}
    assert len(rows) == 7
    text = " ".join(r["input_preview"] or "" for r in rows.values())
    for needle in ("[bold]", "[/x]", "\x1b[31m", "\x00", "\u202e", "🚀", "注文"):
        assert needle in text
    bad = [r for r in rows.values() if r["steps"] != "[]" and not _is_json(r["steps"])]
    assert len(bad) == 1
    assert any(r["steps"] == "[]" and r["step_count"] == 0 for r in rows.values())
    assert max(len(r["steps"]) for r in rows.values()) > 4_500_000
    newest = conn.execute("SELECT id FROM traces ORDER BY timestamp DESC LIMIT 1").fetchone()[0]
    assert newest.startswith("trace_hostile")
    assert conn.execute("SELECT count(*) FROM eval_executions WHERE trace_id = ? AND error IS NOT NULL",
                        (bad[0]["id"],)).fetchone()[0] == 6


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_options_and_bad_arguments(tmp_path: Path) -> None:
    report = build.generate(tmp_path / "ws.sqlite", traces=300, eval_sets=2, versions=3, workspaces=2,
                            step_bytes=400)
    c = sqlite3.connect(report.path)
    assert c.execute("SELECT count(DISTINCT workspace_id) FROM traces").fetchone()[0] == 2
    assert c.execute("SELECT count(*) FROM evals WHERE status = 'active'").fetchone()[0] == 4
    # executions only cover traces of the eval's own workspace
    assert c.execute("""SELECT count(*) FROM eval_executions x JOIN evals e ON e.id = x.eval_id
                        JOIN eval_sets s ON s.id = e.eval_set_id JOIN traces t ON t.id = x.trace_id
                        WHERE t.workspace_id <> s.workspace_id""").fetchone()[0] == 0
    c.close()
    assert (report.traces, report.evals, report.workspaces) == (300, 12, 2)
    with pytest.raises(SourceError, match="already exists"):
        build.generate(report.path, traces=10)
    for bad in ({"traces": 0}, {"traces": 5, "versions": 0}, {"traces": 5, "eval_sets": -1}):
        with pytest.raises(SourceError):
            build.generate(tmp_path / "bad.sqlite", **bad)
    assert not (tmp_path / "bad.sqlite").exists()
