"""The trace list's model without an app: its jobs run here on a small database and its transitions are fed
their results directly (what ``TracesPane`` does from workers through ``Pane.run_query``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import pytest
from conftest import SCHEMA

from iofold_tui.data.db import Database
from iofold_tui.data.search.order import Ordered
from iofold_tui.data.traces.query import TraceFilter
from iofold_tui.ui.models import traces as traces_model
from iofold_tui.ui.models.traces import (
    Counted,
    JumpMissed,
    OrderResult,
    PageLoaded,
    TraceListModel,
    pending_mark,
)
from iofold_tui.ui.models.traces_search import ScanState, step_search

N = 250  # traces t000 (oldest) … t249 (newest): two full pages and a half
T = TypeVar("T")


def _stamp(i: int) -> str:
    return f"2025-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    path = tmp_path / "traces.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.read_text())
    conn.executescript(
        "INSERT INTO workspaces(id, name) VALUES ('ws1', 'one');"
        "INSERT INTO integrations(id, workspace_id, platform, name, api_key_encrypted) VALUES "
        "('i1','ws1','langfuse','lf','k');"
        "INSERT INTO eval_sets(id, workspace_id, name) VALUES ('es1', 'ws1', 'quality');")
    conn.executemany(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
        "input_preview, step_count, has_errors) VALUES (?, 'ws1', 'i1', ?, ?, ?, ?, ?, ?, ?)",
        [(f"t{i:03d}", f"x{i}", "odd" if i % 2 else "even", _stamp(i),
          "[]", f"question {i}" + (" needle" if i % 10 == 0 else ""), i % 7, i % 5 == 0) for i in range(N)])
    conn.commit()
    conn.close()
    return Database(path)


@pytest.fixture
def model(db: Database, tmp_path: Path) -> TraceListModel:
    return TraceListModel(db, lambda: tmp_path / "traces.sqlite")


ALL = TraceFilter()


def ids(page_or_result: object) -> list[str]:
    page = getattr(page_or_result, "page", page_or_result)
    return [r.id for r in page.rows]  # type: ignore[attr-defined]


def run(job: object) -> object:
    """What the worker does: call the job (a ``PageLoaded`` is the answer without one)."""
    assert callable(job), f"expected a job, got {job!r}"
    return job()


def show(model: TraceListModel, job_or_page: object) -> PageLoaded:
    """A page request answered and applied, as the pane does it."""
    result = job_or_page if isinstance(job_or_page, PageLoaded) else run(job_or_page)
    assert isinstance(result, PageLoaded)
    model.page_loaded(result)
    return result


def expect(kind: type[T], value: object) -> T:
    assert isinstance(value, kind), value
    return value


def test_the_model_imports_no_widgets() -> None:
    code = ("import sys, iofold_tui.ui.models.traces, iofold_tui.ui.models.traces_search; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_first_show_reads_the_first_page_here_then_pages_keep_their_place(model: TraceListModel) -> None:
    plan = model.reload(ALL, None, None, None)
    assert plan.first_now and plan.focus_id is None and not plan.recompute_order
    show(model, model.first_page_now(ALL))
    assert ids(model.page)[:2] == ["t249", "t248"] and model.first_index == 0
    model.counted(expect(Counted, run(model.count_job(ALL))))
    assert model.matching == N == model.total
    assert model.rows_shown(0, 20) == f"rows 1–20 of {N}"

    show(model, model.page_request("after", ALL))
    assert ids(model.page)[0] == "t149" and model.first_index == 100
    assert model.rows_shown(5, 20) == f"rows 106–125 of {N}"
    show(model, model.page_request("before", ALL))
    assert ids(model.page)[0] == "t249" and model.first_index == 0
    show(model, model.page_request("last", ALL))
    assert ids(model.page)[-1] == "t000" and model.first_index == N - 100

    # a second reload (the database changed underneath) never reads on the UI thread again
    assert not model.reload(ALL, None, None, None).first_now


def test_a_page_asked_for_at_an_edge_no_longer_shown_is_not_loaded(model: TraceListModel) -> None:
    model.reload(ALL, None, None, None)
    assert model.at_edge("after", None)  # nothing shown yet: any request loads
    show(model, model.first_page_now(ALL))
    show(model, model.page_request("after", ALL))
    first, last = ids(model.page)[0], ids(model.page)[-1]
    assert model.at_edge("before", first) and model.at_edge("after", last)
    # k held at the top of page 2: the first request shows page 1, the ones typed meanwhile are stale
    show(model, model.page_request("before", ALL))
    assert not model.at_edge("before", first) and model.first_index == 0
    assert model.at_edge("first", first) and model.at_edge("last", None)  # Home / End: always


def test_the_last_page_before_the_count_is_placed_when_the_count_arrives(model: TraceListModel) -> None:
    model.reload(ALL, None, None, None)
    assert model.rows_shown(0, 20) is None  # counting
    show(model, model.page_request("last", ALL))
    assert model.first_index is None and model.rows_shown(0, 20) is None
    model.counted(Counted(N, N))
    assert model.first_index == N - 100
    assert model.rows_shown(0, 0) == f"— of {N}"
    model.counted(Counted(0, N))
    assert model.rows_shown(0, 0) == "no rows of 0"


def test_pages_read_ahead_answer_the_next_key_without_a_query(model: TraceListModel) -> None:
    model.reload(ALL, None, None, None)
    keys = model.page_loaded(model.first_page_now(ALL))
    assert [d for d, _ in keys] == ["after"]  # the first page has nothing before it
    model.prefetch_arrived(expect(dict, run(model.prefetch_job(keys, ALL))))
    ready = model.page_request("after", ALL)
    assert isinstance(ready, PageLoaded) and ready.direction == "after"  # no job: no query on the key press
    assert ids(ready)[0] == "t149" and len(ready.page.rows) == 100
    keys = model.page_loaded(ready)
    assert model.prefetched == {} and {d for d, _ in keys} == {"after", "before"}
    model.prefetch_arrived(expect(dict, run(model.prefetch_job(keys, ALL))))
    back = model.page_request("before", ALL)
    assert isinstance(back, PageLoaded) and ids(back)[0] == "t249"
    # another list: what was read ahead for the old one is not used
    model.new_list()
    assert model.matching is None and callable(model.page_request("after", ALL))


def test_read_ahead_fails_quietly(model: TraceListModel, db: Database) -> None:
    model.reload(ALL, None, None, None)
    keys = model.page_loaded(model.first_page_now(ALL))
    job = model.prefetch_job(keys, ALL)
    db.conn().execute("DROP TABLE traces")  # every read fails now: the key press reads (and says so) itself
    assert job() == {}


def test_a_reload_keeps_the_cursor_or_its_neighbour(model: TraceListModel, db: Database) -> None:
    model.reload(ALL, None, None, None)
    show(model, model.first_page_now(ALL))
    plan = model.reload(ALL, None, "t240", None)
    assert plan.focus_id == "t240" and plan.candidates[:2] == ("t239", "t238")
    assert plan.candidates[10] == "t241"  # then the ones before, nearest first
    assert model.page is None and model.matching is None
    with sqlite3.connect(db.path) as conn:
        conn.execute("DELETE FROM traces WHERE id IN ('t240', 't239')")
    page = show(model, model.page_request("around", ALL, plan.focus_id, plan.candidates))
    assert page.direction == "around" and page.page.focus_id == "t238" and model.first_index is None
    # another filter: no cursor to keep, the first page
    odd = TraceFilter(sources=("odd",))
    plan = model.reload(odd, None, "t237", None)
    assert plan.focus_id is None and plan.candidates == () and not plan.first_now


def test_start_selection_is_taken_on_the_first_show_only(model: TraceListModel) -> None:
    plan = model.reload(ALL, None, None, "t010")
    assert plan.focus_id == "t010" and not plan.first_now and model.jump_target == "t010"
    assert model.reload(ALL, None, None, "t010").focus_id is None


def test_a_jump_shows_its_page_counts_its_position_and_says_at(model: TraceListModel) -> None:
    model.reload(ALL, None, None, None)
    show(model, model.first_page_now(ALL))
    model.counted(Counted(N, N))
    model.jump("t100")
    result = show(model, model.page_request("around", ALL, "t100"))
    assert "t100" in ids(result) and len(result.page.rows) <= traces_model.JUMP_PAGE_SIZE
    assert model.at_id == "t100" and model.first_index is None
    assert model.rows_shown(0, 10) == f"rows ? of {N}"
    assert model.matching == N  # the same filter: the count stays
    position = run(model.position_job(result.page, ALL))
    assert model.positioned(position)  # type: ignore[arg-type]
    assert model.first_index == N - 1 - int(ids(result)[0][1:])  # newest first: t249 is row 0
    # paging away clears "at"; a position counted for a page no longer shown is dropped
    show(model, model.page_request("after", ALL))
    assert model.at_id is None
    before = model.first_index
    assert not model.positioned(position)  # type: ignore[arg-type]
    assert model.first_index == before


def test_a_jump_to_a_missing_or_filtered_out_trace(model: TraceListModel) -> None:
    odd = TraceFilter(sources=("odd",))
    model.reload(odd, None, None, None)
    missed = expect(JumpMissed, run(model.page_request("around", odd, "t010")))
    assert missed.trace_id == "t010" and missed.exists  # even: filtered out
    assert missed.first is not None and ids(missed.first)[0] == "t249"  # nothing was shown yet
    model.page_loaded(PageLoaded(missed.first, "first"))
    missed = expect(JumpMissed, run(model.page_request("around", odd, "nope")))
    assert not missed.exists and missed.first is None  # a page is on screen: it stays


def test_count_of_a_filter_and_of_the_whole_workspace(model: TraceListModel) -> None:
    errors = TraceFilter(has_errors=True)
    assert run(model.count_job(errors)) == Counted(N // 5, N)
    assert run(model.count_job(TraceFilter(workspace_id="ws1"))) == Counted(N, N)
    assert run(model.count_job(TraceFilter(step_rowids=(1, 2, 3)))) == Counted(3, N)


def test_select_everything_that_matches(model: TraceListModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traces_model, "SELECT_CHUNK", 7)  # several keyset chunks
    got = run(model.select_job(TraceFilter(sources=("odd",))))
    assert isinstance(got, list) and sorted(got) == sorted(f"t{i:03d}" for i in range(1, N, 2))
    monkeypatch.setattr(traces_model, "BULK_LIMIT", 100)
    assert run(model.select_job(ALL)) is None  # more than one undo step may hold
    model.toggle("t001")
    model.toggle("t002")
    model.toggle("t001")
    assert model.selected == {"t002"}


def _ordered(rowids: list[int]) -> Ordered:
    return Ordered("step_count", rowids, len(rowids), 0.0)


def test_an_order_applies_to_the_filter_it_was_computed_for_only(model: TraceListModel) -> None:
    odd = TraceFilter(sources=("odd",))
    model.reload(odd, None, None, None)
    model.start_order("step_count")
    assert model.order_note == "ordering by most steps first…"
    job_before = model.page_request("first", odd)  # built before the order is ready: the time order
    result = OrderResult("step_count", odd, _ordered([2, 4, 6]))  # rowids 2,4,6 = t001,t003,t005
    assert model.order_ready(result, ALL) == "stale"  # the filter changed meanwhile
    assert model.order_ready(replace(result, key="source"), odd) == "stale"  # so did the order
    assert model.order_ready(result, odd) == "ready"
    assert model.order_note == "" and model.matching is None
    assert ids(run(model.page_request("first", odd))) == ["t001", "t003", "t005"]
    assert ids(run(job_before))[0] == "t249"
    assert ids(run(model.page_request("first", ALL)))[0] == "t249"  # another filter: time order
    assert model.order_label(odd) == "most steps first" and model.order_label(ALL) == "newest first"
    assert run(model.count_job(odd)) == Counted(3, N)
    # the filter changes: the order is recomputed, the time order shows meanwhile
    plan = model.reload(TraceFilter(sources=("odd",), has_errors=True), None, None, None)
    assert plan.recompute_order and model.ordered is None


def test_a_failed_order_goes_back_to_time(model: TraceListModel) -> None:
    oldest = TraceFilter(newest_first=False)
    model.start_order("relevance")
    assert model.order_ready(OrderResult("relevance", oldest, None, "no index"), oldest) == "failed"
    assert model.order_key == "oldest" and model.order_note == ""
    model.time_order("newest")
    assert model.order_key == "newest" and model.ordered is None


def test_orders_offered(model: TraceListModel) -> None:
    keys, current = model.order_choices(ALL, "", has_eval_set=False)
    assert "relevance" not in keys and "rating" not in keys and "contradicted" not in keys
    assert current == "newest"
    keys, _ = model.order_choices(ALL, "re:ne+dle", has_eval_set=True)
    assert "relevance" not in keys and "rating" in keys and "contradicted" in keys
    keys, current = model.order_choices(TraceFilter(newest_first=False), "needle", has_eval_set=True)
    assert "relevance" in keys and current == "oldest"
    model.start_order("source")
    assert model.order_choices(ALL, "", has_eval_set=True)[1] == "source"


def test_order_job_says_the_cost_first_then_orders(model: TraceListModel) -> None:
    said: list[str] = []
    result = expect(OrderResult, model.order_job("step_count", ALL, "", said.append)())
    assert len(said) == 1 and said[0].startswith("step count")
    assert result.ordered is not None and len(result.ordered.rowids) == N
    assert (result.ordered.rowids[0] - 1) % 7 == 6  # rowid i + 1 has i % 7 steps: 6 leads


def test_scan_state() -> None:
    scan = ScanState()
    scan.start("needle")
    assert scan.note.startswith('searching steps for "needle"')
    assert scan.progress(25, 100) == 25.0
    needle, flt = scan.finished(ALL, None, 0, complete=False)
    assert needle == "needle" and flt is None and scan.note == ""  # stopped before any match
    needle, flt = scan.finished(ALL, [3, 1], 2, complete=False)
    assert flt == replace(ALL, step_text="needle", step_rowids=(3, 1))
    assert scan.note == "step search stopped after 25%: 2 matches so far"
    _, flt = scan.finished(ALL, [3], 1, complete=True)
    assert flt is not None and flt.step_rowids == (3,) and scan.note == ""
    assert ScanState().finished(TraceFilter(step_text="old"), [1], 1, True)[0] == "old"


def test_step_search(db: Database, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []

    def search(needle: str, **kw: bool) -> object:
        return step_search(db.conn(), tmp_path / "traces.sqlite", needle, remote=kw.get("remote", False),
                           progress=lambda d, t: progress.append((d, t)), cancelled=lambda: False)

    found = search("needle")
    assert sorted(found.rowids) == [i + 1 for i in range(0, N, 10)]  # type: ignore[attr-defined]
    assert found.complete and found.build_index and found.notes  # type: ignore[attr-defined]
    assert not search("needle", remote=True).build_index  # type: ignore[attr-defined]
    regex = search("re:ne+dle")
    assert sorted(regex.rowids) == sorted(found.rowids)  # type: ignore[attr-defined]
    broken = search('"unclosed')
    assert broken.error.startswith("search: ") and broken.rowids == []  # type: ignore[attr-defined]


def test_pending_mark() -> None:
    assert pending_mark(None) is None
    assert pending_mark(SimpleNamespace(kind="note", rating=None)) is None
    assert pending_mark(SimpleNamespace(kind="label", rating="positive")) == "⧗ pos"
    assert pending_mark(SimpleNamespace(kind="label", rating=None)) == "⧗ non"

