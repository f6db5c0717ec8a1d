"""Trace list core: keyset paging both ways, filters, counts, jump, step search."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_db

from iofold_tui.data.sanitize import clean, one_line
from iofold_tui.data.traces.query import TraceFilter, TraceQuery, scan_steps, total_traces
from iofold_tui.data.traces.steps import parse_steps


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    """1,000 traces with many equal timestamps (ties are where keyset paging usually breaks)."""
    path = build_db(tmp_path_factory.mktemp("many") / "many.sqlite", seed=False)
    conn = sqlite3.connect(path)
    conn.executescript(
        "INSERT INTO workspaces(id, name) VALUES ('ws1', 'one'), ('ws2', 'two');"
        "INSERT INTO integrations(id, workspace_id, platform, name, api_key_encrypted) VALUES "
        "('i1','ws1','langfuse','lf','k'), ('i2','ws2','openai','oa','k');"
        "INSERT INTO eval_sets(id, workspace_id, name) VALUES ('es1', 'ws1', 'quality');"
    )
    rows = []
    for i in range(1000):
        ws = "ws1" if i % 10 else "ws2"
        rows.append(
            (
                f"t{i:04d}",
                ws,
                "i1" if ws == "ws1" else "i2",
                f"ext{i}",
                ["langfuse", "openai"][i % 2],
                f"2025-06-{1 + (i // 100):02d}T10:00:{(i % 7):02d}Z",
                '[{"messages_added":[{"role":"user","content":"needle' + str(i % 13) + '"}]}]',
                f"question {i}",
                f"answer {i}",
                i % 5,
                int(i % 17 == 0),
            )
        )
    conn.executemany(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
        "input_preview, output_preview, step_count, has_errors) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO feedback(id, eval_set_id, trace_id, rating) VALUES (?, 'es1', ?, ?)",
        [(f"fb{i}", f"t{i:04d}", ["positive", "negative", "neutral"][i % 3]) for i in range(0, 1000, 4)],
    )
    conn.commit()
    return conn


def _walk(q: TraceQuery, size: int) -> list[str]:
    page = q.first_page(size)
    seen = [r.id for r in page.rows]
    while page.has_after:
        page = q.page_after(page.rows[-1].key, size)
        seen += [r.id for r in page.rows]
    return seen


def _expected(conn: sqlite3.Connection, where: str = "1", newest: bool = True) -> list[str]:
    order = "timestamp DESC, rowid ASC" if newest else "timestamp ASC, rowid DESC"
    return [r[0] for r in conn.execute(f"SELECT id FROM traces WHERE {where} ORDER BY {order}")]


@pytest.mark.parametrize("newest", [True, False])
@pytest.mark.parametrize("size", [7, 50, 1000])
def test_forward_walk_visits_every_row_once_in_order(
    many: sqlite3.Connection, newest: bool, size: int
) -> None:
    q = TraceQuery(many, TraceFilter(eval_set_id="es1", newest_first=newest))
    assert _walk(q, size) == _expected(many, newest=newest)


def test_backward_walk_from_the_end(many: sqlite3.Connection) -> None:
    q = TraceQuery(many, TraceFilter(eval_set_id="es1"))
    page = q.last_page(33)
    assert not page.has_after
    seen = [r.id for r in page.rows]
    while page.has_before:
        page = q.page_before(page.rows[0].key, 33)
        seen = [r.id for r in page.rows] + seen
    assert seen == _expected(many)


def test_filters_combine_and_count_matches(many: sqlite3.Connection) -> None:
    flt = TraceFilter(eval_set_id="es1", workspace_id="ws1", sources=("langfuse",), has_errors=False,
                      date_from="2025-06-02", date_to="2025-06-05", text="question 3")
    q = TraceQuery(many, flt)
    got = _walk(q, 10)
    expected = _expected(
        many,
        "workspace_id='ws1' AND source='langfuse' AND has_errors=0 AND timestamp >= '2025-06-02' "
        "AND timestamp < '2025-06-06' AND input_preview LIKE '%question 3%'",
    )
    assert got == expected and expected
    assert q.count() == len(expected)
    assert flt.describe()  # the header names the filters


@pytest.mark.parametrize("rating", ["positive", "negative", "neutral", "unlabelled"])
def test_rating_states(many: sqlite3.Connection, rating: str) -> None:
    q = TraceQuery(many, TraceFilter(eval_set_id="es1", rating=rating))
    if rating == "unlabelled":
        where = "id NOT IN (SELECT trace_id FROM feedback WHERE eval_set_id='es1')"
    else:
        where = f"id IN (SELECT trace_id FROM feedback WHERE eval_set_id='es1' AND rating='{rating}')"
    assert _walk(q, 40) == _expected(many, where)
    assert q.count() == len(_expected(many, where))


def test_rating_drives_from_the_timestamp_index_when_common(many: sqlite3.Connection) -> None:
    TraceQuery.RARE_RATING = 10  # force the "common rating" plan on this small table
    try:
        q = TraceQuery(many, TraceFilter(eval_set_id="es1", rating="positive"))
        where = "id IN (SELECT trace_id FROM feedback WHERE eval_set_id='es1' AND rating='positive')"
        assert _walk(q, 40) == _expected(many, where)
    finally:
        TraceQuery.RARE_RATING = 20_000


def test_rating_is_per_eval_set(many: sqlite3.Connection) -> None:
    page = TraceQuery(many, TraceFilter(eval_set_id="other")).first_page(1000)
    assert all(r.rating is None for r in page.rows)


def test_special_characters_in_search_are_literal(many: sqlite3.Connection) -> None:
    assert TraceQuery(many, TraceFilter(text="%")).count() == 0
    assert TraceQuery(many, TraceFilter(text="_")).count() == 0


def test_jump_to_id_and_external_id(many: sqlite3.Connection) -> None:
    q = TraceQuery(many, TraceFilter(eval_set_id="es1"))
    for target in ("t0500", "ext500"):
        page = q.around(target, 30)
        assert page is not None and page.focus_id == "t0500"
        ids = [r.id for r in page.rows]
        expected = _expected(many)
        start = expected.index(ids[0])
        assert ids == expected[start:start + len(ids)]
    assert q.around("does-not-exist", 30) is None
    assert TraceQuery(many, TraceFilter(workspace_id="ws2")).around("t0501", 30) is None  # filtered out


def test_total_and_workspace(many: sqlite3.Connection) -> None:
    assert total_traces(many) == 1000
    assert total_traces(many, "ws2") == 100


def test_step_scan_chunks_and_cancels(many: sqlite3.Connection) -> None:
    calls: list[tuple[int, int, int]] = []
    rowids, complete = scan_steps(
        many, "NEEDLE12", TraceFilter(), chunk=100, progress=lambda *a: calls.append(a)
    )
    assert complete
    expected = [r[0] for r in many.execute("SELECT rowid FROM traces WHERE steps LIKE '%needle12%'")]
    assert sorted(rowids) == sorted(expected) and expected
    assert len(calls) >= 10 and calls[-1][0] == calls[-1][1]
    _, complete = scan_steps(many, "needle", TraceFilter(), chunk=100, cancelled=lambda: len(calls) > 0)
    assert not complete
    q = TraceQuery(many, TraceFilter(step_rowids=tuple(rowids)))
    assert q.count() == len(expected)


def test_sanitiser_makes_controls_visible() -> None:
    hostile = "[bold]x[/bold] \x1b[31mred\x1b[0m \x07\x00 \u202eevil 中文 🙂\r\n"
    out = clean(hostile)
    assert "\x1b" not in out and "␛[31m" in out
    assert "␇" in out and "␀" in out and "⟨U+202E⟩" in out
    assert "[bold]" in out and "中文 🙂" in out  # text is kept; it is never parsed as markup
    line = one_line("a\nb" * 100, 10)
    assert "\n" not in line and len(line) <= 10
    assert clean("x" * 50, limit=10).startswith("x" * 10) and "more characters" in clean("x" * 50, limit=10)
    assert clean(b"\x00\xff") .startswith("<BLOB 2 bytes")


def test_parse_steps_never_raises() -> None:
    for raw in (
        "{not json",
        "[]",
        "null",
        "42",
        '"str"',
        '{"steps": [{"output": {"response": "hi"}}]}',
        "[1, [2], null]",
        "[" * 100000,
    ):
        parsed = parse_steps(raw)
        assert isinstance(parsed.steps, list)
    assert parse_steps('{"steps": [{"output": {"response": "hi"}}]}').final_answer == "hi"
    assert parse_steps("{bad").error


def test_core_never_imports_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, iofold_tui.data as d\n"
        "for m in pkgutil.walk_packages(d.__path__, 'iofold_tui.data.'):\n"
        "    importlib.import_module(m.name)\n"
        "import iofold_tui.data.source.loader\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
