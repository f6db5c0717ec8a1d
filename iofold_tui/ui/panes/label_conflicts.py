"""The conflict queue: label conflicts left by ``import-labels``, one at a time, mine and theirs side by side.

Keys: m keeps mine, t takes theirs (rating and note), a / x / n set a third rating (my note kept). Each
write goes through the app's one label store (one undoable step in the label history), in a worker thread;
the conflict then leaves the queue (data/labels/conflict_queue.py). Reached from the overview (C).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from iofold_tui.data.labels.conflict_queue import QueuedConflict, load_conflicts, resolve
from iofold_tui.data.labels.history import FeedbackRow
from iofold_tui.data.labels.lookup import feedback_row
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.data.traces.lookup import previews
from iofold_tui.ui.labeling import disabled_reason, label_store
from iofold_tui.ui.text import cell, safe
from iofold_tui.ui.widgets import PaneHeader

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp


@dataclass
class ConflictRow:
    conflict: QueuedConflict
    mine: FeedbackRow | None  # my label now
    input_preview: object
    output_preview: object


@dataclass
class ConflictsLoaded(Message):
    rows: list[ConflictRow] | None
    error: str | None = None


@dataclass
class ConflictResolved(Message):
    key: tuple[str, str]
    choice: str
    error: str | None = None


def _label(rating: object, notes: object) -> Text:
    text = Text()
    if rating is None:
        text.append("no label", style="dim")
    else:
        text.append(one_line(rating, 20), style="bold")
    if notes not in (None, ""):
        text.append("\nnote: ")
        text.append_text(safe(notes, limit=2000))
    return text


class LabelConflictsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="conflicts.back"),
        Binding("m", "resolve('mine')", "Keep mine", id="conflicts.mine"),
        Binding("t", "resolve('theirs')", "Take theirs", id="conflicts.theirs"),
        Binding("a", "resolve('positive')", "Positive", id="conflicts.positive"),
        Binding("x", "resolve('negative')", "Negative", id="conflicts.negative"),
        Binding("n", "resolve('neutral')", "Neutral", id="conflicts.neutral"),
    ]
    DEFAULT_CSS = """
    LabelConflictsScreen #cq-table { height: 1fr; min-height: 4; }
    LabelConflictsScreen #cq-sides { height: auto; max-height: 12; }
    LabelConflictsScreen .cq-side { width: 1fr; height: auto; padding: 0 1; border: round $panel; }
    LabelConflictsScreen #cq-trace { height: auto; max-height: 8; padding: 0 1; }
    LabelConflictsScreen #cq-status { height: 1; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ConflictRow] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        yield PaneHeader()
        yield Static(Text("loading the conflict queue…", style="dim"), id="cq-status")
        yield DataTable(id="cq-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="cq-sides"):
            yield Static(id="cq-mine", classes="cq-side")
            yield Static(id="cq-theirs", classes="cq-side")
        with VerticalScroll(id="cq-trace"):
            yield Static(id="cq-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PaneHeader).show("Label conflicts", ["m mine · t theirs · a/x/n a third rating"])
        table = self.query_one(DataTable)
        table.add_columns("eval set", "trace", "mine", "theirs", "from")
        self.load()

    @property
    def iofold(self) -> IofoldApp:
        """The app with iofold's state and source (``self.app`` is typed as any Textual app)."""
        return cast("IofoldApp", self.app)

    @work(thread=True, exclusive=True, group="cq-load")
    def load(self) -> None:
        try:
            db = self.iofold.source.db
            conflicts = load_conflicts(db.path)
            rows: list[ConflictRow] = []
            with db.fresh() as conn:
                for c in conflicts:
                    t = previews(conn, c.trace_id)
                    rows.append(ConflictRow(c, feedback_row(conn, c.eval_set_id, c.trace_id),
                                            t[0] if t else None, t[1] if t else None))
        except Exception as exc:  # shown as one line
            self.post_message(ConflictsLoaded(None, one_line(str(exc), 200)))
            return
        self.post_message(ConflictsLoaded(rows))

    def on_conflicts_loaded(self, message: ConflictsLoaded) -> None:
        if message.error is not None:
            failed = Text(f"cannot read the queue: {message.error}", style="red")
            self.query_one("#cq-status", Static).update(failed)
            return
        self.rows = message.rows or []
        table = self.query_one(DataTable)
        table.clear()
        for r in self.rows:
            c = r.conflict
            table.add_row(cell(c.eval_set_id, 20), cell(c.trace_id, 28),
                          cell(r.mine.rating if r.mine else "no label", 10),
                          cell(c.theirs_rating or "no label", 10), cell(c.annotator or c.origin, 24),
                          key=f"{c.eval_set_id}\x00{c.trace_id}")
        self._show_current()

    def _current(self) -> ConflictRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_current()

    def _show_current(self) -> None:
        status = self.query_one("#cq-status", Static)
        left = plural(len(self.rows), "conflict")
        status.update(Text(f"{left} queued" if self.rows else "no conflicts queued: nothing to resolve",
                           style="" if self.rows else "dim"))
        r = self._current()
        mine, theirs = self.query_one("#cq-mine", Static), self.query_one("#cq-theirs", Static)
        preview = self.query_one("#cq-preview", Static)
        if r is None:
            mine.update("")
            theirs.update("")
            preview.update("")
            return
        c = r.conflict
        head = Text("MINE (this database)\n", style="bold cyan")
        mine.update(head + _label(r.mine.rating if r.mine else None, r.mine.notes if r.mine else None))
        who = c.annotator or one_line(c.origin, 40)
        theirs.update(Text(f"THEIRS ({who})\n", style="bold") + _label(c.theirs_rating, c.theirs_notes))
        where = f"trace {one_line(c.trace_id, 80)} · eval set {one_line(c.eval_set_id, 60)}\n"
        text = Text(where, style="dim")
        text.append("input: ", style="bold")
        text.append_text(safe(r.input_preview, limit=600))
        text.append("\noutput: ", style="bold")
        text.append_text(safe(r.output_preview, limit=600))
        preview.update(text)

    def action_resolve(self, choice: str) -> None:
        r = self._current()
        if r is None:
            self.app.notify("no conflict to resolve")
            return
        if choice != "mine":
            reason = disabled_reason(self.app)
            if reason:
                self.app.notify(f"labelling disabled: {one_line(reason, 160)}", severity="warning")
                return
        if self.busy:
            return
        self.busy = True
        self._resolve(r.conflict, choice)

    @work(thread=True, group="cq-resolve")
    def _resolve(self, conflict: QueuedConflict, choice: str) -> None:
        try:
            resolve(label_store(self.app), conflict, choice)
        except Exception as exc:  # shown as one line, the conflict stays queued
            self.post_message(ConflictResolved(conflict.key, choice, one_line(str(exc), 200)))
            return
        self.post_message(ConflictResolved(conflict.key, choice))

    def on_conflict_resolved(self, message: ConflictResolved) -> None:
        self.busy = False
        if message.error is not None:
            self.app.notify(f"not resolved: {message.error}", severity="error")
            return
        index = next((i for i, r in enumerate(self.rows) if r.conflict.key == message.key), None)
        if index is not None:
            self.rows.pop(index)
            table = self.query_one(DataTable)
            table.remove_row(f"{message.key[0]}\x00{message.key[1]}")
        what = {"mine": "kept mine", "theirs": "took theirs"}.get(message.choice, f"set {message.choice}")
        self.app.notify(f"{one_line(message.key[1], 40)}: {what}", timeout=3)
        self._show_current()
