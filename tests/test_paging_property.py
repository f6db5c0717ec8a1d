"""Keyset paging is exact for any ``timestamp`` values (issue 13): NULLs, duplicates, numbers, text and
BLOBs mixed, any declared column type, both directions, trace list, matrix grid and review queue.

Walking page by page forward, and backward from the end, must yield every row exactly once, in the order
of one ``ORDER BY`` query over the whole table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from conftest import SCHEMA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.data.labels.review_queue import QueueSpec
from iofold_tui.data.labels.review_queue import page_after as queue_after
from iofold_tui.data.matrix import grid
from iofold_tui.data.matrix.grid_query import MatrixQuery
from iofold_tui.data.traces.query import TraceFilter, TraceQuery

# A few shared values so duplicates are frequent (ties are where keyset paging breaks).
_TEXTS = ["2025-06-01T10:00:00Z", "2025-06-01T10:00:00Z", "2025-06-02", "", "zzz", "10", "1.5e3"]
TIMESTAMPS = st.one_of(
    st.none(),
    st.sampled_from(_TEXTS),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.5, 1.0, 2.5, -1e300, 1e300]),
    st.sampled_from([b"", b"\x00", b"\xff\xfe", b"2025"]),
    st.text(max_size=4),
)
DECLARED = ["DATETIME", "TEXT", "", "INTEGER", "BLOB", "TEXT COLLATE NOCASE"]


def _database(values: list[object], declared: str, ratings: list[int]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema = SCHEMA.read_text().replace("timestamp DATETIME NOT NULL", f"timestamp {declared}")
    conn.executescript(schema)
    conn.executescript(
        "INSERT INTO workspaces(id, name) VALUES ('ws1', 'one');"
        "INSERT INTO integrations(id, workspace_id, platform, name, api_key_encrypted) VALUES "
        "('i1','ws1','langfuse','lf','k');"
        "INSERT INTO eval_sets(id, workspace_id, name) VALUES ('es1', 'ws1', 'quality');"
        "INSERT INTO evals(id, eval_set_id, name, version, code, model_used) VALUES "
        "('ev1','es1','e',1,'c','m'),"
        "('ev2','es1','e',2,'c','m');"
    )
    conn.executemany(
        "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps) "
        "VALUES (?, 'ws1', 'i1', ?, 'langfuse', ?, '[]')",
        [(f"t{i:03d}", f"x{i}", v) for i, v in enumerate(values)])
    rating_names = [None, "positive", "negative", "neutral"]
    for i, r in enumerate(ratings[:len(values)]):
        if rating_names[r % 4]:
            conn.execute("INSERT INTO feedback(id, eval_set_id, trace_id, rating) VALUES (?, 'es1', ?, ?)",
                         (f"fb{i}", f"t{i:03d}", rating_names[r % 4]))
        for ev in ("ev1", "ev2"):  # every trace is run, so every trace is in the matrix's universe
            conn.execute(
                "INSERT INTO eval_executions(id, eval_id, trace_id, result, reason, execution_time_ms) "
                "VALUES (?, ?, ?, ?, 'r', 1)",
                (f"x{ev}{i}", ev, f"t{i:03d}", (r // 4 + (ev == "ev2")) % 2),
            )
    return conn


def _expected(conn: sqlite3.Connection, newest: bool) -> list[str]:
    order = "timestamp DESC, rowid ASC" if newest else "timestamp ASC, rowid DESC"
    return [r[0] for r in conn.execute(f"SELECT id FROM traces ORDER BY {order}")]


def _trace_walks(conn: sqlite3.Connection, newest: bool, size: int) -> tuple[list[str], list[str]]:
    q = TraceQuery(conn, TraceFilter(eval_set_id="es1", newest_first=newest))
    page = q.first_page(size)
    forward = [r.id for r in page.rows]
    while page.has_after:
        page = q.page_after(page.rows[-1].key, size)
        forward += [r.id for r in page.rows]
    page = q.last_page(size)
    backward = [r.id for r in page.rows]
    while page.has_before:
        page = q.page_before(page.rows[0].key, size)
        backward = [r.id for r in page.rows] + backward
    return forward, backward


def _grid_walks(conn: sqlite3.Connection, q: MatrixQuery) -> tuple[list[str], list[str]]:
    page = grid.first_page(conn, q)
    forward = [r.trace_id for r in page.rows]
    while page.has_after:
        page = grid.page_after(conn, q, page.rows[-1].cursor)
        forward += [r.trace_id for r in page.rows]
    page = grid.last_page(conn, q)
    backward = [r.trace_id for r in page.rows]
    while page.has_before:
        page = grid.page_before(conn, q, page.rows[0].cursor)
        backward = [r.trace_id for r in page.rows] + backward
    return forward, backward


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(values=st.lists(TIMESTAMPS, max_size=40), declared=st.sampled_from(DECLARED),
       newest=st.booleans(), size=st.integers(min_value=1, max_value=7))
def test_trace_list_walks_every_row_once_both_ways(values: list[object], declared: str, newest: bool,
                                                   size: int) -> None:
    conn = _database(values, declared, [])
    expected = _expected(conn, newest)
    forward, backward = _trace_walks(conn, newest, size)
    assert forward == expected
    assert backward == expected


@_SETTINGS
@given(values=st.lists(TIMESTAMPS, max_size=30), declared=st.sampled_from(DECLARED),
       ratings=st.lists(st.integers(min_value=0, max_value=7), min_size=30, max_size=30),
       newest=st.booleans(), size=st.integers(min_value=1, max_value=7),
       sort=st.sampled_from(["time", "contradicted"]))
def test_matrix_walks_every_row_once_both_ways(values: list[object], declared: str, ratings: list[int],
                                               newest: bool, size: int, sort: str) -> None:
    conn = _database(values, declared, ratings)
    q = MatrixQuery("es1", sort=sort, newest_first=newest, page_size=size)  # type: ignore[arg-type]
    if sort == "time":
        expected = _expected(conn, newest)
    else:  # most contradicted first, then time order within one contradiction count
        rows = grid.first_page(conn, replace(q, sort="time", page_size=10_000)).rows
        n = {r.trace_id: r.contradictions for r in rows}
        conn.execute("CREATE TEMP TABLE expect_n (id TEXT, n INTEGER)")
        conn.executemany("INSERT INTO expect_n VALUES (?, ?)", n.items())
        order = "t.timestamp DESC, t.rowid ASC" if newest else "t.timestamp ASC, t.rowid DESC"
        expected = [r[0] for r in conn.execute(
            f"SELECT t.id FROM traces t JOIN expect_n USING (id) ORDER BY expect_n.n DESC, {order}")]
    forward, backward = _grid_walks(conn, q)
    assert forward == expected
    assert backward == expected


@_SETTINGS
@given(values=st.lists(TIMESTAMPS, max_size=30), declared=st.sampled_from(DECLARED),
       ratings=st.lists(st.integers(min_value=0, max_value=7), min_size=30, max_size=30),
       newest=st.booleans(), size=st.integers(min_value=1, max_value=7))
def test_review_queue_walks_every_trace_once(values: list[object], declared: str, ratings: list[int],
                                             newest: bool, size: int) -> None:
    conn = _database(values, declared, ratings)
    spec = QueueSpec("es1", "ws1", "unlabelled", None, newest)
    seen, after = [], None
    while True:
        items = queue_after(conn, spec, after, size)
        seen += [i.trace_id for i in items]
        if len(items) < size:
            break
        after = items[-1].key
    labelled = {r[0] for r in conn.execute("SELECT trace_id FROM feedback")}
    order = _expected(conn, newest)
    assert seen == [t for t in order if t not in labelled] + [t for t in order if t in labelled]


def test_null_timestamps_are_not_skipped_by_page_down() -> None:
    """The reported case: PgDn from a page whose last row is non-NULL reaches the NULL rows (End showed
    them)."""
    conn = _database(["2025-01-02", None, "2025-01-01", None, None], "DATETIME", [])
    forward, _ = _trace_walks(conn, True, 2)
    assert forward == ["t000", "t002", "t001", "t003", "t004"]


@pytest.mark.parametrize("newest", [True, False])
def test_first_page_and_page_down_use_the_timestamp_index(newest: bool) -> None:
    conn = _database([f"2025-01-{d:02d}" for d in range(1, 29)] + [None], "DATETIME", [])
    q = TraceQuery(conn, TraceFilter(eval_set_id="es1", newest_first=newest))
    plans: list[str] = []
    original = conn.execute

    def plan_of(page_fn: object) -> object:
        """Run ``page_fn`` and record the query plan of every trace-list SELECT it ran."""
        statements: list[tuple[str, list[object]]] = []

        class Spy:
            def execute(self, sql: str, params: object = ()) -> sqlite3.Cursor:
                statements.append((sql, list(params)))  # type: ignore[arg-type]
                return original(sql, params)  # type: ignore[arg-type]

        q.conn = Spy()  # type: ignore[assignment]
        page = page_fn()  # type: ignore[operator]
        q.conn = conn
        for sql, params in statements:
            if sql.lstrip().startswith("SELECT") and "FROM traces t" in sql:
                detail = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
                plans.append(detail)
        return page

    first = plan_of(lambda: q.first_page(5))
    plan_of(lambda: q.page_after(first.rows[-1].key, 5))
    assert plans
    for detail in plans:
        assert "idx_traces_timestamp" in detail, detail
        assert "TEMP B-TREE" not in detail, detail
