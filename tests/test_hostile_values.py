"""Issue 13, part A: one test per class of hostile value or odd schema (each failed before its fix).

The random, every-column version of all of this is tests/test_fuzz_values.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import build_db
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.widgets import DataTable, Static

from iofold_tui.cli import main
from iofold_tui.data.db import connect, quote_ident
from iofold_tui.data.errors import SourceError
from iofold_tui.data.inspect.jobs import list_jobs
from iofold_tui.data.inspect.overview import overview
from iofold_tui.data.matrix import grid
from iofold_tui.data.matrix.comparison_view import SOURCE_CUSTOMISED, SOURCE_VIEW, comparison_source
from iofold_tui.data.matrix.confusion import cells_for_confusion
from iofold_tui.data.matrix.grid_query import MatrixQuery
from iofold_tui.data.matrix.stats import compute_stats
from iofold_tui.data.prefs import load_prefs
from iofold_tui.data.sanitize import clean, json_text, one_line
from iofold_tui.data.source import catalog
from iofold_tui.data.source.loader import open_source
from iofold_tui.data.sqlconsole.console import SqlConsole, is_secret_column
from iofold_tui.data.traces.detail import load_trace
from iofold_tui.data.traces.query import TraceFilter, TraceQuery
from iofold_tui.data.traces.steps import parse_steps
from iofold_tui.data.values import (
    execution_state,
    marked,
    show_number,
    to_bool,
    to_float,
    to_int,
    to_timestamp,
)
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.trace_render import step_text

SET = "set_response_quality"
EVAL = "eval_response_quality_v1"
# What a terminal must never receive raw: C0/C1 controls, bidi embeddings/overrides/isolates, U+061C,
# zero-width characters, BOM, line/paragraph separators, lone surrogates.
RAW_HAZARDS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]"
)


def _db(tmp_path: Path, *statements: str, name: str = "h.sqlite") -> Path:
    path = build_db(tmp_path / name)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for sql in statements:
            conn.execute(sql)
    return path


def _app(path: Path, **kwargs: object) -> IofoldApp:
    return IofoldApp(open_source(path), watch_interval=0, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- 1. invalid UTF-8, lone surrogates

def test_invalid_utf8_and_surrogates_are_read_and_shown_marked(tmp_path: Path) -> None:
    path = _db(
        tmp_path,
        "UPDATE traces SET input_preview = CAST(X'48656c6c6fff' AS TEXT), "
        "output_preview = CAST(X'61eda08062' AS TEXT)",  # a lone surrogate as CESU-8
        "UPDATE jobs SET type = CAST(X'ff' AS TEXT)",
        "UPDATE feedback SET notes = CAST(X'c3' AS TEXT)",
    )
    conn = connect(path, read_only=True)
    row = TraceQuery(conn, TraceFilter(eval_set_id=SET)).first_page(10).rows[0]
    assert row.input_preview == "Hello⟨\\xFF⟩"
    assert row.output_preview == "a⟨\\xED⟩⟨\\xA0⟩⟨\\x80⟩b"
    assert list_jobs(conn, None).rows[0].type == "⟨\\xFF⟩"
    detail = load_trace(conn, "trace_001")
    assert detail is not None and detail.feedback[0].notes == "⟨\\xC3⟩"
    conn.close()
    result = CliRunner().invoke(main, ["overview", str(path)])
    assert result.exit_code == 0, result.output


async def test_every_pane_renders_invalid_utf8(tmp_path: Path) -> None:
    path = _db(
        tmp_path,
        "UPDATE traces SET input_preview = CAST(X'48656c6c6fff' AS TEXT)",
        "UPDATE feedback SET notes = CAST(X'ff' AS TEXT)",
        "UPDATE jobs SET error = CAST(X'ff' AS TEXT)",
        "UPDATE evals SET name = CAST(X'ff' AS TEXT)",
    )
    app = _app(path, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        for mode in ("traces", "review", "evals", "matrix", "overview", "jobs", "integrations"):
            app.switch_mode(mode)
            await settle(app, pilot)
        app.switch_mode("traces")
        await settle(app, pilot)
        assert "Hello⟨\\xFF⟩" in app.export_screenshot().replace("&#x27;", "'")


# ---------------------------------------------------------------- 2. wrong types

SQLITE_VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.text(),
                          st.binary())


@settings(max_examples=300, deadline=None)
@given(SQLITE_VALUES)
def test_conversions_never_raise(value: object) -> None:
    for convert in (to_int, to_float, to_bool, to_timestamp):
        convert(value)
    shown = show_number(value) + show_number(value, ".2f", "float") + marked(value)
    assert not RAW_HAZARDS.search(shown)
    assert execution_state(value, None) in ("pass", "fail", "invalid")


def test_conversions_accept_what_is_meant_and_mark_the_rest() -> None:
    assert (to_int("12"), to_int(3.0), to_int("many"), to_int(b"\x01"), to_int(float("nan"))) == (
        12,
        3,
        None,
        None,
        None,
    )
    assert (to_float("0.9"), to_float("high"), to_float(float("inf"))) == (0.9, None, None)
    assert (to_bool("yes"), to_bool(1), to_bool(2), to_bool("maybe")) == (True, True, None, None)
    assert to_timestamp("2025-11-11T09:00:00Z") is not None and to_timestamp(1_700_000_000) is not None
    assert to_timestamp("soon") is None
    assert show_number("many") == "⚠'many'" and show_number(1234) == "1,234"


def test_wrong_typed_columns_do_not_raise(tmp_path: Path) -> None:
    path = _db(
        tmp_path,
        "UPDATE evals SET accuracy = 'high', execution_count = 'x', version = 'v'",
        "UPDATE traces SET step_count = 'many', has_errors = 'yes'",
        "UPDATE jobs SET started_at = 5, progress = 'half', completed_at = X'00', created_at = 1.5",
        "UPDATE eval_sets SET minimum_examples = 'lots'",
        "UPDATE eval_executions SET execution_time_ms = 'slow'",
    )
    conn = connect(path, read_only=True)
    assert catalog.eval_sets(conn)[0].minimum_examples == 0
    rows = TraceQuery(conn, TraceFilter(eval_set_id=SET)).first_page(10).rows
    assert {r.step_count for r in rows} == {0} and all(r.has_errors for r in rows)
    job = list_jobs(conn, None).rows[0]
    assert job.progress_pct == 0 and job.started_at is not None and "⚠" in job.started_at
    assert compute_stats(conn, SET)[0].stored_accuracy is None
    overview(conn, None)
    conn.close()


async def test_null_or_unknown_rating_shows_in_review(tmp_path: Path) -> None:
    path = _db(tmp_path, "CREATE TABLE f2 AS SELECT * FROM feedback", "DROP TABLE feedback",
               "CREATE TABLE feedback AS SELECT * FROM f2", "DROP TABLE f2",  # without NOT NULL / CHECK
               "UPDATE feedback SET rating = NULL WHERE trace_id = 'trace_005'",
               "UPDATE feedback SET rating = 'meh' WHERE trace_id = 'trace_004'")
    app = _app(path, pane="review", select="trace_005")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        text = app.export_screenshot().replace("&#160;", " ")
        assert "⚠ NULL (not a rating)" in text


# ---------------------------------------------------------------- 3. missing tables, WITHOUT ROWID

@pytest.mark.parametrize(
    "drop, pane",
    [
        ("jobs", "jobs"),
        ("eval_executions", "matrix"),
        ("eval_executions", "evals"),
        ("integrations", "integrations"),
    ],
)
async def test_pane_of_a_missing_table_says_so(tmp_path: Path, drop: str, pane: str) -> None:
    path = _db(tmp_path, "DROP VIEW eval_comparison", f"DROP TABLE {drop}")
    app = _app(path, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        for mode in ("traces", "review", "evals", "matrix", "overview", "jobs", "integrations", "sql"):
            app.switch_mode(mode)
            await settle(app, pilot)
            unavailable = app.screen.query("#pane-unavailable")
            if mode == pane:
                assert unavailable and drop in str(unavailable.first(Static).render())
                for key in ("down", "enter", "f", "escape"):  # the pane's own keys act on nothing
                    await pilot.press(key)
                    await settle(app, pilot)
            elif mode not in ("evals", "matrix") or drop != "eval_executions":
                assert not unavailable, mode


def _without_rowid(tmp_path: Path) -> Path:
    from conftest import SCHEMA, SEED

    schema = re.sub(r"(CREATE TABLE traces \(.*?\n\));", r"\1 WITHOUT ROWID;", SCHEMA.read_text(), flags=re.S)
    path = tmp_path / "worowid.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(schema)
        conn.executescript(SEED.read_text())
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) "
            "INSERT INTO traces (id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
            "SELECT printf('w%03d', i), 'ws_demo', 'int_langfuse_demo', 'x' || i, 'langfuse', "
            "printf('2025-01-01T00:00:%02dZ', i % 7), '[]' FROM n"
        )
    return path


def test_without_rowid_pages_every_trace_once(tmp_path: Path) -> None:
    path = _without_rowid(tmp_path)
    conn = connect(path, read_only=True)
    total = conn.execute("SELECT count(*) FROM traces").fetchone()[0]
    for newest_first in (True, False):
        query = TraceQuery(conn, TraceFilter(eval_set_id=SET, newest_first=newest_first))
        page = query.first_page(7)
        seen = [r.id for r in page.rows]
        while page.has_after:
            page = query.page_after(page.rows[-1].key, 7)
            seen += [r.id for r in page.rows]
        assert len(seen) == total and len(set(seen)) == total
        back = query.page_before(page.rows[0].key, 7)
        assert [r.id for r in back.rows] == seen[-len(page.rows) - len(back.rows):-len(page.rows)]
    assert query.around("w030", 10) is not None
    conn.close()


async def test_without_rowid_panes_render(tmp_path: Path) -> None:
    path = _without_rowid(tmp_path)
    app = _app(path, pane="traces")
    async with app.run_test(size=(120, 30)) as pilot:
        for mode in ("traces", "review", "matrix"):
            app.switch_mode(mode)
            await settle(app, pilot)
        await pilot.press("tab")  # the matrix grid
        await settle(app, pilot)


# ---------------------------------------------------------------- 4. identifiers

def test_table_names_that_need_quoting_open(tmp_path: Path) -> None:
    path = _db(tmp_path, 'CREATE TABLE "we""ird] name" (x)', 'INSERT INTO "we""ird] name" VALUES (1)',
               'CREATE TABLE "has space" ("col ""q" TEXT)')
    opened = open_source(path)
    assert opened.schema.generation == "v1.0"
    result = CliRunner().invoke(main, ["info", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tables"]['we"ird] name'] == 1
    assert quote_ident('a"b') == '"a""b"'


# ---------------------------------------------------------------- 5. results other than 0/1

def test_results_other_than_0_1_are_invalid_everywhere(tmp_path: Path) -> None:
    path = _db(tmp_path, "UPDATE eval_executions SET result = 2 WHERE trace_id = 'trace_001'",
               "UPDATE eval_executions SET result = -1 WHERE trace_id = 'trace_002'",
               "UPDATE eval_executions SET result = 'true' WHERE trace_id = 'trace_003'",
               "UPDATE eval_executions SET result = X'01' WHERE trace_id = 'trace_004'")
    conn = connect(path, read_only=True)
    s = compute_stats(conn, SET)[0]
    assert (s.invalid, s.tp, s.n, s.contradictions) == (4, 1, 1, 0)
    assert s.excluded["invalid_result"] == 4 and s.execution_count == 5
    q = MatrixQuery(SET)
    rows = {r.trace_id: r.cells[0] for r in grid.first_page(conn, q).rows}
    assert {t for t, c in rows.items() if c.state == "invalid"} == {
        "trace_001",
        "trace_002",
        "trace_003",
        "trace_004",
    }
    assert all(c.result is None for t, c in rows.items() if c.state == "invalid")
    assert grid.first_page(conn, MatrixQuery(SET, filter="contradictions")).rows == []
    assert set(cells_for_confusion(conn, EVAL, "invalid").trace_ids) == {
        f"trace_00{i}" for i in range(1, 5)
    }
    assert cells_for_confusion(conn, EVAL, "FN").trace_ids == []
    assert cells_for_confusion(conn, EVAL, "TN").trace_ids == []
    conn.close()
    report = json.loads(CliRunner().invoke(main, ["stats", "--json", str(path)]).output)
    assert "invalid" in json.dumps(report)


# ---------------------------------------------------------------- 6. the view compared by meaning

def _view(tmp_path: Path, sql: str) -> str:
    path = _db(tmp_path, "DROP VIEW eval_comparison", sql, name=f"v{abs(hash(sql))}.sqlite")
    with sqlite3.connect(path) as conn:
        return comparison_source(conn)


def test_view_written_differently_is_still_iofolds(tmp_path: Path) -> None:
    from iofold_tui.data.paths import schema_dir

    view = re.search(
        r"CREATE VIEW eval_comparison.*?;", (schema_dir() / "schema.sql").read_text(), re.S
    ).group(0)
    wrangler = view.replace("f.trace_id = e.trace_id", "e.trace_id = f.trace_id").replace(" AS ", " as ")
    assert _view(tmp_path, wrangler) == SOURCE_VIEW
    assert _view(tmp_path, re.sub(r"\s+", "  ", wrangler)) == SOURCE_VIEW
    assert _view(tmp_path, view.replace("ELSE 1", "ELSE 0")) == SOURCE_CUSTOMISED
    assert _view(tmp_path, view.replace("e.result = 1 THEN 0", "e.result <> 0 THEN 0")) == SOURCE_CUSTOMISED


# ---------------------------------------------------------------- 7. schema fingerprints

def test_v1_missing_a_column_names_it(tmp_path: Path) -> None:
    path = _db(tmp_path, "DROP VIEW eval_comparison", "ALTER TABLE feedback DROP COLUMN notes")
    with pytest.raises(SourceError) as info:
        open_source(path)
    message = str(info.value)
    assert "feedback.notes" in message and "not supported" not in message and "v1.0" in message


def test_a_user_table_named_agents_does_not_make_it_v2(tmp_path: Path) -> None:
    path = _db(tmp_path, "CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT)")
    assert open_source(path).schema.generation == "v1.0"


# ---------------------------------------------------------------- 8. secrets

def test_sql_command_masks_secret_columns(tmp_path: Path) -> None:
    path = _db(tmp_path, "UPDATE integrations SET api_key_encrypted = 'enc-SECRET-123'")
    runner = CliRunner()
    for args in (
        ["sql", str(path), "SELECT * FROM integrations"],
        ["sql", "--json", str(path), "SELECT * FROM integrations"],
    ):
        out = runner.invoke(main, args)
        assert out.exit_code == 0 and "SECRET-123" not in out.output and "hidden" in out.output
    shown = runner.invoke(
        main, ["sql", "--show-secrets", str(path), "SELECT api_key_encrypted FROM integrations"]
    )
    assert "SECRET-123" in shown.output
    assert all(
        is_secret_column(c) for c in ("api_key_encrypted", "access_token", "client_secret", "PASSWORD")
    )
    assert not any(is_secret_column(c) for c in ("key", "id", "name", "trace_id"))


async def test_sql_pane_masks_until_toggled(tmp_path: Path) -> None:
    path = _db(tmp_path, "UPDATE integrations SET api_key_encrypted = 'enc-SECRET-123'")
    app = _app(path, pane="sql")
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        app.screen.run_sql("SELECT id, api_key_encrypted FROM integrations")  # type: ignore[attr-defined]
        await settle(app, pilot)

        def cells() -> str:
            table = app.screen.query_one("#sql-results", DataTable)
            return " ".join(str(table.get_row_at(i)) for i in range(table.row_count))

        assert "SECRET-123" not in cells() and "hidden" in cells()
        await pilot.press("f9")  # with the focus in the editor
        await settle(app, pilot)
        assert "SECRET-123" in cells()
    console = SqlConsole(path)
    try:
        page = console.execute("SELECT api_key_encrypted FROM integrations").fetch_page(5)
        assert "SECRET" not in str(page.rows)
    finally:
        console.close()


# ---------------------------------------------------------------- 9. terminal safety of text and JSON

def test_sanitiser_covers_every_control_and_format_character() -> None:
    for code in range(0x110000):
        ch = chr(code)
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and code not in (0x09, 0x0A):
            assert ch not in one_line(ch) and ch not in clean(ch), hex(code)
    assert "👩\u200d👩" in one_line("👩\u200d👩")  # an emoji sequence keeps its joiner


def test_json_output_escapes_controls_and_bidi(tmp_path: Path) -> None:
    hostile = "ws\x9b31m\u202eevil\u061c\u200b\ufeff\U000e0001"
    path = _db(
        tmp_path,
        f"UPDATE workspaces SET name = '{hostile}'",
        f"UPDATE eval_sets SET name = '{hostile}'",
        f"UPDATE evals SET name = '{hostile}'",
    )
    runner = CliRunner()
    for args in (["info", "--json"], ["overview", "--json"], ["stats", "--json"], ["sql", "--json"]):
        argv = [*args, str(path)] + (["SELECT name FROM workspaces"] if args[0] == "sql" else [])
        out = runner.invoke(main, argv)
        assert out.exit_code == 0, (args, out.output)
        assert not RAW_HAZARDS.search(out.output), args
        if args[0] in ("overview", "stats"):  # the JSON keeps the value itself, escaped
            assert hostile in json.dumps(json.loads(out.output), ensure_ascii=False), args
    assert json.loads(json_text({"k": "\udcff"})) == {"k": "\udcff"}


# ---------------------------------------------------------------- 10. steps, screenshot prefs

def test_step_items_that_are_not_objects_show_their_value() -> None:
    parsed = parse_steps('[42, "plain text", null, [1, 2], true, {"output": "ok"}]')
    titles = [s.title for s in parsed.steps]
    assert titles[:5] == [
        "#1 number: 42",
        "#2 string: plain text",
        "#3 null: null",
        "#4 array: 2 items [1, 2]",
        "#5 boolean: true",
    ]
    for step in parsed.steps[:5]:
        body = step_text(step).plain.split("\n", 1)[1]
        assert body.strip(), step.title
    assert parse_steps(7).steps[0].title == "#1 number: 7"  # `steps` itself an INTEGER


def test_screenshot_keeps_the_remembered_pane(tmp_path: Path) -> None:
    path = build_db(tmp_path / "prefs.sqlite")
    runner = CliRunner()
    for pane in ("jobs", "matrix"):
        out = runner.invoke(
            main, ["screenshot", str(path), "--pane", pane, "--size", "80x24", "-o", str(tmp_path / "s.svg")]
        )
        assert out.exit_code == 0, out.output
    assert load_prefs(path).get("pane") is None


def test_rating_label_never_blank() -> None:
    from iofold_tui.ui.text import rating_label

    assert rating_label("positive") == "POSITIVE"
    assert "NULL" in rating_label(None) and "meh" in rating_label("meh")
    assert isinstance(Text(rating_label(b"\x00")), Text)


def test_blob_ids_do_not_break_id_lists(tmp_path: Path) -> None:
    """Ids go into json_each() lists: a BLOB id (found by the fuzz test) must match nothing, not raise."""
    path = _db(
        tmp_path,
        "INSERT INTO evals (id, eval_set_id, name, version, code, model_used, contradiction_count) "
        f"SELECT X'a9', eval_set_id, name, 7, code, model_used, 3 FROM evals WHERE id = '{EVAL}'",
    )
    conn = connect(path, read_only=True)
    overview(conn, None)
    assert [s.eval_id for s in compute_stats(conn, SET)] == [EVAL, "<BLOB 1 bytes: a9>"]
    conn.close()


def test_ids_with_nul_in_generated_sql(tmp_path: Path) -> None:
    """Jump/listing SQL writes ids as literals: an id holding NUL (found by fuzzing) becomes X'..' text."""
    from iofold_tui.data.inspect.integrations import list_integrations

    path = _db(tmp_path, "UPDATE integrations SET id = 'int' || char(0) || 'x'",
               "UPDATE traces SET integration_id = 'int' || char(0) || 'x'")
    conn = connect(path, read_only=True)
    assert [i.trace_count for i in list_integrations(conn, None)] == [5]
    conn.close()


async def test_wrong_typed_eval_counters_show_marked_in_the_evals_pane(tmp_path: Path) -> None:
    """evals.accuracy='high', execution_count='many': the stored value is shown marked, not a bare '—'."""
    import html

    from iofold_tui.data.paths import schema_dir
    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.screenshot import settle

    db = tmp_path / "typed.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript((schema_dir() / "schema.sql").read_text() + (schema_dir() / "seed.sql").read_text())
    conn.execute(
        "UPDATE evals SET accuracy = 'high', execution_count = 'many', contradiction_count = X'00ff'"
    )
    conn.commit()
    conn.close()
    app = IofoldApp(open_source(db), pane="evals", watch_interval=0)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        svg = app.export_screenshot()
        shown = html.unescape(" ".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")
        assert "⚠'hi" in shown and "⚠'many" in shown and "⚠<BLOB" in shown  # narrow column: cut, marked


def test_the_baked_hidden_code_points_are_the_computed_ones() -> None:
    """The sanitiser's table for this Unicode version is baked in (launch time); it must equal the scan."""
    from iofold_tui.data import sanitize

    assert tuple(sorted(sanitize.hidden_code_points())) == sanitize._HIDDEN


@pytest.mark.parametrize("stored", [2, -1, "true", b"\x01"])  # NULL: the schema's NOT NULL refuses it
def test_a_result_other_than_0_or_1_is_invalid_everywhere(stored: object, tmp_path: Path) -> None:
    """The matrix, the verdict facet, the most-contradicted order, review's contradicted-first queue and the
    overview's recount all treat such a result as 'invalid': never a fail, never a contradiction."""
    from iofold_tui.data.inspect.checks import scoped_recount_sql
    from iofold_tui.data.labels import review_queue
    from iofold_tui.data.paths import schema_dir
    from iofold_tui.data.search import facets
    from iofold_tui.data.search.sort_orders import CONTRADICTED_SQL

    db = tmp_path / "invalid.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript((schema_dir() / "schema.sql").read_text() + (schema_dir() / "seed.sql").read_text())
    conn.execute("UPDATE eval_executions SET result = ?, error = NULL", (stored,))
    conn.commit()
    eval_id, set_id = conn.execute("SELECT id, eval_set_id FROM evals LIMIT 1").fetchone()
    verdicts = {row[0]: row[1] for row in facets._column_facet(conn, "verdict", set_id, eval_id) if row[1]}
    assert set(verdicts) == {"invalid"}, verdicts
    assert facets.facet_rowids(conn, None, "verdict", "fail", eval_id=eval_id) == []
    assert conn.execute(CONTRADICTED_SQL, (set_id,)).fetchall() == []
    for use_view in (False, True):
        recount = conn.execute(f"SELECT {scoped_recount_sql(use_view)} FROM evals e WHERE e.id = ?",
                               (eval_id,)).fetchone()[0]
        assert recount == 0, use_view
    contra = conn.execute(f"SELECT count(*) FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id "
                          f"AND f.eval_set_id = ? WHERE {review_queue._CONTRA}",
                          (set_id, set_id)).fetchone()[0]
    assert contra == 0
    conn.close()
