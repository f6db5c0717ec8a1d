"""The matrix grid's columns: which fit in the terminal's width, how wide each is, and the versions'
headers."""

from __future__ import annotations

from collections.abc import Iterable

from iofold_tui.data.matrix.stats import MatrixStats
from iofold_tui.data.sanitize import one_line

MIN_INPUT = 12  # the grid's input preview is dropped rather than shown narrower

Column = tuple[str, str, int]  # key, header, width


def version_title(s: MatrixStats | None, eval_id: str, same_name: bool) -> str:
    if s is None:
        return one_line(eval_id, 14)
    return f"v{s.version}" if same_name else f"{one_line(s.name, 10)} v{s.version}"


def grid_layout(eval_ids: Iterable[str], titles: dict[str, str], total: int) -> list[Column]:
    """(key, header, width) of the grid's columns for ``total`` cells: every version column always (an
    80-column terminal shows three), the note, source and input dropped in that order when they do not
    fit, the time as "MM-DD HH:MM" below 120 columns. The input preview takes what is left."""
    versions = []
    for eval_id in eval_ids:
        title = one_line(titles.get(eval_id, eval_id), 16 if total >= 120 else 10)
        versions.append((f"v:{eval_id}", title, max(8, len(title))))
    fixed = [
        ("n", "≠", 2),
        ("time", "time", 16 if total >= 120 else 11),
        ("trace", "trace", 14 if total >= 100 else 12),
        ("src", "source", 8),
        ("human", "human", 6),
        ("note", "note", 16),
    ]
    room = total - 4  # the vertical scrollbar, and no horizontal one

    def cost(cols: list[Column], with_input: bool) -> int:
        return sum(w + 2 for _, _, w in cols) + (MIN_INPUT + 2 if with_input else 0)

    cols, with_input = fixed + versions, True
    for key in ("note", "src", "input"):  # dropped first to last
        if cost(cols, with_input) <= room:
            break
        if key == "input":
            with_input = False
        else:
            cols = [c for c in cols if c[0] != key]
    if with_input:
        cols.append(("input", "input", max(MIN_INPUT, room - cost(cols, False) - 2)))
    return cols
