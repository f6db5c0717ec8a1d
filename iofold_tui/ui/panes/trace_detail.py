"""One trace: summary first, then the steps as a tree with the selected step in full, or raw JSON."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree

from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.detail import TraceDetail, load_trace
from iofold_tui.data.traces.steps import Step, pretty_json
from iofold_tui.ui.text import code, safe
from iofold_tui.ui.trace_render import step_text, summary, tool_call_text
from iofold_tui.ui.widgets import PaneHeader

MAX_TREE_STEPS = 500  # more steps load in chunks from a "more" node
HIGHLIGHT_LIMIT = 300_000  # above this the raw JSON is shown plain: highlighting MBs would stall


class TraceLoaded(Message):
    def __init__(self, detail: TraceDetail | None, raw_view: Text | object | None) -> None:
        super().__init__()
        self.detail = detail
        self.raw_view = raw_view


class TraceDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="trace.back"),
        Binding("r", "toggle_raw", "Raw JSON", id="trace.raw"),
    ]

    def __init__(self, trace_id: str) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.detail: TraceDetail | None = None
        self.raw_view: object | None = None
        self.showing_raw = False

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

    @work(thread=True, exclusive=True, group="trace")
    def load(self) -> None:
        detail = load_trace(self.app.db.conn(), self.trace_id)  # type: ignore[attr-defined]
        raw_view: object | None = None
        if detail is not None:
            text, ok = pretty_json(detail.steps_raw)
            raw_view = code(text, "json") if ok and len(text) <= HIGHLIGHT_LIMIT else safe(text, limit=None)
        self.post_message(TraceLoaded(detail, raw_view))

    def on_trace_loaded(self, message: TraceLoaded) -> None:
        detail = self.detail = message.detail
        self.raw_view = message.raw_view
        if detail is None:
            self.query_one("#summary", Static).update(Text(f"trace {self.trace_id} not found", style="bold red"))
            return
        self.query_one(PaneHeader).show("Trace", [detail.id, detail.source, f"{detail.step_count} steps"])
        self.query_one("#summary", Static).update(summary(detail))
        tree = self.query_one("#steps-tree", Tree)
        tree.root.set_label(Text(f"steps ({len(detail.steps.steps)})"))
        tree.root.expand()
        self._add_steps(tree.root, 0)
        if detail.steps.error:
            self.showing_raw = True
            self.notify(one_line(detail.steps.error, 120), title="invalid steps", severity="warning")
        self._show(detail.steps.steps[0] if detail.steps.steps and not self.showing_raw else None)
        tree.focus()

    def _add_steps(self, parent: object, start: int) -> None:
        assert self.detail is not None
        steps = self.detail.steps.steps
        for step in steps[start:start + MAX_TREE_STEPS]:
            style = "red" if step.error or any(t.error for t in step.tool_calls) else ""
            node = parent.add(Text(one_line(step.title, 60), style=style), data=step)  # type: ignore[attr-defined]
            for call in step.tool_calls:
                node.add_leaf(Text(f"⚙ {one_line(call.name, 40)}", style="red" if call.error else "yellow"), data=call)
        if len(steps) > start + MAX_TREE_STEPS:
            parent.add_leaf(Text(f"… {len(steps) - start - MAX_TREE_STEPS} more steps (Enter)", style="dim"),  # type: ignore[attr-defined]
                            data=("more", start + MAX_TREE_STEPS))

    def _show(self, item: object | None) -> None:
        content = self.query_one("#step-content", Static)
        if self.showing_raw:
            content.update(self.raw_view or Text(""))
        elif isinstance(item, Step):
            content.update(step_text(item))
        elif item is not None and hasattr(item, "arguments"):
            content.update(tool_call_text(item))  # type: ignore[arg-type]
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

    def action_toggle_raw(self) -> None:
        self.showing_raw = not self.showing_raw
        node = self.query_one("#steps-tree", Tree).cursor_node
        self._show(node.data if node is not None else None)
