"""The agreement view (reached from the overview with A): how far annotators agree on the current eval set.

Annotators: this database, every annotator of its label history (when the history records who labelled),
and the copies / label files typed into the field (paths separated by spaces; the same as ``iofold-tui
agreement SOURCE OTHER...``). Figures are computed in a worker (data/labels/agreement_open.py) and shown as
the CLI prints them; the disagreements are listed below, Enter opens a trace, r reviews them (the review
pane with the trace filter set to them, as the matrix's drill-down does).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from iofold_tui.data.labels.agreement_open import open_agreement
from iofold_tui.data.labels.agreement_text import report_lines
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.navigation import OpenReviewQueue
from iofold_tui.ui.text import cell, safe
from iofold_tui.ui.widgets import PaneHeader

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp

PAGE = 200
REVIEW_MAX = 10_000  # disagreements opened as one review queue


@dataclass
class ReviewIds(Message):
    ids: list[str]
    error: str | None = None


@dataclass
class AgreementLoaded(Message):
    lines: list[str] | None
    names: list[str]
    disagreements: list[tuple[str, list[str]]]
    error: str | None = None


class AgreementScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="agreement.back"),
        Binding("enter", "open_trace", "Open trace", id="agreement.open", show=True),
        Binding("r", "review", "Review them", id="agreement.review"),
    ]
    DEFAULT_CSS = """
    AgreementScreen #ag-others { height: 3; }
    AgreementScreen #ag-report { height: 1fr; min-height: 5; padding: 0 1; }
    AgreementScreen #ag-dis { height: 1fr; min-height: 4; }
    """

    @property
    def iofold(self) -> IofoldApp:
        """The app with iofold's state and source (``self.app`` is typed as any Textual app)."""
        return cast("IofoldApp", self.app)

    def __init__(self, others: list[str] | None = None) -> None:
        super().__init__()
        self.others = list(others or [])

    def compose(self) -> ComposeResult:
        yield PaneHeader()
        yield Input(" ".join(shlex.quote(o) for o in self.others), id="ag-others",
                    placeholder="other copies or label files (paths, space-separated), Enter to compare")
        with VerticalScroll(id="ag-report"):
            yield Static(Text("computing…", style="dim"), id="ag-text")
        yield DataTable(id="ag-dis", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        es = self.iofold.state.eval_set_id
        self.query_one(PaneHeader).show("Agreement", [f"eval set {one_line(es or 'none', 40)}"])
        self.compute()

    @on(Input.Submitted, "#ag-others")
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            self.others = shlex.split(event.value)
        except ValueError as exc:
            self.app.notify(f"cannot read the paths: {exc}", severity="error")
            return
        self.query_one("#ag-text", Static).update(Text("computing…", style="dim"))
        self.compute()
        self.query_one(DataTable).focus()

    @work(thread=True, exclusive=True, group="ag-compute")
    def compute(self) -> None:
        es = self.iofold.state.eval_set_id
        try:
            if es is None:
                raise ValueError("no eval set: pick one with v")
            with open_agreement(self.iofold.source, self.others, history_annotators=True) as session:
                names = [a.name for a in session.annotators]
                report = session.report(es)
                lines = [f"annotators: {', '.join(one_line(n, 40) for n in names)}"]
                for s in report["eval_sets"]:
                    lines += report_lines(s)
                if len(names) < 2:
                    lines.append("only this database: type other copies or label files above, or label with "
                                 "another annotator name (IOFOLD_TUI_ANNOTATOR)")
                page = session.disagreements(es, limit=PAGE)
                rows = [(d.trace_id, [d.ratings.get(n) or "-" for n in names]) for d in page]
        except Exception as exc:  # one line in the view
            self.post_message(AgreementLoaded(None, [], [], one_line(str(exc), 300)))
            return
        self.post_message(AgreementLoaded(lines, names, rows))

    def on_agreement_loaded(self, message: AgreementLoaded) -> None:
        text = self.query_one("#ag-text", Static)
        if message.error is not None:
            text.update(Text(message.error, style="red"))
            return
        text.update(safe("\n".join(message.lines or []), limit=None))
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("disagreement: trace", *(one_line(n, 20) for n in message.names))
        for tid, ratings in message.disagreements:
            table.add_row(cell(tid, 40), *(cell(r, 10) for r in ratings), key=tid)

    def action_open_trace(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

            self.app.push_screen(TraceDetailScreen(str(key)))

    def action_review(self) -> None:
        if self.query_one(DataTable).row_count == 0:
            self.app.notify("no disagreements to review")
            return
        self._review_ids()

    @work(thread=True, exclusive=True, group="ag-review")
    def _review_ids(self) -> None:
        es = self.iofold.state.eval_set_id
        try:
            if es is None:
                raise ValueError("no eval set: pick one with v")
            with open_agreement(self.iofold.source, self.others, history_annotators=True) as session:
                ids = [d.trace_id for d in session.disagreements(es, limit=REVIEW_MAX)]
        except Exception as exc:  # one line
            self.post_message(ReviewIds([], one_line(str(exc), 200)))
            return
        self.post_message(ReviewIds(ids))

    def on_review_ids(self, message: ReviewIds) -> None:
        if message.error is not None:
            self.app.notify(message.error, severity="error")
            return
        if len(message.ids) == REVIEW_MAX:
            self.app.notify(f"reviewing the first {REVIEW_MAX:,} disagreements", timeout=4)
        self.app.pop_screen()
        self.post_message(OpenReviewQueue(tuple(message.ids)))
