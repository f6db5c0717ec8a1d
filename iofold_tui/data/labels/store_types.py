"""The label store's vocabulary, shared by ``LabelStore`` (store.py), ``RemoteLabelStore``
(remote_store.py) and their callers: ratings, the "keep the note" marker, the write errors, what one write
transaction plans and what the writer thread's ``apply_next`` reports, and the ids and clock a write
stamps rows with. The rows, changes and steps themselves are the history's (history.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from iofold_tui.data.labels.history import FeedbackRow, Intent, Step
from iofold_tui.data.ratings import RATINGS


class Unchanged:
    """The type of ``UNCHANGED``: a note argument that keeps the stored note (None clears it)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()


def check_rating(rating: str | None) -> None:
    if rating is not None and rating not in RATINGS:
        raise ValueError(f"rating must be one of positive/negative/neutral or None, not {rating!r}")


class LabelWriteError(Exception):
    """A label could not be written (database locked too long, or a row it needs does not exist)."""


class LockedError(LabelWriteError):
    """Another process held the database's lock for longer than this write was allowed to wait."""


class NoLabelError(ValueError):
    """A note was set on a trace that has no label in this eval set (feedback.rating is NOT NULL)."""


class UndoConflictError(Exception):
    """The rows a step would restore were changed by someone else since; ``force=True`` overwrites."""

    def __init__(self, message: str, step: Step, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.step = step
        self.conflicts = conflicts


@dataclass(frozen=True)
class Applied:
    """What ``apply_next`` did with the oldest queued intent.

    outcome: ``empty`` (nothing queued), ``applied`` (written; ``result`` is the LabelChange or Step, None
    when it changed nothing), ``busy`` (the lock was held: still queued), ``cancelled`` (undone by the user
    while it waited), ``failed`` (can never be written:
    dropped from the queue, ``error`` says why; ``conflict`` for an undo/redo that would overwrite others).
    """

    outcome: str
    intent: Intent | None = None
    result: object = None
    error: str | None = None
    conflict: UndoConflictError | None = None


@dataclass
class WritePlan:
    """What one write transaction does: the rows to write, and how to settle the history afterwards."""

    writes: list[tuple[str, str, FeedbackRow | None, FeedbackRow | None]]  # es, trace, current, target
    on_commit: Callable[[], None]
    on_abort: Callable[[], None]
    result: object = field(default=None)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_feedback_id() -> str:
    """iofold's own style: the web app creates ``fb_${crypto.randomUUID()}``."""
    return f"fb_{uuid.uuid4()}"
