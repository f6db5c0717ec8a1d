"""The trace list's columns: which are shown, in what order and how wide (the user's choice, remembered
per database), and how they fit the terminal (dropped by priority, the previews get what is left).

A column the user chose is dropped only when the terminal is too narrow for it and the previews: the
lowest priority first (source, steps, ... never the id or the rating). The previews share the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    label: str
    width: int  # default width; 0 = a preview (flexible)
    priority: int  # lower = kept longer when the terminal is narrow
    title: str  # what the chooser calls it
    roomy: int = 0  # shown only while each preview keeps at least this many cells ("if it fits")


SPECS: dict[str, ColumnSpec] = {s.key: s for s in (
    ColumnSpec("id", "id", 14, 1, "trace id"),
    ColumnSpec("rating", "label", 5, 2, "label in the current eval set"),
    ColumnSpec("input", "input", 0, 3, "input preview"),
    ColumnSpec("time", "time", 19, 4, "timestamp"),
    ColumnSpec("err", "err", 3, 5, "has errors"),
    ColumnSpec("output", "output", 0, 6, "output preview"),
    ColumnSpec("steps", "steps", 5, 7, "step count"),
    ColumnSpec("source", "source", 10, 8, "source"),
    ColumnSpec("ext", "trace_id", 20, 9, "external trace_id (the platform's)", roomy=40),
)}
DEFAULT_ORDER = ("time", "id", "source", "input", "output", "steps", "err", "rating", "ext")
DEFAULT_HIDDEN: frozenset[str] = frozenset()
MIN_PREVIEW = 20  # a preview narrower than this is dropped (output first) rather than shown as "Does the …"
COMPACT_BELOW = 120  # terminal columns: the time column reads "MM-DD HH:MM"
COMPACT_TIME = 11
PAD = 2  # RowTable pads each column by one cell on each side
SCROLLBAR = 2
MIN_WIDTH, MAX_WIDTH = 3, 80


@dataclass
class ColumnChoice:
    key: str
    shown: bool = True
    width: int | None = None  # None: the default (previews: share the room)


def default_choice() -> list[ColumnChoice]:
    return [ColumnChoice(k, k not in DEFAULT_HIDDEN) for k in DEFAULT_ORDER]


def from_prefs(saved: object) -> list[ColumnChoice]:
    """The user's saved columns (anything malformed falls back to the defaults, unknown keys dropped,
    columns added in later versions appended in their default state)."""
    if not isinstance(saved, list):
        return default_choice()
    out: list[ColumnChoice] = []
    for item in saved:
        if isinstance(item, dict) and item.get("key") in SPECS and item["key"] not in {c.key for c in out}:
            saved_width = item.get("width")
            width = None
            if isinstance(saved_width, int) and not isinstance(saved_width, bool):
                width = max(MIN_WIDTH, min(MAX_WIDTH, saved_width))
            out.append(ColumnChoice(item["key"], bool(item.get("shown", True)), width))
    for key in DEFAULT_ORDER:
        if key not in {c.key for c in out}:
            out.append(ColumnChoice(key, key not in DEFAULT_HIDDEN))
    return out


def to_prefs(choice: Sequence[ColumnChoice]) -> list[dict[str, object]]:
    return [{"key": c.key, "shown": c.shown, "width": c.width} for c in choice]


def layout(choice: Sequence[ColumnChoice], total: int) -> tuple[list[tuple[str, str, int]], bool]:
    """(key, header, width) of the columns to show in ``total`` cells (the selection marker first), and
    whether the time column is compact."""
    compact = total < COMPACT_BELOW
    shown = [c for c in choice if c.shown and c.key in SPECS]

    def width_of(c: ColumnChoice) -> int:
        if c.width:
            return c.width
        if c.key == "time" and compact:
            return COMPACT_TIME
        return SPECS[c.key].width

    def cost(cols: list[ColumnChoice]) -> int:
        return sum(PAD + (width_of(c) or MIN_PREVIEW) for c in cols)

    room = total - SCROLLBAR - (1 + PAD)  # the selection marker

    def spare_of(cols: list[ColumnChoice]) -> int:
        flexible = [c for c in cols if not width_of(c)]
        return room - cost([c for c in cols if width_of(c)]) - PAD * len(flexible)

    while len(shown) > 1 and cost(shown) > room:
        shown.remove(max(shown, key=lambda c: SPECS[c.key].priority))
    while True:  # columns shown only when the previews keep room to spare (the external trace_id)
        previews = max(1, len([c for c in shown if not width_of(c)]))
        spare = spare_of(shown) // previews
        squeezed = [c for c in shown if SPECS[c.key].roomy and spare < SPECS[c.key].roomy]
        if not squeezed:
            break
        shown.remove(squeezed[0])
    flex = [c for c in shown if not width_of(c)]
    spare = spare_of(shown)
    out = [("sel", "", 1)]
    share = max(spare // max(len(flex), 1), MIN_PREVIEW)
    for c in shown:
        width = width_of(c)
        if not width:  # the last preview takes the remainder of the division
            width = share + (max(0, spare - share * len(flex)) if c is flex[-1] else 0)
        out.append((c.key, SPECS[c.key].label, width))
    return out, compact


class ColumnChooser(ModalScreen[list[ColumnChoice] | None]):
    """Show/hide, order and size the trace list's columns. Remembered per database."""

    BINDINGS = [
        Binding("space", "toggle_shown", "Show/hide", id="columns.toggle"),
        Binding("K,shift+up", "move(-1)", "Move up", id="columns.up"),
        Binding("J,shift+down", "move(1)", "Move down", id="columns.down"),
        Binding("plus,right", "width(1)", "Wider", id="columns.wider"),
        Binding("minus,left", "width(-1)", "Narrower", id="columns.narrower"),
        Binding("r", "reset", "Defaults", id="columns.reset"),
        Binding("enter", "save", "Apply", id="columns.apply", priority=True),
        Binding("escape", "cancel", "Cancel", id="columns.cancel"),
    ]
    DEFAULT_CSS = """
    ColumnChooser { align: center middle; }
    ColumnChooser > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    ColumnChooser OptionList { height: auto; max-height: 14; }
    """

    def __init__(self, choice: Sequence[ColumnChoice]) -> None:
        super().__init__()
        self.choice = [ColumnChoice(c.key, c.shown, c.width) for c in choice]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Trace list columns", style="bold"))
            yield OptionList(*self._options(), id="columns")
            yield Static(Text("space show/hide · K/J move · +/- width · r defaults · Enter apply · "
                              "Esc cancel", style="dim"))

    def _options(self) -> list[Option]:
        out = []
        for c in self.choice:
            spec = SPECS[c.key]
            line = Text("[x] " if c.shown else "[ ] ", style="bold" if c.shown else "dim")
            line.append(f"{spec.label:<9}", style="bold" if c.shown else "dim")
            width = c.width or spec.width
            line.append(f"{'auto' if not width else str(width) + ' cols':<9}")
            line.append(spec.title, style="dim")
            out.append(Option(line, id=c.key))
        return out

    def _refresh(self, highlight: int) -> None:
        options = self.query_one("#columns", OptionList)
        for index, option in enumerate(self._options()):  # in place: rebuilding the list loses the highlight
            options.replace_option_prompt_at_index(index, option.prompt)
        options.highlighted = max(0, min(highlight, len(self.choice) - 1))

    @property
    def _index(self) -> int:
        return self.query_one("#columns", OptionList).highlighted or 0

    def on_mount(self) -> None:
        self.query_one("#columns", OptionList).highlighted = 0
        self.query_one("#columns", OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, _: OptionList.OptionSelected) -> None:
        self.action_save()

    def action_toggle_shown(self) -> None:  # (DOMNode.action_toggle is another action)
        index = self._index
        self.choice[index].shown = not self.choice[index].shown
        self._refresh(index)

    def action_move(self, delta: int) -> None:
        index = self._index
        target = index + delta
        if 0 <= target < len(self.choice):
            self.choice[index], self.choice[target] = self.choice[target], self.choice[index]
            self._refresh(target)

    def action_width(self, delta: int) -> None:
        index = self._index
        c = self.choice[index]
        current = c.width or SPECS[c.key].width or MIN_PREVIEW * 2
        c.width = max(MIN_WIDTH, min(MAX_WIDTH, current + delta))
        self._refresh(index)

    def action_reset(self) -> None:
        self.choice = default_choice()
        self._refresh(0)

    def action_save(self) -> None:
        self.dismiss(self.choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
