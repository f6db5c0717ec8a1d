"""What the review pane's parts share: the model, the eval set shown, the note being edited, the latency
figures, and the label store. ``ReviewShow`` (loading and showing) builds on it, ``ReviewLabels`` (label
keys and notes) on that, and ``ReviewPane`` on both, so each part is typed against what it really uses (no
self-annotated mixins)."""

from __future__ import annotations

import time
from collections import deque

from iofold_tui.data.errors import SourceError
from iofold_tui.data.labels.review_queue import QueueItem
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.source.catalog import EvalSet
from iofold_tui.ui import labeling
from iofold_tui.ui.models.review import ReviewModel, ReviewQueue
from iofold_tui.ui.pane import Pane


class ReviewPaneBase(Pane):
    def __init__(self) -> None:
        super().__init__()
        # the queue, prepared details, labels, counts, toggles (ui/models/review.py)
        self.model = ReviewModel()
        self.eval_set: EvalSet | None = None
        self.editing_for: str | None = None
        self.shown_at = time.monotonic()
        self.pending_t0: float | None = None
        # ms: label key -> committed -> next trace rendered, stamped once the screen is next idle (a rough
        # in-app figure; bench/review_probe.py times the frame the terminal receives)
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.commit_ms: deque[float] = deque(maxlen=10_000)  # ms: label key -> committed (both files)
        self._resumed = False
        self.steps_for: str | None = None  # the trace whose steps the steps widget holds

    # -- state helpers -------------------------------------------------------------------------------
    @property
    def queue(self) -> ReviewQueue:
        return self.model.queue

    @property
    def current(self) -> QueueItem | None:
        return self.model.queue.current

    @property
    def use_filter(self) -> bool:
        return self.model.use_filter

    def store(self) -> LabelStore | None:
        try:
            return labeling.label_store(self.app)
        except SourceError:
            return None

    def labels_off(self) -> str | None:
        return labeling.disabled_reason(self.app)
