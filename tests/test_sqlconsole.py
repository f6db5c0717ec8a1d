"""The SQL console core: read-only guard, writes on request, streaming, interrupt, errors, history,
presets."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _inspect_helpers import build_inspect_db, copy_db

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.paths import data_dir, path_key
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.sqlconsole import history as sql_history
from iofold_tui.data.sqlconsole.console import Page, ResultCursor, SqlConsole
from iofold_tui.data.sqlconsole.presets import presets

COUNT_TO_1E9 = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
                "SELECT count(*) FROM c")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_inspect_db(tmp_path_factory.mktemp("console") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    return copy_db(template, tmp_path / "console.sqlite")


@pytest.fixture
def console(db: Path) -> Iterator[SqlConsole]:
    c = SqlConsole(db)
    yield c
    c.close()


def _all(result: ResultCursor, page: int = 1000) -> list[tuple[str | None, ...]]:
    assert result.ok, result.message
    rows: list[tuple[str | None, ...]] = []
    while True:
        p = result.fetch_page(page)
        assert p.error is None, p.error
        rows += p.rows
        if p.done:
            return rows


def _count(db: Path, sql: str) -> int:
    c = sqlite3.connect(db)
    try:
        return int(c.execute(sql).fetchone()[0])
    finally:
        c.close()


# -- read-only by default ----------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "INSERT INTO workspaces (id, name) VALUES ('w', 'x')",
    "UPDATE traces SET source = 'x'",
    "DELETE FROM feedback",
    "DROP TABLE jobs",
    "REPLACE INTO workspaces (id, name) VALUES ('ws_a', 'x')",
    "  /* sneaky */ -- comment\n insert into workspaces (id, name) values ('w', 'x')",
    "WITH x AS (SELECT 'w' AS id, 'n' AS name) INSERT INTO workspaces (id, name) SELECT id, name FROM x",
    "CREATE TEMP TABLE scratch (a)",
    "CREATE INDEX idx_new ON traces(source)",
    "ALTER TABLE traces ADD COLUMN extra TEXT",
    "PRAGMA user_version = 5",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA query_only = 0",
    "PRAGMA writable_schema = 1",
])
def test_writes_are_refused_read_only(console: SqlConsole, db: Path, sql: str) -> None:
    before = _count(db, "SELECT count(*) FROM workspaces") + _count(db, "SELECT count(*) FROM feedback")
    result = console.execute(sql)
    assert result.refused and not result.ok
    assert "read-only" in result.message and "enable writes" in result.message and "\n" not in result.message
    assert (
        _count(db, "SELECT count(*) FROM workspaces") + _count(db, "SELECT count(*) FROM feedback") == before
    )
    assert _count(db, "PRAGMA user_version") == 0
    assert _count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idx_new'") == 0


def test_attach_and_vacuum_into_create_no_file(console: SqlConsole, tmp_path: Path) -> None:
    # SQLite lets even a mode=ro connection create files this way: the guard must stop it.
    for sql, target in ((f"ATTACH '{tmp_path / 'new.db'}' AS other", "new.db"),
                        (f"VACUUM INTO '{tmp_path / 'copy.db'}'", "copy.db")):
        result = console.execute(sql)
        assert result.refused, sql
        assert not (tmp_path / target).exists()


def test_reads_are_allowed(console: SqlConsole) -> None:
    assert _all(console.execute("SELECT count(*) FROM traces")) == [("8",)]
    assert ("id",) in [r[1:2] for r in _all(console.execute("PRAGMA table_info(traces)"))]
    assert len(_all(console.execute("SELECT name FROM pragma_table_info('jobs')"))) == 11
    assert _all(console.execute("PRAGMA user_version")) == [("0",)]
    assert _all(console.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3) "
                                "SELECT sum(x) FROM c")) == [("6",)]
    assert _all(console.execute("EXPLAIN QUERY PLAN SELECT * FROM traces WHERE workspace_id = 'ws_a'"))
    assert _all(console.execute("SELECT * FROM eval_comparison WHERE execution_id = 'x1'"))


# -- writes on request -------------------------------------------------------------------------

def test_writes_after_enabling_and_back(console: SqlConsole, db: Path) -> None:
    console.set_allow_writes(True)
    assert console.allow_writes
    result = console.execute("INSERT INTO workspaces (id, name) VALUES ('w_new', 'New')")
    assert result.ok and result.message == "1 row(s) changed" and result.columns == []
    assert _count(db, "SELECT count(*) FROM workspaces WHERE id = 'w_new'") == 1
    cte = console.execute(
        "WITH x AS (SELECT 'w2' AS id) INSERT INTO workspaces (id, name) SELECT id, 'n' FROM x"
    )
    assert cte.ok and _count(db, "SELECT count(*) FROM workspaces") == 4
    upd = console.execute("UPDATE traces SET source = 'y' WHERE workspace_id = 'ws_b'")
    assert upd.message == "2 row(s) changed"
    console.set_allow_writes(False)
    assert console.execute("DELETE FROM workspaces WHERE id = 'w_new'").refused
    assert _count(db, "SELECT count(*) FROM workspaces") == 4


def test_write_mode_blocked_for_read_only_sources(db: Path) -> None:
    c = SqlConsole(db, writes_blocked="wrangler's live file: open a copy to edit")
    with pytest.raises(ReadOnlyError, match="open a copy"):
        c.set_allow_writes(True)
    assert not c.allow_writes and c.execute("DELETE FROM jobs").refused
    c.close()


# -- streaming ---------------------------------------------------------------------------------

def test_streams_a_200k_row_select_without_loading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE big (n INTEGER, label TEXT)")
    conn.execute(
        "INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
        "SELECT x, 'row ' || x FROM c"
    )
    conn.commit()
    conn.close()
    console = SqlConsole(path)
    calls = 0

    def tick(value: int) -> int:
        nonlocal calls
        calls += 1
        return value

    console._connection().create_function("tick", 1, tick)  # counts rows SQLite actually produced
    started = time.perf_counter()
    result = console.execute("SELECT tick(n), label FROM big")
    first = result.fetch_page(100)
    first_page_s = time.perf_counter() - started
    assert result.columns == ["tick(n)", "label"] and len(first.rows) == 100 and not first.done
    assert first.rows[0] == ("1", "row 1") and calls <= 102  # one page, not 200k rows
    assert first_page_s < 2.0
    total = 100 + len(_all(result, 5000))
    assert total == 200_000 and calls == 200_000 and result.rows_fetched == 200_000
    assert result.done and result.message == "200,000 row(s)"
    assert result.fetch_page(10).rows == []
    console.close()


def test_new_statement_closes_the_previous_cursor(console: SqlConsole) -> None:
    first = console.execute("SELECT id FROM traces")
    assert len(first.fetch_page(2).rows) == 2
    second = console.execute("SELECT 1")
    assert first.done and first.fetch_page(5).rows == []
    assert _all(second) == [("1",)]


# -- interrupt ---------------------------------------------------------------------------------

def _run_in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def test_interrupt_a_long_query_from_another_thread(console: SqlConsole) -> None:
    thread, out = _run_in_thread(lambda: console.execute(COUNT_TO_1E9))
    assert console.wait_running(10)
    started = time.perf_counter()
    console.interrupt()
    thread.join(10)
    assert not thread.is_alive() and time.perf_counter() - started < 5
    result = out[0]
    assert isinstance(result, ResultCursor)
    assert result.interrupted and result.message == "interrupted" and not result.ok
    assert _all(console.execute("SELECT 2")) == [("2",)]  # the console is usable afterwards


def test_interrupt_while_fetching_a_page(console: SqlConsole) -> None:
    result = console.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT x FROM c WHERE x = 1 OR x > 999999990"
    )
    assert result.ok
    thread, out = _run_in_thread(lambda: result.fetch_page(5))
    assert console.wait_running(10)
    console.interrupt()
    thread.join(10)
    assert not thread.is_alive()
    page = out[0]
    assert isinstance(page, Page) and page.interrupted and page.error == "interrupted" and page.done
    assert result.interrupted and result.done


# -- errors and odd values ---------------------------------------------------------------------

def test_errors_come_back_as_one_line_results(console: SqlConsole) -> None:
    syntax = console.execute("SELEC * FROM traces")
    assert not syntax.ok and "syntax error" in syntax.message and "\n" not in syntax.message
    missing = console.execute("SELECT * FROM no_such_table")
    assert missing.message == "no such table: no_such_table"
    two = console.execute("SELECT 1; SELECT 2")
    assert two.message == "one statement at a time: run the statements separately"
    assert _all(console.execute("SELECT 1; -- trailing comment")) == [("1",)]
    assert console.execute("  -- nothing\n").message == "nothing to run"
    assert not console.execute("SELECT 1\x00").ok  # NUL in the SQL text


def test_invalid_utf8_cell_does_not_fail_the_page(console: SqlConsole) -> None:
    assert _all(console.execute("SELECT CAST(X'FF41' AS TEXT), 'ok'")) == [
        ("⟨\\xFF⟩A", "ok")
    ]  # the byte, visibly


def test_runtime_error_in_a_later_page(console: SqlConsole) -> None:
    result = console.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
                             "SELECT CASE WHEN x <= 150 THEN x ELSE abs(-9223372036854775807 - 1) END FROM c")
    assert result.ok and len(result.fetch_page(100).rows) == 100
    page = result.fetch_page(100)
    assert page.error == "integer overflow" and page.done and not result.ok


def test_blob_huge_and_control_cells_render_safely(console: SqlConsole) -> None:
    rows = _all(console.execute(
        "SELECT X'00FF10' AS b, zeroblob(100000) AS z, printf('%.*c', 10000000, 'x') AS huge, "
        "char(27) || '[31mred' || char(10) || 'next' AS ansi, NULL AS nul, 1.5 AS num, "
        "'a' AS \"col\x1bname\""))
    b, z, huge, ansi, nothing, num, _ = rows[0]
    assert b == "<BLOB 3 bytes: 00 ff 10>"
    assert z is not None and z.startswith("<BLOB 100000 bytes: 00 00") and z.endswith("…>")
    assert huge is not None and len(huge) == console.cell_width and huge.endswith("…")
    assert (
        ansi is not None and ansi == one_line("\x1b[31mred\nnext") and "\x1b" not in ansi and "\n" not in ansi
    )
    assert nothing is None and num == "1.5"
    cols = console.execute("SELECT 1 AS \"a\x1bb\"").columns
    assert cols == ["a␛b"]


# -- history -----------------------------------------------------------------------------------

def test_history_persists_per_database(db: Path, tmp_path: Path) -> None:
    c = SqlConsole(db)
    for sql in ("SELECT 1", "SELECT 1", "SELEC oops", "DELETE FROM jobs", "  SELECT 2  "):
        c.execute(sql)
    c.close()
    path = data_dir() / "history" / f"{path_key(db)}.jsonl"
    assert path.is_file()
    again = SqlConsole(db)
    assert again.history.entries() == ["SELECT 1", "SELEC oops", "DELETE FROM jobs", "SELECT 2"]
    again.close()
    other = SqlConsole(copy_db(db, tmp_path / "other.sqlite"))
    assert other.history.entries() == []
    other.close()


def test_history_compacts_and_skips_torn_lines(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_history, "KEEP", 5)
    monkeypatch.setattr(sql_history, "COMPACT_AT", 10)
    hist = sql_history.SqlHistory(db)
    for i in range(12):
        hist.append(f"SELECT {i}")
    with hist.path.open("a", encoding="utf-8") as fh:
        fh.write('{"sql": "SELECT tor')  # a crash mid-write
    lines = hist.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 10
    assert sql_history.SqlHistory(db).entries() == [f"SELECT {i}" for i in range(7, 12)]


# -- presets -----------------------------------------------------------------------------------

def test_every_preset_runs_on_the_seed(seed_db: Path) -> None:
    console = SqlConsole(seed_db)
    for ws, es in ((None, None), ("ws_demo", None), ("ws_demo", "set_response_quality")):
        for preset in presets(ws, es):
            rows = _all(console.execute(preset.sql))
            assert console.execute(preset.sql).columns, preset.key
            if preset.key in (
                "evals_newest",
                "integrations_status",
                "evals_accuracy",
                "jobs_status",
                "label_progress",
                "traces_rating",
            ):
                assert rows, preset.key
    console.close()


def test_presets_compute_the_readme_figures(console: SqlConsole) -> None:
    by_key = {p.key: p for p in presets("ws_a", "set_s")}
    assert len(by_key) == len(presets())
    assert dict(_all(console.execute(by_key["evals_accuracy"].sql))) == {
        "high": "1", "medium": "1", "low": "1", "none": "1"}
    jobs = {(r[0], r[1]): (r[2], r[3]) for r in _all(console.execute(by_key["jobs_status"].sql))}
    count, avg = jobs[("import", "completed")]
    assert count == "2" and float(avg or "nan") == pytest.approx(25.0, abs=0.01)
    assert ("execute", "queued") not in jobs and len(jobs) == 5
    # set_s's own evals have no executions: the README query still finds 3 "contradictions" for it.
    assert len(_all(console.execute(by_key["contradictions_readme"].sql))) == 3
    assert _all(console.execute(by_key["contradictions_scoped"].sql)) == []
    q = {p.key: p for p in presets("ws_a", "set_q")}
    assert sorted(r[0] for r in _all(console.execute(q["contradictions_scoped"].sql))) == ["x1", "x3", "y1"]
    counts = {r[0]: (r[3], r[4]) for r in _all(console.execute(by_key["contradiction_counts"].sql))}
    assert counts["ev_q1"] == ("4", "2")
    integrations = _all(console.execute(by_key["integrations_status"].sql))
    assert sorted(integrations) == [("langfuse", "active", "1"), ("langsmith", "error", "1")]
    traces = _all(console.execute(by_key["traces_rating"].sql))
    assert {r[0] for r in traces} == {f"t{i}" for i in range(1, 7)}
    assert "quoted'id" in presets("quoted'id")[0].sql.replace("''", "'")


def test_release_lets_another_connection_write(db: Path) -> None:
    console = SqlConsole(db)
    result = console.execute("SELECT id FROM traces")
    assert len(result.fetch_page(1).rows) == 1  # an unfinished result: a read transaction stays open
    writer = sqlite3.connect(db, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE workspaces SET name = 'renamed' WHERE id = 'ws_b'")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        writer.execute("COMMIT")
    console.release()
    writer.execute("COMMIT")
    writer.close()
    assert result.done and _count(db, "SELECT count(*) FROM workspaces WHERE name = 'renamed'") == 1
    console.close()
