"""The matrix's statistics as shown, and whether they still describe the database: the transitions that
apply a finished statistics job, a freshness check or a relabel's delta (no database access here; the
jobs that compute these are ``MatrixModel``'s).

Statistics are identified by the list object holding them: a relabel delta or a freshness check computed
against one list is applied only while that same list is shown (a recompute replaces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from iofold_tui.data.matrix.stats import MatrixStats
from iofold_tui.ui.models.matrix_results import Relabelled, StatsChecked, StatsExtra, StatsLoaded

INCREMENTAL_LIMIT = 1_000  # an undo/redo step larger than this recomputes the statistics instead


def implied_labels(s: MatrixStats) -> dict[str, int]:
    """Label counts of the set as the (incrementally updated) statistics see them."""
    out = {r: sum(s.cells[r].values()) for r in ("positive", "negative", "neutral")}
    return {r: n for r, n in out.items() if n}


# keyword-only, so that the model built on it keeps its own positional fields (``MatrixModel(db)``)
@dataclass(kw_only=True)
class StatsState:
    stats: list[MatrixStats] | None = None
    stats_cached: bool = False
    stats_ms: float | None = None
    stats_dirty: bool = False  # labels changed while the statistics were being computed
    executions_changed: bool = False  # a local eval run rewrote executions: recompute on the next reload
    view_pending: bool = False
    relabelled: bool = False
    relabels_in_flight: int = 0
    recheck: bool = False  # a stats check arrived while relabels were in flight
    signature: dict[str, tuple[int, int]] = field(default_factory=dict)

    def stats_loaded(self, result: StatsLoaded) -> bool:
        """True: labels moved while these were computed (they may or may not include them): recompute."""
        if self.stats_dirty:
            return True
        self.stats, self.stats_cached, self.stats_ms = result.stats, result.cached, result.ms
        self.signature = {}
        return False

    def extra_loaded(self, result: StatsExtra) -> bool:
        if result.stats is not self.stats or self.stats is None:
            return False
        self.signature = result.signature
        for s in self.stats:
            s.view_rows, s.view_contradictions = result.counts.get(s.eval_id, (None, None))
        self.view_pending = False
        return True

    def stats_checked(self, result: StatsChecked) -> bool:
        """True: the statistics no longer describe the database: recompute them."""
        if result.stats is not self.stats or not self.stats:
            return False
        if self.relabels_in_flight:  # our own relabels are not applied yet: compare once they are
            self.recheck = True
            return False
        # an empty signature: the baseline is still being counted
        runs_moved = bool(self.signature) and result.signature != self.signature
        return result.labels != implied_labels(self.stats[0]) or runs_moved

    def relabel_done(self, result: Relabelled | None) -> Literal["applied", "stale", "recompute"]:
        """Apply a relabel's delta to the statistics it was computed for ("stale": they were replaced
        meanwhile; "recompute": the delta failed or did not fit: recompute the statistics)."""
        self.relabels_in_flight -= 1
        if result is None or result.error:
            return "recompute"
        if result.stats is None or result.stats is not self.stats:
            return "stale"
        try:
            for item in result.items:
                for s in self.stats:
                    s.relabel(item.old, item.new, item.states.get(s.eval_id, "not_run"))
        except ValueError:  # the statistics did not match the database: recompute them
            return "recompute"
        self.relabelled = True
        return "applied"

    def take_recheck(self) -> bool:
        due = self.recheck and not self.relabels_in_flight
        if due:
            self.recheck = False
        return due
