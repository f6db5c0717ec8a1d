"""Pieces of review mode: how one trace reads for a labeller, the status lines, the key help modal."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.review_queue import balance_warning
from iofold_tui.data.labels.store_base import SessionStats
from iofold_tui.data.sanitize import clean, one_line
from iofold_tui.data.text import plural
from iofold_tui.data.traces.detail import FeedbackEntry, TraceDetail
from iofold_tui.data.values import execution_state
from iofold_tui.ui.text import RATING_STYLE, rating_label
from iofold_tui.ui.trace_render import step_text, summary, verdict

STEPS_BUDGET = 16_000  # characters of full steps rendered inline; Enter opens the full trace view


def contradicts(rating: str | None, result: int | None, error: str | None) -> bool:
    """Scoped rule (spec §2): errors and neutral labels are never contradictions."""
    state = execution_state(result, error)
    if state not in ("pass", "fail") or rating not in ("positive", "negative"):
        return False  # an error or a result that is not 0/1 is never a contradiction
    return (rating == "positive") != (state == "pass")


def trace_text(detail: TraceDetail, eval_set_id: str, eval_set_name: str, label: FeedbackRow | None, *,
               blind: bool) -> Text:
    """Summary up front (request, answer, tools, errors, labels), then this set's eval verdicts.
    ``label`` is the live label of this set (the loaded detail may predate the last key press)."""
    # Blind mode: nothing that could anchor the judgement before this set's label, other sets' labels too.
    others = [fb for fb in detail.feedback if fb.eval_set_id != eval_set_id]
    feedback = [] if blind and label is None else list(others)
    if label is not None:
        mine_now = FeedbackEntry(eval_set_id, eval_set_name, label.rating, label.notes, label.updated_at)
        feedback.insert(0, mine_now)
    hidden = 0 if feedback or label is not None else len(others)
    out = summary(replace(detail, feedback=feedback, executions=[]), hidden_labels=hidden if blind else 0)
    mine = [ex for ex in detail.executions if ex.eval_set_id == eval_set_id]
    rest = [ex for ex in detail.executions if ex.eval_set_id != eval_set_id]
    if blind and label is None:
        out.append("EVALS    ", style="bold")
        out.append(f"{plural(len(mine), 'verdict')} hidden: blind mode, label first\n", style="dim")
        return out
    for ex in mine[:12]:
        out.append("EVAL     ", style="bold")
        out.append(f"{one_line(ex.eval_name, 30)} v{ex.version}: ")
        out.append(verdict(ex.result, ex.error))
        if contradicts(label.rating if label else None, ex.result, ex.error):
            out.append("  ⚠ contradicts your label", style="bold magenta")
        out.append(f"  {one_line(ex.error or ex.reason, 110)}\n", style="dim")
    if rest:
        out.append(f"         + {plural(len(rest), 'execution')} of other eval sets' evals\n", style="dim")
    return out


def steps_text(detail: TraceDetail, budget: int = STEPS_BUDGET) -> Text:
    """All steps in full, up to ``budget`` characters (built in a worker; it is the slow part)."""
    out = Text()
    steps = detail.steps.steps
    out.append(f"── {plural(len(steps), 'step')} ──  PgUp/PgDn scroll · Enter opens the step tree / raw "
               "JSON\n", style="bold")
    used = 0
    for index, step in enumerate(steps):
        if used > budget:
            more = plural(len(steps) - index, "more step")
            out.append(f"… {more}: press Enter for the full trace view\n", style="dim")
            break
        part = step_text(step, limit=max(2_000, budget - used))
        used += len(part)
        out.append(f"[{index + 1}] ", style="bold cyan")
        out.append(part)
        out.append("\n")
    if not steps and detail.steps_raw:
        out.append(clean(detail.steps_raw, 4_000), style="dim")
    return out


_local = threading.local()


def wrap_lines(text: Text, width: int) -> list[list[Segment]]:
    """``text`` wrapped to ``width`` cells as ready-to-paint lines. Thread-safe (one Console per thread):
    the review pane calls it in the worker that prefetches the next traces, so showing one is a swap."""
    console: Console | None = getattr(_local, "console", None)
    if console is None:  # never writes anywhere: it only lays text out
        console = _local.console = Console(width=max(width, 1), color_system="truecolor", force_terminal=True,
                                           markup=False, highlight=False, emoji=False, legacy_windows=False)
    if width < 1 or not text:
        return []
    options = console.options.update(width=width, min_width=width, max_width=width, height=None,
                                     no_wrap=False, overflow="fold")
    # Segments, not Strips: a Strip carries several caches, and thousands of them per prefetched trace
    # surviving into the oldest GC generation made full collections (100+ ms pauses) frequent.
    return console.render_lines(text, options, pad=True)


class ReviewDocument(ScrollView, can_focus=False):
    """The trace being reviewed: its summary, then its steps, as pre-wrapped lines (``wrap_lines``) in one
    line-API scroller. A trace change swaps the lines in and repaints only the rows on screen; a Static
    would lay out and render all of its text (and its container re-arrange) on every label key.
    Never takes focus, so the arrows stay next/previous; PgUp/PgDn/Home/End and the wheel scroll it.

    The scroll position is drawn in the last column of the lines themselves: Textual's ScrollBar widget
    cost as much to repaint on each trace change (~3 ms) as all of the text."""

    DEFAULT_CSS = "ReviewDocument { height: 1fr; padding: 0 0 0 1; overflow-y: hidden; overflow-x: hidden; }"
    THUMB_GAP = 2  # cells right of the text: a space and the position column

    def __init__(self, *, id: str | None = None) -> None:  # ``id`` shadows the builtin: Textual's name
        super().__init__(id=id)
        self.summary = Text()
        self.steps: Text | None = None  # the sources, re-wrapped on a width change
        self._summary_lines: list[list[Segment]] = []
        self._steps_lines: list[list[Segment]] = []
        self._wrapped_for = 0
        self._line_style = Style()
        self._thumb = range(0)
        self._thumb_cells = (Segment(" "), Segment(" "))  # (track, thumb)

    @property
    def allow_vertical_scroll(self) -> bool:  # overflow is hidden: no ScrollBar widget, but it scrolls
        return self.max_scroll_y > 0

    @property
    def wrap_width(self) -> int:
        """Cells of text per line: the content width less the position column."""
        return max(self.size.width - self.THUMB_GAP, 0)

    def show(self, summary: Text, steps: Text | None = None, lines: list[list[Segment]] | None = None,
             width: int = 0, summary_lines: list[list[Segment]] | None = None) -> None:
        """A new trace, from the top. ``lines`` / ``summary_lines`` are ``steps`` / ``summary`` wrapped for
        ``width`` (in a worker); whatever is missing or was wrapped for another width is wrapped here."""
        self.steps = steps
        width_now = self.wrap_width
        if steps is None:
            lines = []
        elif lines is None or width != width_now or width == 0:
            lines = wrap_lines(steps, width_now)
        self._steps_lines = lines
        self.scroll_to(y=0, animate=False, immediate=True)
        self.set_summary(summary, summary_lines if width == width_now else None)

    def set_summary(self, summary: Text, lines: list[list[Segment]] | None = None) -> None:
        """Replace the summary only (a label, blind mode): the steps and the scroll position stay."""
        self.summary = summary
        self._wrapped_for = self.wrap_width
        self._summary_lines = lines if lines is not None else wrap_lines(summary, self._wrapped_for)
        height = len(self._summary_lines) + (1 + len(self._steps_lines) if self._steps_lines else 0)
        size = Size(self._wrapped_for, height)
        if size != self.virtual_size:
            # Our region never depends on the content (1fr), so skip the whole-screen re-layout that
            # assigning virtual_size requests: only the scroll limit changes.
            self.set_reactive(ReviewDocument.virtual_size, size)
            self.scroll_y = self.validate_scroll_y(self.scroll_y)
        self.refresh()

    def on_resize(self) -> None:
        if self.wrap_width != self._wrapped_for:
            width = self.wrap_width
            self._steps_lines = wrap_lines(self.steps, width) if self.steps is not None else []
            self.set_summary(self.summary)

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per frame, not once per line: the base style, and where the position thumb sits.
        self._line_style = self.rich_style
        window, total = self.size.height, self.virtual_size.height
        if 0 < window < total:
            length = max(1, window * window // total)
            top = round(self.scroll_offset.y * (window - length) / (total - window))
            self._thumb = range(top, top + length)
        else:
            self._thumb = range(0)
        styles = self.styles
        track = self.background_colors[0] + styles.scrollbar_background
        thumb = track + styles.scrollbar_color
        self._thumb_cells = (Segment(" ", Style(bgcolor=track.rich_color)),
                             Segment(" ", Style(bgcolor=thumb.rich_color)))
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        width, style = self.wrap_width, self._line_style
        summary = self._summary_lines
        if index < len(summary):
            segments = summary[index]
        elif self._steps_lines and len(summary) < index <= len(summary) + len(self._steps_lines):
            segments = self._steps_lines[index - len(summary) - 1]
        else:
            segments = []
        body = Strip(segments, self._wrapped_for if segments else 0)
        if body.cell_length != width:
            body = body.crop_extend(0, width, style)
        cell = self._thumb_cells[y in self._thumb]
        return Strip([*body.apply_style(style), Segment(" ", style), cell], width + self.THUMB_GAP)


def label_line(label: FeedbackRow | None, draft: str | None) -> Text:
    out = Text("THIS SET ", style="bold")
    if label is None:
        out.append("unlabelled", style="dim")
    else:
        out.append(rating_label(label.rating), style=RATING_STYLE.get(label.rating, "bold"))
        if label.notes:
            out.append(f'  "{one_line(label.notes, 100)}"', style="italic")
    if draft:
        out.append(f'  note draft: "{one_line(draft, 60)}" (saved with the label)', style="yellow")
    return out


def progress_text(counts: dict[str, int], minimum: int, stats: SessionStats | None, left: int | None) -> Text:
    """"k of minimum_examples labelled (pos / neg / neutral)", balance warning, session speed."""
    pos, neg, neu = counts.get("positive", 0), counts.get("negative", 0), counts.get("neutral", 0)
    total = pos + neg + neu
    out = Text()
    out.append(f"{total:,} labelled", style="bold green" if total >= minimum else "bold")
    if total >= minimum:
        out.append(f" · minimum {plural(minimum, 'example')} reached", style="green")
    else:
        out.append(f" · {minimum - total:,} more to the minimum of {plural(minimum, 'example')}")
    out.append(" (")
    out.append(f"{pos:,} pos", style=RATING_STYLE["positive"])
    out.append(" / ")
    out.append(f"{neg:,} neg", style=RATING_STYLE["negative"])
    out.append(" / ")
    out.append(f"{neu:,} neutral", style=RATING_STYLE["neutral"])
    out.append(")")
    warning = balance_warning(counts)
    if warning:
        out.append(f"  ⚠ {warning}", style="bold yellow")
    if left is not None:
        out.append(f"  ·  {left:,} unlabelled left", style="dim")
    if stats is not None:
        median = "—" if stats.median_seconds is None else f"{stats.median_seconds:.1f} s"
        out.append(f"  ·  session: {plural(stats.labels, 'label')}, {stats.labels_per_hour:.0f}/h, "
                   f"median {median}/trace", style="cyan")
    who = getattr(stats, "annotator", None)  # recorded with every label (issue 18); first: seen at 80 columns
    return Text.assemble((f"labelling as {one_line(who, 24)}", "bold cyan"), "  ·  ", out) if who else out


class KeyHelp(ModalScreen[None]):
    """``?``: every key of the pane with what it does (after the user's keymap)."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close", id="help.close")]
    DEFAULT_CSS = """
    KeyHelp { align: center middle; }
    KeyHelp > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
        background: $surface; padding: 0 1;
    }
    KeyHelp VerticalScroll { height: auto; max-height: 50; }
    """

    def __init__(self, title: str, rows: Sequence[tuple[str, str, str]], notes: Sequence[str] = ()) -> None:
        super().__init__()
        self.title_text = title
        self.rows = list(rows)
        self.notes = list(notes)

    def compose(self) -> ComposeResult:
        body = Text()
        body.append(f"{'keys':<16}{'binding id':<26}what it does\n", style="bold")
        for keys, binding_id, description in self.rows:
            body.append(f"{keys:<15} ", style="bold cyan")
            body.append(f"{binding_id:<25} ", style="dim")
            body.append(description + "\n")
        for note in self.notes:
            body.append("\n" + note, style="dim")
        with Vertical():
            yield Static(Text(self.title_text + "   (Esc closes)", style="bold"))
            with VerticalScroll():
                yield Static(body)
