"""The contradiction matrix core against numbers computed by hand (the database: tests/_matrix_db.py).

The database (built from schema/schema.sql): eval set S ("quality") with versions v1/v2, eval sets O
and P that label some of the same traces (conflicting), an eval in O. Per trace of S:

    trace  S label   O / P label      v1      v2      row contradictions
    t01    positive  O negative       pass    pass    0
    t02    positive  -                fail    pass    1 (v1 FN)
    t03    negative  O positive       pass    fail    1 (v1 FP)
    t04    negative  -                fail    fail    0
    t05    neutral   O positive       pass    fail    0
    t06    positive  -                ERROR   pass    0
    t07    -         O pos, P neg     fail    pass    0
    t08    -         -                pass    ERROR   0
    t09    negative  O negative       -       fail    0
    t10    positive  -                pass    -       0
    t11    -         O negative       -       -       (not a row of S)
    t12    negative  O neutral        fail    pass    1 (v2 FP)
    t13    negative  -                pass    pass    2

v1: TP 2 (t01 t10), FP 2 (t03 t13), FN 1 (t02), TN 2 (t04 t12): n 7; neutral 1, errors 1, unlabelled 2,
    not run 1, executions 11. accuracy 4/7, precision 1/2, recall 2/3, F1 4/7, specificity 1/2,
    κ: pe = (4·3 + 3·4)/49 = 24/49 → (28/49 − 24/49)/(25/49) = 4/25; contradiction rate 3/7.
    Unscoped view: rows 16, contradictions 6 (t01 via O, t02, t03, t06 error-as-fail, t07 via O, t13).
v2: TP 3 (t01 t02 t06), FP 2 (t12 t13), FN 0, TN 3 (t03 t04 t09): n 8; neutral 1, errors 1,
    unlabelled 1, not run 1, executions 11. accuracy 3/4, precision 3/5, recall 1, F1 3/4,
    specificity 3/5, κ: pe = 30/64 → (48/64 − 30/64)/(34/64) = 9/17; contradiction rate 1/4.
    Unscoped view: rows 17, contradictions 6 (t01, t03, t05 via O; t07 via P; t12, t13).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from _matrix_db import LABELS, NEWEST_FIRST, build_matrix_db

from iofold_tui.data.matrix import grid
from iofold_tui.data.matrix import report as mx
from iofold_tui.data.matrix import stats as mx_stats
from iofold_tui.data.matrix.comparison_view import (
    SOURCE_CUSTOMISED,
    SOURCE_MISSING,
    SOURCE_VIEW,
    comparison_source,
)
from iofold_tui.data.matrix.confusion import cells_for_confusion
from iofold_tui.data.matrix.grid_query import MatrixQuery
from iofold_tui.data.matrix.stats import MatrixStats


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per module (fsyncs are slow), copied for every test."""
    return build_matrix_db(tmp_path_factory.mktemp("matrix") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "matrix.sqlite"
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(db, isolation_level=None)
    c.row_factory = sqlite3.Row
    yield c
    c.close()


def _by_id(stats: list[MatrixStats]) -> dict[str, MatrixStats]:
    return {s.eval_id: s for s in stats}


EXPECTED = {
    "v1": dict(
        tp=2,
        fp=2,
        fn=1,
        tn=2,
        n=7,
        excluded={"neutral": 1, "errors": 1, "invalid_result": 0, "unlabelled": 2, "not_run": 1},
        execution_count=11,
        accuracy=Fraction(4, 7),
        precision=Fraction(1, 2),
        recall=Fraction(2, 3),
        f1=Fraction(4, 7),
        specificity=Fraction(1, 2),
        cohens_kappa=Fraction(4, 25),
        contradiction_rate=Fraction(3, 7),
        view=(16, 6),
    ),
    "v2": dict(
        tp=3,
        fp=2,
        fn=0,
        tn=3,
        n=8,
        excluded={"neutral": 1, "errors": 1, "invalid_result": 0, "unlabelled": 1, "not_run": 1},
        execution_count=11,
        accuracy=Fraction(3, 4),
        precision=Fraction(3, 5),
        recall=Fraction(1),
        f1=Fraction(3, 4),
        specificity=Fraction(3, 5),
        cohens_kappa=Fraction(9, 17),
        contradiction_rate=Fraction(1, 4),
        view=(17, 6),
    ),
}


def _assert_expected(stats: dict[str, MatrixStats]) -> None:
    for eval_id, want in EXPECTED.items():
        s = stats[eval_id]
        assert (s.tp, s.fp, s.fn, s.tn, s.n) == (want["tp"], want["fp"], want["fn"], want["tn"], want["n"]), (
            eval_id
        )
        assert s.excluded == want["excluded"], eval_id
        assert s.execution_count == want["execution_count"]
        for metric in mx_stats.METRICS:
            assert s.metrics()[metric].value == pytest.approx(float(want[metric]), abs=1e-12), (
                eval_id,
                metric,
            )


def test_stats_hand_computed_from_view(conn: sqlite3.Connection) -> None:
    stats = mx_stats.compute_stats(conn, "S", with_view_counts=True)
    assert [s.eval_id for s in stats] == ["v1", "v2"]
    assert {s.source for s in stats} == {SOURCE_VIEW}
    by_id = _by_id(stats)
    _assert_expected(by_id)
    for eval_id in ("v1", "v2"):
        s = by_id[eval_id]
        assert (s.view_rows, s.view_contradictions) == EXPECTED[eval_id]["view"]
        assert s.view_contradictions > s.contradictions  # the view's count is inflated
    v1, v2 = by_id["v1"], by_id["v2"]
    assert v1.differs == {"accuracy": True, "contradiction_count": True, "execution_count": False}
    assert v2.differs == {"accuracy": False, "contradiction_count": False, "execution_count": True}


def test_scoped_view_equals_tables_and_counts_each_execution_once(conn: sqlite3.Connection) -> None:
    # t07 is labelled in two *other* sets: the raw view has two rows for each of its executions.
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM eval_comparison WHERE trace_id = 't07' AND eval_id = 'v1'"
        ).fetchone()[0]
        == 2
    )
    stats = _by_id(mx_stats.compute_stats(conn, "S"))
    assert stats["v1"].cells["unlabelled"] == {"pass": 1, "fail": 1, "error": 0, "invalid": 0, "not_run": 0}
    assert stats["v2"].cells["unlabelled"] == {"pass": 1, "fail": 0, "error": 1, "invalid": 0, "not_run": 0}


@pytest.mark.parametrize(
    "change, source",
    [
        ("DROP VIEW eval_comparison", SOURCE_MISSING),
        # same columns, but it scopes by set and treats errors apart: not iofold's view, so not trusted
        (
            "DROP VIEW eval_comparison; CREATE VIEW eval_comparison AS SELECT e.id AS execution_id, "
            "e.eval_id, "
            "e.trace_id, 1 - e.result AS predicted_result, e.reason AS predicted_reason, "
            "e.execution_time_ms, "
            "e.error AS execution_error, e.executed_at, f.id AS feedback_id, f.rating AS human_rating, "
            "f.notes AS feedback_notes, f.eval_set_id, 0 AS is_contradiction FROM eval_executions e "
            "LEFT JOIN feedback f ON f.trace_id = e.trace_id",
            SOURCE_CUSTOMISED,
        ),
        (
            "DROP VIEW eval_comparison; CREATE VIEW eval_comparison AS SELECT id AS execution_id FROM "
            "eval_executions",
            SOURCE_CUSTOMISED,
        ),
    ],
)
def test_fallback_when_view_missing_or_customised(conn: sqlite3.Connection, change: str, source: str) -> None:
    conn.executescript(change)
    stats = mx_stats.compute_stats(conn, "S")
    assert {s.source for s in stats} == {source}
    _assert_expected(_by_id(stats))
    assert mx.stats_report(conn, "quality")["source"] == source


def test_reformatted_standard_view_is_still_the_view(conn: sqlite3.Connection) -> None:
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'eval_comparison'").fetchone()[0]
    reformatted = sql.replace("LEFT JOIN", "left   join").replace("eval_comparison", '"EVAL_COMPARISON"')
    conn.executescript(
        "DROP VIEW eval_comparison;\n" + reformatted.replace("\n", "\n   -- a comment\n  ") + ";"
    )
    assert comparison_source(conn) == SOURCE_VIEW
    # a changed string literal is a different view
    conn.executescript("DROP VIEW eval_comparison;\n" + sql.replace("'neutral'", "'NEUTRAL'") + ";")
    assert comparison_source(conn) == SOURCE_CUSTOMISED


def test_undefined_metrics_are_none_with_reasons(conn: sqlite3.Connection) -> None:
    # An eval that passes nothing, on a set with no positives: precision/recall undefined, never 0.
    conn.executescript("""
        INSERT INTO eval_sets (id, workspace_id, name) VALUES ('N', 'ws', 'negatives');
        INSERT INTO feedback (id, eval_set_id, trace_id, rating)
            VALUES ('fN1', 'N', 't01', 'negative'), ('fN2', 'N', 't02', 'negative');
        INSERT INTO evals (id, eval_set_id, name, version, code, model_used)
            VALUES ('n1', 'N', 'neg', 1, 'x', 'm'), ('n2', 'N', 'neg', 2, 'x', 'm');
        INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) VALUES
            ('xn1', 'n1', 't01', 0, 'r', 1), ('xn2', 'n1', 't02', 0, 'r', 1);
    """)
    n1, n2 = mx_stats.compute_stats(conn, "N")
    assert (n1.tn, n1.n) == (2, 2)
    assert n1.accuracy.value == 1.0 and n1.specificity.value == 1.0
    assert n1.precision == mx_stats.Metric(None, "n/a (no predicted positives)")
    assert n1.recall == mx_stats.Metric(None, "n/a (no human positives)")
    assert n1.f1.value is None and n1.f1.reason
    assert n1.cohens_kappa.value is None and "chance agreement" in (n1.cohens_kappa.reason or "")
    assert n2.n == 0 and n2.not_run == 2
    assert (
        n2.accuracy == mx_stats.Metric(None, "n/a (n = 0)") and n2.contradiction_rate.reason == "n/a (n = 0)"
    )
    report = mx.stats_report(conn, "N")["eval_sets"][0]["evals"][0]
    assert report["precision"] is None and report["undefined"]["precision"] == "n/a (no predicted positives)"
    assert "n/a (no predicted positives)" in mx.format_stats_text(mx.stats_report(conn, "negatives"))


def test_recomputed_counts_across_sets(conn: sqlite3.Connection) -> None:
    counts = mx_stats.recomputed_counts(conn, ["v1", "o1", "nope"])
    assert set(counts) == {"v1", "o1"}
    assert counts["v1"] == mx_stats.EvalCounts(
        execution_count=11, contradictions=3, accuracy=pytest.approx(4 / 7), errors=1
    )
    # o1 in set O: t01 negative/pass = FP, t03 positive/fail = FN, t11 error, t02 unlabelled in O.
    assert counts["o1"] == mx_stats.EvalCounts(execution_count=4, contradictions=2, accuracy=0.0, errors=1)


def test_report_json_and_text(conn: sqlite3.Connection) -> None:
    report = mx.stats_report(conn, "quality")
    json.dumps(report)  # JSON-able
    (es,) = report["eval_sets"]
    assert es["labels"] == {"positive": 4, "negative": 5, "neutral": 1}
    v1 = es["evals"][0]
    for key in (
        "tp",
        "fp",
        "fn",
        "tn",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "specificity",
        "cohens_kappa",
        "contradiction_rate",
        "n",
        "excluded",
        "stored",
        "source",
    ):
        assert key in v1
    assert v1["stored"] == {
        "accuracy": 0.9,
        "contradiction_count": 6,
        "execution_count": 11,
        "differs": {"accuracy": True, "contradiction_count": True, "execution_count": False},
    }
    assert v1["view_unscoped"] == {"contradictions": 6, "rows": 16}
    text = mx.format_stats_text(report)
    assert "quality v1" in text and "quality v2" in text and "0.571" in text and "≠ recomputed" in text
    conn.execute("UPDATE evals SET name = 'evil\x1b[2J' WHERE id = 'v1'")
    text = mx.format_stats_text(mx.stats_report(conn, "quality"))
    assert "\x1b" not in text and "evil␛[2J v1" in text
    assert mx.stats_report(conn, "S")["eval_sets"][0]["name"] == "quality"  # by id too
    assert len(mx.stats_report(conn)["eval_sets"]) == 3
    with pytest.raises(ValueError, match="no eval set 'missing'"):
        mx.stats_report(conn, "missing")


def _state(conn: sqlite3.Connection, trace: str, eval_id: str) -> str:
    row = conn.execute("SELECT result, error FROM eval_executions WHERE eval_id = ? AND trace_id = ?",
                       (eval_id, trace)).fetchone()
    return "not_run" if row is None else "error" if row[1] is not None else "pass" if row[0] == 1 else "fail"


@pytest.mark.parametrize("trace, new", [
    ("t07", "positive"), ("t01", "negative"), ("t05", None), ("t09", "positive"), ("t11", "neutral"),
    ("t06", "negative"), ("t08", "neutral"), ("t13", "positive"),
])
def test_incremental_relabel_equals_recompute(conn: sqlite3.Connection, trace: str, new: str | None) -> None:
    stats = mx_stats.compute_stats(conn, "S")
    old = LABELS[trace].get("S")
    for s in stats:
        s.relabel(old, new, _state(conn, trace, s.eval_id))
    if new is None:
        conn.execute("DELETE FROM feedback WHERE eval_set_id = 'S' AND trace_id = ?", (trace,))
    else:
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, 'S', ?, ?) "
                     "ON CONFLICT (eval_set_id, trace_id) DO UPDATE SET rating = excluded.rating",
                     (f"new_{trace}", trace, new))
    fresh = mx_stats.compute_stats(conn, "S")
    assert [s.cells for s in stats] == [s.cells for s in fresh]
    assert [s.to_dict() for s in stats] == [s.to_dict() for s in fresh]


def test_relabel_rejects_impossible_moves() -> None:
    s = MatrixStats("e", "S", "q", 1, "draft", SOURCE_VIEW)
    with pytest.raises(ValueError):
        s.relabel("positive", "negative", "pass")  # no such trace counted
    with pytest.raises(ValueError):
        s.relabel("positive", "bogus", "pass")


# ---------------------------------------------------------------- cache

def test_cache_hit_and_invalidation(conn: sqlite3.Connection, db: Path) -> None:
    first = mx.cached_stats(conn, db, "S")
    assert not first.hit
    before = db.read_bytes()
    second = mx.cached_stats(conn, db, "S")
    assert second.hit and [s.to_dict() for s in second.stats] == [s.to_dict() for s in first.stats]
    assert db.read_bytes() == before  # the cache never touches the user's database
    assert list((mx.cache_dir() / "stats").glob("*.json"))
    conn.execute("UPDATE feedback SET rating = 'negative' WHERE eval_set_id = 'S' AND trace_id = 't01'")
    third = mx.cached_stats(conn, db, "S")
    assert not third.hit and _by_id(third.stats)["v1"].fp == 3
    assert mx.cached_stats(conn, db, "S", ["v2"]).hit is False  # another scope, another entry
    assert not mx.cached_stats(conn, None, "S").hit


def test_cache_survives_garbage_file(conn: sqlite3.Connection, db: Path) -> None:
    mx.cached_stats(conn, db, "S")
    for f in (mx.cache_dir() / "stats").glob("*.json"):
        f.write_text("{not json")
    again = mx.cached_stats(conn, db, "S")
    assert not again.hit and _by_id(again.stats)["v1"].tp == 2


# ---------------------------------------------------------------- grid

def _ids(rows: list[grid.MatrixRow]) -> list[str]:
    return [r.trace_id for r in rows]


def test_grid_rows_and_cells(conn: sqlite3.Connection) -> None:
    page = grid.first_page(conn, MatrixQuery("S"))
    assert _ids(page.rows) == NEWEST_FIRST and not page.has_after and not page.has_before
    assert page.eval_ids == ("v1", "v2")
    row = {r.trace_id: r for r in page.rows}
    t06 = row["t06"]
    assert (t06.rating, t06.note, t06.feedback_id) == ("positive", "note S t06", "fb_S_t06")
    assert [c.state for c in t06.cells] == ["error", "pass"]
    assert [c.agreement for c in t06.cells] == ["error", "agreement"]
    assert t06.cells[0].error == "Timeout after 5s" and t06.cells[0].result is None
    assert t06.cells[1].execution_id == "ex_v2_t06" and t06.cells[1].reason == "reason v2 t06"
    assert [c.agreement for c in row["t13"].cells] == ["contradiction", "contradiction"]
    assert [c.agreement for c in row["t09"].cells] == ["not_run", "agreement"]
    assert [c.agreement for c in row["t05"].cells] == ["neutral", "neutral"]
    assert [c.agreement for c in row["t07"].cells] == ["unlabelled", "unlabelled"]
    assert row["t07"].rating is None  # its labels in O and P do not leak into S
    assert row["t13"].contradictions == 2
    # grid cells and stats agree on every count
    stats = _by_id(mx_stats.compute_stats(conn, "S"))
    for i, eval_id in enumerate(("v1", "v2")):
        contra = sum(r.cells[i].agreement == "contradiction" for r in page.rows)
        assert contra == stats[eval_id].contradictions
        assert sum(r.cells[i].state == "error" for r in page.rows) == stats[eval_id].errors


@pytest.mark.parametrize("flt, expected", [
    ("contradictions", {"t02", "t03", "t12", "t13"}),
    ("agreements", {"t01", "t04", "t06", "t09", "t10"}),
    ("errors", {"t06", "t08"}),
    ("unlabelled", {"t07", "t08"}),
    ("neutral", {"t05"}),
    ("versions_disagree", {"t02", "t03", "t05", "t07", "t12"}),
])
@pytest.mark.parametrize("sort", ["time", "contradicted"])
def test_grid_filters(conn: sqlite3.Connection, flt: str, expected: set[str], sort: str) -> None:
    rows = grid.first_page(conn, MatrixQuery("S", filter=flt, sort=sort)).rows  # type: ignore[arg-type]
    assert set(_ids(rows)) == expected and len(rows) == len(expected)


def test_grid_other_filters(conn: sqlite3.Connection) -> None:
    assert _ids(grid.first_page(conn, MatrixQuery("S", universe="labelled")).rows) == [
        t for t in NEWEST_FIRST if t not in ("t07", "t08")]
    assert _ids(grid.first_page(conn, MatrixQuery("S", sources=("openai",))).rows) == ["t12", "t02"]
    assert _ids(grid.first_page(conn, MatrixQuery("S", text="NEEDLE")).rows) == ["t08", "t03"]
    assert (
        _ids(grid.first_page(conn, MatrixQuery("S", text="100%_")).rows) == []
    )  # LIKE wildcards are literal
    dated = MatrixQuery("S", date_from="2025-01-04", date_to="2025-01-06")
    assert _ids(grid.first_page(conn, dated).rows) == ["t05", "t06", "t04"]
    assert _ids(grid.first_page(conn, MatrixQuery("S", eval_ids=("v2",), filter="contradictions")).rows) == [
        "t13",
        "t12",
    ]
    with pytest.raises(ValueError):
        MatrixQuery("S", filter="bogus")


def test_most_contradicted_sort(conn: sqlite3.Connection) -> None:
    rows = grid.first_page(conn, MatrixQuery("S", sort="contradicted")).rows
    assert _ids(rows) == ["t13", "t12", "t03", "t02", "t10", "t09", "t08", "t07", "t05", "t06", "t04", "t01"]
    rows = grid.first_page(conn, MatrixQuery("S", sort="contradicted", newest_first=False)).rows
    assert _ids(rows) == ["t13", "t02", "t03", "t12", "t01", "t04", "t06", "t05", "t07", "t08", "t09", "t10"]


def _walk_forward(conn: sqlite3.Connection, q: MatrixQuery) -> list[str]:
    page = grid.first_page(conn, q)
    out = _ids(page.rows)
    while page.has_after:
        page = grid.page_after(conn, q, page.rows[-1].cursor)
        assert page.rows and len(page.rows) <= q.page_size
        out += _ids(page.rows)
    return out


def _walk_backward(conn: sqlite3.Connection, q: MatrixQuery) -> list[str]:
    page = grid.last_page(conn, q)
    out = _ids(page.rows)
    while page.has_before:
        page = grid.page_before(conn, q, page.rows[0].cursor)
        assert page.rows and len(page.rows) <= q.page_size
        out = _ids(page.rows) + out
    return out


@pytest.mark.parametrize("sort", ["time", "contradicted"])
@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("flt", ["all", "versions_disagree", "errors"])
def test_paging_no_gaps_or_duplicates(
    conn: sqlite3.Connection, sort: str, newest_first: bool, flt: str
) -> None:
    full = _ids(
        grid.first_page(conn, MatrixQuery("S", sort=sort, newest_first=newest_first, filter=flt)).rows
    )  # type: ignore[arg-type]
    for size in (1, 2, 3, 5):
        q = MatrixQuery("S", sort=sort, newest_first=newest_first, filter=flt, page_size=size)  # type: ignore[arg-type]
        assert _walk_forward(conn, q) == full
        assert _walk_backward(conn, q) == full


def test_next_and_previous_contradiction(conn: sqlite3.Connection) -> None:
    q = MatrixQuery("S")
    rows = {r.trace_id: r for r in grid.first_page(conn, q).rows}
    hops, cursor = [], rows["t13"].cursor
    while (nxt := grid.next_contradiction(conn, q, cursor)) is not None:
        hops.append(nxt.trace_id)
        cursor = nxt.cursor
    assert hops == ["t12", "t03", "t02"]
    assert grid.next_contradiction(conn, q, None).trace_id == "t13"  # type: ignore[union-attr]
    assert grid.previous_contradiction(conn, q, rows["t03"].cursor).trace_id == "t12"  # type: ignore[union-attr]
    assert grid.previous_contradiction(conn, q, None).trace_id == "t02"  # type: ignore[union-attr]
    assert grid.previous_contradiction(conn, q, rows["t13"].cursor) is None
    # respects the other filters: among openai traces only t12 and t02
    q_src = MatrixQuery("S", sources=("openai",))
    assert grid.next_contradiction(conn, q_src, rows["t12"].cursor).trace_id == "t02"  # type: ignore[union-attr]
    srt = MatrixQuery("S", sort="contradicted")
    first = grid.first_page(conn, srt).rows
    assert grid.next_contradiction(conn, srt, first[0].cursor).trace_id == "t12"  # type: ignore[union-attr]
    assert grid.next_contradiction(conn, srt, first[3].cursor) is None  # past t02 only n = 0 rows follow


def test_jump_to(conn: sqlite3.Connection) -> None:
    q = MatrixQuery("S", page_size=6)
    page = grid.jump_to(conn, q, "ext-t04")
    assert page is not None and page.focus_id == "t04"
    ids = _ids(page.rows)
    assert (
        "t04" in ids
        and ids == NEWEST_FIRST[NEWEST_FIRST.index(ids[0]) : NEWEST_FIRST.index(ids[0]) + len(ids)]
    )
    assert ids.index("t04") == 2
    assert grid.jump_to(conn, q, "t11") is None  # not a row of S
    assert grid.jump_to(conn, MatrixQuery("S", filter="errors"), "t04") is None
    assert grid.jump_to(conn, q, "no-such-trace") is None


def test_contradicted_sort_follows_relabels(conn: sqlite3.Connection, db: Path) -> None:
    q = MatrixQuery("S", sort="contradicted")
    assert _ids(grid.first_page(conn, q).rows)[:4] == ["t13", "t12", "t03", "t02"]
    other = sqlite3.connect(db)  # another process relabels: data_version moves
    other.execute("UPDATE feedback SET rating = 'positive' WHERE eval_set_id = 'S' AND trace_id = 't13'")
    other.commit()
    other.close()
    assert _ids(grid.first_page(conn, q).rows)[:3] == ["t12", "t03", "t02"]
    conn.execute(
        "UPDATE feedback SET rating = 'negative' WHERE eval_set_id = 'S' AND trace_id = 't01'"
    )  # own write
    grid.refresh_trace(conn, q, "t01")
    # t01 is now negative and both versions pass it: two contradictions, first place
    assert _ids(grid.first_page(conn, q).rows)[:4] == ["t01", "t12", "t03", "t02"]


def test_read_only_connection_and_no_objects_added(db: Path) -> None:
    ro = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    before = ro.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    assert _ids(grid.first_page(ro, MatrixQuery("S", sort="contradicted")).rows)[0] == "t13"
    mx_stats.compute_stats(ro, "S", with_view_counts=True)
    assert ro.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall() == before
    ro.close()


def test_cells_for_confusion(conn: sqlite3.Connection) -> None:
    expected = {
        "TP": ["t01", "t10"],
        "FP": ["t03", "t13"],
        "FN": ["t02"],
        "TN": ["t04", "t12"],
        "error": ["t06"],
        "neutral": ["t05"],
        "unlabelled": ["t07", "t08"],
        "not_run": ["t09"],
    }
    for cell, ids in expected.items():
        assert cells_for_confusion(conn, "v1", cell).trace_ids == ids, cell
    first = cells_for_confusion(conn, "v1", "TN", limit=1)
    assert first.trace_ids == ["t04"] and first.next_after == "t04"
    second = cells_for_confusion(conn, "v1", "TN", after=first.next_after, limit=1)
    assert second.trace_ids == ["t12"] and second.next_after is None
    assert cells_for_confusion(conn, "v2", "FN").trace_ids == []
    with pytest.raises(ValueError):
        cells_for_confusion(conn, "v1", "XX")


def test_contradicted_sort_without_temp_tables(conn: sqlite3.Connection) -> None:
    expected = _ids(grid.first_page(conn, MatrixQuery("S", sort="contradicted")).rows)
    fresh = sqlite3.connect(f"file:{conn.execute('PRAGMA database_list').fetchone()[2]}?mode=ro", uri=True)
    fresh.execute("PRAGMA query_only = 1")  # TEMP writes refused: segments come from the time walk
    q = MatrixQuery("S", sort="contradicted", page_size=2)
    assert grid.prepare(fresh, q) is False
    assert _walk_forward(fresh, q) == expected and _walk_backward(fresh, q) == expected
    fresh.close()
    assert grid.prepare(conn, q) is True
