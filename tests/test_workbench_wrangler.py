"""The eval-versions patch through the REAL wrangler (``--local``, offline): D1 -> export -> a new version
made and run with iofold-tui -> ``export-evals`` -> applied to that same D1 (twice) -> read back; and a
D1 where the slot was taken meanwhile keeps its row and reports ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from wrangler_tools import WranglerProject, require_wrangler

from iofold_tui.cli import main
from iofold_tui.data.evals.patch import CONFLICT_MARK
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.export.cache import open_export

pytestmark = pytest.mark.wrangler
SRC = "eval_response_quality_v1"
SET = "set_response_quality"
CODE = (
    'import json\n\ndef response_quality(trace):\n    """Tricky for D1: a literal \\\\n and a real '
    'newline."""\n'
    '    text = json.dumps(trace["steps"])\n    return ("error" not in text, "it\'s \\\\n fine")\n'
)


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _d1(project: WranglerProject, sql: str) -> list[tuple]:
    return [tuple(row.values()) for row in project.execute(sql)[0]["results"]]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_eval_patch_round_trips_through_wrangler(tmp_path: Path) -> None:
    require_wrangler()
    d1 = WranglerProject(tmp_path / "project")
    init = tmp_path / "init.sql"
    init.write_text(
        (schema_dir() / "schema.sql").read_text() + "\n" + (schema_dir() / "seed.sql").read_text()
    )
    d1.execute_file(init)
    working, _ = open_export(d1.export(tmp_path / "export1.sql"))

    code = tmp_path / "v2.py"
    code.write_text(CODE)
    new_id = _cli("eval-version", str(working), SRC, "--code", str(code), "--activate").strip()
    conn = sqlite3.connect(working)  # results as a run stores them (the sandbox has its own tests)
    conn.executemany(
        "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms, error) "
        "VALUES (?, ?, ?, ?, ?, 2, ?)",
        [
            (f"x{i}", new_id, f"trace_00{i}", i % 2, f"reason\n{i} 'q'", "boom" if i == 5 else None)
            for i in range(1, 6)
        ],
    )
    conn.commit()
    conn.close()
    patch = tmp_path / "evals.sql"
    _cli("export-evals", str(working), "-o", str(patch), "--with-executions")

    first = d1.execute_file(patch)
    assert [r for part in first for r in part.get("results", []) if r.get("problem") == CONFLICT_MARK] == []
    d1.execute_file(patch)  # twice = once
    # Read back with queries, not an export: `wrangler d1 export` itself alters text holding both a real
    # newline and a literal backslash-n (spec §6), which this code does on purpose.
    version_sql = ("SELECT id, eval_set_id, name, version, parent_eval_id, code, model_used, status, "
                   "generation_prompt, custom_instructions FROM evals ORDER BY id")
    assert _d1(d1, version_sql) == _rows(working, version_sql)
    exec_sql = "SELECT id, eval_id, trace_id, result, reason, error FROM eval_executions ORDER BY id"
    assert _d1(d1, exec_sql) == _rows(working, exec_sql)
    # counters recomputed on D1: 5 runs, trace_005 errored; 1,3 pass (positive, negative), 2,4 fail (pos, neg)
    assert _d1(
        d1, f"SELECT execution_count, contradiction_count, accuracy FROM evals WHERE id = '{new_id}'"
    ) == [(5, 2, 0.5)]

    # A second D1 where someone else made version 2 first: theirs stays, ours is reported.
    other = WranglerProject(tmp_path / "other")
    clash = tmp_path / "clash.sql"
    clash.write_text(
        init.read_text() + "\nINSERT INTO evals (id, eval_set_id, name, version, code, model_used) "
        f"VALUES ('theirs', '{SET}', 'response_quality', 2, 'def f(t): return False, ''x''', 'gpt');\n"
    )
    other.execute_file(clash)
    result = other.execute_file(patch)
    reported = [r for part in result for r in part.get("results", []) if r.get("problem") == CONFLICT_MARK]
    assert reported == [{"problem": CONFLICT_MARK, "eval_id": new_id, "eval_set_id": SET, "version": 2,
                         "d1_eval_id": "theirs"}]
    assert _d1(other, "SELECT id, version, code, status FROM evals ORDER BY version") == [
        (SRC, 1, _rows(working, f"SELECT code FROM evals WHERE id = '{SRC}'")[0][0], "active"),
        ("theirs", 2, "def f(t): return False, 'x'", "draft")]
    assert _d1(other, f"SELECT count(*) AS n FROM eval_executions WHERE eval_id = '{new_id}'") == [(0,)]
