"""Navigation between panes as messages: a pane posts one, it bubbles to the app, which switches panes
and hands over what the next pane needs through typed ``AppState`` fields."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class OpenMatrixColumn(Message):
    """Show the matrix with the cursor on this eval version's column (switching eval set if needed)."""

    eval_id: str


@dataclass
class OpenReviewQueue(Message):
    """Review exactly these traces (a confusion cell, a flip list, the disagreements)."""

    trace_ids: tuple[str, ...]
