"""``?`` in every pane: each binding of the pane with its id and its current keys (after the user's
keymap), and the start-up check of ``keymap.toml`` (unknown ids, two bindings on one key).

Binding ids are what ``keymap.toml`` remaps (``"review.positive" = "a,1,p"``), so the help shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.binding import Binding
from textual.keys import _normalize_key_list
from textual.screen import ModalScreen, Screen


def help_rows(app: Any, screen: Screen[Any]) -> list[tuple[str, str, str]]:
    """(keys, binding id, description) of every binding active on ``screen`` (its focused widget's too),
    one row per id with all its keys, in the order the bindings are declared."""
    rows: dict[str, tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        name = binding.id or binding.action
        keys, _ = rows.setdefault(name, ([], binding.description or binding.action))
        shown = app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    own = {b.id.split(".")[0] for b in getattr(type(screen), "BINDINGS", [])
           if isinstance(b, Binding) and b.id}

    def rank(name: str) -> int:  # the pane's own keys first, then its table's, then the app's
        prefix = name.split(".")[0]
        return 0 if prefix in own else 2 if prefix in ("app", "pane", "screen") or "." not in name else 1

    ordered = sorted(rows.items(), key=lambda item: rank(item[0]))
    return [(" / ".join(keys), name, description) for name, (keys, description) in ordered]


def show_key_help(app: Any, title: str, notes: Iterable[str] = ()) -> None:
    from iofold_tui.ui.panes.review_widgets import KeyHelp

    screen = app.screen
    notes = [*notes,
             'Remap a key by its id in keymap.toml, e.g. "review.positive" = "a,1,p" (see README).']
    app.push_screen(KeyHelp(title, help_rows(app, screen), notes))


def _binding_classes() -> list[type]:
    """Every iofold-tui class that declares bindings (panes, widgets, dialogs), with the panes loaded."""
    from textual.dom import DOMNode

    from iofold_tui.ui.panes import PANES

    for spec in PANES:
        spec.load()
    # Loaded for their classes' bindings: screens and widgets that are not panes.
    from iofold_tui.ui import row_table, trace_columns  # noqa: F401
    from iofold_tui.ui.panes import trace_detail  # noqa: F401

    found: list[type] = []
    stack = [DOMNode]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("iofold_tui") and sub.__dict__.get("BINDINGS"):
                found.append(sub)
    return found


def _bindings(cls: type) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in cls.__dict__.get("BINDINGS", [])]


def keymap_problems(keymap: Mapping[str, str], app_bindings: list[Binding]) -> str | None:
    """One line naming the keymap's unknown ids and the keys it gives to two bindings of one screen,
    or None when the keymap is fine."""
    if not keymap:
        return None
    classes = _binding_classes()
    known = {b.id for cls in classes for b in _bindings(cls) if b.id} | {b.id for b in app_bindings if b.id}
    unknown = sorted(k for k in keymap if k not in known)
    wanted = {k: _normalize_key_list(v) for k, v in keymap.items()}
    clashes: set[str] = set()
    for cls in classes:
        scope = _bindings(cls)
        if issubclass(cls, Screen) and not issubclass(cls, ModalScreen):
            scope = scope + app_bindings  # the app's keys (panes, v, w, ?, q) work on every pane
        by_key: dict[str, set[str]] = {}
        for binding in scope:
            if not binding.id:
                continue
            for key in wanted.get(binding.id, _normalize_key_list(binding.key)).split(","):
                by_key.setdefault(key.strip(), set()).add(binding.id)
        for key, ids in by_key.items():
            if len(ids) > 1 and ids & set(keymap):  # only clashes the user's keymap made
                clashes.add(f"{key} → {' and '.join(sorted(ids))}")
    parts = []
    if unknown:
        parts.append(f"unknown binding id{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:6])}"
                     + (" …" if len(unknown) > 6 else ""))
    if clashes:
        parts.append(f"one key for two bindings: {'; '.join(sorted(clashes)[:4])}"
                     + (" …" if len(clashes) > 4 else ""))
    return "; ".join(parts) if parts else None
