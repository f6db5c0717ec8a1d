"""Issue 17 in the UI: / searches through the index (scan meanwhile), o orders the list (cost said first),
matches highlighted in the trace view and review, facets count the list's filter."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.widgets import Static

from iofold_tui.data.db import connect
from iofold_tui.data.sanitize import clean
from iofold_tui.data.search import facets as F
from iofold_tui.data.search.order import OrderedQuery, ordered_rowids
from iofold_tui.data.search.query import parse
from iofold_tui.data.search.scan import scan
from iofold_tui.data.search.sort_orders import CONTRADICTED_SQL
from iofold_tui.data.source.demo.build import generate
from iofold_tui.data.source.loader import open_source
from iofold_tui.data.traces.query import TraceFilter, TraceQuery
from iofold_tui.ui import highlight as H
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.traces import TracesPane
from iofold_tui.ui.row_table import RowTable
from iofold_tui.ui.screenshot import settle
from iofold_tui.ui.widgets import PaneHeader


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("searchui") / "demo.sqlite"
    generate(path, traces=300, hostile=True, seed=5)
    return path


@pytest.fixture
def db_copy(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    return path


def _ids(app: IofoldApp) -> list[str]:
    return [str(k.value) for k in app.screen.query_one("#traces", RowTable).rows]


def _header(app: IofoldApp) -> str:
    return str(app.screen.query_one(PaneHeader).render())


def _notes(app: IofoldApp) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


def _rowids(path: Path, ids: list[str]) -> list[int]:
    conn = sqlite3.connect(path)
    return [conn.execute("SELECT rowid FROM traces WHERE id = ?", (i,)).fetchone()[0] for i in ids]


async def _pick_order(app: IofoldApp, pilot: object, key: str) -> list[str]:
    """o, then the order ``key`` in the picker (by its position: the cursor starts on the current one)."""
    from textual.widgets import OptionList

    from iofold_tui.ui.widgets import PickOne

    await pilot.press("o")  # type: ignore[attr-defined]
    await settle(app, pilot)
    assert isinstance(app.screen, PickOne)
    keys = [value for value, _ in app.screen.options]
    app.screen.query_one(OptionList).highlighted = keys.index(key)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(app, pilot)
    return keys


async def _all_ids(app: IofoldApp, pilot: object) -> list[str]:
    """Every row of the list, paging down to the end."""
    seen: list[str] = []
    for _ in range(50):
        for trace_id in _ids(app):
            if trace_id not in seen:
                seen.append(trace_id)
        pane = app.screen
        assert isinstance(pane, TracesPane)
        if pane.page is None or not pane.page.has_after:
            return seen
        await pilot.press("end")  # type: ignore[attr-defined]
        await settle(app, pilot)
    return seen


# ------------------------------------------------------------ / is the full-text search

async def test_slash_searches_the_query_language_combined_with_the_filters(db_copy: Path) -> None:
    db = connect(db_copy, read_only=True)
    want = set(scan(db, parse("tool:search_docs OR error:timeout*")).rowids_newest_first())
    errors = {int(r[0]) for r in db.execute("SELECT rowid FROM traces WHERE has_errors = 1")}
    assert want & errors and want - errors  # the filter matters
    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    app.state.trace_filter = TraceFilter(has_errors=True)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"tool:search_docs OR error:timeout*", "enter")
        await settle(app, pilot)
        assert "no search index yet" in _notes(app)  # the scan answered; the index builds in the background
        shown = await _all_ids(app, pilot)
        assert set(_rowids(db_copy, shown)) == want & errors
        assert 'steps∋"tool:search_docs OR error:timeout*"' in _header(app) and "errors" in _header(app)
        assert app.state.search_query == app.state.trace_filter.step_text


async def test_regex_mode_scans_and_highlights(db_copy: Path) -> None:
    from iofold_tui.data.search.scan import regex_scan

    db = connect(db_copy, read_only=True)
    want = set(regex_scan(db, r"search_d[o]cs|time\s?out").rowids_newest_first())
    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *r"re:search_d[o]cs|time\s?out", "enter")
        await settle(app, pilot)
        assert set(app.state.trace_filter.step_rowids or ()) == want and want
        assert "regex mode scans every trace" in _notes(app)
        keys = await _pick_order(app, pilot, "newest")
        assert "relevance" not in keys  # a regex has no rank
    text = H.highlight(Text("a Timeout and search_docs"), r"re:search_d[o]cs|time\s?out")
    assert [text.plain[s.start:s.end] for s in text.spans] == ["Timeout", "search_docs"]
    assert H.pattern("re:(") is None  # an invalid regex highlights nothing (the search said why)


async def test_p_is_the_instant_preview_filter_and_help_lists_both(db_copy: Path) -> None:
    from iofold_tui.ui.panes.review_widgets import KeyHelp

    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("p", *"zzzz-nothing")
        await settle(app, pilot)
        assert _ids(app) == [] and '"zzzz-nothing"' in _header(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert len(_ids(app)) > 0
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, KeyHelp)
        rows = {binding_id: (keys, what) for keys, binding_id, what in app.screen.rows}
        assert rows["traces.search"][0] == "/" and rows["traces.preview"][0] == "p"
        notes = " ".join(app.screen.notes)
        assert "/ searches everything" in notes and "p filters the previews" in notes and "o orders" in notes


# ------------------------------------------------------------ o: orders

@pytest.mark.parametrize("key", ["step_count", "source", "rating"])
def test_ordered_rowids_equal_a_direct_sort(demo: Path, key: str) -> None:
    conn = connect(demo, read_only=True)
    es = conn.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]
    flt = TraceFilter(eval_set_id=es, has_errors=False)
    got = ordered_rowids(conn, flt, key).rowids
    rows = conn.execute(
        "SELECT t.rowid, t.step_count, t.source, coalesce(f.rating, 'unlabelled'), t.timestamp "
        "FROM traces t LEFT JOIN feedback f ON f.trace_id = t.id AND f.eval_set_id = ? "
        "WHERE t.has_errors = 0",
        (es,),
    ).fetchall()
    assert sorted(got) == sorted(r[0] for r in rows)  # the same set as the filter
    col = {"step_count": 1, "source": 2, "rating": 3}[key]
    values = {r[0]: r[col] for r in rows}
    seq = [values[r] for r in got]
    if key == "step_count":
        all_ints = all(isinstance(v, int) for v in seq)
        seq = [-(v if isinstance(v, int) else 0) for v in seq] if all_ints else None
    if seq is not None:
        assert seq == sorted(seq)


def test_ordered_query_pages_match_the_order(demo: Path) -> None:
    conn = connect(demo, read_only=True)
    rowids = ordered_rowids(conn, TraceFilter(), "source").rowids
    query = OrderedQuery(conn, rowids, None)
    seen, page = [], query.first_page(37)
    while True:
        seen += [r.rowid for r in page.rows]
        if not page.has_after:
            break
        page = query.page_after(page.rows[-1].key, 37)
    assert seen == rowids
    back = query.page_before(query.last_page(37).rows[0].key, 37)
    assert [r.rowid for r in back.rows] == rowids[-74:-37]
    trace_id = conn.execute("SELECT id FROM traces WHERE rowid = ?", (rowids[150],)).fetchone()[0]
    around = query.around(trace_id, 30)
    assert around is not None and around.focus_id == trace_id and query.count() == len(rowids)


async def test_o_orders_by_step_count_and_most_contradicted(db_copy: Path) -> None:
    conn = connect(db_copy, read_only=True)
    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        es = app.state.eval_set_id
        assert es is not None
        before = _ids(app)
        await pilot.press("o")
        await settle(app, pilot)
        from iofold_tui.ui.widgets import PickOne

        assert isinstance(app.screen, PickOne)
        keys = [value for value, _ in app.screen.options]
        assert keys[:6] == ["newest", "oldest", "step_count", "source", "rating", "contradicted"]
        assert "relevance" not in keys  # no search yet
        await pilot.press("down", "down", "enter")  # step count
        await settle(app, pilot)
        assert "sorts all" in _notes(app) or "walks an index" in _notes(app)  # the cost, said first
        assert "most steps first" in _header(app) and _ids(app) != before
        step_count = "SELECT step_count FROM traces WHERE id = ?"
        counts = [conn.execute(step_count, (i,)).fetchone()[0] for i in _ids(app)]
        ints = [c for c in counts if isinstance(c, int)]
        assert ints == sorted(ints, reverse=True)[:len(ints)] or counts[0] == max(ints)
        # a filter change recomputes the order for the new filter
        await pilot.press("f")
        await settle(app, pilot)
        app.screen.dismiss(TraceFilter(has_errors=True))
        await settle(app, pilot)
        assert "most steps first" in _header(app) and "errors" in _header(app)
        has_errors = "SELECT has_errors FROM traces WHERE id = ?"
        assert all(conn.execute(has_errors, (i,)).fetchone()[0] for i in _ids(app))
        await pilot.press("c")
        await settle(app, pilot)
        await _pick_order(app, pilot, "contradicted")
        want = [int(r[0]) for r in conn.execute(CONTRADICTED_SQL, (es,)).fetchall()]
        n = {int(r[0]): int(r[2]) for r in conn.execute(CONTRADICTED_SQL, (es,)).fetchall()}
        shown = _rowids(db_copy, _ids(app))
        assert want and set(shown) <= set(want) and len(shown) == min(len(want), 100)
        assert [n[r] for r in shown] == sorted((n[r] for r in shown), reverse=True)
        assert "most contradicted first" in _header(app)
        await _pick_order(app, pilot, "oldest")  # back to time
        assert "oldest first" in _header(app)


async def test_relevance_order_after_a_search_through_the_index(db_copy: Path) -> None:
    from click.testing import CliRunner

    from iofold_tui.cli import main

    assert CliRunner().invoke(main, ["index", str(db_copy)]).exit_code == 0
    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"refund OR invoice", "enter")
        await settle(app, pilot)
        matched = set(app.state.trace_filter.step_rowids or ())
        assert matched
        assert "relevance" in await _pick_order(app, pilot, "relevance")
        assert "by relevance" in _header(app)
        assert set(_rowids(db_copy, await _all_ids(app, pilot))) == matched


# ------------------------------------------------------------ highlighting

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["refund", '"charged twice"', "inv*", "tool:search_docs",
                                               "a OR b", "NOT x", "[bold]", "中文"]))
def test_highlight_only_adds_styles(raw: str, query: str) -> None:
    text = Text(clean(raw))
    before = text.plain
    H.highlight(text, query)
    assert text.plain == before  # never a character added, removed or parsed as markup
    assert all(span.style == H.STYLE for span in text.spans)


def test_highlight_marks_whole_tokens_phrases_and_prefixes() -> None:
    def marked(plain: str, query: str) -> list[str]:
        text = H.highlight(Text(plain), query)
        return [plain[s.start:s.end] for s in text.spans]

    assert marked("Refund refunded REFUND", "refund") == ["Refund", "REFUND"]
    assert marked("a refund, refunded", "refund*") == ["refund", "refunded"]
    assert marked("you were Charged  twice, charged once", '"charged twice"') == ["Charged  twice"]
    assert marked("called search_docs", "tool:search_docs") == ["search_docs"]
    assert marked("timeout", "NOT timeout") == [] and marked("[bold]x[/]", "bold") == ["bold"]


async def test_trace_view_and_review_highlight_the_active_query(db_copy: Path) -> None:
    from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

    app = IofoldApp(open_source(db_copy), pane="traces", watch_interval=0)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"tool:search_docs", "enter")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TraceDetailScreen)
        # the steps with a match are marked in the tree and the first one is shown, its matches highlighted
        from textual.widgets import Tree

        tree = app.screen.query_one("#steps-tree", Tree)
        assert "with matches" in str(tree.root.label)
        marked = [n for n in tree.root.children if str(n.label).startswith("◆ ")]
        assert marked and tree.cursor_node is marked[0]
        content = app.screen.query_one("#step-content", Static).content
        assert isinstance(content, Text)
        spans = [content.plain[s.start:s.end].lower() for s in content.spans if s.style == H.STYLE]
        assert spans and set(spans) == {"search_docs"}
        await pilot.press("escape", "R", "f")  # review limited to the list's filter: the matches highlighted
        await settle(app, pilot)
        from iofold_tui.ui.panes.review_widgets import ReviewDocument

        document = app.screen.query_one(ReviewDocument)
        steps = document.steps or Text()
        marked = [steps.plain[s.start:s.end].lower() for s in steps.spans if s.style == H.STYLE]
        assert marked and set(marked) == {"search_docs"}


# ------------------------------------------------------------ facets count the list's filter

@pytest.mark.parametrize("name", ["source", "has_errors", "day", "rating", "verdict", "tool"])
def test_filtered_facets_count_only_the_matching_traces(demo: Path, tmp_path: Path, name: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from iofold_tui.data.search.index import SearchIndex

    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    conn = connect(demo, read_only=True)
    index = SearchIndex(demo)
    index.conn(create=True)
    index.sync(conn)
    es = conn.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]
    ev = conn.execute("SELECT id FROM evals WHERE eval_set_id = ? LIMIT 1", (es,)).fetchone()[0]
    flt = TraceFilter(has_errors=True, eval_set_id=es)
    matching = TraceQuery(conn, flt).count()
    got = F.facet(conn, name, db_path=demo, index=index, eval_set_id=es, eval_id=ev, flt=flt)
    assert got.total == matching and "matching the list's filters" in (got.note or "")
    if name != "verdict":  # a trace can have several executions of one eval
        assert sum(v.count for v in got.values) >= matching if name == "tool" else \
            sum(v.count for v in got.values) == matching
    if name == "source":
        for v in got.values:
            narrowed = F.facet_filter(flt, got, v.value, conn)
            assert TraceQuery(conn, narrowed).count() == v.count
    everything = F.facet(conn, name, db_path=demo, index=index, eval_set_id=es, eval_id=ev)
    assert everything.total > got.total and everything.note is None
    index.close()


@pytest.mark.parametrize("key", ["step_count", "source", "rating", "contradicted"])
def test_orders_over_hostile_rows_page_every_trace_once(tmp_path: Path, key: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any SQLite type in step_count / source / timestamp / rating: each order is a permutation of the
    filter's traces and the pages of OrderedQuery cover it exactly."""
    from _hostile import make_hostile_db

    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    path, _ = make_hostile_db(tmp_path / "hostile.sqlite")
    conn = connect(path, read_only=True)
    es = conn.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]
    flt = TraceFilter(eval_set_id=es)
    got = ordered_rowids(conn, flt, key, source_key=path, db_path=path).rowids
    every = sorted(int(r[0]) for r in conn.execute("SELECT rowid FROM traces"))
    if key == "contradicted":
        assert set(got) <= set(every) and len(set(got)) == len(got)
    else:
        assert sorted(got) == every
    query, seen = OrderedQuery(conn, got, es), []
    page = query.first_page(3)
    while True:
        seen += [r.rowid for r in page.rows]
        if not page.has_after:
            break
        page = query.page_after(page.rows[-1].key, 3)
    assert seen == got
