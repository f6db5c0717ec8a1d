"""One label as stored, for screens that show it beside another annotator's."""

from __future__ import annotations

import sqlite3

from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.store_base import read_rows


def feedback_row(conn: sqlite3.Connection, eval_set_id: str, trace_id: str) -> FeedbackRow | None:
    """The ``feedback`` row of (eval set, trace), None when unlabelled."""
    return read_rows(conn, eval_set_id, [trace_id]).get(trace_id)
