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


# One footer item each ("a x n Pos/Neg/Neu", "u U Undo/Redo"): a footer of single keys did not fit 140
# columns in review mode. ``?`` lists every key on its own line.
LABEL_GROUP = Binding.Group("Pos/Neg/Neu", compact=True)
UNDO_GROUP = Binding.Group("Undo/Redo", compact=True)


def label_bindings(pane: str, *, digits: bool = True, show: bool = True) -> list[Binding]:
    """The a/x/n (and 1/3/2) label keys as bindings with ids ``<pane>.positive`` etc."""
    return [Binding(f"{key},{digit}" if digits else key, f"label('{rating}')", title, id=f"{pane}.{rating}",
                    show=show, group=LABEL_GROUP)
            for rating, key, digit, title in RATING_KEYS]


def undo_bindings(pane: str) -> list[Binding]:
    return [Binding("u", "undo", "Undo", id=f"{pane}.undo", group=UNDO_GROUP),
            Binding("U", "redo", "Redo", id=f"{pane}.redo", group=UNDO_GROUP)]
