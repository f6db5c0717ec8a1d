"""Compare two eval versions side by side: confusion matrices, metric deltas, and the traces that flipped.

Opened with ``C`` in the evals pane (the selected version against the one it derives from, or one you
pick) and with ``ctrl+g`` in the eval editor. The numbers come from ``data.evals.compare`` in a worker
(one aggregate pass, cached per database fingerprint). ``Enter`` on a flip list (fixed, broken, changed,
run by one side only) opens exactly those traces as a review queue, as the matrix does for a confusion
cell; ``d`` shows the code diff, ``p`` promotes B (the active version of its name is archived; undoable
with ``iofold-tui undo-version``), ``x`` swaps the sides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import NoScreen
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evals.compare import CompareError, Comparison, cached_compare, cached_only, iter_flips
from iofold_tui.data.evals.drafts import DraftError, promote, workbench_path
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.navigation import OpenReviewQueue
from iofold_tui.ui.panes.compare_text import (
    diff_text,
    grid,
    matrix_table,
    metrics_table,
    side_by_side,
    version_label,
)
from iofold_tui.ui.widgets import Confirm, KeyFooter

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp

QUEUE_CAP = 50_000  # trace ids handed to the review queue from one flip list (as the matrix drill-down)
FLIP_ROWS = (("fixed", "fixed", "contradiction under A → agreement under B"),
             ("broken", "broken", "agreement under A → contradiction under B"),
             ("changed", "changed verdict", "pass / fail / error / invalid differs (any label)"),
             ("only_a", "run by A only", "B has no result for these traces"),
             ("only_b", "run by B only", "A has no result for these traces"))



@dataclass
class Compared(Message):
    cmp: Comparison | None
    error: str | None
    elapsed_ms: float


@dataclass
class QueueReady(Message):
    ids: list[str]
    more: bool
    title: str


@dataclass
class Promoted(Message):
    text: str
    ok: bool


class FlipList(Widget, can_focus=True):
    """The flip lists with their counts; up/down moves, Enter posts ``Chosen`` (a light widget: one
    render)."""

    BINDINGS = [Binding("up,k", "move(-1)", "Up", show=False, id="compare.up"),
                Binding("down,j", "move(1)", "Down", show=False, id="compare.down"),
                Binding("enter", "choose", "Review list", id="compare.open")]
    DEFAULT_CSS = "FlipList { height: auto; margin: 1 0 0 0; padding: 0 1; }"
    cursor: reactive[int] = reactive(0)

    @dataclass
    class Chosen(Message):
        kind: str

    def __init__(self, *, id: str | None = None) -> None:  # ``id`` shadows the builtin: Textual's name
        super().__init__(id=id)
        self.counts: dict[str, int] = {}

    def show(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.refresh(layout=True)

    def render(self) -> Text:
        rows = [[Text(h, style="bold") for h in ("traces", "count", "what")]]
        for i, (key, label, what) in enumerate(FLIP_ROWS):
            n = self.counts.get(key, 0)
            style = "green" if key == "fixed" and n else "bold red" if key == "broken" and n else ""
            mark = " reverse" if i == self.cursor and self.has_focus else ""
            rows.append([Text(label, style=style + mark), Text(f"{n:,}", style=style + mark),
                         Text(what, style="dim" + mark)])
        return grid(rows, {1}, gap=2)

    def action_move(self, step: int) -> None:
        self.cursor = (self.cursor + step) % len(FLIP_ROWS)

    def action_choose(self) -> None:
        self.post_message(self.Chosen(FLIP_ROWS[self.cursor][0]))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


class _Footer(KeyFooter):
    """KeyFooter (keys built after the first frame: ~50 ms less before it) that skips its delayed build
    when the screen was dismissed before it ran (KeyFooter itself then raises NoScreen)."""

    async def _rebuild(self) -> None:
        try:
            attached = self.is_attached and self.screen is not None
        except NoScreen:
            attached = False
        if attached:
            await super()._rebuild()
        else:
            self._queued = False


class CodeDiffScreen(Screen[None]):
    """The unified diff of the two versions' code (``d`` in the compare view; ``d`` or Esc goes back)."""

    BINDINGS = [Binding("d,escape", "app.pop_screen", "Back", id="compare.diff_back")]
    DEFAULT_CSS = """
    CodeDiffScreen #cmp-diff-title { height: auto; padding: 0 1; background: $boost; }
    CodeDiffScreen #cmp-diff { padding: 0 1; }
    """

    def __init__(self, cmp: Comparison) -> None:
        super().__init__()
        self.cmp = cmp

    def compose(self) -> ComposeResult:
        title = Text("Code diff  ", style="bold")
        title.append(f"A {version_label(self.cmp.a)}", style="bold red")
        title.append("  →  ")
        title.append(f"B {version_label(self.cmp.b)}", style="bold green")
        yield Static(title, id="cmp-diff-title")
        with VerticalScroll(id="cmp-diff-scroll"):
            yield Static(diff_text(self.cmp), id="cmp-diff")
        yield _Footer()

    def on_mount(self) -> None:
        self.query_one("#cmp-diff-scroll").focus()


class CompareScreen(Screen[None]):
    AUTO_FOCUS = None  # focused in on_mount without scrolling (the matrices stay at the top)
    BINDINGS = [
        Binding("d", "toggle_diff", "Code diff", id="compare.diff"),
        Binding("p", "promote", "Promote B", id="compare.promote"),
        Binding("x", "swap", "Swap A/B", id="compare.swap"),
        Binding("escape", "close", "Back", id="compare.close"),
    ]
    DEFAULT_CSS = """
    CompareScreen #cmp-title { height: auto; padding: 0 1; background: $boost; }
    CompareScreen #cmp-stats { height: 1fr; }
    CompareScreen #cmp-matrices { height: auto; padding: 0 1; }
    CompareScreen #cmp-metrics { height: auto; padding: 1 1 0 1; }
    """

    @property
    def iofold(self) -> IofoldApp:
        """The app with iofold's state and source (``self.app`` is typed as any Textual app)."""
        return cast("IofoldApp", self.app)

    def __init__(self, eval_a: str, eval_b: str) -> None:
        super().__init__()
        self.eval_a, self.eval_b = eval_a, eval_b
        self.cmp: Comparison | None = None
        self.first_screen_ms: float | None = None  # created → numbers on screen (bench_workbench reads it)
        self._asked = time.perf_counter()

    def compose(self) -> ComposeResult:
        yield Static(Text("comparing…", style="dim"), id="cmp-title")
        with VerticalScroll(id="cmp-stats"):  # few widgets: the first frame is mostly text
            yield Static(id="cmp-matrices")
            yield FlipList(id="cmp-flips")
            yield Static(id="cmp-metrics")
        yield _Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one(FlipList), scroll_visible=False)
        self._reload(first=True)

    def _reload(self, first: bool = False) -> None:
        if not first:
            self._asked = time.perf_counter()
        app = self.iofold
        try:  # a valid cache is read here, so the numbers are in the first frame (no worker round trip)
            cmp = cached_only(app.db.conn(), app.db.path, self.eval_a, self.eval_b)
        except Exception:  # any trouble: the worker computes and reports it
            cmp = None
        if cmp is not None:
            self.on_compared(Compared(cmp, None, (time.perf_counter() - self._asked) * 1000))
        else:
            self._compute(self.eval_a, self.eval_b)

    @work(thread=True, exclusive=True, group="compare")
    def _compute(self, eval_a: str, eval_b: str) -> None:
        app = self.iofold
        started = time.perf_counter()
        try:
            cmp = cached_compare(app.db.conn(), app.db.path, eval_a, eval_b)
        except CompareError as exc:
            self.post_message(Compared(None, str(exc), 0.0))
            return
        except Exception as exc:  # shown, never a crash
            self.post_message(Compared(None, f"{type(exc).__name__}: {exc}", 0.0))
            return
        self.post_message(Compared(cmp, None, (time.perf_counter() - started) * 1000))

    def on_compared(self, message: Compared) -> None:
        title = self.query_one("#cmp-title", Static)
        if message.cmp is None:
            title.update(Text(one_line(f"cannot compare: {message.error}", 300), style="bold red"))
            return
        cmp = self.cmp = message.cmp
        head = Text()
        head.append("Compare  ", style="bold")
        head.append(f"A {version_label(cmp.a)} ({one_line(cmp.a.status, 10)})", style="bold red")
        head.append("  →  ")
        head.append(f"B {version_label(cmp.b)} ({one_line(cmp.b.status, 10)})", style="bold green")
        head.append(f"  ·  {'cached' if cmp.cached else 'computed'} in {message.elapsed_ms:,.0f} ms"
                    "  ·  Enter on a list: review those traces", style="dim")
        title.update(head)
        width = self.size.width or self.app.size.width
        compact = width < 120
        self.query_one("#cmp-matrices", Static).update(
            side_by_side(matrix_table(cmp.a, "A", compact), matrix_table(cmp.b, "B", compact), width - 2))
        self.query_one("#cmp-metrics", Static).update(metrics_table(cmp))
        self.query_one(FlipList).show(cmp.counts)
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        if self.first_screen_ms is None:
            self.first_screen_ms = (time.perf_counter() - self._asked) * 1000

    # -- review queues --------------------------------------------------------------------------------------
    @on(FlipList.Chosen)
    def _flip_chosen(self, event: FlipList.Chosen) -> None:
        self._queue(event.kind)

    def _queue(self, kind: str) -> None:
        cmp = self.cmp
        if cmp is None:
            return
        if not cmp.counts.get(kind):
            self.notify(f"no traces {dict((k, t) for k, t, _ in FLIP_ROWS)[kind]}", severity="warning")
            return
        title = f"{dict((k, t) for k, t, _ in FLIP_ROWS)[kind]} ({version_label(cmp.a)} → v{cmp.b.version})"
        self.notify(f"collecting {title}…")
        self._collect(kind, title)

    @work(thread=True, exclusive=True, group="compare-queue")
    def _collect(self, kind: str, title: str) -> None:
        assert self.cmp is not None
        with self.iofold.db.fresh() as conn:
            ids = list(islice(iter_flips(conn, self.cmp, kind, page=5_000), QUEUE_CAP + 1))
        self.post_message(QueueReady(ids[:QUEUE_CAP], len(ids) > QUEUE_CAP, title))

    def on_queue_ready(self, message: QueueReady) -> None:
        if not message.ids:
            self.notify(f"no traces in {message.title}", severity="warning")
            return
        app = self.iofold
        self.post_message(OpenReviewQueue(tuple(message.ids)))
        capped = f" (the first {len(message.ids):,} by trace id)" if message.more else ""
        app.notify(f"review queue: {len(message.ids):,} traces, {one_line(message.title, 80)}{capped}. "
                   "f in review mode drops it.", timeout=10)

    # -- other keys ------------------------------------------------------------------------------------------
    def action_toggle_diff(self) -> None:
        if self.cmp is not None:
            self.app.push_screen(CodeDiffScreen(self.cmp))

    def action_swap(self) -> None:
        self.eval_a, self.eval_b = self.eval_b, self.eval_a
        self._reload()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_promote(self) -> None:
        cmp = self.cmp
        if cmp is None:
            return
        if self.iofold.source.read_only_reason:
            reason = self.iofold.source.read_only_reason
            self.notify(f"read-only source: {reason}", severity="error")
            return
        if cmp.b.status == "active":
            self.notify(f"{version_label(cmp.b)} is already active", severity="warning")
            return
        question = Text(f"Make {version_label(cmp.b)} the active version? The active version of "
                        f"{one_line(cmp.b.name, 30)} is archived (undo: iofold-tui undo-version).")
        def confirmed(yes: bool | None) -> None:
            if yes:
                self._promote(cmp.b.eval_id)

        self.app.push_screen(Confirm(question), confirmed)

    @work(thread=True, exclusive=True, group="compare-promote")
    def _promote(self, eval_id: str) -> None:
        app = self.iofold
        try:
            with app.db.fresh() as conn:
                promote(conn, workbench_path(app.source.history_path), eval_id)
        except (DraftError, ReadOnlyError, OSError) as exc:
            self.post_message(Promoted(f"cannot promote: {exc}", False))
            return
        self.post_message(Promoted(f"{eval_id} is now active", True))

    def on_promoted(self, message: Promoted) -> None:
        self.notify(one_line(message.text, 200), severity="information" if message.ok else "error")
        if message.ok:
            self.iofold.refresh_panes()
            self._reload()
