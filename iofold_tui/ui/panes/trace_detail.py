"""One trace: summary first, then the steps as a tree with the selected step in full, or raw JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree

from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.data.traces.detail import TraceDetail, load_trace
from iofold_tui.data.traces.steps import Step, pretty_json
from iofold_tui.ui import label_keys
from iofold_tui.ui.highlight import active_query, highlight, step_matches
from iofold_tui.ui.text import code, safe
from iofold_tui.ui.trace_render import step_text, summary, tool_call_text
from iofold_tui.ui.widgets import PaneHeader

if TYPE_CHECKING:
    from rich.syntax import Syntax
    from textual.widgets.tree import TreeNode

MAX_TREE_STEPS = 500  # more steps load in chunks from a "more" node
HIGHLIGHT_LIMIT = 300_000  # above this the raw JSON is shown plain: highlighting MBs would stall


@dataclass
class TraceLoaded(Message):
    detail: TraceDetail | None
    raw_view: Text | Syntax | None  # the steps as JSON, highlighted unless huge


class TraceDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="trace.back"),
        Binding("r", "toggle_raw", "Raw JSON", id="trace.raw"),
        # Label while reading the whole trace: the same store and undo stack as every other pane.
        *label_keys.label_bindings("trace", digits=False),
        *label_keys.undo_bindings("trace"),
    ]

    def __init__(self, trace_id: str) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.detail: TraceDetail | None = None
        self.raw_view: Text | Syntax | None = None
        self.showing_raw = False
        self.tree_built = False

    def compose(self) -> ComposeResult:
        yield PaneHeader()
        with VerticalScroll(id="trace-summary"):
            yield Static(Text("loading…", style="dim"), id="summary")
        with Horizontal(id="trace-body"):
            yield Tree("steps", id="steps-tree")
            with VerticalScroll(id="step-view"):
                yield Static(id="step-content")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PaneHeader).show("Trace", [self.trace_id])
        self.load()

    def reload_on_change(self) -> None:
        """The database changed underneath (ui.app's watcher): read the trace again (it may be gone)."""
        self.load()

    @work(thread=True, exclusive=True, group="trace")
    def load(self) -> None:
        detail = load_trace(self.app.db.conn(), self.trace_id)  # type: ignore[attr-defined]
        raw_view: Text | Syntax | None = None
        if detail is not None:
            text, ok = pretty_json(detail.steps_raw)
            # Wrapped: the raw view sits in a vertical scroller, so a long line would be cut at its edge.
            highlighted = ok and len(text) <= HIGHLIGHT_LIMIT
            raw_view = code(text, "json", word_wrap=True) if highlighted else safe(text, limit=None)
        self.post_message(TraceLoaded(detail, raw_view))

    def on_trace_loaded(self, message: TraceLoaded) -> None:
        detail = self.detail = message.detail
        self.raw_view = message.raw_view
        if detail is None:
            shown_before = getattr(self, "_shown_once", False)
            self.query_one("#summary", Static).update(Text(
                f"trace {self.trace_id} was deleted from the database (by another process?); Esc goes back"
                if shown_before else f"trace {self.trace_id} not found", style="bold red"))
            return
        self._shown_once = True
        eval_set = getattr(self.app.state, "eval_set", None)  # type: ignore[attr-defined]
        parts = [detail.id, detail.source, detail.step_count_text or plural(detail.step_count, "step")]
        if eval_set is not None:
            rating = next((fb.rating for fb in detail.feedback if fb.eval_set_id == eval_set.id), None)
            parts.append(f"{eval_set.name}: {rating or 'unlabelled'} (a/x/n label)")
        self.query_one(PaneHeader).show("Trace", parts)
        self.query_one("#summary", Static).update(highlight(summary(detail), self._query()))
        if self.tree_built:  # a re-read after a label: the steps did not change
            return
        self.tree_built = True
        tree = self.query_one("#steps-tree", Tree)
        tree.root.expand()
        self.matched = 0
        first = self._add_steps(tree.root, 0)
        label = Text(f"steps ({len(detail.steps.steps)})")
        if self.matched:  # the list's search: its matches are marked ◆ and the first is shown
            label.append(f" · ◆ {plural(self.matched, 'step')} with matches", style="bold yellow")
        tree.root.set_label(label)
        if detail.steps.error:
            self.showing_raw = True
            self.notify(one_line(detail.steps.error, 120), title="invalid steps", severity="warning")
        if first is not None and not self.showing_raw:
            self.call_after_refresh(tree.move_cursor, first)  # the node has its line once laid out
            self._show(first.data)
        else:
            self._show(detail.steps.steps[0] if detail.steps.steps and not self.showing_raw else None)
        tree.focus()

    def _query(self) -> str:
        """The trace list's full-text query: its matches are highlighted here."""
        return active_query(getattr(self.app, "state", None))

    def _add_steps(self, parent: TreeNode[object], start: int) -> TreeNode[object] | None:
        """Add up to MAX_TREE_STEPS steps; the first node with a match of the list's search (or None)."""
        assert self.detail is not None
        steps = self.detail.steps.steps
        query, first = self._query(), None
        for step in steps[start:start + MAX_TREE_STEPS]:
            style = "red" if step.error or any(t.error for t in step.tool_calls) else ""
            hit = bool(query) and step_matches(step, query)
            label = Text(one_line(step.title, 60), style=style)
            if hit:
                label = Text.assemble(("◆ ", "bold yellow"), label)
                self.matched = getattr(self, "matched", 0) + 1
            node = parent.add(label, data=step)
            first = node if hit and first is None else first
            for call in step.tool_calls:
                leaf = Text(f"⚙ {one_line(call.name, 40)}", style="red" if call.error else "yellow")
                if hit and step_matches(call, query):
                    leaf = Text.assemble(("◆ ", "bold yellow"), leaf)
                node.add_leaf(leaf, data=call)
        if len(steps) > start + MAX_TREE_STEPS:
            more = Text(f"… {len(steps) - start - MAX_TREE_STEPS} more steps (Enter)", style="dim")
            parent.add_leaf(more, data=("more", start + MAX_TREE_STEPS))
        return first

    def _show(self, item: object | None) -> None:
        content = self.query_one("#step-content", Static)
        if self.showing_raw:
            content.update(self.raw_view or Text(""))
        elif isinstance(item, Step):
            content.update(highlight(step_text(item), self._query()))
        elif item is not None and hasattr(item, "arguments"):
            content.update(highlight(tool_call_text(item), self._query()))  # type: ignore[arg-type]
        else:
            content.update(Text("select a step", style="dim"))

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        if not isinstance(event.node.data, tuple):
            self._show(event.node.data)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected) -> None:
        data = event.node.data
        if isinstance(data, tuple) and data[0] == "more" and event.node.parent is not None:
            parent = event.node.parent
            event.node.remove()
            self._add_steps(parent, int(data[1]))

    def _labelled(self) -> None:
        """A label changed here: show it, and have the panes underneath re-read their rows on return."""
        from iofold_tui.ui.pane import Pane

        for stack in self.app._screen_stacks.values():  # every pane of every mode
            for screen in stack:
                if isinstance(screen, Pane):
                    screen.stale = True
        self.load()

    def action_label(self, rating: str) -> None:
        from iofold_tui.ui import labeling

        app = self.app
        if labeling.explain_disabled(app):
            return
        eval_set = app.state.eval_set  # type: ignore[attr-defined]
        try:  # queued: the writer thread writes it, never waiting for the lock here (on_label_applied)
            labeling.label_queue(app).label(eval_set.id, self.trace_id, rating)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{one_line(self.trace_id, 40)}: {rating} in {one_line(eval_set.name, 40)} (u undoes)",
                    timeout=3)

    def on_label_applied(self, applied: object) -> None:
        """A queued label / undo / redo was written (ui.labeling.LabelQueue)."""
        if getattr(applied, "outcome", "") == "applied" and self.is_mounted:
            self._labelled()

    def action_undo(self) -> None:
        self._travel(undo=True)

    def action_redo(self) -> None:
        self._travel(undo=False)

    def _travel(self, *, undo: bool) -> None:
        from iofold_tui.ui import labeling

        if labeling.explain_disabled(self.app):
            return
        try:  # queued behind the labels before it; on_label_applied reloads when it lands
            labeling.label_queue(self.app).travel(undo=undo)
        except labeling.LabelActionError as exc:
            self.notify(str(exc), severity="error")

    def action_toggle_raw(self) -> None:
        self.showing_raw = not self.showing_raw
        node = self.query_one("#steps-tree", Tree).cursor_node
        self._show(node.data if node is not None else None)
