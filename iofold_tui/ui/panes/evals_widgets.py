"""Line-API viewers of the evals pane: highlighted code and diffs, lazily highlighted, searchable.

Highlighting a 10k-line eval with pygments takes seconds, so it never runs on the UI thread and never
runs ahead of need: a ``Highlighter`` keeps pygments' token generator and a worker advances it only to a
little past the lowest line the viewer has shown. Lines not highlighted yet are drawn plain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from iofold_tui.data.evals.code_text import FieldDiff, split_lines
from iofold_tui.data.sanitize import clean
from iofold_tui.ui.text import code

HIGHLIGHT_MAX_LINES = 20_000  # beyond this lines stay plain (lexing to line N costs all lines before it)
LOOKAHEAD = 120  # lines highlighted past the lowest line shown
MATCH = Style(bgcolor="yellow", color="black")
CURRENT = Style(bgcolor="dark_orange", color="black", bold=True)
DIFF_BG = {"add": Style(bgcolor="#12361a"), "del": Style(bgcolor="#451818"),
           "replace": Style(bgcolor="#2c2c10")}
SIGN = {"add": "+", "del": "-", "equal": " "}
DIM = Style(dim=True)


class Highlighter:
    """Per-line highlighted ``Text`` of one source, produced on demand from a background worker."""

    def __init__(self, source: str, max_lines: int | None = None) -> None:
        cleaned = clean(source, limit=None)
        self.plain = split_lines(cleaned)
        self.lines: list[Text] = []
        self.limit = min(len(self.plain), HIGHLIGHT_MAX_LINES if max_lines is None else max_lines)
        self.target = 0
        self.running = False
        syntax = code(cleaned)  # the app's one pygments setup (lexer options, theme)
        self._theme = Syntax.get_theme("monokai")
        lexer = syntax.lexer
        self._tokens: Iterator[tuple[object, str]] | None = iter(lexer.get_tokens(cleaned)) if lexer else None
        self._styles: dict[object, Style] = {}
        self._current = Text()

    @property
    def capped(self) -> bool:
        return self.limit < len(self.plain)

    @property
    def pending(self) -> bool:
        return self._tokens is not None and len(self.lines) < min(self.target, self.limit)

    def want(self, line: int) -> None:
        self.target = max(self.target, min(line + LOOKAHEAD, self.limit))

    def run(self, cancelled: Callable[[], bool], progress: Callable[[], object], step: int = 100) -> None:
        """Advance the lexer until ``target`` (which may grow meanwhile); called from one worker at a time."""
        next_report = len(self.lines) + step
        while self.pending and not cancelled():
            try:
                ttype, value = next(self._tokens)  # type: ignore[arg-type]
            except StopIteration:
                self._finish_line()
                self._tokens = None
                break
            style = self._styles.get(ttype)
            if style is None:
                themed = self._theme.get_style_for_token(ttype)  # type: ignore[arg-type]
                # Foreground only: the theme's background would paint blocks over the app's own theme.
                style = self._styles[ttype] = Style(color=themed.color, bold=themed.bold,
                                                    italic=themed.italic, underline=themed.underline)
            parts = value.split("\n")
            for index, part in enumerate(parts):
                if index:
                    self._finish_line()
                if part:
                    self._current.append(part, style)
            if len(self.lines) >= next_report:
                next_report += step
                progress()
        progress()

    def _finish_line(self) -> None:
        index = len(self.lines)
        if index < len(self.plain):
            line = self._current
            # pygments must reproduce the text exactly; if it did not, show that line plain.
            self.lines.append(line if line.plain == self.plain[index] else Text(self.plain[index]))
        self._current = Text()

    def line(self, index: int) -> Text:
        return self.lines[index] if index < len(self.lines) else Text(self.plain[index])


class LinesView(ScrollView, can_focus=True):
    """A read-only, scrollable list of lines with a fixed gutter and case-insensitive search."""

    DEFAULT_CSS = "LinesView { height: 1fr; } LinesView:focus { border-left: outer $accent; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.search_text = ""
        self.matches: list[int] = []  # line indexes holding the query
        self.current = -1  # index into matches
        self.placeholder = ""
        self._cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self.on_need: Callable[[Highlighter], None] | None = None

    # -- what subclasses provide -------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        return 0

    def plain_line(self, index: int) -> str:
        return ""

    def render_row(self, index: int, scroll_x: int, width: int) -> Strip:
        return Strip.blank(width)

    def highlighters(self) -> list[Highlighter]:
        return []

    # -- shared ------------------------------------------------------------------------------------
    def reset(self, width: int, keep_scroll: bool = False) -> None:
        self._cache.clear()
        self.virtual_size = Size(width, max(self.line_count, 1))
        if not keep_scroll:
            self.scroll_to(0, 0, animate=False)
        if self.search_text:
            self.search(self.search_text, jump=False)
        self.refresh()
        self.call_after_refresh(self.request_highlight)

    def invalidate(self) -> None:
        self._cache.clear()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        # The width left of the vertical scrollbar: with the widget's width the right half of a side-by-side
        # diff ran under the scrollbar.
        index, width = scroll_y + y, self.scrollable_content_region.width or self.size.width
        if self.line_count == 0:
            placeholder = Text(self.placeholder if y == 0 else "", style="dim italic")
            return Strip(list(placeholder.render(self.app.console))).crop_extend(0, width, None)
        if index >= self.line_count:
            return Strip.blank(width, self.rich_style)
        key = (index, scroll_x, width)
        strip = self._cache.get(key)
        if strip is None:
            # The widget's style as the base: token styles carry no background of their own.
            strip = self._cache[key] = self.render_row(index, scroll_x, width).apply_style(self.rich_style)
        return strip.apply_offsets(scroll_x, index)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.request_highlight()

    def on_resize(self) -> None:
        self._cache.clear()
        self.request_highlight()

    def request_highlight(self) -> None:
        bottom = int(self.scroll_y) + max(self.size.height, 40)
        for hl in self.highlighters():
            hl.want(bottom)
            if hl.pending and not hl.running and self.on_need is not None:
                self.on_need(hl)

    def mark(self, text: Text, index: int) -> Text:
        """Highlight the query inside one line's text (the current match stronger)."""
        if not self.search_text:
            return text
        plain, needle = text.plain.lower(), self.search_text.lower()
        style = CURRENT if self.current >= 0 and self.matches[self.current] == index else MATCH
        start = plain.find(needle)
        if start < 0:
            return text
        text = text.copy()
        while start >= 0:
            text.stylize(style, start, start + len(needle))
            start = plain.find(needle, start + len(needle))
        return text

    def search(self, query: str, *, jump: bool = True) -> int:
        """Find every line holding ``query``; jump to the first at or after the top of the view."""
        self.search_text = query
        needle = query.lower()
        self.matches = []
        if needle:
            self.matches = [i for i in range(self.line_count) if needle in self.plain_line(i).lower()]
        self.current = -1
        if self.matches and jump:
            top = int(self.scroll_y)
            self.current = next((k for k, i in enumerate(self.matches) if i >= top), 0)
            self._show_current()
        self.invalidate()
        return len(self.matches)

    def next_match(self, forward: bool = True) -> int | None:
        if not self.matches:
            return None
        self.current = (self.current + (1 if forward else -1)) % len(self.matches) if self.current >= 0 else 0
        self._show_current()
        self.invalidate()
        return self.matches[self.current]

    def _show_current(self) -> None:
        line = self.matches[self.current]
        self.scroll_to(y=max(0, line - self.size.height // 3), animate=False)
        self.request_highlight()


def _render(text: Text, console: object) -> list[Segment]:
    return list(text.render(console))  # type: ignore[arg-type]


def _width(lines: list[str]) -> int:
    return max((len(x) if x.isascii() else cell_len(x) for x in lines), default=0)


class CodeView(LinesView):
    """Highlighted code with line numbers."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hl: Highlighter | None = None

    def set_code(self, hl: Highlighter | None, placeholder: str = "", keep_scroll: bool = False) -> None:
        """Show ``hl``'s source; ``keep_scroll`` when it is the same eval re-read (the database changed)."""
        self.hl, self.placeholder = hl, placeholder
        lines = hl.plain if hl else []
        self.reset(len(str(len(lines))) + 2 + _width(lines), keep_scroll)

    @property
    def line_count(self) -> int:
        return len(self.hl.plain) if self.hl else 0

    def plain_line(self, index: int) -> str:
        return self.hl.plain[index] if self.hl else ""

    def highlighters(self) -> list[Highlighter]:
        return [self.hl] if self.hl else []

    def render_row(self, index: int, scroll_x: int, width: int) -> Strip:
        assert self.hl is not None
        digits = len(str(self.line_count))
        is_current = self.current >= 0 and self.matches[self.current] == index
        gutter = Text(f"{index + 1:>{digits}}{'▶' if is_current else ' '} ",
                      style="bold yellow" if is_current else "dim")
        body = self.mark(self.hl.line(index), index)
        left = Strip(_render(gutter, self.app.console))
        body_width = max(width - left.cell_length, 0)
        right = Strip(_render(body, self.app.console)).crop_extend(scroll_x, scroll_x + body_width,
                                                                    self.rich_style)
        return Strip.join([left, right])


@dataclass(frozen=True)
class _Row:
    kind: str  # title / hunk / equal / add / del / replace
    field: str
    text: str = ""  # title, hunk header or unified text
    old_no: int | None = None
    new_no: int | None = None
    old_text: str | None = None
    new_text: str | None = None


class DiffView(LinesView):
    """Code, prompt and instructions diffs: unified or side by side, code lines syntax-highlighted."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[_Row] = []
        self.side_by_side = False
        self.old_hl: Highlighter | None = None
        self.new_hl: Highlighter | None = None
        self.digits = 1

    def set_diff(self, sections: list[FieldDiff] | None, old_hl: Highlighter | None,
                 new_hl: Highlighter | None, side_by_side: bool, placeholder: str = "") -> None:
        self.old_hl, self.new_hl = old_hl, new_hl
        self.side_by_side, self.placeholder = side_by_side, placeholder
        self.rows = []
        widest, biggest = 0, 1
        for sec in sections or []:
            change = "identical" if sec.identical else f"+{sec.added} −{sec.removed}"
            self.rows.append(_Row("title", sec.field, f"── {sec.label}: {change} "))
            if side_by_side:
                for r in sec.side:
                    header = (r.old_text or "") if r.kind == "hunk" else ""
                    self.rows.append(_Row(r.kind, sec.field, header, r.old_no, r.new_no, r.old_text,
                                          r.new_text))
            else:
                self.rows += [_Row(d.kind, sec.field, d.text, d.old_no, d.new_no) for d in sec.unified]
        for row in self.rows:
            biggest = max(biggest, row.old_no or 0, row.new_no or 0)
            widest = max(widest, _width([row.text, row.old_text or "", row.new_text or ""]))
        self.digits = len(str(biggest))
        self.reset((2 * (widest + self.digits + 2) + 1) if side_by_side else widest + 2 * self.digits + 4)

    @property
    def line_count(self) -> int:
        return len(self.rows)

    def plain_line(self, index: int) -> str:
        row = self.rows[index]
        if not self.side_by_side or row.kind in ("title", "hunk"):
            return row.text
        return f"{row.old_text or ''}\n{row.new_text or ''}"

    def highlighters(self) -> list[Highlighter]:
        return [h for h in (self.old_hl, self.new_hl) if h is not None]

    def _content(self, row: _Row, side: str) -> Text:
        number, raw = (row.old_no, row.old_text) if side == "old" else (row.new_no, row.new_text)
        if not self.side_by_side:
            number, raw = (row.old_no, row.text) if row.kind == "del" else (row.new_no, row.text)
        hl = self.old_hl if (side == "old" or row.kind == "del") else self.new_hl
        if row.field == "code" and hl is not None and number is not None and number <= len(hl.plain):
            return hl.line(number - 1)
        return Text(clean(raw or "", limit=None).replace("\n", "⏎"))

    def render_row(self, index: int, scroll_x: int, width: int) -> Strip:
        row, console = self.rows[index], self.app.console
        is_current = self.current >= 0 and self.matches[self.current] == index
        if row.kind in ("title", "hunk"):
            style = "bold reverse" if row.kind == "title" else "cyan"
            text = self.mark(Text(clean(row.text, limit=None), style=style), index)
            return Strip(_render(text, console)).crop_extend(0, width, self.rich_style)
        if not self.side_by_side:
            digits, bg = self.digits, DIFF_BG.get(row.kind)
            nums = f"{row.old_no or '':>{digits}} {row.new_no or '':>{digits}}{'▶' if is_current else ' '}"
            gutter = Text(nums, style="bold yellow" if is_current else "dim")
            gutter.append(SIGN.get(row.kind, " ") + " ", style=Style(bold=True) + (bg or Style()))
            body = self.mark(self._content(row, "new"), index)
            if bg:
                body = body.copy()
                body.stylize(bg)
            left = Strip(_render(gutter, console))
            body_width = max(width - left.cell_length, 0)
            right = Strip(_render(body, console)).crop_extend(scroll_x, scroll_x + body_width, bg)
            return Strip.join([left, right])
        half = max((width - 1) // 2, 4)
        parts: list[Strip] = []
        for side in ("old", "new"):
            number = row.old_no if side == "old" else row.new_no
            present = (row.old_text if side == "old" else row.new_text) is not None
            changed = row.kind in ("del" if side == "old" else "add", "replace")
            bg = DIFF_BG["del" if side == "old" else "add"] if changed else None
            gutter = Text(f"{number or '':>{self.digits}}{'▶' if is_current else ' '}",
                          style="bold yellow" if is_current else "dim")
            body = self.mark(self._content(row, side), index) if present else Text("")
            if bg and present:
                body = body.copy()
                body.stylize(bg)
            g = Strip(_render(gutter, console))
            cw = max(half - g.cell_length, 0)
            body_strip = Strip(_render(body, console))
            parts += [g, body_strip.crop_extend(scroll_x, scroll_x + cw, bg if present else None)]
            if side == "old":
                parts.append(Strip([Segment("│", DIM)]))
        return Strip.join(parts).crop_extend(0, width, self.rich_style)


DISAGREE = "bold black on yellow"  # a stored counter the recomputed one contradicts (evals_text.py)
