"""The evals pane: versions per eval set, highlighted code, diffs, test results and jumps elsewhere.

A thin view over ``ui/models/evals.EvalsModel`` (the list, counts, selection, details and diff); the list,
its recomputed counts, a version's detail and where an eval lives are queried through ``Pane.run_query``
(groups "evals-list", "evals-counts", "evals-detail", "evals-locate": a newer query makes an older result
stale). Diffs, highlighting and search are in ``evals_diff.py``; copy/open/export and jumps in
``evals_actions.py``; the viewers in ``evals_widgets.py``, cells and texts in ``evals_text.py``."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from iofold_tui.data.evals import versions as core
from iofold_tui.data.evals.lookup import eval_set_of
from iofold_tui.data.evals.versions import EvalDetail, EvalList, TrainingTrace
from iofold_tui.data.matrix.stats import EvalCounts
from iofold_tui.ui.panes.evals_actions import EvalsActions
from iofold_tui.ui.panes.evals_diff import EvalsDiff
from iofold_tui.ui.panes.evals_text import (
    details_text,
    list_cells,
    note_text,
    test_cells,
    tests_summary,
    training_cells,
    training_summary,
)
from iofold_tui.ui.panes.evals_widgets import CodeView, DiffView, LinesView

DEBOUNCE_S = 0.04
LIST_COLUMNS = (("eval", 24), ("status", 8), ("model", 14), ("acc", 4), ("live", 4), ("exec", 6),
                ("exec*", 6), ("contra", 6), ("contra*", 7), ("err*", 4), ("created", 10))
TEST_COLUMNS = (("trace", 22), ("expected", 8), ("predicted", 9), ("match", 5), ("reason", 50), ("time", 8))
TRAINING_COLUMNS = (("trace", 24), ("exists", 6), ("label", 6), ("input", 70))
_QUERIES = ("evals-list", "evals-counts", "evals-detail", "evals-locate")

Rows = list[tuple[str, list[Text]]]


def list_job(app: Any, eval_set_id: str) -> tuple[EvalList, Rows]:
    """(in a worker) The set's versions; their cells are built here too: thousands of rows of Text take
    a while."""
    evals = core.list_evals(app.db.conn(), eval_set_id)
    return evals, [(s.id, list_cells(s, link, None, False)) for s, link in evals.rows]


def counts_job(app: Any, evals: EvalList) -> tuple[dict[str, EvalCounts], Rows]:
    """(in a worker) The counters recomputed from executions, and the rows showing them."""
    counts = core.counts(app.db.conn(), evals)
    return counts, [(s.id, list_cells(s, link, counts.get(s.id), True)) for s, link in evals.rows]


def detail_job(app: Any, eval_id: str,
               selected: Any) -> tuple[str, EvalDetail | None, list[TrainingTrace]] | None:
    """(in a worker) One version with its training traces; None when the selection moved on meanwhile."""
    # Debounce: while an arrow key is held the selection moves on before we query; then skip.
    time.sleep(DEBOUNCE_S)
    if eval_id != selected():
        return None
    conn = app.db.conn()
    detail = core.load_eval(conn, eval_id)
    if detail is None:
        return eval_id, None, []
    training = core.training_traces(conn, detail.training_ids, detail.summary.eval_set_id)
    return eval_id, detail, training


class EvalsPane(EvalsDiff, EvalsActions):
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
    EvalsPane #diff-title, EvalsPane #tests-summary, EvalsPane #training-summary {
        height: auto; padding: 0 1;
    }
    EvalsPane #details { padding: 0 1; }
    """

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="evals-table", cursor_type="row", zebra_stripes=True)
        # inline: app.tcss gives every DataTable 1fr, which would win over DEFAULT_CSS
        table.styles.height = "auto"
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
                for name, width in TEST_COLUMNS:
                    tests.add_column(name, width=width, key=name)
                yield tests
            with TabPane("Training (l)", id="tab-training"):
                yield Static(id="training-summary")
                training: DataTable[Text] = DataTable(id="training-table", cursor_type="row",
                                                      zebra_stripes=True)
                for name, width in TRAINING_COLUMNS:
                    training.add_column(name, width=width, key=name)
                yield training

    def on_mount(self) -> None:
        for view in self.query(LinesView):
            view.on_need = self.highlight
        app = self.iofold
        if app.start_select and app.start_pane == "evals" and self.model.pending_select is None:
            self.model.pending_select = app.start_select
        super().on_mount()

    # -- list ----------------------------------------------------------------------------------------
    def reload(self) -> None:
        for group in _QUERIES:
            self.supersede(group)  # results of queries on the previous state are dropped
        self.model.reset()
        self.hls.clear()
        set_id = self.iofold.state.eval_set_id
        if set_id is None:
            self.model.evals = None
            self.table.clear()
            self.set_status(Text("no eval set in this workspace", style="yellow"))
            return
        self.set_status(Text("loading evals…", style="dim"))
        self.run_query(list_job, self.app, set_id, on_result=self._list_loaded, group="evals-list",
                       what="listing evals")

    def _list_loaded(self, found: tuple[EvalList, Rows]) -> None:
        evals, rows = found
        model = self.model
        target = model.listed(evals)
        self._fill_table(rows)
        pending = model.pending_select
        if pending and pending != target:
            self._locate(pending)
        if target:
            self.table.move_cursor(row=model.ids().index(target), animate=False)
            self.select(target)
            if pending == target:
                self._apply_screenshot_options()
        else:
            self._show_empty()
        self.update_status()
        if evals.rows:
            self.run_query(counts_job, self.app, evals, on_result=self._counts_loaded, group="evals-counts",
                           what="recomputing counts")

    def _counts_loaded(self, found: tuple[dict[str, EvalCounts], Rows]) -> None:
        counts, rows = found
        self.model.counted(counts)
        self._fill_table(rows, keep_cursor=True)
        self.update_status()
        if self.model.selected_id:
            self._show_details()

    def _fill_table(self, rows: Rows, keep_cursor: bool = False) -> None:
        table, row = self.table, self.table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if keep_cursor and table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)

    @on(DataTable.RowHighlighted, "#evals-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self.table.cursor_row:
            return  # stale: posted while the table was being refilled (clear() moves the cursor to row 0)
        if event.row_key.value and event.row_key.value != self.model.selected_id:
            self.select(str(event.row_key.value))

    @on(DataTable.RowSelected, "#evals-table")
    def _chosen(self, _: DataTable.RowSelected) -> None:
        self.action_tab("code")

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-diff":
            self.ensure_diff()

    @on(DataTable.RowSelected, "#tests-table")
    def _test_row(self, event: DataTable.RowSelected) -> None:
        detail, _ = self.model.current()
        if detail is not None and event.row_key.value is not None:
            self._open_trace(detail.test_results.rows[int(event.row_key.value)].trace_id)

    @on(DataTable.RowSelected, "#training-table")
    def _training_row(self, event: DataTable.RowSelected) -> None:
        _, training = self.model.current()
        if event.row_key.value is not None:
            self._open_trace(training[int(event.row_key.value)].id)

    # -- one eval ------------------------------------------------------------------------------------
    def select(self, eval_id: str) -> None:
        if self.model.select(eval_id):
            for view in self.query(LinesView):
                view.search("", jump=False)
        if self.model.has_detail(eval_id):
            self._show_selected()
        else:
            self.query_one("#eval-note", Static).update(Text("loading…", style="dim"))
            self.run_query(detail_job, self.app, eval_id, lambda: self.model.selected_id,
                           on_result=self._detail_loaded, group="evals-detail", what="loading the eval")

    def _detail_loaded(self, found: tuple[str, EvalDetail | None, list[TrainingTrace]] | None) -> None:
        if found is not None and self.model.detail_loaded(*found):
            self._show_selected()

    def _show_empty(self) -> None:
        self.model.empty()
        text = "no evals in this eval set" if self.model.evals and not self.model.evals.problem else ""
        self.query_one("#eval-note", Static).update(Text(text, style="dim"))
        self.query_one(CodeView).set_code(None, text)
        self.query_one(DiffView).set_diff(None, None, None, self.model.side_by_side, text)

    def _show_selected(self) -> None:
        model = self.model
        detail, training = model.current()
        note = self.query_one("#eval-note", Static)
        if detail is None:
            note.update(Text(f"eval {model.selected_id} not found", style="bold red"))
            return
        note.update(note_text(detail, model.link(detail.summary.id), self._hl(detail)))
        same = model.shown_id == detail.summary.id
        model.shown_id = detail.summary.id
        code = self._hl(detail) if detail.code else None
        self.query_one(CodeView).set_code(code, "(empty code)", keep_scroll=same)
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
        model = self.model
        detail, _ = model.current()
        if detail is None or model.evals is None:
            return
        counts = (model.counts or {}).get(detail.summary.id)
        lineage = model.evals.lineage(detail.summary.id)
        self.query_one("#details", Static).update(
            details_text(detail, model.link(detail.summary.id), counts, lineage,
                         counting=model.counts is None))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `n` and `N` fall through to "new version" while no search is active
        return not (action == "next_match" and self.is_mounted and not self._view().search_text)

    # -- headless -------------------------------------------------------------------------------------
    def select_item(self, eval_id: str) -> None:
        """Select ``eval_id`` (switching eval set if needed); honour ``screenshot_options['diff_with']``."""
        self.model.pending_select = eval_id
        ids = self.model.ids()
        if eval_id in ids:
            self.table.move_cursor(row=ids.index(eval_id), animate=False)
            self.select(eval_id)
            self._apply_screenshot_options()
        else:
            self._locate(eval_id)

    def _apply_screenshot_options(self) -> None:
        other = self.iofold.state.screenshot_diff_with
        self.model.pending_select = None
        if other:
            self.model.base_override = str(other)
            self.action_tab("diff")

    def _locate(self, eval_id: str) -> None:
        db = self.iofold.db
        self.run_query(lambda: eval_set_of(db.conn(), eval_id),
                       on_result=lambda found: self._located(eval_id, found),
                       group="evals-locate", what="finding the eval")

    def _located(self, eval_id: str, eval_set_id: str | None) -> None:
        state = self.iofold.state
        if eval_set_id is None or eval_set_id not in {es.id for es in state.eval_sets}:
            self.model.pending_select = None
            self.notify(f"no eval {eval_id!r} in this workspace", severity="warning")
        elif eval_set_id == state.eval_set_id:  # in this set but past the listed rows
            self.model.pending_select = None
            self.notify(f"{eval_id} is not among the first {core.MAX_LIST:,} evals listed",
                        severity="warning")
        else:
            state.eval_set_id = eval_set_id
            self.iofold.refresh_panes()  # reload selects pending_select, then applies the options

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "evals-highlight")
