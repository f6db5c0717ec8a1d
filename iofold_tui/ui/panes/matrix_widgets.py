"""Pieces of the matrix pane: cell rendering and the per-version statistics table and its notes (the
dialogs are in matrix_dialogs.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from iofold_tui.data.matrix.comparison_view import SOURCE_VIEW
from iofold_tui.data.matrix.grid import Cell, MatrixRow
from iofold_tui.data.matrix.stats import MatrixStats
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.row_table import same_cell

# Symbols carry the state without colour; "≠" marks a contradiction.
STATE_SYMBOL = {
    "pass": "✓ pass", "fail": "✗ fail", "error": "⚠ error", "invalid": "? inval", "not_run": "· —",
}
AGREEMENT_STYLE = {"agreement": "green", "contradiction": "bold red", "error": "bold yellow",
                   "invalid": "bold magenta", "unlabelled": "dim", "neutral": "dim", "not_run": "dim"}
FILTER_TITLES = {
    "all": "all traces", "contradictions": "contradictions", "agreements": "agreements only",
    "errors": "errors", "unlabelled": "unlabelled", "neutral": "neutral labels",
    "versions_disagree": "versions disagree",
}
# Stats table columns: key, header, which confusion cell Enter opens (None = not drillable).
# The contradictions come right after n: this pane is about them, and on an 80-column terminal the
# columns past ~75 cells are a horizontal scroll away.
STAT_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("n", "n", None), ("contradictions", "≠", None), ("contradiction_rate", "≠rate", None),
    ("TP", "TP", "TP"), ("FN", "FN", "FN"), ("FP", "FP", "FP"), ("TN", "TN", "TN"),
    ("accuracy", "acc", None), ("cohens_kappa", "κ", None), ("precision", "prec", None),
    ("recall", "rec", None), ("f1", "F1", None), ("specificity", "spec", None),
    ("error", "err", "error"), ("invalid", "inv", "invalid"), ("neutral", "neu", "neutral"),
    ("unlabelled", "unlab", "unlabelled"), ("not_run", "n/run", "not_run"),
)
CONFUSION_TITLES = {"TP": "TP (human positive, eval pass)", "FN": "FN (human positive, eval fail)",
                    "FP": "FP (human negative, eval pass)", "TN": "TN (human negative, eval fail)",
                    "error": "errored executions", "invalid": "invalid result (not 0/1: excluded from n)",
                    "neutral": "neutral labels", "unlabelled": "unlabelled, run",
                    "not_run": "labelled, not run"}


def patch_row(table: DataTable[Text | str], row_key: str, values: dict[str, Text | str]) -> int:
    """Put new values in one row's cells and repaint that row only; returns how many cells changed.

    ``DataTable.update_cell`` bumps a table-wide counter that is part of every render-cache key, so one
    changed cell makes the next frame re-render every visible cell (~100 ms for a 20-row matrix page).
    Here only the row's own cache entries are dropped. Columns keep their width (the callers' columns
    have fixed widths)."""
    rk = RowKey(row_key)
    data = table._data.get(rk)
    if data is None:
        return 0
    changed: set[ColumnKey] = set()
    for key, value in values.items():
        ck = ColumnKey(key)
        if ck in data and not same_cell(data[ck], value):
            data[ck] = value
            changed.add(ck)
    if not changed:
        return 0
    # The caches are LRUCaches, not dicts (hence keys() below), each with its own key shape.
    cells = table._cell_render_cache  # keyed (row, column, ...): the unchanged cells stay rendered
    for cell_key in [k for k in cells.keys() if k[0] == rk and k[1] in changed]:  # noqa: SIM118
        cells.discard(cell_key)
    index = table.get_row_index(rk)
    # keyed (update count, row index): the row's cells as renderables
    renderables = table._row_renderable_cache
    for renderable_key in [k for k in renderables.keys() if k[1] == index]:  # noqa: SIM118
        renderables.discard(renderable_key)
    rows = table._row_render_cache  # keyed (row, ...)
    for row_cache_key in [k for k in rows.keys() if k[0] == rk]:  # noqa: SIM118
        rows.discard(row_cache_key)
    lines = table._line_cache  # keyed (y, ...)
    for line_key in list(lines.keys()):
        try:
            if table._get_offsets(line_key[0])[0] == rk:
                lines.discard(line_key)
        except LookupError:
            lines.discard(line_key)
    table.refresh_row(index)
    return len(changed)


def matrix_cell(c: Cell) -> Text:
    text = STATE_SYMBOL.get(c.state, "?") + (" ≠" if c.agreement == "contradiction" else "")
    return Text(text, style=AGREEMENT_STYLE.get(c.agreement, ""), no_wrap=True)


def contradiction_mark(row: MatrixRow) -> Text:
    n = row.contradictions
    return Text(str(n), style="bold red", justify="right") if n else Text("")


def _count(value: int) -> Text:
    return Text(f"{value:,}", justify="right")


def stat_cells(s: MatrixStats) -> list[Text]:
    """One row of the statistics table (unpadded; ``StatsTable`` right-aligns them)."""
    return _stat_values(s)


def _stat_values(s: MatrixStats) -> list[Text]:
    """Undefined metrics read "n/a*" (the reason is in the notes)."""
    metrics = s.metrics()
    differs = s.differs
    out: list[Text] = []
    for key, _, _ in STAT_COLUMNS:
        if key in metrics:
            m = metrics[key]
            if m.value is None:
                out.append(Text("n/a*", style="dim", justify="right"))
                continue
            t = Text(f"{m.value:.3f}", justify="right")
            if key == "accuracy" and differs["accuracy"]:
                t.append("≠", style="bold yellow")
            out.append(t)
        elif key == "contradictions":
            t = Text(f"{s.contradictions:,}", style="red" if s.contradictions else "", justify="right")
            if differs["contradiction_count"]:
                t.append("≠", style="bold yellow")
            out.append(t)
        elif key == "n":
            out.append(Text(f"{s.n:,}", style="bold", justify="right"))
        elif key in ("TP", "TN"):
            out.append(Text(f"{getattr(s, key.lower()):,}", style="green", justify="right"))
        elif key in ("FP", "FN"):
            value = getattr(s, key.lower())
            out.append(Text(f"{value:,}", style="bold red" if value else "", justify="right"))
        else:
            out.append(_count(s.excluded[{"error": "errors", "invalid": "invalid_result"}.get(key, key)]))
    return out


def stats_notes(stats: Sequence[MatrixStats], titles: dict[str, str], *, computing: bool, cached: bool,
                view_pending: bool, relabelled: bool) -> Text:
    """What the numbers mean, stored counters that disagree, undefined metrics and the raw view's say."""
    out = Text()
    source = stats[0].source if stats else None
    if source == SOURCE_VIEW:
        out.append("source: eval_comparison view, ", style="bold")
    elif source:
        out.append(f"source: {source} (the same join on the base tables), ", style="bold yellow")
    out.append("scoped to each eval's own set; errors, results other than 0/1 (inv), neutral, unlabelled "
               "and not-run traces excluded from n. Positive class = human positive, predicted = pass.",
               style="dim")
    if computing:
        out.append("  computing statistics…", style="yellow")
    elif cached and not relabelled:
        out.append("  (from cache: file unchanged)", style="dim")
    if relabelled:
        out.append("  updated incrementally after relabels", style="cyan")
    for s in stats:
        title = titles.get(s.eval_id, s.eval_id)
        parts: list[Text] = []
        differs = s.differs
        if differs["accuracy"]:
            parts.append(Text(f"stored accuracy {s.stored_accuracy:.3f} ≠ recomputed {s.accuracy.text()}",
                              style="bold yellow"))
        if differs["contradiction_count"]:
            parts.append(Text(f"stored contradiction_count {s.stored_contradictions:,} ≠ recomputed "
                              f"{s.contradictions:,}", style="bold yellow"))
        for name, m in s.metrics().items():
            if m.value is None:
                parts.append(Text(f"{name.replace('_', ' ')}* {m.reason}", style="dim"))
        if view_pending:
            parts.append(Text("unscoped view: counting…", style="dim"))
        elif s.view_contradictions is not None:
            before = " (before your relabels)" if relabelled else ""
            raw = (f"the raw unscoped view would say {plural(s.view_contradictions, 'contradiction')} "
                   f"over {plural(s.view_rows or 0, 'row')}{before}")
            parts.append(Text(raw, style="magenta"))
        if parts:
            out.append("\n")
            out.append(f"{one_line(title, 30)}: ", style="bold")
            out.append(Text("  ·  ").join(parts))
    if any(s.view_contradictions is not None for s in stats) and not view_pending:
        out.append("\nThe raw view is inflated: it joins labels from every eval set and counts errors as "
                   "fails.", style="dim")
    return out


class StatsTable(DataTable[Text | str]):
    """Versions × numbers; Enter on a confusion (or excluded) count opens exactly those traces."""

    @dataclass
    class Drill(Message):
        """Enter on a count: the traces of that confusion cell (``CONFUSION_CELLS``) of this version."""

        eval_id: str
        cell: str

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=False, cell_padding=0, **kwargs)  # type: ignore[arg-type]
        self.rows_shown = 0
        self.content_width = 0
        self.shape: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())  # row keys and column widths shown

    def show(self, stats: Sequence[MatrixStats], titles: dict[str, str]) -> None:
        """Rebuild the rows; every column is as wide as its widest value plus one space, numbers
        right-aligned by hand (DataTable's padding would cost two cells per column: too wide for 140
        columns at 1M traces)."""
        coordinate = self.cursor_coordinate
        rows = [
            [Text(one_line(titles.get(s.eval_id, s.eval_id), 24), style="bold"), *stat_cells(s)]
            for s in stats
        ]
        headers = [
            Text("version", style="bold"),
            *[Text(header, style="bold") for _, header, _ in STAT_COLUMNS],
        ]
        widths = [max([h.cell_len, *(r[i].cell_len for r in rows)]) + 1 for i, h in enumerate(headers)]
        shape = (tuple(s.eval_id for s in stats), tuple(widths))
        if shape == self.shape and self.row_count == len(stats) and len(self.columns) == len(widths):
            # Same rows, same widths (the usual relabel): patch the changed numbers, repaint those rows only.
            keys = ["version", *(key for key, _, _ in STAT_COLUMNS)]
            for s, row in zip(stats, rows, strict=True):
                patch_row(self, s.eval_id, {key: _fit(c, w, left=key == "version")
                                            for key, c, w in zip(keys, row, widths, strict=True)})
            return
        self.shape = shape
        self.clear(columns=True)
        self.add_column(_fit(headers[0], widths[0], left=True), key="version", width=widths[0])
        for (key, _, _), header, width in zip(STAT_COLUMNS, headers[1:], widths[1:], strict=True):
            self.add_column(_fit(header, width), key=key, width=width)
        for s, row in zip(stats, rows, strict=True):
            self.add_row(_fit(row[0], widths[0], left=True), *[_fit(c, w) for c, w in zip(row[1:], widths[1:],
                                                                                             strict=True)],
                         key=s.eval_id)
        self.content_width = sum(widths)
        self.rows_shown = min(len(stats), 8)
        self.fit()
        if self.row_count:
            kept_row = min(coordinate.row, self.row_count - 1)
            self.move_cursor(row=kept_row, column=coordinate.column, animate=False)

    def fit(self) -> None:
        """Exactly the rows (height auto would keep max-height), plus the scrollbar when too wide."""
        wide = self.content_width > self.size.width > 0
        self.styles.height = self.rows_shown + 2 + (1 if wide else 0)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit)

    @on(DataTable.CellSelected)
    def _selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        column = str(event.cell_key.column_key.value)
        target = next((drill for key, _, drill in STAT_COLUMNS if key == column), None)
        if target is None:
            self.notify("Enter on TP / FN / FP / TN (or err, neutral, unlab, not run) lists those traces")
            return
        self.post_message(self.Drill(str(event.cell_key.row_key.value), target))


def _fit(text: Text, width: int, *, left: bool = False) -> Text:
    out = text.copy()
    if left:
        out.pad_right(width - out.cell_len)
    else:
        out.pad_left(width - out.cell_len)
    return out


__all__ = ["StatsTable", "contradiction_mark", "matrix_cell", "stats_notes"]
