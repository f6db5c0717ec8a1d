"""Labels of an eval set counted by rating: the one query for it (an index range on
``feedback(eval_set_id, rating)``), used by the review header, the matrix, the report and the facets."""

from __future__ import annotations

import sqlite3
from typing import Any

RATED = ("positive", "negative", "neutral")
_BY_RATING = "SELECT rating, count(*) FROM feedback WHERE eval_set_id = ? GROUP BY rating ORDER BY 2 DESC"


def rating_rows(conn: sqlite3.Connection, eval_set_id: str) -> list[tuple[Any, int]]:
    """(rating as stored, labels) for every rating value the set holds, most first: NULL, unknown text
    and BLOBs included, as they are."""
    return [(rating, int(n)) for rating, n in conn.execute(_BY_RATING, (eval_set_id,))]


def label_counts(conn: sqlite3.Connection, eval_set_id: str) -> dict[str, int]:
    """positive / negative / neutral (0 when there are none), then any other stored value under its
    ``str()``."""
    counts = dict.fromkeys(RATED, 0)
    for rating, n in rating_rows(conn, eval_set_id):
        counts[str(rating)] = counts.get(str(rating), 0) + n
    return counts
