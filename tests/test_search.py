"""Issue 17: the sidecar full-text index, its query language, the equivalent scan, facets and sorting."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from _hostile import make_hostile_db
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.cli import main
from iofold_tui.data.db import connect
from iofold_tui.data.search import facets as F
from iofold_tui.data.search import sort_orders
from iofold_tui.data.search.extract import extract
from iofold_tui.data.search.index import IndexUnavailable, SearchIndex, run_search
from iofold_tui.data.search.query import SearchSyntaxError, compile_query, parse, tokens
from iofold_tui.data.search.scan import regex_scan, scan
from iofold_tui.data.source.demo.build import generate
from iofold_tui.data.traces.query import TraceFilter, TraceQuery

QUERIES = [
    "refund",
    "REFUND",
    '"charged twice"',
    "tool:search_docs",
    "error:timeout*",
    "role:assistant",
    "role:tool",
    "inv*",
    "refund NOT timeout",
    "refund OR invoice",
    "(refund OR invoice) -duplicate",
    "assistant:sorry",
    "msg:refund",
    "io:INV*",
    "id:trace_000001",
    "preview:checkout",
    'user:"request timeout"',
    "markup",
    "ANSI",
    "中文",
    "emoji",
    "evil",
    "binary",
    "unclosed",
    "xxxxxxxx",
    "5000*",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic database with hostile rows, plus the seed's hostile traces (invalid JSON, blob, 5 MB)."""
    folder = tmp_path_factory.mktemp("search")
    path = folder / "demo.sqlite"
    generate(path, traces=400, hostile=True, seed=3)
    hostile, _ = make_hostile_db(folder / "hostile.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("ATTACH ? AS h", (str(hostile),))
    cols = ("id, workspace_id, integration_id, trace_id, source, timestamp, metadata, steps, input_preview, "
            "output_preview, step_count, has_errors")
    conn.execute(
        f"INSERT INTO traces({cols}) SELECT h.traces.id || '_h', (SELECT id FROM workspaces LIMIT 1), "
        "(SELECT id FROM integrations LIMIT 1), h.traces.trace_id || '_h', source, timestamp, metadata, "
        "steps, "
        "input_preview, output_preview, step_count, has_errors FROM h.traces"
    )
    conn.execute(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps) SELECT "
        "'weird', (SELECT id FROM workspaces LIMIT 1), (SELECT id FROM integrations LIMIT 1), X'FF61626364', "
        "7, 12345, "
        '\'[1e5, {"messages_added": [{"role": "assistant", "content": "caf\\u00e9 CAFÉ na\\u0000ive"}]}, '
        '"plain", null]\''
    )
    conn.commit()
    conn.execute("DETACH h")
    conn.close()
    return path


def _index(db_path: Path, side: Path) -> SearchIndex:
    index = SearchIndex(db_path, path=side)
    report = index.sync(connect(db_path, read_only=True))
    assert report.complete
    return index


@pytest.fixture(scope="module")
def built(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    return _index(demo, tmp_path_factory.mktemp("side") / "s.fts.sqlite")


def _same(index: SearchIndex, db: sqlite3.Connection, text: str) -> list[int]:
    node = parse(text)
    got = index.search(node, limit=None).rowids
    want = scan(db, node, chunk=97).rowids_newest_first()
    assert got == want, text
    return got


@pytest.mark.parametrize("text", QUERIES)
def test_index_equals_scan(demo: Path, built: SearchIndex, text: str) -> None:
    _same(built, connect(demo, read_only=True), text)


def test_queries_find_what_they_name(demo: Path, built: SearchIndex) -> None:
    db = connect(demo, read_only=True)
    ids = lambda rows: {db.execute("SELECT id FROM traces WHERE rowid = ?", (r,)).fetchone()[0] for r in rows}  # noqa: E731
    assert "weird" in ids(_same(built, db, "cafe"))  # accents fold, \u escapes decode
    assert "weird" in ids(_same(built, db, "ive"))  # NUL is a separator
    assert "weird" in ids(_same(built, db, "1e5"))  # numbers keep their literal text
    assert "invalid_json_h" in ids(_same(built, db, "unclosed"))  # invalid JSON indexed as raw text
    tools = _same(built, db, "tool:search_docs")
    assert tools and all(
        "search_docs" in db.execute("SELECT steps FROM traces WHERE rowid = ?", (r,)).fetchone()[0]
        for r in tools
    )
    assert not set(_same(built, db, "tool:search_docs NOT docs")) # a term cannot subtract itself
    # newest first, in the trace list's order
    rows = built.search(parse("refund"), limit=None).rowids
    listed = [
        r.rowid for r in TraceQuery(db, TraceFilter(step_rowids=tuple(rows))).first_page(len(rows)).rows
    ]
    assert rows == listed


# ------------------------------------------------------------ property: index == scan

def _vocabulary(demo: Path) -> tuple[list[str], list[list[str]]]:
    conn = connect(demo, read_only=True)
    rng = random.Random(7)
    words: set[str] = set()
    runs: list[list[str]] = []
    for r in conn.execute(
        "SELECT id, trace_id, input_preview, output_preview, steps FROM traces WHERE rowid % 37 = 0"
    ):
        for value in extract(*r):
            toks = tokens(value)[:400]
            words.update(t for t in toks if len(t) < 30)
            if len(toks) > 3:
                i = rng.randrange(len(toks) - 3)
                runs.append(toks[i:i + rng.randint(2, 3)])
    return sorted(words), runs


@pytest.fixture(scope="module")
def vocab(demo: Path) -> tuple[list[str], list[list[str]]]:
    return _vocabulary(demo)


FIELD_NAMES = ["", "", "", "tool:", "error:", "role:", "assistant:", "user:", "io:", "msg:", "input:", "id:"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_index_equals_scan(demo: Path, built: SearchIndex, vocab: tuple[list[str], list[list[str]]],
                                    data: st.DataObject) -> None:
    words, runs = vocab

    def term() -> str:
        kind = data.draw(st.sampled_from(["word", "phrase", "prefix"]))
        field = data.draw(st.sampled_from(FIELD_NAMES))
        if kind == "phrase":
            return field + '"' + " ".join(data.draw(st.sampled_from(runs))) + '"'
        word = data.draw(st.sampled_from(words))
        if kind == "prefix":
            return field + word[: data.draw(st.integers(1, max(1, len(word))))] + "*"
        return field + word

    parts = [term()]
    for _ in range(data.draw(st.integers(0, 2))):
        op = data.draw(st.sampled_from(["", "AND ", "OR ", "NOT "]))
        parts.append(op + term())
    _same(built, connect(demo, read_only=True), " ".join(parts))


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from([*"ab \"*():-_\\'\x00é中", "tool:", "error:", "OR", "AND", "NOT", " OR ", " NOT "]),
        max_size=20,
    ).map("".join)
    | st.text(max_size=20)
)
def test_any_text_is_a_result_or_a_message(text: str) -> None:
    """Arbitrary user text never reaches FTS5 as a syntax error: it parses to a valid MATCH, or it is a
    message."""
    mem = sqlite3.connect(":memory:")
    from iofold_tui.data.search.scan import FTS_ARGS
    mem.execute(f"CREATE VIRTUAL TABLE m USING fts5({FTS_ARGS})")
    try:
        match = compile_query(text)
    except SearchSyntaxError as exc:
        assert str(exc)
        return
    mem.execute("SELECT rowid FROM m WHERE m MATCH ?", (match,)).fetchall()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '"unclosed',
        "(refund",
        "refund)",
        "NOT refund",
        "-refund",
        "refund AND",
        "OR refund",
        "tool:",
        "tols:search",
        "a*b",
        "$$$",
        "()",
        "x" * 3000,
    ],
)
def test_syntax_errors_are_messages(text: str) -> None:
    with pytest.raises(SearchSyntaxError) as err:
        parse(text)
    assert str(err.value) and "\n" not in str(err.value)


def test_regex_scan(demo: Path) -> None:
    db = connect(demo, read_only=True)
    res = regex_scan(db, r"INV-\d{6}")
    assert res.complete and res.hits
    with pytest.raises(SearchSyntaxError):
        regex_scan(db, "(unclosed")
    calls = []
    partial = regex_scan(
        db, "x", chunk=50, progress=lambda d, t: calls.append(d), cancelled=lambda: len(calls) >= 2
    )
    assert not partial.complete and len(calls) == 2


# ------------------------------------------------------------ incremental == fresh

def _state(index: SearchIndex) -> tuple[list, dict]:
    conn = index.conn()
    docs = conn.execute("SELECT rid, ts, fp FROM docs ORDER BY rid").fetchall()
    results = {q: index.search(parse(q), limit=None).rowids for q in QUERIES[:12]}
    return docs, results


def _mutate(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    rids = [r[0] for r in conn.execute("SELECT rowid FROM traces")]
    for rid in rng.sample(rids, 15):
        conn.execute("DELETE FROM traces WHERE rowid = ?", (rid,))
    for rid in rng.sample(
        [r for r in rids if conn.execute("SELECT 1 FROM traces WHERE rowid=?", (r,)).fetchone()], 10
    ):
        conn.execute(
            "UPDATE traces SET timestamp = '2027-01-01T00:00:00Z', steps = ?, input_preview = 'zebra quokka' "
            "WHERE rowid = ?",
            (json.dumps([{"messages_added": [{"role": "user", "content": "zebra quokka refund"}]}]), rid),
        )
    for i in range(40):
        conn.execute(
            "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview) "
            "SELECT ?, workspace_id, integration_id, ?, 'openai', '2026-12-0' || ? || 'T00:00:00Z', ?, 'new "
            "refund' "
            "FROM traces LIMIT 1",
            (
                f"new_{seed}_{i}",
                f"ext_{seed}_{i}",
                i % 9 + 1,
                json.dumps(
                    [{"tool_calls": [{"tool_name": "brand_new_tool", "error": f"Timeout after {i} s"}]}]
                ),
            ),
        )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("vacuum", [False, True])
def test_incremental_update_equals_fresh_build(demo: Path, tmp_path: Path, vacuum: bool) -> None:
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    index = _index(path, tmp_path / "inc.fts.sqlite")
    _mutate(path, 1)
    if vacuum:  # VACUUM renumbers rowids (like a re-loaded D1 export after deletions): the diff catches it
        sqlite3.connect(path).execute("VACUUM")
    report = index.sync(connect(path, read_only=True))
    assert report.mode == "diff" and report.deleted >= 15 and report.added + report.changed >= 50
    fresh = _index(path, tmp_path / "fresh.fts.sqlite")
    assert _state(index) == _state(fresh)
    assert index.search(parse("tool:brand_new_tool"), limit=None).total == 40
    assert index.sync(connect(path, read_only=True)).mode == "up to date"


def test_appended_traces_take_the_tail_path(demo: Path, tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    index = _index(path, tmp_path / "inc.fts.sqlite")
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
        "SELECT 'tail_' || rowid, workspace_id, integration_id, 'tail_' || rowid, source, timestamp, steps "
        "FROM traces WHERE rowid % 10 = 0"
    )
    conn.commit()
    report = index.sync(connect(path, read_only=True))
    assert report.mode == "tail" and report.added > 0 and report.deleted == 0
    assert _state(index) == _state(_index(path, tmp_path / "fresh.fts.sqlite"))


def test_cancelled_build_resumes(demo: Path, tmp_path: Path) -> None:
    index = SearchIndex(demo, path=tmp_path / "c.fts.sqlite")
    index.batch = 50
    db = connect(demo, read_only=True)
    seen: list[int] = []
    report = index.sync(db, progress=lambda d, t: seen.append(d), cancelled=lambda: len(seen) >= 1)
    assert not report.complete and 0 < report.total < db.execute("SELECT count(*) FROM traces").fetchone()[0]
    assert index.sync(db).complete
    assert _state(index) == _state(_index(demo, tmp_path / "fresh.fts.sqlite"))


# ------------------------------------------------------------ degrading to the scan

def test_corrupt_sidecar_scans_with_a_note(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    db = connect(demo, read_only=True)
    index = SearchIndex(demo)
    index.sync(db)
    want = run_search(db, demo, "refund", limit=None)
    assert want.used_index and want.note is None
    index.close()
    index.path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    got = run_search(db, demo, "refund", limit=None)
    assert not got.used_index and "unusable" in (got.note or "")
    assert got.rowids == want.rowids
    index.path.write_bytes(b"not a database at all")
    assert run_search(db, demo, "refund", limit=None).rowids == want.rowids


def test_unwritable_cache_dir_scans_with_a_note(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(blocker / "cache"))
    db = connect(demo, read_only=True)
    res = run_search(db, demo, "refund")
    assert not res.used_index and res.note and res.total > 0
    with pytest.raises(IndexUnavailable):
        SearchIndex(demo).conn(create=True)


def test_user_database_is_never_written(demo: Path, tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    before = path.read_bytes()
    _index(path, tmp_path / "s.fts.sqlite")
    assert path.read_bytes() == before
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert not any("fts" in n for n in names)


# ------------------------------------------------------------ CLI

def test_cli_index_and_search(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    out = runner.invoke(main, ["search", str(demo), "refund", "--json", "--limit", "3"])
    assert out.exit_code == 0, out.output
    scanned = json.loads(out.stdout)
    assert not scanned["used_index"] and scanned["note"]
    out = runner.invoke(main, ["index", str(demo)])
    assert out.exit_code == 0 and "index built" in out.stdout
    out = runner.invoke(main, ["search", str(demo), "refund", "--json", "--limit", "3"])
    indexed = json.loads(out.stdout)
    assert indexed["used_index"] and indexed["total"] == scanned["total"]
    assert [r["id"] for r in indexed["results"]] == [r["id"] for r in scanned["results"]]
    out = runner.invoke(main, ["search", str(demo), "refund", "--order", "relevance", "--limit", "2"])
    assert out.exit_code == 0 and len(out.stdout.strip().splitlines()) == 2
    for bad in (["search", str(demo), '"unclosed'], ["search", str(demo), "(x", "--regex"],
                ["search", str(tmp_path / "missing.sqlite"), "x"]):
        out = runner.invoke(main, bad)
        assert (
            out.exit_code == 2 and "Traceback" not in out.output and len(out.stderr.strip().splitlines()) == 1
        )
    out = runner.invoke(main, ["index", str(demo)])
    assert "up to date" in out.stdout
    out = runner.invoke(main, ["search", "--demo", "timeout", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["total"] > 0


# ------------------------------------------------------------ facets and sorting

def test_facets_count_and_filter(demo: Path, built: SearchIndex) -> None:
    db = connect(demo, read_only=True)
    es = db.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]
    ev = db.execute("SELECT id FROM evals WHERE eval_set_id = ? LIMIT 1", (es,)).fetchone()[0]
    total = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    for name in F.FACETS:
        facet = F.facet(db, name, db_path=demo, index=built, eval_set_id=es, eval_id=ev)
        assert facet.total == total and facet.values
        if name not in ("tool", "error"):  # a trace has one value of a column facet: shares add up to 1
            assert sum(v.count for v in facet.values) == total
        again = F.facet(db, name, db_path=demo, index=built, eval_set_id=es, eval_id=ev)
        assert again.cached and again.values == facet.values
        for value in facet.values[:3]:
            flt = F.facet_filter(TraceFilter(eval_set_id=es), facet, value.value, db, built)
            assert TraceQuery(db, flt).count() == value.count, (name, value)
    tools = F.facet(db, "tool", db_path=demo, index=built)
    direct = sum(
        1
        for (s,) in db.execute("SELECT steps FROM traces")
        if isinstance(s, str) and '"tool_name": "search_docs"' in s
    )
    assert next(v.count for v in tools.values if v.value == "search_docs") == direct
    with pytest.raises(ValueError):
        F.facet(db, "tool", db_path=demo, index=None)


def test_most_contradicted_matches_the_scoped_comparison(demo: Path, built: SearchIndex) -> None:
    db = connect(demo, read_only=True)
    for (es,) in db.execute("SELECT id FROM eval_sets").fetchall():
        n, reused = sort_orders.prepare_contradicted(db, built, es, demo)
        assert not reused and sort_orders.prepare_contradicted(db, built, es, demo)[1]
        want: dict[int, int] = {}
        for rid, rating, result, error, own in db.execute(
            "SELECT t.rowid, c.human_rating, c.predicted_result, c.execution_error, c.eval_set_id = "
            "v.eval_set_id "
            "FROM eval_comparison c JOIN evals v ON v.id = c.eval_id JOIN traces t ON t.id = c.trace_id "
            "WHERE v.eval_set_id = ?",
            (es,),
        ):
            if (
                own
                and error is None
                and rating in ("positive", "negative")
                and (rating == "positive") != (result == 1)
            ):
                want[rid] = want.get(rid, 0) + 1
        rows = sort_orders.most_contradicted(built, es, limit=10_000)
        assert dict(rows) == want and len(rows) == n
        assert [c for _, c in rows] == sorted((c for _, c in rows), reverse=True)
        page1 = sort_orders.most_contradicted(built, es, limit=7)
        if len(page1) == 7:
            last = page1[-1]
            ts = db.execute("SELECT timestamp FROM traces WHERE rowid = ?", (last[0],)).fetchone()[0]
            after = (last[1], ts, last[0])
            assert sort_orders.most_contradicted(built, es, limit=7, after=after) == rows[7:14]


def test_sort_cost_is_said_up_front(demo: Path) -> None:
    db = connect(demo, read_only=True)
    assert sort_orders.sort_cost(db, "timestamp").through.startswith("index")
    assert sort_orders.sort_cost(db, "step_count").through == "full sort"
    steps = [
        db.execute("SELECT step_count FROM traces WHERE rowid = ?", (r,)).fetchone()[0]
        for r in sort_orders.sorted_page(db, "step_count", limit=20)
    ]
    assert steps == sorted(steps, reverse=True)


def test_order_keys_running_out_rebuild(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FTS rowids are order keys spaced GAP apart; inserts that exhaust a gap make a rebuild, not a wrong
    order."""
    from iofold_tui.data.search import index_sync

    monkeypatch.setattr(index_sync, "GAP", 4)
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    index = _index(path, tmp_path / "s.fts.sqlite")
    conn = sqlite3.connect(path)
    ts = conn.execute("SELECT timestamp FROM traces ORDER BY timestamp DESC LIMIT 1 OFFSET 5").fetchone()[0]
    for i in range(6):
        conn.execute(
            "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps) SELECT "
            "?, workspace_id, integration_id, ?, source, ?, '[\"squeeze\"]' FROM traces LIMIT 1",
            (f"sq{i}", f"sq{i}", ts),
        )
    conn.commit()
    index.sync(connect(path, read_only=True))
    db = connect(path, read_only=True)
    for q in ("squeeze", "refund", "role:assistant"):
        _same(index, db, q)


# ------------------------------------------------------------ the UI: / uses the index, Shift+F facets

async def test_trace_list_search_and_facets(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import OptionList

    from iofold_tui.data.source.loader import open_source
    from iofold_tui.ui.app import IofoldApp
    from iofold_tui.ui.panes.facets import FacetScreen
    from iofold_tui.ui.screenshot import settle

    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    app = IofoldApp(open_source(path), pane="traces", watch_interval=0)
    db = connect(path, read_only=True)
    want = scan(db, parse("tool:search_docs")).rowids_newest_first()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        # no index yet: a scan, then a background build
        await pilot.press("slash", *"tool:search_docs", "enter")
        await settle(app, pilot)
        assert set(app.state.trace_filter.step_rowids or ()) == set(want)
        for _ in range(200):
            if SearchIndex(path).exists() and not any(
                w.group == "search-index" and w.is_running for w in app.screen.workers
            ):
                break
            await pilot.pause(0.05)
        await pilot.press("c", "slash", *"tool:search_docs", "enter")  # now through the index: the same set
        await settle(app, pilot)
        assert set(app.state.trace_filter.step_rowids or ()) == set(want)
        await pilot.press("c", "F", "5")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, FacetScreen)
        for _ in range(100):
            if screen.facet is not None and screen.facet.name == "tool":
                break
            await pilot.pause(0.05)
        values = screen.query_one("#facet-values", OptionList)
        chosen = screen.facet.values[values.highlighted or 0]
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, FacetScreen)
        assert len(app.state.trace_filter.step_rowids or ()) == chosen.count


def test_verify_catches_what_the_quick_check_cannot(demo: Path, tmp_path: Path) -> None:
    """An in-place edit keeping rowid and timestamp (not how iofold imports) is found by verify=True."""
    path = tmp_path / "db.sqlite"
    shutil.copy(demo, path)
    index = _index(path, tmp_path / "s.fts.sqlite")
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE traces SET id = id || '_x', metadata = '{\"note\": \"changed in place\"}' WHERE rowid = 7"
    )
    conn.commit()
    assert index.sync(connect(path, read_only=True)).mode == "up to date"  # documented blind spot
    report = index.sync(connect(path, read_only=True), verify=True)
    assert report.changed == 1
    assert _state(index) == _state(_index(path, tmp_path / "fresh.fts.sqlite"))
