"""The one label-count-per-rating query (data/labels/counts.py) against a direct count, any stored value."""

from __future__ import annotations

import sqlite3
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from iofold_tui.data.labels.counts import RATED, label_counts, rating_rows

RATING = st.one_of(st.sampled_from(["positive", "negative", "neutral"]), st.none(), st.text(max_size=3),
                   st.binary(max_size=3), st.integers(-2, 2), st.floats(allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), RATING), max_size=30))
def test_counts_equal_a_direct_count(rows: list[tuple[str, object]]) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE feedback (eval_set_id, trace_id, rating)")
    conn.executemany(
        "INSERT INTO feedback VALUES (?, ?, ?)", [(es, str(i), r) for i, (es, r) in enumerate(rows)]
    )
    for es in ("A", "B"):
        stored = [r for r in conn.execute("SELECT rating FROM feedback WHERE eval_set_id = ?", (es,))]
        counts = label_counts(conn, es)
        assert sum(counts.values()) == len(stored)
        direct = Counter(r[0] for r in stored if isinstance(r[0], str))
        assert all(counts[r] == direct[r] for r in RATED)
        listed = rating_rows(conn, es)
        assert sum(n for _, n in listed) == len(stored)
        assert [n for _, n in listed] == sorted((n for _, n in listed), reverse=True)
