"""What the matrix model's jobs hand back to the UI thread, and the small value types they carry.

Plain data: the jobs (``MatrixModel``'s ``*_job`` methods) build these in a worker and the model's
transitions consume them on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from iofold_tui.data.evals.versions import EvalSummary
from iofold_tui.data.matrix.grid import MatrixPage, MatrixRow
from iofold_tui.data.matrix.stats import MatrixStats

Direction = Literal["first", "last", "after", "before", "around"]
Move = tuple[str, str | None, str | None]  # trace id, old rating, new rating


@dataclass(frozen=True)
class SourceDate:
    sources: tuple[str, ...]
    date_from: str | None
    date_to: str | None


# ---------------------------------------------------------------- grid jobs

@dataclass
class PageLoaded:
    page: MatrixPage
    direction: Direction
    versions: list[EvalSummary] | None = None


@dataclass
class MoveTo:
    trace_id: str


@dataclass
class GridNote:
    text: str
    severity: Literal["information", "warning", "error"] = "information"


@dataclass
class EvalLocated:
    eval_id: str
    eval_set_id: str


GridResult = PageLoaded | MoveTo | GridNote | EvalLocated | None


# ---------------------------------------------------------------- relabels

@dataclass(frozen=True)
class Refreshed:
    trace_id: str
    old: str | None
    new: str | None
    row: MatrixRow | None  # with the displayed versions; None = no longer a row of the set
    states: dict[str, str]  # eval id -> pass / fail / error / not_run, for every version in the stats


@dataclass
class Relabelled:
    items: list[Refreshed]
    stats: list[MatrixStats] | None  # the statistics the delta is for (None: they were being computed)
    error: str | None = None
    t0: float | None = None  # perf_counter() of the label key, for ``relabel_ms``


# ---------------------------------------------------------------- statistics jobs

@dataclass
class StatsLoaded:
    stats: list[MatrixStats]
    cached: bool
    ms: float


@dataclass
class StatsExtra:
    """Off the critical path: the execution signature and the unscoped view's counts."""
    stats: list[MatrixStats]
    signature: dict[str, tuple[int, int]]
    counts: dict[str, tuple[int | None, int | None]]


@dataclass
class StatsChecked:
    stats: list[MatrixStats]
    labels: dict[str, int]
    signature: dict[str, tuple[int, int]]
