"""The eval workbench, headless: new versions, static check, promote, undo, compare (+ flips), the D1
patch, and the CLI commands (eval-version, undo-version, compare, export-evals)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import build_db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.cli import main
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evals.compare import (
    FLIP_KINDS,
    CompareError,
    compare,
    flip_kind_of,
    flip_page,
    iter_flips,
)
from iofold_tui.data.evals.drafts import (
    MODEL_USED,
    DraftError,
    check,
    create_version,
    promote,
    read_code_file,
    undo_last,
    workbench_path,
)
from iofold_tui.data.evals.patch import CONFLICT_MARK, write_eval_patch
from iofold_tui.data.matrix.stats import compute_stats

SRC = "eval_response_quality_v1"
SET = "set_response_quality"
GOOD = ('import json\n\ndef response_quality(trace):\n'
        '    return (len(json.dumps(trace["steps"])) % 2 == 0, "parity")\n')


def _conn(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None, check_same_thread=False)


def _row(conn: sqlite3.Connection, eval_id: str) -> dict:
    cur = conn.execute("SELECT * FROM evals WHERE id = ?", (eval_id,))
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "wb.sqlite")


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    return workbench_path(tmp_path / "wb.labels.sqlite")


# ---------------------------------------------------------------- new versions

def test_create_version_like_iofold(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    src = _row(conn, SRC)
    new = create_version(conn, sidecar, SRC, GOOD)
    row = _row(conn, new.id)
    assert (row["eval_set_id"], row["name"], row["version"], row["parent_eval_id"]) == (
        SET,
        src["name"],
        2,
        SRC,
    )
    assert (row["status"], row["model_used"], row["code"]) == ("draft", MODEL_USED, GOOD)
    for col in ("generation_prompt", "custom_instructions", "description"):
        assert row[col] == src[col]
    assert (row["execution_count"], row["contradiction_count"], row["accuracy"]) == (0, 0, None)
    assert _row(conn, SRC) == src  # the source is untouched
    again = create_version(conn, sidecar, new.id, GOOD + "\n# v3\n")
    assert again.version == 3 and _row(conn, again.id)["parent_eval_id"] == new.id


def test_next_version_is_the_sets_highest_even_across_names(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) VALUES "
                 "('other', ?, 'other_name', 7, 'def f(t): return True, \"\"', 'm')", (SET,))
    assert create_version(conn, sidecar, SRC, GOOD).version == 8  # UNIQUE(eval_set_id, version)


def test_concurrent_creates_never_share_a_version(db: Path, sidecar: Path) -> None:
    made: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        conn = _conn(db)
        try:
            for _ in range(6):
                made.append(create_version(conn, sidecar, SRC, GOOD).version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(made) == list(range(2, 20))


@pytest.mark.parametrize("code, line", [
    ("def f(trace):\n    return (True, 'x'\n", 2),
    ("import os\n\ndef f(trace):\n    return True, ''\n", 1),
    ("def f(trace):\n    x = 1\n    return trace.__class__.__subclasses__(), ''\n", 3),
    ("def f(trace):\n    return open('/etc/passwd'), ''\n", 2),
])
def test_static_check_reports_lines_and_refuses_to_save(
    db: Path, sidecar: Path, code: str, line: int
) -> None:
    problems = check(code, "f")
    assert problems and problems[0].line is not None and problems[0].line <= line
    conn = _conn(db)
    before = conn.execute("SELECT count(*) FROM evals").fetchone()[0]
    with pytest.raises(DraftError) as info:
        create_version(conn, sidecar, SRC, code)
    assert info.value.problems
    assert conn.execute("SELECT count(*) FROM evals").fetchone()[0] == before


def test_check_is_clean_for_good_code() -> None:
    assert check(GOOD, "response_quality") == []
    assert check("", None)[0].line is None  # no function: a whole-code problem


def test_unknown_source_and_read_only(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    with pytest.raises(DraftError, match="no eval"):
        create_version(conn, sidecar, "nope", GOOD)
    with pytest.raises(ReadOnlyError):
        create_version(conn, sidecar, SRC, GOOD, read_only_reason="read-only test")


def test_read_code_file_refuses_non_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"def f(t):\n    return True, '\xff'\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_code_file(bad)
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert read_code_file(bom) == GOOD


# ---------------------------------------------------------------- promote and undo

def test_promote_archives_the_active_one_and_undo_restores_exactly(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    before = _row(conn, SRC)
    new = create_version(conn, sidecar, SRC, GOOD)
    promote(conn, sidecar, new.id)
    assert _row(conn, new.id)["status"] == "active" and _row(conn, SRC)["status"] == "archived"
    with pytest.raises(DraftError, match="already the active"):
        promote(conn, sidecar, new.id)
    assert "promotion" in undo_last(conn, sidecar).description
    assert _row(conn, SRC) == before and _row(conn, new.id)["status"] == "draft"
    undo_last(conn, sidecar)
    assert conn.execute("SELECT count(*) FROM evals WHERE id = ?", (new.id,)).fetchone()[0] == 0
    with pytest.raises(DraftError, match=r"nothing|no eval version"):
        undo_last(conn, sidecar)


def test_activate_flag_is_two_undoable_steps(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    new = create_version(conn, sidecar, SRC, GOOD, activate=True)
    assert new.promoted and _row(conn, new.id)["status"] == "active"
    undo_last(conn, sidecar)
    assert _row(conn, SRC)["status"] == "active"


def test_undo_create_refused_once_it_has_executions(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    new = create_version(conn, sidecar, SRC, GOOD)
    conn.execute("INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) "
                 "VALUES ('x1', ?, 'trace_001', 1, 'r', 1)", (new.id,))
    with pytest.raises(DraftError, match="executions"):
        undo_last(conn, sidecar)
    assert _row(conn, new.id)["code"] == GOOD


def test_no_table_added_to_the_users_database(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    schema = conn.execute("SELECT type, name FROM sqlite_master ORDER BY 1, 2").fetchall()
    new = create_version(conn, sidecar, SRC, GOOD)
    promote(conn, sidecar, new.id)
    undo_last(conn, sidecar)
    assert conn.execute("SELECT type, name FROM sqlite_master ORDER BY 1, 2").fetchall() == schema
    assert sidecar.exists()


# ---------------------------------------------------------------- compare

STATES = ("pass", "fail", "error", "invalid", None)  # None: not run; invalid: a result other than 0/1


def _db_with(tmp: Path, traces: list[tuple[str | None, str | None, str | None]]) -> Path:
    """One set, two versions; per trace (rating, state under A, state under B)."""
    path = tmp / "cmp.sqlite"
    if path.exists():
        path.unlink()
    build_db(path, seed=True)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM eval_executions")
    conn.execute("DELETE FROM feedback")
    conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) VALUES "
                 "('eval_b', ?, 'response_quality', 2, 'def f(t): return True, \"\"', 'm')", (SET,))
    conn.execute("PRAGMA ignore_check_constraints = 1")
    for i, (rating, sa, sb) in enumerate(traces):
        tid = f"t{i:04d}"
        conn.execute(
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
            "SELECT ?, workspace_id, id, ?, 'x', '2025', '[]' FROM integrations LIMIT 1",
            (tid, tid),
        )
        if rating is not None:
            conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, ?, ?, ?)",
                         (f"fb{i}", SET, tid, rating))
        for eid, state in ((SRC, sa), ("eval_b", sb)):
            if state is not None:
                conn.execute(
                    "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms,"
                    " error) VALUES (?, ?, ?, ?, 'r', 1, ?)",
                    (
                        f"{eid}{i}",
                        eid,
                        tid,
                        {"pass": 1, "invalid": 2}.get(state, 0),
                        "boom" if state == "error" else None,
                    ),
                )
    conn.commit()
    conn.close()
    return path


trace_st = st.tuples(st.sampled_from(("positive", "negative", "neutral", "bogus", None)),
                     st.sampled_from(STATES), st.sampled_from(STATES))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces=st.lists(trace_st, max_size=40))
def test_compare_equals_the_matrix_and_brute_force(tmp_path: Path, traces: list) -> None:
    conn = sqlite3.connect(_db_with(tmp_path, traces))
    cmp = compare(conn, SRC, "eval_b")
    stats = {s.eval_id: s for s in compute_stats(conn, SET)}
    assert cmp.a.cells == stats[SRC].cells and cmp.b.cells == stats["eval_b"].cells
    expected: dict[str, list[str]] = {k: [] for k in FLIP_KINDS}
    for i, (rating, sa, sb) in enumerate(traces):
        r = rating if rating in ("positive", "negative", "neutral") else "unlabelled"
        if rating is None and sa is None and sb is None:
            continue
        for kind in flip_kind_of(r, sa or "not_run", sb or "not_run"):
            expected[kind].append(f"t{i:04d}")
    assert cmp.counts == {k: len(v) for k, v in expected.items()}
    for kind in FLIP_KINDS:
        assert list(iter_flips(conn, cmp, kind, page=3)) == expected[kind]
    for name, delta in cmp.deltas().items():
        va, vb = cmp.a.metrics()[name].value, cmp.b.metrics()[name].value
        assert delta == (None if va is None or vb is None else vb - va)


def test_compare_fixed_broken_changed_by_hand(tmp_path: Path) -> None:
    conn = sqlite3.connect(_db_with(tmp_path, [
        ("positive", "fail", "pass"),  # fixed
        ("negative", "pass", "fail"),  # fixed
        ("positive", "pass", "fail"),  # broken
        ("neutral", "pass", "fail"),  # changed only
        ("positive", "fail", "error"),  # changed, not fixed (errors are their own state)
        (None, "pass", None),  # only A
    ]))
    cmp = compare(conn, SRC, "eval_b")
    assert cmp.counts == {"fixed": 2, "broken": 1, "changed": 5, "only_a": 1, "only_b": 0}
    assert flip_page(conn, cmp, "fixed") == ["t0000", "t0001"]
    assert flip_page(conn, cmp, "fixed", after="t0000", limit=1) == ["t0001"]
    assert cmp.a.contradictions == 3 and cmp.b.contradictions == 1
    assert cmp.deltas()["accuracy"] == pytest.approx(cmp.b.accuracy.value - cmp.a.accuracy.value)


def test_compare_refuses_unknown_and_cross_set(db: Path) -> None:
    conn = _conn(db)
    with pytest.raises(CompareError, match="no eval"):
        compare(conn, SRC, "nope")
    conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('s2', 'ws_demo', 'two')")
    conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) VALUES "
                 "('e2', 's2', 'x', 1, 'def f(t): return True, \"\"', 'm')")
    with pytest.raises(CompareError, match="different eval sets"):
        compare(conn, SRC, "e2")


def test_compare_n_a_is_honest(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    new = create_version(conn, sidecar, SRC, GOOD)  # never run: n = 0
    cmp = compare(conn, SRC, new.id)
    assert cmp.b.accuracy.value is None and "n = 0" in (cmp.b.accuracy.reason or "")
    assert cmp.deltas()["accuracy"] is None
    assert cmp.counts["only_a"] == 5


# ---------------------------------------------------------------- the D1 patch (applied with sqlite here)

def _apply(db: Path, patch: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = ON")
    rows: list[tuple] = []
    for statement in _statements(patch):
        rows = conn.execute(statement).fetchall() or rows
    conn.commit()
    conn.close()
    return rows


def _statements(patch: str) -> list[str]:
    out, buf = [], []
    for line in patch.splitlines():
        if line.startswith("--"):
            continue
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            out.append("\n".join(buf))
            buf = []
    return out


def _patch(conn: sqlite3.Connection, sidecar: Path, **kw: object) -> str:
    import io

    buf = io.StringIO()
    write_eval_patch(conn, sidecar, buf, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def test_patch_applies_idempotently_and_never_overwrites(tmp_path: Path, db: Path, sidecar: Path) -> None:
    remote = build_db(tmp_path / "remote.sqlite")  # D1 as it was before the user worked locally
    clash = build_db(tmp_path / "clash.sqlite")  # ...and a D1 where someone else made version 2 meanwhile
    sqlite3.connect(clash).executescript(
        "INSERT INTO evals (id, eval_set_id, name, version, code, model_used) VALUES "
        f"('theirs', '{SET}', 'response_quality', 2, 'def f(t): return False, \"theirs\"', 'gpt');")
    conn = _conn(db)
    tricky = GOOD + "# it's a \\n literal and a real newline\n"
    new = create_version(conn, sidecar, SRC, tricky, activate=True)
    conn.execute(
        "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) "
        "VALUES ('x1', ?, 'trace_001', 0, 'no', 3), ('x2', ?, 'trace_ghost', 1, 'x', 1)",
        (new.id, new.id),
    )
    patch = _patch(conn, sidecar, with_executions=True)
    assert not any(s.lstrip().upper().startswith(("BEGIN", "COMMIT")) for s in _statements(patch))
    assert _apply(remote, patch) == []  # nothing reported
    first = _dump(remote)
    assert _apply(remote, patch) == [] and _dump(remote) == first  # twice = once
    r = sqlite3.connect(remote)
    got = r.execute(
        "SELECT code, status, version, parent_eval_id, execution_count, contradiction_count, accuracy "
        "FROM evals WHERE id = ?",
        (new.id,),
    ).fetchone()
    assert got == (tricky, "active", 2, SRC, 1, 1, 0.0)  # counters recomputed on D1; the ghost trace skipped
    assert r.execute("SELECT status FROM evals WHERE id = ?", (SRC,)).fetchone()[0] == "archived"
    # the clash: their version 2 stays, ours is reported, nothing else moves
    before = _dump(clash)
    report = _apply(clash, patch)
    assert report == [(CONFLICT_MARK, new.id, SET, 2, "theirs")]
    assert _dump(clash) == before


def _dump(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("SELECT * FROM evals ORDER BY id").fetchall()
                + conn.execute("SELECT * FROM eval_executions ORDER BY id").fetchall())
    finally:
        conn.close()


def test_patch_since_and_undone_versions(db: Path, sidecar: Path) -> None:
    from datetime import UTC, datetime, timedelta

    conn = _conn(db)
    create_version(conn, sidecar, SRC, GOOD)
    assert "versions: 1" in _patch(conn, sidecar)
    assert "versions: 0" in _patch(conn, sidecar, since=datetime.now(UTC) + timedelta(minutes=1))
    undo_last(conn, sidecar)
    patch = _patch(conn, sidecar)
    assert "versions: 0" in patch and "SELECT 0 WHERE 0" in patch


# ---------------------------------------------------------------- CLI

def _cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_eval_version_compare_export(tmp_path: Path, db: Path) -> None:
    code = tmp_path / "v2.py"
    code.write_text(GOOD)
    result = _cli("eval-version", str(db), SRC, "--code", str(code), "--activate")
    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip()
    assert new_id.startswith("eval_") and "\n" not in new_id
    conn = _conn(db)  # results as a run would store them (the sandbox has its own tests)
    conn.executemany(
        "INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) "
        "VALUES (?, ?, ?, ?, 'r', 1)",
        [(f"n{i}", new_id, f"trace_00{i}", i % 2) for i in range(1, 6)],
    )
    conn.close()
    result = _cli("compare", str(db), SRC, new_id, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"eval_set_id", "a", "b", "deltas", "counts", "transitions", "flips"}
    assert set(data["counts"]) == set(FLIP_KINDS) == set(data["flips"])
    assert data["a"]["eval_id"] == SRC and data["b"]["eval_id"] == new_id
    assert all(len(data["flips"][k]) == data["counts"][k] for k in FLIP_KINDS)
    text = _cli("compare", str(db), SRC, new_id)
    assert text.exit_code == 0 and "fixed (contradiction → agreement)" in text.stdout
    out = tmp_path / "evals.sql"
    result = _cli("export-evals", str(db), "-o", str(out), "--with-executions")
    assert result.exit_code == 0 and new_id in out.read_text()
    assert _cli("undo-version", str(db)).exit_code == 0  # the promotion


@pytest.mark.parametrize(
    "case", ["unknown", "invalid", "not_utf8", "missing", "cross_set", "compare_unknown"]
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, db: Path, case: str) -> None:
    code = tmp_path / "code.py"
    code.write_text(GOOD)
    if case == "invalid":
        code.write_text("import subprocess\ndef f(t):\n    return (True,\n")
    elif case == "not_utf8":
        code.write_bytes(b"def f(t):\n    return True, '\xe9'\n")
    args = ["eval-version", str(db), "nope" if case == "unknown" else SRC, "--code",
            str(tmp_path / "missing.py") if case == "missing" else str(code)]
    if case in ("cross_set", "compare_unknown"):
        conn = _conn(db)
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('s2', 'ws_demo', 'two')")
        conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) VALUES "
                     "('e2', 's2', 'x', 1, 'def f(t): return True, \"\"', 'm')")
        conn.close()
        args = ["compare", str(db), SRC, "e2" if case == "cross_set" else "nope"]
    before = _dump(db)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("iofold-tui: ") and "Traceback" not in result.output
    if case in ("invalid", "not_utf8", "missing"):
        assert str(tmp_path) in lines[0]  # names the user's file
    if case == "invalid":
        assert "line 3: SyntaxError" in lines[0]
    assert _dump(db) == before


def test_hostile_source_fields_are_copied_exactly(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    conn.execute("UPDATE evals SET description = X'00FF10', generation_prompt = CAST(X'C3FF' AS TEXT), "
                 "custom_instructions = 42.5, version = '1' WHERE id = ?", (SRC,))
    new = create_version(conn, sidecar, SRC, GOOD)
    cols = "typeof(description), hex(description), hex(generation_prompt), typeof(custom_instructions), " \
           "custom_instructions"
    src = conn.execute(f"SELECT {cols} FROM evals WHERE id = ?", (SRC,)).fetchone()
    assert conn.execute(f"SELECT {cols} FROM evals WHERE id = ?", (new.id,)).fetchone() == src
    assert new.version == 2


def test_promote_undo_restores_hostile_values_exactly(db: Path, sidecar: Path) -> None:
    conn = _conn(db)
    conn.execute("UPDATE evals SET updated_at = X'FF00', name = CAST(X'72C3' AS TEXT) WHERE id = ?", (SRC,))
    cols = "id, status, typeof(updated_at), hex(updated_at), hex(name)"
    before = conn.execute(f"SELECT {cols} FROM evals ORDER BY id").fetchall()
    new = create_version(conn, sidecar, SRC, GOOD)
    promote(conn, sidecar, new.id)
    assert conn.execute("SELECT status FROM evals WHERE id = ?", (SRC,)).fetchone()[0] == "archived"
    undo_last(conn, sidecar)
    undo_last(conn, sidecar)
    assert conn.execute(f"SELECT {cols} FROM evals ORDER BY id").fetchall() == before
