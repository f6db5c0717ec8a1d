"""The evals pane without widgets or I/O: the listed versions and their recomputed counts, the selection
(and a selection asked for before the list is in), the loaded details (an LRU), the other side of the diff
(the parent, or a version picked by hand) and the diff shown. The pane runs the queries in workers
(``Pane.run_query``) and feeds their results in."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from iofold_tui.data.evals.code_text import FieldDiff
from iofold_tui.data.evals.versions import (
    ChainLink,
    EvalDetail,
    EvalList,
    EvalSummary,
    TrainingTrace,
)
from iofold_tui.data.matrix.stats import EvalCounts

DETAILS = 8  # eval details kept (code, tests, training rows)
BASES = 4  # diff bases loaded without their training rows
DiffKey = tuple[str, str, bool]  # (base id, eval id, full context)


@dataclass
class EvalsModel:
    evals: EvalList | None = None
    counts: dict[str, EvalCounts] | None = None  # recomputed from executions; None while counting
    selected_id: str | None = None
    pending_select: str | None = None  # asked for (--select, a link) before the list that holds it is in
    shown_id: str | None = None  # the eval whose code is on screen
    base_override: str | None = None  # the other side of the diff, when picked by hand
    side_by_side: bool = False
    full_context: bool = False
    details: OrderedDict[str, tuple[EvalDetail | None, list[TrainingTrace]]] = field(
        default_factory=OrderedDict)
    bases: OrderedDict[str, EvalDetail] = field(default_factory=OrderedDict)
    diff_key: DiffKey | None = None
    diff_sections: list[FieldDiff] | None = None

    def reset(self) -> None:
        """Another eval set or database state: counts, details and the diff are read again."""
        self.counts = None
        self.details.clear()
        self.bases.clear()
        self.diff_key = None

    def ids(self) -> list[str]:
        return [s.id for s, _ in self.evals.rows] if self.evals else []

    def listed(self, evals: EvalList) -> str | None:
        """The list arrived: the eval to select (the one asked for, else the one selected, else the first)."""
        self.evals = evals
        ids = self.ids()
        pending = self.pending_select
        if pending in ids:
            return pending
        return self.selected_id if self.selected_id in ids else ids[0] if ids else None

    def counted(self, counts: dict[str, EvalCounts]) -> None:
        self.counts = counts

    def select(self, eval_id: str) -> bool:
        """Select ``eval_id``; True when it is another eval than before (the picked diff base is dropped)."""
        changed = eval_id != self.selected_id
        if changed:
            self.base_override = None
        self.selected_id = eval_id
        return changed

    def has_detail(self, eval_id: str) -> bool:
        """The detail is loaded (and most recently used now)."""
        if eval_id in self.details:
            self.details.move_to_end(eval_id)
            return True
        return False

    def detail_loaded(self, eval_id: str, detail: EvalDetail | None, training: list[TrainingTrace]) -> bool:
        """A detail arrived; True when it is the selected eval's."""
        self.details[eval_id] = (detail, training)
        while len(self.details) > DETAILS:
            self.details.popitem(last=False)
        return eval_id == self.selected_id

    def current(self) -> tuple[EvalDetail | None, list[TrainingTrace]]:
        return self.details.get(self.selected_id or "", (None, []))

    def detail(self, eval_id: str) -> EvalDetail | None:
        """A loaded version: with its training rows, or as a diff base."""
        return self.details.get(eval_id, (None, []))[0] or self.bases.get(eval_id)

    def link(self, eval_id: str) -> ChainLink | None:
        found = self.evals.find(eval_id) if self.evals else None
        return found[1] if found else None

    def empty(self) -> None:
        self.selected_id = self.shown_id = None

    # -- diff ----------------------------------------------------------------------------------------
    def base_id(self) -> str | None:
        """The other side of the diff: the version picked with b, else the selected one's parent."""
        if self.base_override:
            return self.base_override
        link = self.link(self.selected_id) if self.selected_id else None
        return link.base_id if link else None

    def want_diff(self, detail: EvalDetail) -> DiffKey | None:
        """The diff to compute for ``detail`` (None: it is shown or computing already, or there is no
        base)."""
        base = self.base_id()
        if base is None:
            self.diff_key, self.diff_sections = None, None
            return None
        key = (base, detail.summary.id, self.full_context)
        if key == self.diff_key and self.diff_sections is not None:
            return None
        self.diff_key, self.diff_sections = key, None
        return key

    def diff_loaded(self, key: DiffKey, base: EvalDetail | None, sections: list[FieldDiff]) -> bool:
        """A diff arrived; False when it is not the one wanted now (or its base is gone)."""
        if key != self.diff_key or base is None:
            return False
        self.bases[base.summary.id] = base
        while len(self.bases) > BASES:
            self.bases.popitem(last=False)
        self.diff_sections = sections
        return True

    def diff_pair(self) -> tuple[EvalDetail, EvalDetail, list[FieldDiff]] | None:
        """(base, selected, sections) once all three are loaded."""
        new, _ = self.current()
        base = self.detail(self.diff_key[0]) if self.diff_key else None
        if new is None or base is None or self.diff_sections is None:
            return None
        return base, new, self.diff_sections

    # -- counts --------------------------------------------------------------------------------------
    def differs(self, summary: EvalSummary) -> bool:
        """The stored counters disagree with the ones recomputed from executions."""
        counts = (self.counts or {}).get(summary.id)
        return counts is not None and (summary.execution_count != counts.execution_count
                                       or summary.contradiction_count != counts.contradictions)

    def disagreeing(self) -> int:
        return sum(1 for s, _ in self.evals.rows if self.differs(s)) if self.evals else 0
