"""The three ratings a human gives a trace, in the order every report lists them (agreement's codes,
Cohen's κ tables, label files and the conflict queue's choices all follow it). Anything else stored in
``feedback.rating`` is not a label (counted apart as invalid)."""

from __future__ import annotations

from typing import Literal

Rating = Literal["positive", "negative", "neutral"]
RATINGS: tuple[Rating, ...] = ("positive", "negative", "neutral")
