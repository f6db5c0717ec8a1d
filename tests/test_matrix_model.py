"""The matrix pane's model without an app: its jobs run here on the hand-computed database of
test_matrix.py and its transitions are fed their results directly (what the pane does from workers).
Statistics patched incrementally must equal statistics recomputed from scratch."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from _matrix_db import NEWEST_FIRST, build_matrix_db, fresh_stats

from iofold_tui.data.db import Database
from iofold_tui.data.evals import lookup
from iofold_tui.data.matrix import freshness
from iofold_tui.ui.models import matrix as model_mod
from iofold_tui.ui.models.matrix import MatrixModel
from iofold_tui.ui.models.matrix_layout import grid_layout
from iofold_tui.ui.models.matrix_results import EvalLocated, GridNote, MoveTo, PageLoaded, StatsLoaded


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_matrix_db(tmp_path_factory.mktemp("matrix-model") / "template.sqlite")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "matrix.sqlite"
    shutil.copyfile(template, path)
    return path


def opened(db: Path) -> MatrixModel:
    """A model showing set S with its first page and its statistics, as the pane gets there."""
    m = MatrixModel(Database(db))
    page = m.open_set("S")()
    assert m.page_loaded(page) is True  # the statistics start once the first page is shown
    loaded = m.stats_job()()  # type: ignore[misc]
    assert isinstance(loaded, StatsLoaded) and m.stats_loaded(loaded) is False
    return m


def shown(m: MatrixModel) -> dict[str, dict[str, object]]:
    return {s.eval_id: s.to_dict() for s in m.stats or []}


def relabel_in_db(db: Path, trace: str, rating: str) -> str | None:
    conn = sqlite3.connect(db)
    row = conn.execute("SELECT rating FROM feedback WHERE eval_set_id = 'S' AND trace_id = ?",
                       (trace,)).fetchone()
    conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, 'S', ?, ?) "
                 "ON CONFLICT (eval_set_id, trace_id) DO UPDATE SET rating = excluded.rating",
                 (f"fb_new_{trace}", trace, rating))
    conn.commit()
    conn.close()
    return row[0] if row else None


def test_open_set_pages_and_versions(db: Path) -> None:
    m = opened(db)
    assert [v.id for v in m.versions] == ["v1", "v2"] and m.page is not None
    assert [r.trace_id for r in m.page.rows] == NEWEST_FIRST
    assert m.titles() == {"v1": "v1", "v2": "v2"} and m.stats is not None
    assert shown(m) == fresh_stats(db)
    m.close()


def test_relabel_delta_equals_a_recompute_and_a_stale_delta_is_not_applied(db: Path) -> None:
    m = opened(db)
    old = relabel_in_db(db, "t04", "positive")
    job = m.relabel_job([("t04", old, "positive")])
    assert job is not None and m.relabels_in_flight == 1
    result = job()
    assert m.relabel_done(result) == "applied" and m.relabels_in_flight == 0 and m.relabelled
    assert shown(m) == fresh_stats(db)
    # a delta computed against statistics that were replaced meanwhile is dropped, not applied twice
    old = relabel_in_db(db, "t13", "positive")
    stale = m.relabel_job([("t13", old, "positive")])()  # type: ignore[misc]
    reloaded = m.stats_job()()  # type: ignore[misc]
    assert reloaded is not None and m.stats_loaded(reloaded) is False
    assert m.relabel_done(stale) == "stale" and shown(m) == fresh_stats(db)
    m.close()


def test_labels_moved_while_statistics_were_computed_ask_for_a_recompute(db: Path) -> None:
    m = MatrixModel(Database(db))
    m.page_loaded(m.open_set("S")())
    compute = m.stats_job()
    old = relabel_in_db(db, "t04", "positive")
    relabel = m.relabel_job([("t04", old, "positive")])  # no statistics yet: they are dirty
    assert m.relabel_done(relabel()) == "stale"  # type: ignore[misc]
    assert m.stats_loaded(compute()) is True  # type: ignore[misc]
    m.close()


def test_freshness_check_sees_labels_and_runs_changed_underneath(db: Path) -> None:
    m = opened(db)
    check = m.check_job()
    assert check is not None and m.stats_checked(check()) is False  # nothing moved
    m.extra_loaded(m.extra_job()())  # the execution signature is the baseline of the run check
    relabel_in_db(db, "t04", "positive")  # another process labels
    assert m.stats_checked(check()) is True
    m.relabels_in_flight = 1  # our own relabel not applied yet: compare once it is
    assert m.stats_checked(check()) is False and m.recheck
    m.relabels_in_flight = 0
    assert m.take_recheck() and not m.recheck
    conn = sqlite3.connect(db)
    conn.execute("UPDATE feedback SET rating = 'negative' WHERE eval_set_id = 'S' AND trace_id = 't04'")
    conn.execute("INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) "
                 "VALUES ('ex_new', 'v1', 't09', 1, 'r', 5)")
    conn.commit()
    conn.close()
    assert m.stats_checked(m.check_job()()) is True  # type: ignore[misc]  # a run added underneath
    m.close()


def test_grid_jobs_locate_jump_and_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_mod, "PAGE_SIZE", 3)
    m = opened(db)
    assert [r.trace_id for r in m.page.rows] == NEWEST_FIRST[:3]  # type: ignore[union-attr]
    located = m.locate_job("v2")()
    assert located == EvalLocated("v2", "S")
    around = m.locate_job("t04")()
    assert isinstance(around, PageLoaded) and "t04" in [r.trace_id for r in around.page.rows]
    assert isinstance(m.locate_job("no such thing")(), GridNote)
    jumped = m.jump_job(True, "t13")()  # the next contradiction below t13 (page t13 t12 t10): t12
    assert jumped == MoveTo("t12")
    further = m.jump_job(True, "t12")()  # t03 is on another page
    assert isinstance(further, PageLoaded) and further.page.focus_id == "t03"
    m.page_loaded(m.page_job("after")())  # type: ignore[misc]
    assert [r.trace_id for r in m.page.rows] == NEWEST_FIRST[3:6]  # type: ignore[union-attr]
    m.close()


def test_version_choice_and_filters(db: Path) -> None:
    m = opened(db)
    assert m.want_column("v2") is False and m.focus_eval == "v2"  # shown already: only the cursor moves
    m.choose_versions(("v1",))
    assert m.query().eval_ids == ("v1",)
    assert m.want_column("v2") is True and m.chosen["S"] == ("v1", "v2")  # a hidden version comes back
    m.choose_versions(("v1", "v2"))
    assert "S" not in m.chosen and m.query().eval_ids is None  # every version: no choice stored
    m.filter, m.text = "contradictions", "x"
    m.clear_filters()
    assert (m.query().filter, m.query().text, m.query().sources) == ("all", "", ())
    m.close()


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_grid_layout_keeps_every_version_and_fits(width: int) -> None:
    ids = ("v1", "v2", "v3")
    cols = grid_layout(ids, {i: i for i in ids}, width)
    keys = [k for k, _, _ in cols]
    assert [k for k in keys if k.startswith("v:")] == [f"v:{i}" for i in ids]
    assert sum(w + 2 for _, _, w in cols) <= width - 4 or width <= 80
    if width <= 80:
        assert "note" not in keys


def test_freshness_queries(db: Path) -> None:
    conn = sqlite3.connect(db)
    assert freshness.label_counts(conn, "S") == {"positive": 4, "negative": 5, "neutral": 1}
    assert freshness.execution_signature(conn, ["v1"])["v1"][0] == 11
    assert lookup.eval_set_of(conn, "o1") == "O" and lookup.eval_set_of(conn, "nope") is None
    ids, more = freshness.confusion_trace_ids(conn, "v1", "FP", cap=1)
    assert ids == ["t03"] and more
    assert freshness.confusion_trace_ids(conn, "v1", "FP", cap=10) == (["t03", "t13"], False)
    conn.close()

