"""The label and undo key bindings every labelling pane shares (with ids, so keymaps can remap them).

Kept apart from ``labeling`` so a pane's class can declare its keys without loading the label store
and its history at start-up.
"""

from __future__ import annotations

from textual.binding import Binding

RATING_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("positive", "a", "1", "Pos"),
    ("negative", "x", "3", "Neg"),
    ("neutral", "n", "2", "Neutral"),
)


def label_bindings(pane: str, *, digits: bool = True, show: bool = True) -> list[Binding]:
    """The a/x/n (and 1/3/2) label keys as bindings with ids ``<pane>.positive`` etc."""
    return [Binding(f"{key},{digit}" if digits else key, f"label('{rating}')", title, id=f"{pane}.{rating}", show=show)
            for rating, key, digit, title in RATING_KEYS]


def undo_bindings(pane: str) -> list[Binding]:
    return [Binding("u", "undo", "Undo", id=f"{pane}.undo"), Binding("U", "redo", "Redo", id=f"{pane}.redo")]
