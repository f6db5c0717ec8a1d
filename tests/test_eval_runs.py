"""Eval runs: apply/undo exactness, scoped counters, read-only and dry runs, cancel, crash safety, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _eval_runs_helpers import (
    ES,
    EVAL,
    FAST,
    FLIP_CODE,
    add_other_set,
    add_traces,
    build_flip_template,
    counters,
    dump,
    executions,
    flip_db,
    oddify,
    set_code,
)
from click.testing import CliRunner

from iofold_tui.cli import main
from iofold_tui.data.db import connect
from iofold_tui.data.evalrun.history import (
    CANCELLED,
    INTERRUPTED,
    RUNNING,
    RunError,
    RunHistory,
    runs_path,
    undo_run,
)
from iofold_tui.data.evalrun.results import EvalCodeError
from iofold_tui.data.evalrun.run_results import RunOptions
from iofold_tui.data.evalrun.runs import EvalRun
from iofold_tui.data.evalrun.selection import count_selected, iter_selected, load_target
from iofold_tui.data.matrix.stats import recomputed_counts
from iofold_tui.data.traces.query import TraceFilter

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def flip_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_flip_template(tmp_path_factory.mktemp("runs-template"))


@pytest.fixture
def db(flip_template: Path, tmp_path: Path) -> Path:
    return flip_db(flip_template, tmp_path)


def sidecar(db: Path) -> Path:
    return runs_path(db.with_name(db.name + ".labels.sqlite"))


def run(db: Path, selection: object = "all", **kwargs: object) -> object:
    conn = connect(db, read_only=bool(kwargs.get("read_only_reason")))
    try:
        options = kwargs.pop("options", FAST)
        return EvalRun(conn, EVAL, selection, runs_file=sidecar(db), options=options, **kwargs).execute()  # type: ignore[arg-type]
    finally:
        conn.close()


# -- apply and undo ---------------------------------------------------------------------------------

def test_apply_writes_results_and_undo_restores_every_row_exactly(db: Path) -> None:
    oddify(db)
    extra = add_traces(db, 7)
    before = dump(db)
    summary = run(db, options=RunOptions(jobs=2, timeout_s=1.0, write_batch=3, flush_s=60))
    assert summary.run_id == 1 and summary.mode == "write" and summary.progress.done == 12
    rows = executions(db)
    assert rows["trace_001"][1:4] == (0, "flipped trace_001", None)
    assert rows["trace_003"][1:3] == (1, "flipped trace_003")
    # An error row: result 0.
    assert rows["trace_005"][1] == 0 and "ValueError: boom on trace_005" in rows["trace_005"][3]
    assert rows["trace_001"][0] == "exec_001"  # an upsert keeps the row's id
    assert re.fullmatch(r"exec_[0-9a-f]{32}", rows["trace_004"][0])  # it had no row: inserted
    assert rows[extra[0]][4] == "\x1b[31mred\x1b[0m tx_00000\n"  # stdout stored as is
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[5]) for r in rows.values())
    conn = connect(db)
    fresh = recomputed_counts(conn, [EVAL])[EVAL]
    conn.close()
    assert counters(db) == (fresh.execution_count, fresh.contradictions, fresh.accuracy) == (12, 3, 0.25)

    report = undo_run(connect(db), sidecar(db))
    # 4 stored rows back, 1 + 7 inserted gone.
    assert (report.run_id, report.restored, report.deleted) == (1, 4, 8)
    assert dump(db) == before


def test_counters_are_scoped_to_the_evals_own_set_and_errors_are_not_contradictions(db: Path) -> None:
    add_other_set(db)  # the same traces labelled the opposite way in another set
    summary = run(db, "labelled")
    # 001/002 positive->fail, 003 negative->pass; 005 positive->error is not one; the other set is ignored.
    assert counters(db) == (5, 3, 0.25)
    assert summary.progress.contradictions_before == 0
    assert summary.contradictions == summary.progress.contradictions == 3
    conn = sqlite3.connect(db)
    unscoped = conn.execute("SELECT count(*) FROM eval_comparison WHERE eval_id = ? AND is_contradiction = 1",
                            (EVAL,)).fetchone()[0]
    conn.close()
    assert unscoped > 3  # what iofold's view would have stored


def test_second_run_and_undo_order(db: Path) -> None:
    before = dump(db)
    run(db, "labelled")
    middle = dump(db)
    run(db, "all")
    with pytest.raises(RunError, match="run 2 of the same eval came later"):
        undo_run(connect(db), sidecar(db), 1)
    assert undo_run(connect(db), sidecar(db)).run_id == 2
    assert dump(db) == middle
    assert undo_run(connect(db), sidecar(db)).run_id == 1
    assert dump(db) == before
    with pytest.raises(RunError, match="no eval run to undo"):
        undo_run(connect(db), sidecar(db))
    with pytest.raises(RunError, match="is undone"):
        undo_run(connect(db), sidecar(db), 1)


def test_cancel_keeps_what_was_applied_and_is_undoable(db: Path) -> None:
    add_traces(db, 200)
    before = dump(db)
    conn = connect(db)
    the_run = EvalRun(conn, EVAL, "all", runs_file=sidecar(db),
                      options=RunOptions(jobs=1, timeout_s=1.0, write_batch=5, flush_s=60, batch_size=5))
    summary = the_run.execute(on_batch=lambda batch: the_run.cancel())
    assert summary.cancelled and 0 < summary.progress.done < 205
    changed = sum(
        1 for t, r in executions(db).items() if r[3] is not None or "flipped" in r[2] or "extra" in r[2]
    )
    assert changed == summary.progress.done
    with RunHistory(sidecar(db)) as history:
        assert history.get(1).status == CANCELLED
    undo_run(conn, sidecar(db))
    assert dump(db) == before


# -- no writes -------------------------------------------------------------------------------------

def test_read_only_source_returns_results_and_writes_nothing(db: Path) -> None:
    before = dump(db)
    summary = run(db, "labelled", read_only_reason="opened with --read-only")
    assert summary.mode == "read-only" and "read-only" in summary.notice and summary.run_id is None
    assert {r.trace_id: r.result for r in summary.results} == {
        "trace_001": False, "trace_002": False, "trace_003": True, "trace_004": False, "trace_005": None}
    assert dump(db) == before and not sidecar(db).exists()


def test_dry_run_lists_changed_cells_writes_nothing_and_applies_the_preview(db: Path) -> None:
    before = dump(db)
    summary = run(db, "labelled", dry_run=True)
    assert dump(db) == before and not sidecar(db).exists()
    cells = {
        c.trace_id: (c.rating, c.old, c.new, c.old_contradiction, c.new_contradiction)
        for c in summary.changes
    }
    assert cells == {
        "trace_001": ("positive", "pass", "fail", False, True),
        "trace_002": ("positive", "pass", "fail", False, True),
        "trace_003": ("negative", "fail", "pass", False, True),
        "trace_005": ("positive", "pass", "error", False, False),
    }
    assert summary.progress.contradictions == 3 and summary.stored_after is None
    applied = run(db, "labelled", results=summary.results)  # apply exactly what was previewed
    assert applied.mode == "write" and applied.progress.done == 5
    assert {t: r[1:3] for t, r in executions(db).items()} == {
        "trace_001": (0, "flipped trace_001"), "trace_002": (0, "flipped trace_002"),
        "trace_003": (1, "flipped trace_003"), "trace_004": (0, "flipped trace_004"), "trace_005": (0, "")}


def test_eval_code_that_cannot_run_writes_nothing(db: Path) -> None:
    set_code(db, "import os\ndef response_quality(trace):\n    return (True, os.name)\n")
    before = dump(db)
    with pytest.raises(EvalCodeError) as info:
        run(db)
    assert any("os is not allowed" in p for p in info.value.problems)
    assert dump(db) == before and not sidecar(db).exists()
    with pytest.raises(RunError, match="no eval 'nope'"):
        EvalRun(connect(db), "nope", runs_file=sidecar(db)).execute()
    with pytest.raises(RunError, match="'labelled' or 'all'"):
        EvalRun(connect(db), EVAL, "some", runs_file=sidecar(db))


# -- selection ---------------------------------------------------------------------------------------

def test_selection_counts_and_streams_in_keyset_pages(db: Path) -> None:
    extra = add_traces(db, 9, labelled_every=3)  # tx_00000, 03, 06 labelled
    conn = connect(db)
    target = load_target(conn, EVAL)
    labelled = [t for t, _ in iter_selected(conn, target, "labelled", page=2)]
    assert labelled == sorted([f"trace_00{i}" for i in range(1, 6)] + extra[::3])
    assert count_selected(conn, target, "labelled") == 8
    everything = [t for t, _ in iter_selected(conn, target, "all", page=4)]
    assert len(everything) == len(set(everything)) == 14 == count_selected(conn, target, "all")
    ids = ["trace_002", "missing", "trace_002", extra[1]]
    assert [t for t, _ in iter_selected(conn, target, ids, page=1)] == ["trace_002", extra[1]]
    assert count_selected(conn, target, ids) == 2
    flt = TraceFilter(workspace_id="ws_demo", eval_set_id=ES, rating="negative")
    assert sorted(t for t, _ in iter_selected(conn, target, flt, page=1)) == ["trace_003", "trace_004"]
    assert count_selected(conn, target, flt) == 2
    conn.close()


# -- crash safety --------------------------------------------------------------------------------------

CRASH_SCRIPT = r"""
import os, sys
from pathlib import Path
from iofold_tui.data.evalrun import runs as eval_runs
from iofold_tui.data.evalrun.run_results import RunOptions
from iofold_tui.data.db import connect

db, runs, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "die_before_commit":  # the sidecar has the batch's old rows; the user's COMMIT never happens
    real, calls = eval_runs._upsert, []
    def upsert(*args):
        calls.append(1)
        real(*args)
        if len(calls) == 3:
            os._exit(9)
    eval_runs._upsert = upsert
options = RunOptions(jobs=1, timeout_s=1.0, write_batch=4, flush_s=60, batch_size=4)
run = eval_runs.EvalRun(connect(db), "eval_response_quality_v1", "all", runs_file=runs, options=options)
run.execute(on_batch=lambda batch: print("batch", batch.progress.done, flush=True))
print("finished", flush=True)
"""


@pytest.mark.parametrize("mode", ["kill", "die_before_commit"])
def test_kill_between_batches_leaves_db_and_sidecar_consistent(db: Path, mode: str) -> None:
    add_traces(db, 120)
    original = dump(db)
    before = {r[0]: r for r in (tuple(row) for row in sqlite3.connect(db).execute(
        "SELECT trace_id, id, result, reason, execution_time_ms, error, stdout, stderr, executed_at "
        "FROM eval_executions WHERE eval_id = ?", (EVAL,)))}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(db), str(sidecar(db)), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("batch")
        if mode == "kill" and seen == 3:
            proc.send_signal(signal.SIGKILL)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (-signal.SIGKILL, 9), err
    with RunHistory(sidecar(db)) as history:
        (record,) = history.recent()
        assert record.status == RUNNING and not history.is_live(record)
        prev = {row[0]: row for chunk in history.iter_prev(record.id) for row in chunk}
    now = {r[0]: tuple(r) for r in sqlite3.connect(db).execute(
        "SELECT trace_id, id, result, reason, execution_time_ms, error, stdout, stderr, executed_at "
        "FROM eval_executions WHERE eval_id = ?", (EVAL,))}
    touched = {t for t in set(now) | set(before) if now.get(t) != before.get(t)}
    assert touched, "some batches were committed before the crash"
    for tid in touched:  # everything the run changed is in the sidecar, with its exact old state
        assert tid in prev
        assert prev[tid][2:] == before[tid][1:] if tid in before else prev[tid][1] == 0
    if mode == "die_before_commit":
        assert len(prev) > len(touched)  # the uncommitted batch is recorded but rolled back: harmless
    report = undo_run(connect(db), sidecar(db))  # recovers the run (interrupted), then undoes it
    assert report.run_id == record.id
    with RunHistory(sidecar(db)) as history:
        assert history.get(record.id).status == "undone"
    assert dump(db) == original


def test_a_crashed_run_gets_its_counters_on_the_next_run(db: Path) -> None:
    with RunHistory(sidecar(db)) as history:  # a run row whose process is gone
        run_id = history.begin(EVAL, "all", 5, (5, 0, 1.0))
        history.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
    run(db, "labelled")
    with RunHistory(sidecar(db)) as history:
        assert history.get(run_id).status == INTERRUPTED
        assert history.get(run_id).new_counters == (5, 0, 1.0)  # recomputed from the untouched rows


# -- CLI -------------------------------------------------------------------------------------------

def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_run_eval_summary_json_dry_run_and_undo(db: Path) -> None:
    before = dump(db)
    dry = cli("run-eval", str(db), EVAL, "--dry-run", "--jobs", "1", "--timeout", "1")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing is written" in dry.output
    assert "trace_001: pass -> fail  [positive] now a contradiction" in dry.output
    assert dump(db) == before
    dry_json = json.loads(cli("run-eval", str(db), EVAL, "--dry-run", "--jobs", "1", "--json").stdout)
    assert dry_json["mode"] == "dry-run" and dry_json["run_id"] is None and len(dry_json["changes"]) == 4
    assert {r["trace_id"]: r["result"] for r in dry_json["results"]}["trace_003"] is True
    result = cli("run-eval", str(db), EVAL, "--jobs", "1", "--timeout", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["run_id"], data["done"], data["pass"], data["fail"], data["error"]) == (1, 5, 1, 3, 1)
    assert (data["contradictions_before"], data["contradictions_after"]) == (0, 3)
    assert data["stored_after"] == {"execution_count": 5, "contradiction_count": 3, "accuracy": 0.25}
    text = cli("run-eval", str(db), EVAL, "--traces", "all", "--jobs", "1", "--timeout", "1")
    assert text.exit_code == 0 and "run 2:" in text.output and "contradictions: 3 -> 3" in text.output
    listed = cli("undo-run", str(db), "--list")
    assert "run    2" in listed.output and "applied" in listed.output
    assert cli("undo-run", str(db), "1").exit_code == 2  # run 2 is in the way
    assert cli("undo-run", str(db)).output.startswith("undid run 2")
    assert cli("undo-run", str(db)).output.startswith("undid run 1")
    assert dump(db) == before
    again = cli("undo-run", str(db))
    assert again.exit_code == 2 and "no eval run to undo" in again.output


def test_cli_errors_exit_2_with_one_line_each(db: Path, tmp_path: Path) -> None:
    set_code(db, "import socket\ndef response_quality(trace):\n    return (True, '')\n")
    bad = cli("run-eval", str(db), EVAL, "--jobs", "1")
    assert bad.exit_code == 2
    assert f"eval {EVAL} cannot run:" in bad.output
    assert "  line 1: ImportError: socket is not allowed" in bad.output
    missing = cli("run-eval", str(db), "nope")
    assert missing.exit_code == 2 and "no eval 'nope'" in missing.output
    assert cli("run-eval", str(db), EVAL, "--traces", "some").exit_code == 2
    assert cli("run-eval", str(db)).exit_code == 2
    set_code(db, FLIP_CODE)
    ids = tmp_path / "ids.txt"
    ids.write_text("trace_003\n\ntrace_001\n")
    picked = cli("run-eval", str(db), EVAL, "--traces", f"@{ids}", "--jobs", "1", "--json")
    assert picked.exit_code == 0 and json.loads(picked.stdout)["done"] == 2
