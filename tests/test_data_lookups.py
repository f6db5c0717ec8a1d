"""The small lookups moved out of ui/ (issue 15: no SQL in ui/), on the hand-computed database of
test_matrix.py, and the eval-set insert of the "new eval set" form."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from _matrix_db import build_matrix_db

from iofold_tui.data.evals import lookup as evals
from iofold_tui.data.labels.lookup import feedback_row
from iofold_tui.data.source.eval_sets import EvalSetError, insert_eval_set
from iofold_tui.data.traces import lookup as traces


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(build_matrix_db(tmp_path / "lookups.sqlite"))


def test_eval_lookups(conn: sqlite3.Connection) -> None:
    assert evals.eval_choices(conn) == [("v1", "quality", 1), ("v2", "quality", 2), ("o1", "quality", 3)]
    assert evals.eval_choices(conn, 1) == [("v1", "quality", 1)]
    assert evals.eval_with_parent(conn, "v2") == ("v2", None)
    assert evals.eval_with_parent(conn, None) is None  # no eval has a parent
    conn.execute("UPDATE evals SET parent_eval_id = 'v1' WHERE id = 'v2'")
    assert evals.eval_with_parent(conn, None) == ("v2", "v1")
    assert evals.newest_version(conn, "S") == "v2" and evals.newest_version(conn, "nope") is None
    assert evals.first_eval_set(conn) in {"S", "O", "P"}
    assert evals.eval_set_of(conn, "o1") == "O"


def test_trace_lookups(conn: sqlite3.Connection) -> None:
    assert traces.trace_ids_from(conn, "t1") == ["t10", "t11", "t12", "t13"]
    assert traces.trace_ids_from(conn, "t1", 2) == ["t10", "t11"]
    assert traces.newest_trace_id(conn) == "t13"
    assert traces.previews(conn, "t03") == ("needle in here", "output t03")
    assert traces.previews(conn, "nope") is None


def test_feedback_row(conn: sqlite3.Connection) -> None:
    row = feedback_row(conn, "S", "t03")
    assert row is not None and (row.id, row.rating, row.notes) == ("fb_S_t03", "negative", "note S t03")
    assert feedback_row(conn, "S", "t07") is None


def test_insert_eval_set(conn: sqlite3.Connection) -> None:
    new = insert_eval_set(conn, "ws", "  fresh  ", "  about  ", 3)
    assert re.fullmatch(r"set_[0-9a-f-]{36}", new)
    row = conn.execute("SELECT name, description, minimum_examples, created_at FROM eval_sets WHERE id = ?",
                       (new,)).fetchone()
    assert row[:3] == ("fresh", "about", 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[3])
    for name, minimum in (("quality", 5), ("fresh", 5), ("   ", 5), ("ok", 0)):
        with pytest.raises(EvalSetError):
            insert_eval_set(conn, "ws", name, None, minimum)
