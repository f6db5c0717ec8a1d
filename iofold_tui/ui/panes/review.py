"""Review mode: one trace at a time, one key per label, each label recorded durably before the next trace
shows.

The queue is paged through SQL (``data.review_queue``): a small buffer of upcoming items is fetched in a
worker and refilled before it runs dry, and the next traces' details are prefetched, so a label key records
its intent in the label history (milliseconds; ``ui.labeling.LabelQueue``) and renders an already-loaded
trace; the writer thread commits it to the database, and while another process holds the lock the label
shows as PENDING instead of freezing the screen, so every key acts on the trace it was pressed on. ``k``
walks back through the traces seen this session (not the queue order: a labelled trace leaves the
"unlabelled" tier).

The parts: ``ReviewPaneBase`` (review_base.py: the shared state), ``ReviewShow`` (review_show.py: loading
and showing), ``ReviewLabels`` (review_labels.py: label keys, undo/redo, notes); this class holds the keys,
the status line, loading, navigation and toggles.
"""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import DescendantBlur
from textual.widgets import TextArea

from iofold_tui.data.evals.versions import EvalSummary
from iofold_tui.data.labels.review_queue import ORDER_TITLES, QueueItem, QueueSpec
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.label_keys import label_bindings, undo_bindings
from iofold_tui.ui.panes.review_labels import ReviewLabels
from iofold_tui.ui.panes.review_widgets import ReviewDocument, progress_text
from iofold_tui.ui.widgets import SteadyStatic

_WRITE_ACTIONS = {"label", "edit_note", "undo", "redo"}
_MOVE_GROUP = Binding.Group("Next/Prev", compact=True)


class ReviewPane(ReviewLabels):
    pane_title = "Review"
    selects_on_start = True  # applied once the queue's first trace is in
    AUTO_FOCUS = ""  # nothing focused: the pane's keys work at once (None would mean the app default)
    BINDINGS = [
        *label_bindings("review"),
        Binding("s", "skip", "Skip", id="review.skip"),
        Binding("j,down", "next", "Next", id="review.next", group=_MOVE_GROUP),
        Binding("k,up", "previous", "Prev", id="review.previous", group=_MOVE_GROUP),
        Binding("right_square_bracket", "next_unlabelled", "Unlabelled", id="review.next_unlabelled"),
        Binding("e", "edit_note", "Note", id="review.note"),
        *undo_bindings("review"),
        Binding("b", "toggle_blind", "Blind", id="review.blind"),
        Binding("t", "toggle_auto", "Auto", id="review.auto_advance", show=False),  # the bar shows its state
        Binding("o", "cycle_order", "Order", id="review.order"),
        Binding("f", "toggle_filter", "Filter", id="review.filter"),
        Binding("c", "new_eval_set", "New set", id="review.new_eval_set"),
        Binding("enter", "open_trace", "Full trace", id="review.open", show=False),  # said in the steps line
        Binding("ctrl+r", "try_eval", "Try eval", id="review.try", show=False),  # ? lists it
        Binding("pageup", "scroll('up')", "Scroll up", id="review.scroll_up", show=False),
        Binding("pagedown,space", "scroll('down')", "Scroll down", id="review.scroll_down", show=False),
        Binding("home", "scroll('home')", "Top", id="review.scroll_home", show=False),
        Binding("end", "scroll('end')", "Bottom", id="review.scroll_end", show=False),
        Binding("question_mark", "help", "Help", id="review.help"),
        Binding("escape", "leave_note", "Done (note)", id="review.leave_note"),
    ]
    DEFAULT_CSS = """
    ReviewPane #review-bar { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    ReviewPane #review-note { height: 8; display: none; border: tall $warning; }
    ReviewPane #review-note.editing { display: block; }
    """

    def compose_body(self) -> ComposeResult:
        yield SteadyStatic(id="review-bar")
        yield ReviewDocument(id="review-body")
        yield TextArea(id="review-note", soft_wrap=True, show_line_numbers=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_note":
            return self.editing_for is not None
        if action in _WRITE_ACTIONS and (self.labels_off() or self.eval_set is None):
            return None  # shown greyed out; the reason is on screen
        return True

    def set_status(self, status: Text | str = "") -> None:
        if not status and self.eval_set is not None:
            stats = None
            store = self.store()
            if store is not None:
                stats = store.session_stats()
            counts = self.model.counts
            status = (progress_text(counts, self.eval_set.minimum_examples, stats, self.model.left)
                      if counts is not None else Text("counting labels…", style="dim"))
        super().set_status(status)

    # -- loading -------------------------------------------------------------------------------------
    def on_screen_resume(self) -> None:
        self._resumed = self.stale
        super().on_screen_resume()

    def reload(self) -> None:
        state, model = self.iofold.state, self.model
        if state.review_queue_pending:  # a queue handed over by another pane
            state.review_queue_pending = False
            model.use_filter = True
        self.eval_set = state.eval_set
        model.eval_set_id = self.eval_set.id if self.eval_set is not None else None
        if self.eval_set is None:
            model.context = None
            self._message(Text("No eval set in this workspace: press c to create one, v to pick another.",
                               style="bold yellow"))
            self.refresh_bindings()
            return
        flt = state.scoped_filter() if model.use_filter else None
        context = (self.eval_set.id, model.order, flt, state.trace_filter.newest_first)
        if context != model.context:
            model.context = context
            self._reset(QueueSpec(self.eval_set.id, self.eval_set.workspace_id, model.order, flt,
                                  state.trace_filter.newest_first))
        else:
            if self._resumed:  # other panes may have labelled traces that are still buffered
                self._refetch()
            self._refresh_label()
        self._resumed = False
        assert model.spec is not None
        self._load_stats(model.spec, model.total is None)
        self.refresh_bindings()

    def select_item(self, trace_id: str) -> None:
        """Show one trace (screenshots, links from other panes)."""
        self._jump_to(QueueItem(trace_id, -1, "", 0, None))

    def pending_changed(self) -> None:
        super().pending_changed()
        if self.current is not None:
            self._update_bar()

    @on(DescendantBlur, "#review-note")
    def _note_blurred(self) -> None:
        self._finish_note()  # clicking away must not lose the text either

    # -- navigation and toggles ---------------------------------------------------------------------
    def action_next(self) -> None:
        self._advance()

    def action_skip(self) -> None:
        self._advance()

    def action_previous(self) -> None:
        if self.queue.back():
            self._show_current()
        else:
            self.notify("This is the first trace of this session.")

    def action_next_unlabelled(self) -> None:
        self._find_unlabelled()

    def action_toggle_blind(self) -> None:
        model = self.model
        model.blind = not model.blind
        self._render_current()
        self.notify(f"blind mode {'on: eval verdicts hidden until you label' if model.blind else 'off'}")

    def action_toggle_auto(self) -> None:
        self.model.auto_advance = not self.model.auto_advance
        self._update_bar()

    def action_cycle_order(self) -> None:
        self.notify(f"queue: {ORDER_TITLES[self.model.cycle_order()]}")
        self.reload()

    def action_toggle_filter(self) -> None:
        self.model.use_filter = not self.model.use_filter
        parts = self.iofold.state.trace_filter.describe()
        if self.model.use_filter and not parts:
            self.notify("the trace list has no filter yet (T, then f or /)", severity="warning")
        self.reload()

    def action_scroll(self, where: Literal["up", "down", "home", "end"]) -> None:
        body = self.query_one(ReviewDocument)
        {"up": body.scroll_page_up, "down": body.scroll_page_down,
         "home": body.scroll_home, "end": body.scroll_end}[where](animate=False)

    def action_open_trace(self) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        if self.current is not None:
            self.app.push_screen(TraceDetailScreen(self.current.trace_id))

    def action_try_eval(self) -> None:
        """A version of this eval set (the newest, a draft just written, preselected) run on the trace on
        screen in the local sandbox: verdict, reason, stdout, time; nothing stored (``ui/try_trace.py``)."""
        from iofold_tui.data.evals.versions import list_evals

        item, es = self.current, self.eval_set
        if item is None or es is None:
            self.notify("no trace on screen to try an eval on", severity="warning")
            return
        trace_id, db = item.trace_id, self.iofold.db

        def versions() -> list[EvalSummary]:
            with db.fresh() as conn:
                found = list_evals(conn, es.id)
            return sorted((summary for summary, _ in found.rows), key=lambda s: (s.version, s.created_at),
                          reverse=True)

        self.run_query(versions, on_result=lambda found: self._pick_version(found, trace_id), group="try",
                       what="listing the eval versions")

    def _pick_version(self, found: list[EvalSummary], trace_id: str) -> None:
        from iofold_tui.ui.try_trace import TryTraceScreen
        from iofold_tui.ui.widgets import PickOne

        if not found:
            self.notify("this eval set has no eval versions to try (E, then n writes one)",
                        severity="warning")
            return
        if len(found) == 1:
            self.app.push_screen(TryTraceScreen(found[0].id, trace_id))
            return
        options = [
            (s.id, f"{one_line(s.name, 30)} v{s.version} · {one_line(s.status or '?', 12)} · "
                   f"{one_line(s.id, 16)}")
            for s in found
        ]

        def picked(eval_id: str | None) -> None:
            if eval_id:
                self.app.push_screen(TryTraceScreen(eval_id, trace_id))

        title = f"Try which version on {one_line(trace_id, 40)}? (nothing is stored)"
        self.app.push_screen(PickOne(title, options, found[0].id), picked)

    def action_new_eval_set(self) -> None:
        from iofold_tui.ui.eval_set_form import EvalSetForm

        app = self.iofold
        workspace = app.state.workspace_id or (self.eval_set.workspace_id if self.eval_set else None)
        name = app.state.workspace.name if app.state.workspace else (workspace or "")

        def created(eval_set_id: str | None) -> None:
            if eval_set_id:
                app.state.eval_set_id = eval_set_id
                app.load_catalog()  # picks the new set up and refreshes the panes
                self.notify("eval set created; label away")

        if app.source.read_only_reason:
            self.notify(f"cannot create an eval set: {app.source.read_only_reason}", severity="warning")
            return
        app.push_screen(EvalSetForm(workspace, name), created)

    def action_help(self) -> None:
        from iofold_tui.ui.key_help import show_key_help

        show_key_help(self.app, "Review mode keys", [
            "Labels are saved at once; while another process locks the database they show as pending and "
            "are written when it lets go (quitting asks). Undo/redo survive restarts.",
            "Blind mode hides eval verdicts and other sets' labels until the trace has a label in this "
            "eval set."])
