"""Errors the core raises for bad input. The CLI turns them into one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


class SourceError(Exception):
    """A source cannot be opened or understood. ``str(err)`` is the one-line message for the user."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ReadOnlyError(Exception):
    """A write was attempted on a source opened read-only; the message says why it is read-only."""
