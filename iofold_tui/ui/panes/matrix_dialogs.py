"""The matrix pane's dialogs: the versions shown as columns, the rows' source and dates, and one cell's
detail (verdict, errors, the code that ran, the label, the trace)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, SelectionList, Static

from iofold_tui.data.evals.versions import EvalDetail, load_eval
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.traces.detail import TraceDetail, load_trace
from iofold_tui.data.traces.query import TraceFilter
from iofold_tui.ui.models.matrix_results import SourceDate
from iofold_tui.ui.panes.trace_filters import TraceFilterScreen
from iofold_tui.ui.text import code, rating_text, safe
from iofold_tui.ui.trace_render import summary, verdict
from iofold_tui.ui.widgets import PaneHeader

HIGHLIGHT_LIMIT = 200_000  # characters of eval code still syntax-highlighted


class VersionPicker(ModalScreen[tuple[str, ...] | None]):
    """Tick the eval versions shown as columns (space toggles, Enter applies, Esc cancels)."""

    BINDINGS = [
        Binding("enter", "apply", "Apply", id="matrix.versions.apply", priority=True),
        Binding("escape", "cancel", "Cancel", id="matrix.versions.cancel"),
    ]
    DEFAULT_CSS = """
    VersionPicker { align: center middle; }
    VersionPicker > Vertical {
        width: 64; height: auto; max-height: 80%; border: thick $accent; background: $surface; padding: 0 1;
    }
    VersionPicker SelectionList { height: auto; max-height: 24; }
    """

    def __init__(self, options: Sequence[tuple[str, str]], chosen: Sequence[str]) -> None:
        super().__init__()
        self.options, self.chosen = list(options), set(chosen)

    def compose(self) -> ComposeResult:
        with Vertical():
            title = "Eval versions shown as columns (space toggles, Enter applies, Esc cancels)"
            yield Label(Text(title, style="bold"))
            yield SelectionList[str](*[(Text(one_line(label, 56)), value, value in self.chosen)
                                       for value, label in self.options])

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_apply(self) -> None:
        picked = self.query_one(SelectionList).selected
        if not picked:
            self.notify("pick at least one version", severity="warning")
            return
        order = [value for value, _ in self.options]
        self.dismiss(tuple(sorted(picked, key=order.index)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SourceDateScreen(TraceFilterScreen):
    """Source and date range of the matrix rows: the trace list's dialog without rating and errors
    (the matrix filters cover those). It answers a ``TraceFilter`` like the trace list's dialog; the pane
    keeps its sources and dates."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="matrix.filters.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="matrix.filters.apply"),
    ]
    TITLE = "Matrix rows: source and date (Enter or ctrl+s applies, Esc cancels)"

    def __init__(self, current: SourceDate, sources: list[str]) -> None:
        flt = TraceFilter(sources=current.sources, date_from=current.date_from, date_to=current.date_to)
        super().__init__(flt, sources, rating_and_errors=False)


@dataclass
class CellLoaded(Message):
    detail: TraceDetail | None
    evaluation: EvalDetail | None


class CellDetailScreen(Screen[None]):
    """One matrix cell: the verdict and reason, errors, stdout/stderr, the code that ran, the human
    label and note, then the trace summary (``t`` opens the full trace, ``ctrl+r`` runs this version on
    this trace in the local sandbox without storing anything: ``ui/try_trace.py``)."""

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="matrix.cell.back"),
        Binding("t", "full_trace", "Full trace", id="matrix.cell.trace"),
        Binding("ctrl+r", "try_it", "Try it", id="matrix.cell.try"),
    ]
    DEFAULT_CSS = """
    CellDetailScreen #cell-body { height: 1fr; padding: 0 1; }
    CellDetailScreen .cell-title { text-style: bold; color: $accent; margin-top: 1; }
    """

    def __init__(self, trace_id: str, eval_id: str, eval_set_id: str, agreement: str | None = None) -> None:
        super().__init__()
        self.trace_id, self.eval_id = trace_id, eval_id
        self.eval_set_id, self.agreement = eval_set_id, agreement

    def compose(self) -> ComposeResult:
        yield PaneHeader()
        with VerticalScroll(id="cell-body"):
            yield Static(Text("loading…", style="dim"), id="cell-verdict")
            yield Static(Text("Code that ran", style="bold"), classes="cell-title")
            yield Static(id="cell-code")
            yield Static(Text("Trace", style="bold"), classes="cell-title")
            yield Static(id="cell-trace")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PaneHeader).show("Matrix cell", [self.trace_id, self.eval_id])
        self.load()

    @work(thread=True, exclusive=True, group="matrix-cell")
    def load(self) -> None:
        conn = self.app.db.conn()  # type: ignore[attr-defined]
        self.post_message(CellLoaded(load_trace(conn, self.trace_id), load_eval(conn, self.eval_id)))

    def on_cell_loaded(self, message: CellLoaded) -> None:
        detail, ev = message.detail, message.evaluation
        if detail is None:
            missing = Text(f"trace {self.trace_id} not found", style="bold red")
            self.query_one("#cell-verdict", Static).update(missing)
            return
        title = f"{ev.summary.name} v{ev.summary.version}" if ev else self.eval_id
        self.query_one(PaneHeader).show("Matrix cell", [detail.id, title])
        self.query_one("#cell-verdict", Static).update(self._verdict(detail, title))
        code_view: RenderableType
        if ev is None:
            code_view = Text(f"eval {self.eval_id} not found", style="bold red")
        elif len(ev.code) > HIGHLIGHT_LIMIT:
            code_view = safe(ev.code, limit=None)
        else:
            code_view = code(ev.code)
        self.query_one("#cell-code", Static).update(code_view)
        self.query_one("#cell-trace", Static).update(summary(detail))

    def _verdict(self, detail: TraceDetail, title: str) -> Text:
        ex = next((e for e in detail.executions if e.eval_id == self.eval_id), None)
        out = Text()
        out.append(f"{one_line(title, 40)}: ", style="bold")
        if ex is None:
            out.append("not run on this trace (ctrl+r tries it here)", style="dim")
        else:
            out.append(verdict(ex.result, ex.error))
            if self.agreement == "contradiction":
                out.append("  ≠ contradicts the human label", style="bold red")
            elif self.agreement == "agreement":
                out.append("  = agrees with the human label", style="green")
            if ex.execution_time_ms is not None:
                out.append(f"  ·  {ex.execution_time_ms} ms", style="dim")
            if ex.executed_at:
                out.append(f"  ·  {one_line(ex.executed_at, 30)}", style="dim")
        label = next((f for f in detail.feedback if f.eval_set_id == self.eval_set_id), None)
        out.append("\nhuman:   ", style="bold")
        out.append(rating_text(label.rating if label else None))
        if label and label.notes:
            out.append(_section("note", label.notes, "italic"))
        if ex is not None:
            out.append(_section("reason", ex.reason))
            for name, value, style in (("error", ex.error, "red"), ("stdout", ex.stdout, ""),
                                       ("stderr", ex.stderr, "yellow")):
                if value:
                    out.append(_section(name, value, style))
        return out

    def action_full_trace(self) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(self.trace_id))

    def action_try_it(self) -> None:
        """This cell's version run again on this trace in the local sandbox (a draft's first verdict);
        stores nothing."""
        from iofold_tui.ui.try_trace import TryTraceScreen

        self.app.push_screen(TryTraceScreen(self.eval_id, self.trace_id))


def _section(title: str, body: str, style: str = "") -> Text:
    out = Text(f"\n{title}: ", style="bold")
    out.append(safe(body, style, limit=20_000))
    return out
