"""Small shared widgets: the pane header and the modal pickers/prompts every pane uses."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from iofold_tui.data.sanitize import one_line


class SteadyStatic(Static):
    """A Static that re-lays out the screen only when its height changes. Static.update always asks for a
    layout, and these lines (pane header, review bar) change on every key while their height rarely does."""

    def __init__(self, content: Text | str = "", *, id: str | None = None) -> None:
        super().__init__(content, id=id)
        self._height = -1

    def set_text(self, text: Text) -> None:
        width = self.size.width
        self.update(text, layout=False)
        lines = text.plain.split("\n")
        if not width:
            height = -1
        elif max(map(cell_len, lines)) <= width:  # nothing wraps: the common case, without a trial render
            height = len(lines)
        else:
            # Textual's own Widget hands its styles over the same way; get_height annotates a RulesMap.
            height = self.visual.get_height(self.styles, width)  # type: ignore[arg-type]
        if height != self._height or height < 0:
            self.refresh(layout=True)
        self._height = height


FIRST_BUILD_DELAY_S = 0.12


class KeyFooter(Footer):
    """A Footer that rebuilds its keys only when what it shows changed. Textual's rebuilds all of them (~25
    FooterKey widgets, each styled) on every focus, screen-stack and bindings signal: six times while the
    trace list starts, and again on every pane reload."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[object, ...] | None = None
        self._queued = False

    def _signature(self) -> tuple[object, ...]:
        keys = tuple((b.key, b.action, b.description, enabled, tooltip, self.app.get_key_display(b))
                     for (_, b, enabled, tooltip) in self.screen.active_bindings.values() if b.show)
        return (self.show_command_palette, self.compact, keys)

    @property
    def ready(self) -> bool:
        """The keys are built (the first build waits for the pane's first frame)."""
        return self._shown is not None

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._queued:
            self._queued = True  # many signals in one burst: one check after the refresh
            if self._shown is None:
                # Styling ~20 keys costs ~50 ms: built just after the pane's first frame, not before it. The
                # delay counts from a refresh (the first signals come while the pane still mounts; counted
                # from them, a loaded machine built the keys before the first rows were on screen).
                self.call_after_refresh(self.set_timer, FIRST_BUILD_DELAY_S, self._rebuild)
            else:
                self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._queued = False
        signature = self._signature()
        if signature != self._shown:
            await self.recompose()
            self._shown = signature  # after: ``ready`` means the keys are mounted


class PaneHeader(SteadyStatic):
    """One or two lines: where you are (source, workspace, eval set) and the pane's own status."""

    DEFAULT_CSS = """
    PaneHeader { height: auto; max-height: 3; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, title: str, context: Sequence[str], status: Text | str = "", pane_keys: str = "") -> None:
        width = self.size.width or (self.app.size.width if self.is_attached else 0)
        parts = [one_line(part, 60) for part in context if part]
        short = f"   {pane_keys} ?" if pane_keys else ""
        if width:  # one line, never two: the first context parts give way (down to 12 cells each), so the
            # last ones — the source's state, labels pending — stay whole
            room = width - 2 - (len(title) + 2) - len(short) - 2 * len(parts)
            for i, part in enumerate(parts):
                excess = sum(len(p) for p in parts) - room
                if excess <= 0:
                    break
                if len(part) > 12:
                    parts[i] = part[:max(11, len(part) - excess - 1)] + "…"
        line = Text()
        line.append(f" {title} ", style="bold reverse")
        for part in parts:
            line.append("  ")
            line.append(part, style="bold")
        if pane_keys:  # on a narrow terminal the short form
            wide = f"   panes: {pane_keys} · ? keys"
            fits = not width or line.cell_len + len(wide) <= width - 2
            line.append(wide if fits else short, style="dim")
        if width and line.cell_len > width - 2:
            line.truncate(width - 2, overflow="ellipsis")
        if status:
            line.append("\n")
            line.append(status if isinstance(status, Text) else Text(status))
        self.set_text(line)


class PickOne(ModalScreen[str | None]):
    """Choose one value from a list (eval set, workspace, filter values). Esc cancels."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="modal.cancel")]
    DEFAULT_CSS = """
    PickOne { align: center middle; }
    PickOne > Vertical {
        width: 70; height: auto; max-height: 80%; border: thick $accent; background: $surface; padding: 0 1;
    }
    PickOne OptionList { height: auto; max-height: 30; }
    """

    def __init__(self, title: str, options: Sequence[tuple[str, str]], current: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.options = list(options)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            yield OptionList(*[Option(Text(one_line(label, 100)), id=value) for value, label in self.options])

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        for index, (value, _) in enumerate(self.options):
            if value == self.current:
                ol.highlighted = index
        ol.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class Prompt(ModalScreen[str | None]):
    """Ask for one line of text. Enter accepts, Esc cancels."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="modal.cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 70; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            yield Input(value=self.value, placeholder=self.placeholder)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """Yes/no question; y/Enter confirm, n/Esc cancel."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="modal.yes"),
        Binding("n,escape", "answer(False)", "No", id="modal.no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 70; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    """

    def __init__(self, question: Text | str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question if isinstance(self.question, Text) else Text(self.question))
            yield Static(Text("y / Enter = yes     n / Esc = no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
