"""Chance-corrected agreement between annotators: percent agreement with Cohen's κ for two, the share of
unanimous traces with Fleiss' κ for three or more, over the three ratings (data/labels/agreement.py).

Exact arithmetic (``Fraction``) until the final value. Undefined figures are ``None`` with the reason,
never a fake 0: no overlap, a single trace (the chance model needs more than one), or expected agreement
1 (every label in one class).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from iofold_tui.data.matrix.stats import Metric
from iofold_tui.data.ratings import RATINGS


def na(reason: str) -> Metric:
    return Metric(None, f"n/a ({reason})")


def cohen(table: dict[str, dict[str, int]]) -> tuple[Metric, Metric]:
    """(percent agreement, Cohen's κ) of a rating × rating table of two annotators."""
    n = sum(sum(row.values()) for row in table.values())
    if n == 0:
        return na("no overlap"), na("no overlap")
    agree = sum(table.get(c, {}).get(c, 0) for c in RATINGS)
    observed = Fraction(agree, n)
    if n == 1:
        return Metric(float(observed)), na("a single trace")
    rows = {c: sum(table.get(c, {}).values()) for c in RATINGS}
    cols = {c: sum(table.get(r, {}).get(c, 0) for r in RATINGS) for c in RATINGS}
    chance = sum(Fraction(rows[c] * cols[c], n * n) for c in RATINGS)
    if chance == 1:
        return Metric(float(observed)), na("one class only: expected agreement is 1")
    return Metric(float(observed)), Metric(float((observed - chance) / (1 - chance)))


def fleiss(counts: Iterable[tuple[Sequence[int], int]], raters: int) -> tuple[int, Metric, Metric]:
    """(traces, share where all agree, Fleiss' κ) from (per-rating counts of one trace, how many such
    traces)."""
    items = [(tuple(c), w) for c, w in counts if w]
    traces = sum(w for _, w in items)
    if traces == 0:
        return 0, na("no trace labelled by all"), na("no trace labelled by all")
    unanimous = Metric(sum(w for c, w in items if max(c) == raters) / traces)
    if traces == 1:
        return traces, unanimous, na("a single trace")
    if raters < 2:
        return traces, unanimous, na("fewer than two annotators")
    pairs = raters * (raters - 1)
    p_bar = sum(Fraction(sum(x * x for x in c) - raters, pairs) * w for c, w in items) / traces
    totals = [sum(c[j] * w for c, w in items) for j in range(len(RATINGS))]
    p_e = sum(Fraction(t, traces * raters) ** 2 for t in totals)
    if p_e == 1:
        return traces, unanimous, na("one class only: expected agreement is 1")
    return traces, unanimous, Metric(float((p_bar - p_e) / (1 - p_e)))


def undefined(**metrics: Metric) -> dict[str, str]:
    """The reasons of the undefined ones among ``metrics``, by name (a report's ``undefined`` entry)."""
    return {k: m.reason or "n/a" for k, m in metrics.items() if m.value is None}
