"""Pilot tests: overview, jobs, integrations and SQL console panes driven with real keys; the CLI commands."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from _inspect_helpers import build_inspect_db, copy_db
from click.testing import CliRunner
from textual.widgets import Static

from iofold_tui.cli import main
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.integrations import IntegrationsPane
from iofold_tui.ui.panes.jobs import JobsPane
from iofold_tui.ui.panes.overview import _CACHE, OverviewPane
from iofold_tui.ui.panes.overview_tables import FigureTable
from iofold_tui.ui.panes.sql import SqlPane
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.widgets import Confirm, PickOne

BIG_CTE = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) "
           "SELECT x, 'row ' || x FROM c")
ENDLESS_CTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_inspect_db(tmp_path_factory.mktemp("inspect_panes") / "inspect.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    _CACHE.clear()  # warnings are cached per path; each test has its own copy
    return copy_db(template, tmp_path / "inspect.sqlite")


def _app(path: Path, pane: str, *, read_only: bool = False) -> IofoldApp:
    return IofoldApp(open_source(path, read_only=read_only), pane=pane, watch_interval=0)


def _header(app: IofoldApp) -> str:
    return str(app.screen.query_one("#pane-header", Static).render())


def _column(table: FigureTable, index: int) -> list[str]:
    return [str(table.get_row_at(r)[index]) for r in range(table.row_count)]


async def _sql(app: IofoldApp) -> SqlPane:
    screen = app.screen
    assert isinstance(screen, SqlPane)
    return screen


# -- overview ------------------------------------------------------------------------------------------
async def test_overview_figures_scoped_to_the_workspace(db: Path) -> None:
    app = _app(db, "overview")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, OverviewPane)
        counts = dict(zip(_column(pane.table("tables"), 0), _column(pane.table("tables"), 1), strict=True))
        # ws_a (Alpha) only: ws_b has 2 traces, 1 job
        assert counts["traces"] == "6" and counts["jobs"] == "7"
        assert _column(pane.table("sets"), 0) == ["quality", "safety"]
        assert _column(pane.table("sets"), 4) == ["5/5", "3/4"]
        assert _column(pane.table("accuracy"), 1) == ["1", "1", "1", "1"]
        assert "HTTP 401 unauthorized" in _column(pane.table("integrations"), 5)
        # Every warning kind of ws_a arrived, one row each, and the header counts them.
        kinds = _column(pane.table("warnings"), 0)
        assert len(kinds) == 7 and "conflicting labels" in kinds and "stale jobs" in kinds
        assert "7 warnings" in _header(app)
        jobs = {r[0]: r for r in (list(map(str, pane.table("jobs").get_row_at(i))) for i in range(3))}
        assert jobs["import"][1] == "3" and jobs["import"][-2] == "33 %"  # 1 failed of 3 finished


async def test_overview_figure_jumps_to_its_rows(db: Path) -> None:
    app = _app(db, "overview")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.focused, FigureTable) and app.focused.id == "ov-tables"
        for _ in range(4):  # workspaces, users, workspace_members, integrations, traces
            await pilot.press("down")
        await pilot.press("enter")
        await settle(app, pilot)
        sql = await _sql(app)
        assert "FROM traces WHERE workspace_id = 'ws_a'" in sql.editor.text
        assert len(sql.current_rows()) == 6
        # Back to the overview (Esc leaves the editor, where O is just a letter): the jobs table jumps per
        # cell (import × failed lists j2 only).
        await pilot.press("escape", "O")
        await settle(app, pilot)
        overview = app.screen
        assert isinstance(overview, OverviewPane)
        jobs = overview.table("jobs")
        jobs.focus()
        # columns: type, total, queued, running, completed, failed
        jobs.move_cursor(row=_column(jobs, 0).index("import"), column=5)
        await pilot.press("enter")
        await settle(app, pilot)
        assert [r[0] for r in (await _sql(app)).current_rows()] == ["j2"]


async def test_overview_warnings_are_cached_and_refreshed(db: Path) -> None:
    app = _app(db, "overview")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, OverviewPane)
        assert pane.checks_state == ""  # computed
        pane.reload()
        await settle(app, pilot)
        assert pane.checks_state == "cached" and len(pane.warnings) == 7
        with sqlite3.connect(db) as conn:  # fixing the data changes the file: the cache no longer applies
            conn.execute("DELETE FROM eval_executions WHERE trace_id = 'gone_trace'")
        await pilot.press("r")
        await settle(app, pilot)
        assert pane.checks_state == ""
        assert "orphan executions" not in _column(pane.table("warnings"), 0)


# -- jobs ----------------------------------------------------------------------------------------------
async def test_jobs_filters_detail_and_refresh_keep_the_cursor(db: Path) -> None:
    app = _app(db, "jobs")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, JobsPane)
        assert [r.id for r in pane.page.rows] == ["j7", "j6", "j5", "j4", "j3", "j2", "j1"]
        assert "1–7 of 7 jobs" in _header(app)
        await pilot.press("s")
        await settle(app, pilot)
        picker = app.screen
        assert isinstance(picker, PickOne)
        await pilot.press("down", "down", "down", "down", "enter")  # all, queued, running, completed, failed
        await settle(app, pilot)
        assert [r.id for r in pane.page.rows] == ["j2"] and "status=failed" in _header(app)
        await pilot.press("c", "t")
        await settle(app, pilot)
        await pilot.press("down", "enter")  # all, import
        await settle(app, pilot)
        assert [r.id for r in pane.page.rows] == ["j3", "j2", "j1"]
        await pilot.press("down", "down")
        await settle(app, pilot)
        detail = str(pane.query_one("#job-detail-text", Static).render())
        assert "Imported" in detail and "Skipped" in detail and "int_a1" in detail
        # The database changes underneath (a job progresses): the app reloads, the cursor stays on j1.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE jobs SET error = 'retried later' WHERE id = 'j1'")
        app.refresh_panes()
        await settle(app, pilot)
        assert pane.table.cursor_key == "j1"
        assert "retried later" in str(pane.table.get_row("j1")[-1])


async def test_jobs_invalid_payload_is_shown_not_crashed(db: Path) -> None:
    app = _app(db, "jobs")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, JobsPane)
        await pilot.press("down")  # j6: context "{not json"
        await settle(app, pilot)
        detail = str(pane.query_one("#job-detail-text", Static).render())
        assert "invalid JSON" in detail and "{not json" in detail


# -- integrations --------------------------------------------------------------------------------------
async def test_integrations_never_show_the_key_and_list_traces(db: Path) -> None:
    app = _app(db, "integrations")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = app.screen
        assert isinstance(pane, IntegrationsPane)
        assert [it.id for it in pane.items] == ["int_a1", "int_a2"]  # ws_a only
        shown = app.export_screenshot()
        detail = str(pane.query_one("#integration-detail-text", Static).render())
        assert "SECRET" not in shown and "sk-lf-zzz" not in detail and "«hidden»" in detail
        assert [str(pane.table.get_row_at(i)[3]) for i in range(2)] == ["set", "empty"]
        await pilot.press("down")
        detail = str(pane.query_one("#integration-detail-text", Static).render())
        assert "HTTP 401 unauthorized" in detail and "not valid JSON" in detail
        await pilot.press("up", "enter")
        await settle(app, pilot)
        sql = await _sql(app)
        assert sorted(r[0] for r in sql.current_rows()) == ["t1", "t2", "t3", "t4", "t5"]


# -- SQL console ---------------------------------------------------------------------------------------
async def test_console_refuses_a_write_then_writes_after_confirm(db: Path) -> None:
    app = _app(db, "sql")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        pane.editor.text = "DELETE FROM jobs WHERE id = 'j7'"
        await pilot.press("f5")
        await settle(app, pilot)
        assert "refused" in str(pane.message) and "F8" in str(pane.message)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM jobs WHERE id = 'j7'").fetchone()[0] == 1
        await pilot.press("f8")
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(app, pilot)
        assert "WRITES ENABLED" in _header(app)
        pane.editor.focus()
        await pilot.press("f5")
        await settle(app, pilot)
        assert "1 row(s) changed" in str(pane.message)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM jobs WHERE id = 'j7'").fetchone()[0] == 0
        await pilot.press("f8")  # and back to read-only
        await settle(app, pilot)
        assert "read-only" in _header(app) and pane.console is not None and not pane.console.allow_writes


async def test_console_write_mode_impossible_on_read_only_source(db: Path) -> None:
    app = _app(db, "sql", read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        await pilot.press("f8")
        await settle(app, pilot)
        assert not isinstance(app.screen, Confirm)
        assert pane.console is not None and not pane.console.allow_writes
        assert any("writes are not possible" in str(n.message) for n in app._notifications)
        assert "source cannot be written" in _header(app)


async def test_console_interrupts_a_long_recursive_cte(db: Path) -> None:
    app = _app(db, "sql")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        pane.editor.text = ENDLESS_CTE
        await pilot.press("f5")
        assert pane.console is not None
        assert await asyncio.to_thread(pane.console.wait_running, 10)
        await pilot.press("escape")
        await settle(app, pilot)
        assert "cancelled" in str(pane.message) and not pane.running


async def test_console_pages_a_large_result_without_loading_it(db: Path) -> None:
    app = _app(db, "sql")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        pane.run_sql(BIG_CTE)
        await settle(app, pilot)
        assert pane.window is not None and pane.window.fetched == 200 and pane.window.more
        assert "rows 1–200 of 200+" in _header(app)
        pane.table.focus()
        await pilot.press("end", "down")  # last row of the page, then past it: the next page streams in
        await settle(app, pilot)
        assert pane.current_rows()[0][0] == "201" and pane.window.fetched == 400
        assert "rows 201–400 of 400+" in _header(app)
        await pilot.press("home", "up")  # back: the previous page comes from memory
        await settle(app, pilot)
        assert pane.current_rows()[0][0] == "1" and pane.window.fetched == 400
        # Hiding the pane releases the unfinished result (it holds a read lock).
        await pilot.press("escape", "O")
        await settle(app, pilot)
        assert pane.released and pane.console is not None and pane.console._current is None


async def test_console_errors_cells_history_and_presets(db: Path) -> None:
    app = _app(db, "sql")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        pane.editor.text = "SELEC 1"
        await pilot.press("f5")
        await settle(app, pilot)
        assert "syntax error" in str(pane.message)
        pane.editor.text = ("SELECT x'00ff' AS b, printf('%.*c', 10000000, 'x') AS huge, "
                            "char(27) || '[31mred' AS esc, NULL AS n")
        await pilot.press("f5")
        await settle(app, pilot)
        cells = [str(c) for c in pane.table.get_row_at(0)]
        assert len(cells[1]) <= 60 and "\x1b" not in "".join(cells) and cells[3] == "NULL"
        await pilot.press("ctrl+up")  # history: the newest statement first, then the one before
        assert pane.editor.text.startswith("SELECT x'00ff'")
        await pilot.press("ctrl+up")
        assert pane.editor.text == "SELEC 1"
        await pilot.press("f3")
        await settle(app, pilot)
        assert isinstance(app.screen, PickOne)
        await pilot.press(*["down"] * 6, "enter")  # the seventh preset: evals by accuracy bucket
        await settle(app, pilot)
        assert "bucket" in pane.editor.text
        assert sorted(r[0] for r in pane.current_rows()) == ["high", "low", "medium", "none"]


async def test_sql_select_item_runs_a_preset_by_key(db: Path) -> None:
    app = _app(db, "sql")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pane = await _sql(app)
        pane.select_item("integrations_status")
        await settle(app, pilot)
        assert sorted(pane.current_rows()) == [("langfuse", "active", "1"), ("langsmith", "error", "1")]


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_overview_json_and_workspace(db: Path) -> None:
    out = CliRunner().invoke(main, ["overview", str(db), "--workspace", "ws_b", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {t["table"]: t["count"] for t in data["tables"]}["traces"] == 2
    assert all("sql" in w for w in data["warnings"]) and data["eval_sets"][0]["ready"] is True
    text = CliRunner().invoke(main, ["overview", str(db), "--no-warnings"])
    assert text.exit_code == 0 and "rows per table" in text.stdout and "warning:" not in text.stdout
    bad = CliRunner().invoke(main, ["overview", str(db), "--workspace", "nope"])
    assert bad.exit_code == 2 and "no such workspace" in bad.stderr


def test_cli_sql_reads_limits_and_refuses_writes(db: Path) -> None:
    args = ["sql", str(db), "SELECT id FROM jobs ORDER BY id", "--limit", "3", "--json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["rows"] == [["j1"], ["j2"], ["j3"]] and data["truncated"] is True
    refused = CliRunner().invoke(main, ["sql", str(db), "DROP TABLE jobs"])
    assert refused.exit_code == 2 and "refused" in refused.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 8
