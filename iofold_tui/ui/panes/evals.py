"""The evals pane: versions per eval set, highlighted code, diffs, test results and jumps elsewhere."""

from __future__ import annotations

import subprocess
import time
from collections import OrderedDict
from dataclasses import replace

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from iofold_tui.data.evals import versions as core
from iofold_tui.data.evals.lookup import eval_set_of
from iofold_tui.data.evals.versions import (
    EvalCounts,
    EvalDetail,
    EvalList,
    EvalSummary,
    FieldDiff,
    TrainingTrace,
)
from iofold_tui.data.paths import cache_dir
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.navigation import OpenMatrixColumn
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.evals_widgets import (
    CodeView,
    DiffView,
    Highlighter,
    LinesView,
    details_text,
    list_cells,
    note_text,
    test_cells,
    tests_summary,
    training_cells,
    training_summary,
)
from iofold_tui.ui.widgets import Confirm, PickOne, Prompt

DEBOUNCE_S = 0.04
LIST_COLUMNS = (("eval", 24), ("status", 8), ("model", 14), ("acc", 4), ("live", 4), ("exec", 6), ("exec*", 6),
                ("contra", 6), ("contra*", 7), ("err*", 4), ("created", 10))


Rows = list[tuple[str, list[Text]]]


class ListLoaded(Message):
    def __init__(self, evals: EvalList, rows: Rows, generation: int) -> None:
        super().__init__()
        self.evals, self.rows, self.generation = evals, rows, generation


class CountsLoaded(Message):
    def __init__(self, counts: dict[str, EvalCounts], rows: Rows, generation: int) -> None:
        super().__init__()
        self.counts, self.rows, self.generation = counts, rows, generation


class DetailLoaded(Message):
    def __init__(self, eval_id: str, detail: EvalDetail | None, training: list[TrainingTrace]) -> None:
        super().__init__()
        self.eval_id, self.detail, self.training = eval_id, detail, training


class DiffLoaded(Message):
    def __init__(self, key: tuple[str, str, bool], base: EvalDetail | None, sections: list[FieldDiff]) -> None:
        super().__init__()
        self.key, self.base, self.sections = key, base, sections


class HighlightProgress(Message):
    def __init__(self, hl: Highlighter, finished: bool) -> None:
        super().__init__()
        self.hl, self.finished = hl, finished


class Located(Message):
    """Where an eval asked for by ``select_item`` lives (its eval set), or None."""

    def __init__(self, eval_id: str, eval_set_id: str | None) -> None:
        super().__init__()
        self.eval_id, self.eval_set_id = eval_id, eval_set_id


class EvalsPane(Pane):
    pane_title = "Evals"
    selects_on_start = True  # applied when the first page / the eval is in
    requires = ("evals", "eval_executions")
    BINDINGS = [
        Binding("c", "tab('code')", "Code", id="evals.code"),
        Binding("d", "tab('diff')", "Diff", id="evals.diff"),
        Binding("i", "tab('details')", "Details", id="evals.details"),
        Binding("t", "tab('tests')", "Tests", id="evals.tests"),
        Binding("l", "tab('training')", "Training", id="evals.training", show=False),
        Binding("slash", "search", "Search", id="evals.search"),
        Binding("n", "next_match(True)", "Next match", id="evals.next", show=False),
        Binding("N", "next_match(False)", "Prev match", id="evals.prev", show=False),
        # when no search is active; N as in the matrix (where n labels neutral)
        Binding("n,N", "new_version", "New version", id="evals.new_version"),
        Binding("C", "compare", "Compare", id="evals.compare"),
        Binding("y", "copy", "Copy", id="evals.copy"),
        Binding("o", "open_external", "Pager", id="evals.open"),
        Binding("x", "export", "Export", id="evals.export"),
        Binding("b", "pick_base", "Base", id="evals.base"),
        Binding("u", "toggle_layout", "Split/unified", id="evals.layout", show=False),
        Binding("f", "toggle_context", "Full diff", id="evals.context", show=False),
        Binding("m", "matrix", "Matrix", id="evals.matrix"),
        Binding("e", "executions", "Execs", id="evals.executions"),
        Binding("r", "run_eval(False)", "Run", id="evals.run"),
        Binding("p", "run_eval(True)", "Dry run", id="evals.dry_run"),
        Binding("escape", "focus_list", "List", id="evals.list", show=False),
    ]
    DEFAULT_CSS = """
    EvalsPane #evals-table { max-height: 40%; min-height: 4; }
    EvalsPane #eval-note { height: auto; max-height: 2; padding: 0 1; }
    EvalsPane #eval-tabs { height: 1fr; }
    EvalsPane TabPane { padding: 0; }
    EvalsPane #diff-title, EvalsPane #tests-summary, EvalsPane #training-summary { height: auto; padding: 0 1; }
    EvalsPane #details { padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0
        self.evals: EvalList | None = None
        self.counts: dict[str, EvalCounts] | None = None
        self.selected_id: str | None = None
        self.base_override: str | None = None  # the other side of the diff, when picked by hand
        self.side_by_side = False
        self.full_context = False
        self.details: OrderedDict[str, tuple[EvalDetail | None, list[TrainingTrace]]] = OrderedDict()
        self.bases: OrderedDict[str, EvalDetail] = OrderedDict()  # diff bases loaded without their training rows
        self.hls: OrderedDict[str, Highlighter] = OrderedDict()
        self.diff_key: tuple[str, str, bool] | None = None
        self.diff_sections: list[FieldDiff] | None = None
        self.pending_select: str | None = None
        self.shown_id: str | None = None  # the eval whose code is on screen

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="evals-table", cursor_type="row", zebra_stripes=True)
        table.styles.height = "auto"  # inline: app.tcss gives every DataTable 1fr, which would win over DEFAULT_CSS
        for name, width in LIST_COLUMNS:
            table.add_column(name, width=width, key=name)
        yield table
        yield Static(id="eval-note")
        with TabbedContent(id="eval-tabs", initial="tab-code"):
            with TabPane("Code (c)", id="tab-code"):
                yield CodeView(id="code-view")
            with TabPane("Diff (d)", id="tab-diff"):
                yield Static(id="diff-title")
                yield DiffView(id="diff-view")
            with TabPane("Details (i)", id="tab-details"), VerticalScroll():
                yield Static(id="details")
            with TabPane("Tests (t)", id="tab-tests"):
                yield Static(id="tests-summary")
                tests: DataTable[Text] = DataTable(id="tests-table", cursor_type="row", zebra_stripes=True)
                for name, width in (("trace", 22), ("expected", 8), ("predicted", 9), ("match", 5), ("reason", 50),
                                    ("time", 8)):
                    tests.add_column(name, width=width, key=name)
                yield tests
            with TabPane("Training (l)", id="tab-training"):
                yield Static(id="training-summary")
                training: DataTable[Text] = DataTable(id="training-table", cursor_type="row", zebra_stripes=True)
                for name, width in (("trace", 24), ("exists", 6), ("label", 6), ("input", 70)):
                    training.add_column(name, width=width, key=name)
                yield training

    def on_mount(self) -> None:
        for view in self.query(LinesView):
            view.on_need = self.highlight
        app = self.iofold
        if app.start_select and app.start_pane == "evals" and self.pending_select is None:
            self.pending_select = app.start_select
        super().on_mount()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#evals-table", DataTable)

    @property
    def active_tab(self) -> str:
        return (self.query_one(TabbedContent).active or "tab-code").removeprefix("tab-")

    # -- list ----------------------------------------------------------------------------------------
    def reload(self) -> None:
        self.generation += 1
        self.counts = None
        self.details.clear()
        self.bases.clear()
        self.hls.clear()
        self.diff_key = None
        set_id = self.iofold.state.eval_set_id
        if set_id is None:
            self.evals = None
            self.table.clear()
            self.set_status(Text("no eval set in this workspace", style="yellow"))
            return
        self.set_status(Text("loading evals…", style="dim"))
        self._load_list(set_id, self.generation)

    @work(thread=True, group="evals-list")
    def _load_list(self, eval_set_id: str, generation: int) -> None:
        conn = self.iofold.db.conn()
        evals = core.list_evals(conn, eval_set_id)
        # Cells are built here, off the UI thread: thousands of rows of Text take a while.
        self.post_message(ListLoaded(evals, [(s.id, list_cells(s, link, None, False)) for s, link in evals.rows],
                                     generation))
        if evals.rows:
            counts = core.counts(conn, evals)
            rows = [(s.id, list_cells(s, link, counts.get(s.id), True)) for s, link in evals.rows]
            self.post_message(CountsLoaded(counts, rows, generation))

    def on_list_loaded(self, message: ListLoaded) -> None:
        if message.generation != self.generation:
            return
        self.evals = message.evals
        self._fill_table(message.rows)
        ids = [s.id for s, _ in self.evals.rows]
        pending = self.pending_select
        if pending and pending not in ids:
            self._locate(pending)
        target = pending if pending in ids else self.selected_id if self.selected_id in ids else ids[0] if ids else None
        if target:
            self.table.move_cursor(row=ids.index(target), animate=False)
            self.select(target)
            if pending == target:
                self._apply_screenshot_options()
        else:
            self._show_empty()
        self.update_status()

    def on_counts_loaded(self, message: CountsLoaded) -> None:
        if message.generation != self.generation:
            return
        self.counts = message.counts
        self._fill_table(message.rows, keep_cursor=True)
        self.update_status()
        if self.selected_id:
            self._show_details()

    def _fill_table(self, rows: Rows, keep_cursor: bool = False) -> None:
        table, row = self.table, self.table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if keep_cursor and table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)

    def update_status(self) -> None:
        evals = self.evals
        status = Text()
        if evals is None:
            return self.set_status(status)
        if evals.problem:
            return self.set_status(Text(one_line(evals.problem, 200), style="yellow"))
        names = len({s.name for s, _ in evals.rows})
        status.append(f"{plural(len(evals.rows), 'eval')}, {plural(names, 'name')}", style="bold")
        if evals.truncated:
            status.append(f" (first {core.MAX_LIST:,} only)", style="yellow")
        if self.counts is None and evals.rows:
            status.append("  ·  recomputing counts…", style="dim")
        elif evals.rows:
            differ = sum(1 for s, _ in evals.rows if self._differs(s))
            status.append("  ·  * recomputed in this set, errors apart")
            if differ:
                status.append(f"  ·  {differ} with stored counters that disagree", style="bold yellow")
        if self.selected_id and self.active_tab in ("code", "diff"):
            view = self._view()
            if view.search_text:
                pos = f"{view.current + 1}/{len(view.matches)}" if view.current >= 0 else f"{len(view.matches)}"
                status.append(f'  ·  "{one_line(view.search_text, 30)}": {pos} matches (n/N)', style="cyan")
        self.set_status(status)
        return None

    def _differs(self, summary: EvalSummary) -> bool:
        counts = (self.counts or {}).get(summary.id)
        return counts is not None and (summary.execution_count != counts.execution_count
                                       or summary.contradiction_count != counts.contradictions)

    @on(DataTable.RowHighlighted, "#evals-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self.table.cursor_row:
            return  # stale: posted while the table was being refilled (clear() moves the cursor to row 0)
        if event.row_key.value and event.row_key.value != self.selected_id:
            self.select(str(event.row_key.value))

    @on(DataTable.RowSelected, "#evals-table")
    def _chosen(self, _: DataTable.RowSelected) -> None:
        self.action_tab("code")

    # -- one eval ------------------------------------------------------------------------------------
    def select(self, eval_id: str) -> None:
        if eval_id != self.selected_id:
            self.base_override = None
            for view in self.query(LinesView):
                view.search("", jump=False)
        self.selected_id = eval_id
        if eval_id in self.details:
            self.details.move_to_end(eval_id)
            self._show_selected()
        else:
            self.query_one("#eval-note", Static).update(Text("loading…", style="dim"))
            self._load_detail(eval_id)

    @work(thread=True, group="evals-detail")
    def _load_detail(self, eval_id: str) -> None:
        # Debounce: while an arrow key is held the selection moves on before we query; then skip.
        # (No exclusive workers here: a cancelled worker makes wait_for_complete() raise.)
        time.sleep(DEBOUNCE_S)
        if eval_id != self.selected_id:
            return
        conn = self.iofold.db.conn()
        detail = core.load_eval(conn, eval_id)
        training = [] if detail is None else core.training_traces(conn, detail.training_ids, detail.summary.eval_set_id)
        self.post_message(DetailLoaded(eval_id, detail, training))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        self.details[message.eval_id] = (message.detail, message.training)
        while len(self.details) > 8:
            self.details.popitem(last=False)
        if message.eval_id == self.selected_id:
            self._show_selected()

    def _current(self) -> tuple[EvalDetail | None, list[TrainingTrace]]:
        return self.details.get(self.selected_id or "", (None, []))

    def _detail(self, eval_id: str) -> EvalDetail | None:
        return self.details.get(eval_id, (None, []))[0] or self.bases.get(eval_id)

    def _show_empty(self) -> None:
        self.selected_id = self.shown_id = None
        text = "no evals in this eval set" if self.evals and not self.evals.problem else ""
        self.query_one("#eval-note", Static).update(Text(text, style="dim"))
        self.query_one(CodeView).set_code(None, text)
        self.query_one(DiffView).set_diff(None, None, None, self.side_by_side, text)

    def _show_selected(self) -> None:
        detail, training = self._current()
        if detail is None:
            self.query_one("#eval-note", Static).update(Text(f"eval {self.selected_id} not found", style="bold red"))
            return
        link = self.evals.find(detail.summary.id)[1] if self.evals and self.evals.find(detail.summary.id) else None
        self.query_one("#eval-note", Static).update(note_text(detail, link, self._hl(detail)))
        same = self.shown_id == detail.summary.id
        self.shown_id = detail.summary.id
        self.query_one(CodeView).set_code(self._hl(detail) if detail.code else None, "(empty code)", keep_scroll=same)
        self._show_details()
        tests = self.query_one("#tests-table", DataTable)
        tests.clear()
        for index, row in enumerate(detail.test_results.rows):
            tests.add_row(*test_cells(row), key=str(index))
        self.query_one("#tests-summary", Static).update(tests_summary(detail))
        table = self.query_one("#training-table", DataTable)
        table.clear()
        for index, trace in enumerate(training):
            table.add_row(*training_cells(trace), key=str(index))
        self.query_one("#training-summary", Static).update(training_summary(detail, training))
        if self.active_tab == "diff":
            self.ensure_diff()
        self.update_status()

    def _show_details(self) -> None:
        detail, training = self._current()
        if detail is None or self.evals is None:
            return
        found = self.evals.find(detail.summary.id)
        counts = (self.counts or {}).get(detail.summary.id)
        lineage = self.evals.lineage(detail.summary.id)
        self.query_one("#details", Static).update(
            details_text(detail, found[1] if found else None, counts, lineage, counting=self.counts is None))

    # -- highlighting --------------------------------------------------------------------------------
    def _hl(self, detail: EvalDetail) -> Highlighter:
        hl = self.hls.get(detail.summary.id)
        if hl is None:
            hl = self.hls[detail.summary.id] = Highlighter(detail.code)
            while len(self.hls) > 6:
                self.hls.popitem(last=False)
        self.hls.move_to_end(detail.summary.id)
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
    def base_id(self) -> str | None:
        if self.base_override:
            return self.base_override
        found = self.evals.find(self.selected_id) if self.evals and self.selected_id else None
        return found[1].base_id if found else None

    def ensure_diff(self) -> None:
        detail, _ = self._current()
        title = self.query_one("#diff-title", Static)
        if detail is None:
            return
        base = self.base_id()
        if base is None:
            self.diff_key, self.diff_sections = None, None
            title.update(Text(f"v{detail.summary.version} has no parent version: press b to pick one to compare with",
                              style="yellow"))
            self.query_one(DiffView).set_diff(None, None, None, self.side_by_side, "nothing to compare")
            return
        key = (base, detail.summary.id, self.full_context)
        if key == self.diff_key and self.diff_sections is not None:
            return
        self.diff_key, self.diff_sections = key, None
        title.update(Text("computing diff…", style="dim"))
        cached = self._detail(base)
        self._load_diff(key, detail, cached)

    @work(thread=True, group="evals-diff")
    def _load_diff(self, key: tuple[str, str, bool], new: EvalDetail, base: EvalDetail | None) -> None:
        if base is None:
            base = core.load_eval(self.iofold.db.conn(), key[0])
        sections = [] if base is None else core.eval_diff(base, new, None if key[2] else 3)
        self.post_message(DiffLoaded(key, base, sections))

    def on_diff_loaded(self, message: DiffLoaded) -> None:
        if message.key != self.diff_key:
            return
        new, _ = self._current()
        title = self.query_one("#diff-title", Static)
        if message.base is None or new is None:
            title.update(Text(f"version {message.key[0]} is missing from the database", style="bold red"))
            self.query_one(DiffView).set_diff(None, None, None, self.side_by_side, "nothing to compare")
            return
        self.bases[message.base.summary.id] = message.base
        while len(self.bases) > 4:
            self.bases.popitem(last=False)
        self.diff_sections = message.sections
        self._render_diff()

    def _render_diff(self) -> None:
        new, _ = self._current()
        base = self._detail(self.diff_key[0]) if self.diff_key else None
        if new is None or base is None or self.diff_sections is None:
            return
        code = self.diff_sections[0]
        title = Text()
        title.append(f"{one_line(base.summary.name, 30)} v{base.summary.version}", style="bold red")
        title.append(" → ")
        title.append(f"{one_line(new.summary.name, 30)} v{new.summary.version}", style="bold green")
        title.append(f"   code +{code.added} −{code.removed}   ")
        title.append("side by side" if self.side_by_side else "unified", style="cyan")
        title.append(" (u)  ·  " + ("full file" if self.full_context else "3 lines of context") + " (f)  ·  b: other version",
                     style="dim")
        found = self.evals.find(new.summary.id) if self.evals else None
        if self.base_override is None and found and found[1].inferred:
            title.append("  ·  parent by version order", style="dim")
        self.query_one("#diff-title", Static).update(title)
        placeholder = "identical" if all(s.identical for s in self.diff_sections) else ""
        self.query_one(DiffView).set_diff(self.diff_sections, self._hl(base), self._hl(new), self.side_by_side, placeholder)
        self.update_status()

    def action_pick_base(self) -> None:
        if not self.evals or not self.selected_id:
            return
        options = [(s.id, f"{s.name} v{s.version}  {s.status}  {s.created_at[:10]}")
                   for s, _ in self.evals.rows if s.id != self.selected_id]
        if not options:
            self.notify("no other eval in this set to compare with", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value:
                self.base_override = value
                self.action_tab("diff")

        self.app.push_screen(PickOne("Compare with which version?", options, self.base_id()), chosen)

    def action_toggle_layout(self) -> None:
        self.side_by_side = not self.side_by_side
        if self.active_tab != "diff":
            self.action_tab("diff")
        else:
            self._render_diff()

    def action_toggle_context(self) -> None:
        self.full_context = not self.full_context
        self.action_tab("diff")

    # -- tabs, search --------------------------------------------------------------------------------
    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"
        focus = {"code": "#code-view", "diff": "#diff-view", "tests": "#tests-table", "training": "#training-table"}
        if name in focus:
            self.query_one(focus[name]).focus()
        if name == "diff":
            self.ensure_diff()
        self.update_status()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-diff":
            self.ensure_diff()

    def _view(self) -> LinesView:
        return self.query_one(DiffView) if self.active_tab == "diff" else self.query_one(CodeView)

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

        self.app.push_screen(Prompt(f"Search the {self.active_tab} (case-insensitive; empty clears)", view.search_text), go)

    def action_next_match(self, forward: bool) -> None:
        view = self._view()
        if view.next_match(forward) is None:
            self.notify("no search (press /)" if not view.search_text else "no matches", severity="warning")
        self.update_status()

    # -- copy, open, export ----------------------------------------------------------------------------
    def _payload(self) -> tuple[str, str] | None:
        """What y/o act on: the diff in the diff tab, else the code. Returns (text, file name)."""
        detail, _ = self._current()
        if detail is None:
            self.notify("no eval selected", severity="warning")
            return None
        name = core.default_export_name(detail.summary.name, detail.summary.version)
        base = self._detail(self.diff_key[0]) if self.diff_key else None
        if self.active_tab == "diff" and base is not None:
            return core.unified_text(base, detail), name.removesuffix(".py") + ".diff"
        return detail.code, name

    def action_copy(self) -> None:
        payload = self._payload()
        if payload is None:
            return
        self.app.copy_to_clipboard(payload[0])
        lines = len(core.split_lines(payload[0]))
        what = "diff" if payload[1].endswith(".diff") else "code"
        self.notify(f"copied the {what} ({plural(lines, 'line')}) via OSC 52; your terminal must allow clipboard writes")

    def action_open_external(self) -> None:
        payload = self._payload()
        if payload is None:
            return
        command = core.viewer_command()
        if command is None:
            self.notify("set $PAGER or $EDITOR (no less/more found)", severity="error")
            return
        text, changed = core.terminal_safe(payload[0])
        folder = cache_dir() / "open"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / payload[1]
        path.write_text(text, encoding="utf-8")
        try:
            with self.app.suspend():
                subprocess.run([*command, str(path)], check=False)
        except (SuspendNotSupported, OSError) as exc:
            self.notify(f"cannot open {command[0]} here ({type(exc).__name__}); the file is {path}", severity="warning")
            return
        note = " (control characters made visible)" if changed else ""
        self.notify(f"opened a read-only copy: {path}{note}; edits are not saved to the database")

    def action_export(self) -> None:
        detail, _ = self._current()
        if detail is None:
            self.notify("no eval selected", severity="warning")
            return
        default = core.default_export_name(detail.summary.name, detail.summary.version)

        def write(path_text: str, overwrite: bool) -> None:
            try:
                path = core.export_code(detail.code, path_text, overwrite=overwrite)
            except FileExistsError:
                self.app.push_screen(Confirm(Text(f"{one_line(path_text, 80)} exists. Overwrite?")),
                                     lambda yes: write(path_text, True) if yes else None)
                return
            except OSError as exc:
                self.notify(f"cannot write {one_line(path_text, 80)}: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"wrote {path} ({plural(len(detail.code), 'character')})")

        def chosen(value: str | None) -> None:
            if value is not None:
                write(value.strip() or default, False)

        self.app.push_screen(Prompt("Export the code to (relative to the current directory)", default), chosen)

    # -- jumps ---------------------------------------------------------------------------------------
    def _open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        if trace_id:
            self.app.push_screen(TraceDetailScreen(trace_id))

    @on(DataTable.RowSelected, "#tests-table")
    def _test_row(self, event: DataTable.RowSelected) -> None:
        detail, _ = self._current()
        if detail is not None and event.row_key.value is not None:
            self._open_trace(detail.test_results.rows[int(event.row_key.value)].trace_id)

    @on(DataTable.RowSelected, "#training-table")
    def _training_row(self, event: DataTable.RowSelected) -> None:
        _, training = self._current()
        if event.row_key.value is not None:
            self._open_trace(training[int(event.row_key.value)].id)

    def action_matrix(self) -> None:
        if not self.selected_id:
            return
        self.post_message(OpenMatrixColumn(self.selected_id))

    def action_run_eval(self, dry_run: bool) -> None:
        """Re-run the selected eval locally in the sandbox over the eval set's labelled traces."""
        from iofold_tui.ui.run_eval import start_eval_run

        if self.selected_id:
            start_eval_run(self.app, self.selected_id, dry_run=dry_run)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `n` and `N` fall through to "new version" while no search is active
        return not (action == "next_match" and self.is_mounted and not self._view().search_text)

    def action_new_version(self) -> None:
        """The eval editor on the selected version (saving makes the next version)."""
        from iofold_tui.ui.panes.eval_editor import EvalEditorScreen

        if self.selected_id:
            self.app.push_screen(EvalEditorScreen(self.selected_id))

    def action_compare(self) -> None:
        """The selected version against its parent (or a version picked with b): matrices, deltas, flips."""
        from iofold_tui.ui.panes.compare import CompareScreen

        base = self.base_id()
        if self.selected_id and base:
            self.app.push_screen(CompareScreen(base, self.selected_id))
        elif self.selected_id:
            self.notify("this version has no parent: press b to pick the version to compare with", severity="warning")

    def on_eval_results_applied(self) -> None:
        self.stale = True  # counters change: the list reloads when the run finishes (refresh_panes)

    def action_executions(self) -> None:
        """The trace list filtered to the traces this eval ran on (an indexed EXISTS, no cap)."""
        if not self.selected_id:
            return
        state = self.iofold.state
        state.trace_filter = replace(state.trace_filter.cleared(), executed_by_eval=self.selected_id)
        self.app.switch_mode("traces")
        self.iofold.refresh_panes()
        self.notify(f"traces {self.selected_id} ran on (c clears the filter)", timeout=6)

    # -- headless -------------------------------------------------------------------------------------
    def select_item(self, eval_id: str) -> None:
        """Select ``eval_id`` (switching eval set if needed); honour ``screenshot_options['diff_with']``."""
        self.pending_select = eval_id
        ids = [s.id for s, _ in self.evals.rows] if self.evals else []
        if eval_id in ids:
            self.table.move_cursor(row=ids.index(eval_id), animate=False)
            self.select(eval_id)
            self._apply_screenshot_options()
        else:
            self._locate(eval_id)

    def _apply_screenshot_options(self) -> None:
        other = self.iofold.state.screenshot_diff_with
        self.pending_select = None
        if other:
            self.base_override = str(other)
            self.action_tab("diff")

    @work(thread=True, group="evals-locate")
    def _locate(self, eval_id: str) -> None:
        self.post_message(Located(eval_id, eval_set_of(self.iofold.db.conn(), eval_id)))

    def on_located(self, message: Located) -> None:
        state = self.iofold.state
        if message.eval_set_id is None or message.eval_set_id not in {es.id for es in state.eval_sets}:
            self.pending_select = None
            self.notify(f"no eval {message.eval_id!r} in this workspace", severity="warning")
        elif message.eval_set_id == state.eval_set_id:  # in this set but past the listed rows
            self.pending_select = None
            self.notify(f"{message.eval_id} is not among the first {core.MAX_LIST:,} evals listed", severity="warning")
        else:
            state.eval_set_id = message.eval_set_id
            self.iofold.refresh_panes()  # reload selects pending_select, then applies the options

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "evals-highlight")
