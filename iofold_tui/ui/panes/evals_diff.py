"""The evals pane's code views: highlighting ahead of need (a worker advances a ``Highlighter`` and reports
progress), the diff against the parent or a version picked with b (computed through ``Pane.run_query``, the
group "evals-diff"; the model keeps the one wanted), the tabs and search within the code or the diff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import Static, TabbedContent
from textual.worker import get_current_worker

from iofold_tui.data.evals import versions as core
from iofold_tui.data.evals.code_text import FieldDiff, eval_diff
from iofold_tui.data.evals.versions import EvalDetail
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.models.evals import DiffKey
from iofold_tui.ui.panes.evals_base import EvalsPaneBase
from iofold_tui.ui.panes.evals_widgets import DiffView, Highlighter, LinesView
from iofold_tui.ui.widgets import PickOne, Prompt

HIGHLIGHTERS = 6  # highlighted sources kept


@dataclass
class HighlightProgress(Message):
    hl: Highlighter
    finished: bool


def diff_job(app: Any, key: DiffKey, new: EvalDetail,
             base: EvalDetail | None) -> tuple[DiffKey, EvalDetail | None, list[FieldDiff]]:
    """(in a worker) The base version (unless loaded already) and the diff's sections."""
    if base is None:
        base = core.load_eval(app.db.conn(), key[0])
    return key, base, [] if base is None else eval_diff(base, new, None if key[2] else 3)


class EvalsDiff(EvalsPaneBase):
    """Part of ``EvalsPane``."""

    # -- highlighting --------------------------------------------------------------------------------
    def _hl(self, detail: EvalDetail) -> Highlighter:
        hls = self.hls
        hl = hls.get(detail.summary.id)
        if hl is None:
            hl = hls[detail.summary.id] = Highlighter(detail.code)
            while len(hls) > HIGHLIGHTERS:
                hls.popitem(last=False)
        hls.move_to_end(detail.summary.id)
        return hl

    def highlight(self, hl: Highlighter) -> None:
        hl.running = True
        self._run_highlight(hl)

    @work(thread=True, group="evals-highlight")
    def _run_highlight(self, hl: Highlighter) -> None:
        worker = get_current_worker()
        hl.run(lambda: worker.is_cancelled, lambda: self.post_message(HighlightProgress(hl, False)))
        self.post_message(HighlightProgress(hl, True))

    def on_highlight_progress(self, message: HighlightProgress) -> None:
        if message.finished:
            message.hl.running = False
        for view in self.query(LinesView):
            if message.hl in view.highlighters():
                view.invalidate()
                if message.finished:
                    view.request_highlight()

    # -- diff ----------------------------------------------------------------------------------------
    def ensure_diff(self) -> None:
        detail, _ = self.model.current()
        if detail is None:
            return
        title = self.query_one("#diff-title", Static)
        key = self.model.want_diff(detail)
        if self.model.diff_key is None:
            self.supersede("evals-diff")
            title.update(Text(f"v{detail.summary.version} has no parent version: "
                              "press b to pick one to compare with", style="yellow"))
            self.query_one(DiffView).set_diff(None, None, None, self.model.side_by_side, "nothing to compare")
            return
        if key is None:
            return  # shown, or on its way
        title.update(Text("computing diff…", style="dim"))
        self.run_query(diff_job, self.app, key, detail, self.model.detail(key[0]),
                       on_result=self._diff_loaded, group="evals-diff", what="diff")

    def _diff_loaded(self, found: tuple[DiffKey, EvalDetail | None, list[FieldDiff]]) -> None:
        key, base, sections = found
        if key != self.model.diff_key:
            return
        new, _ = self.model.current()
        if base is None or new is None:
            self.query_one("#diff-title", Static).update(
                Text(f"version {key[0]} is missing from the database", style="bold red"))
            self.query_one(DiffView).set_diff(None, None, None, self.model.side_by_side, "nothing to compare")
            return
        if self.model.diff_loaded(key, base, sections):
            self._render_diff()

    def _render_diff(self) -> None:
        model = self.model
        pair = model.diff_pair()
        if pair is None:
            return
        base, new, sections = pair
        code = sections[0]
        title = Text()
        title.append(f"{one_line(base.summary.name, 30)} v{base.summary.version}", style="bold red")
        title.append(" → ")
        title.append(f"{one_line(new.summary.name, 30)} v{new.summary.version}", style="bold green")
        title.append(f"   code +{code.added} −{code.removed}   ")
        title.append("side by side" if model.side_by_side else "unified", style="cyan")
        context = "full file" if model.full_context else "3 lines of context"
        title.append(f" (u)  ·  {context} (f)  ·  b: other version", style="dim")
        link = model.link(new.summary.id)
        if model.base_override is None and link and link.inferred:
            title.append("  ·  parent by version order", style="dim")
        self.query_one("#diff-title", Static).update(title)
        placeholder = "identical" if all(s.identical for s in sections) else ""
        self.query_one(DiffView).set_diff(sections, self._hl(base), self._hl(new), model.side_by_side,
                                          placeholder)
        self.update_status()

    def action_pick_base(self) -> None:
        model = self.model
        if not model.evals or not model.selected_id:
            return
        options = [(s.id, f"{s.name} v{s.version}  {s.status}  {s.created_at[:10]}")
                   for s, _ in model.evals.rows if s.id != model.selected_id]
        if not options:
            self.notify("no other eval in this set to compare with", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value:
                model.base_override = value
                self.action_tab("diff")

        self.app.push_screen(PickOne("Compare with which version?", options, model.base_id()), chosen)

    def action_toggle_layout(self) -> None:
        self.model.side_by_side = not self.model.side_by_side
        if self.active_tab != "diff":
            self.action_tab("diff")
        else:
            self._render_diff()

    def action_toggle_context(self) -> None:
        self.model.full_context = not self.model.full_context
        self.action_tab("diff")

    # -- tabs, search --------------------------------------------------------------------------------
    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"
        focus = {"code": "#code-view", "diff": "#diff-view", "tests": "#tests-table",
                 "training": "#training-table"}
        if name in focus:
            self.query_one(focus[name]).focus()
        if name == "diff":
            self.ensure_diff()
        self.update_status()

    def action_focus_list(self) -> None:
        self.table.focus()

    def action_search(self) -> None:
        if self.active_tab not in ("code", "diff"):
            self.action_tab("code")
        view = self._view()

        def go(value: str | None) -> None:
            if value is None:
                return
            found = view.search(value)
            view.focus()
            if value and not found:
                self.notify(f'"{one_line(value, 40)}" not found', severity="warning")
            self.update_status()

        prompt = f"Search the {self.active_tab} (case-insensitive; empty clears)"
        self.app.push_screen(Prompt(prompt, view.search_text), go)

    def action_next_match(self, forward: bool) -> None:
        view = self._view()
        if view.next_match(forward) is None:
            self.notify("no search (press /)" if not view.search_text else "no matches", severity="warning")
        self.update_status()
