"""The SQL console: an editor, results streamed page by page, cancel, history, presets, guarded writes.

Statements run on the console's own connection in a thread worker (data/sqlconsole.py). Only the
pages the user walks through are fetched, and at most KEEP_PAGES of them are held. An unfinished
result holds a read transaction, so it is released whenever the pane hides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TextArea

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.sqlconsole.console import Page, ResultCursor, SqlConsole
from iofold_tui.data.sqlconsole.presets import Preset, presets
from iofold_tui.data.text import plural
from iofold_tui.ui.paged_table import PagedTable
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.sql_widgets import ResultWindow, Row, RowDetail, value_text
from iofold_tui.ui.text import cell
from iofold_tui.ui.widgets import Confirm, PickOne

PAGE_SIZE = 200
KEEP_PAGES = 25  # 5,000 rows at most in memory; older pages come back by running again
HISTORY_PICK = 200
WELCOME = "-- F5 (or ctrl+enter) runs; F3 presets; F4 history; read-only until F8\nSELECT name, type FROM sqlite_master ORDER BY type, name"


@dataclass
class Executed:
    result: ResultCursor
    page: Page | None  # the first rows, when the statement returns rows


def workspace_scope(app: App[None]) -> str | None:
    """The workspace every inspection pane is scoped to (None: one workspace, show everything)."""
    state = app.state  # type: ignore[attr-defined]
    return state.workspace_id if len(state.workspaces) > 1 else None


async def show_sql(app: App[None], sql: str) -> None:
    """Switch to the SQL pane and run ``sql`` there (the overview's jump to a figure's rows)."""
    await app.switch_mode("sql")
    screen = app.screen
    if isinstance(screen, SqlPane):
        screen.run_sql(sql)


class SqlPane(Pane):
    pane_title = "SQL"
    BINDINGS = [
        Binding("f5,ctrl+enter", "run", "Run", id="sql.run", priority=True),
        Binding("ctrl+c", "cancel", "Cancel", id="sql.cancel", priority=True, show=False),
        Binding("escape", "escape", "Cancel/results", id="sql.escape", priority=True),
        Binding("f3", "presets", "Presets", id="sql.presets"),
        Binding("f4", "history", "History", id="sql.history"),
        Binding("ctrl+up", "history_step(-1)", "Older", id="sql.older", show=False, priority=True),
        Binding("ctrl+down", "history_step(1)", "Newer", id="sql.newer", show=False, priority=True),
        Binding("f2", "swap_focus", "Editor/results", id="sql.focus"),
        Binding("f8", "toggle_writes", "Writes", id="sql.writes"),
        Binding("f9", "toggle_secrets", "Secrets", id="sql.secrets", priority=True),
    ]
    DEFAULT_CSS = """
    SqlPane #sql-editor { height: 9; border: round $panel; border-title-color: $text-muted; }
    SqlPane #sql-editor:focus { border: round $accent; border-title-color: $accent; border-title-style: bold; }
    SqlPane #sql-message { height: auto; max-height: 2; padding: 0 1; }
    SqlPane #sql-results { height: 1fr; border: round $panel; border-title-color: $text-muted; }
    SqlPane #sql-results:focus { border: round $accent; border-title-color: $accent; border-title-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.console: SqlConsole | None = None
        self.shown_sql = ""  # the statement whose rows are on screen (re-read when secrets are toggled)
        self.window: ResultWindow | None = None
        self.running = False
        self.fetching = False
        self.started = 0.0
        self.released = False  # the unfinished result was closed when the pane hid
        self.pending_sql: str | None = None
        self.hist_index: int | None = None
        self.hist_stash = ""
        self.message = Text()

    def compose_body(self) -> ComposeResult:
        yield TextArea(WELCOME, id="sql-editor", show_line_numbers=True, soft_wrap=True)
        yield Static(id="sql-message")
        yield PagedTable(id="sql-results", cursor_type="row")

    @property
    def editor(self) -> TextArea:
        return self.query_one("#sql-editor", TextArea)

    @property
    def table(self) -> PagedTable:
        return self.query_one("#sql-results", PagedTable)

    def on_screen_resume(self) -> None:
        # Arriving here (from Overview, a pane key) means writing SQL: letters typed into the results
        # table would switch panes or label traces.
        super().on_screen_resume()
        self.editor.focus()

    def on_mount(self) -> None:
        app = self.iofold
        self.editor.border_title = "SQL editor · F5 runs · F2 results"
        self.table.border_title = "results · F2 editor"
        self.console = SqlConsole(app.db.path, immutable=app.db.immutable, writes_blocked=app.source.read_only_reason)
        self.console.write_hint = "press F8 to enable writes for this session"
        super().on_mount()
        self.editor.focus()
        if self.pending_sql is not None:
            sql, self.pending_sql = self.pending_sql, None
            self.run_sql(sql)

    def on_unmount(self) -> None:
        if self.console is not None:
            self.console.close()

    def on_screen_suspend(self) -> None:
        """An unfinished result holds a read lock that would stall other connections' commits."""
        self._release_if_hidden()

    def _release_if_hidden(self) -> None:
        if self.console is not None and self.window is not None and self.window.more:
            self.console.release()
            self.released = True
            self.table.has_after = False
            self.update_status()

    def reload(self) -> None:
        self.update_status()  # the database changed: results on screen stay what they were when run

    # -- running -----------------------------------------------------------------------------------
    def run_sql(self, sql: str) -> None:
        """Put ``sql`` in the editor and run it (jumps from other panes, presets, screenshots)."""
        if self.console is None:
            self.pending_sql = sql
            return
        self.editor.text = sql
        self.action_run()

    def action_run(self) -> None:
        sql = self.editor.text
        if not sql.strip():
            self._say(Text("nothing to run", style="yellow"))
            return
        if self.console is None:
            return
        if self.running:
            self.console.interrupt()  # the new statement waits for the console's lock otherwise
        self.running, self.released, self.hist_index = True, False, None
        self.started = time.perf_counter()
        self._say(Text("running… (Esc cancels)", style="yellow"))
        self.refresh_bindings()
        console = self.console

        def execute(sql: str) -> Executed:
            result = console.execute(sql)
            return Executed(result, result.fetch_page(PAGE_SIZE) if result.columns and result.ok else None)

        self.run_query(execute, sql, on_result=self.on_executed, on_error=lambda _: self._stopped(), group="sql",
                       what="the statement")

    def _stopped(self) -> None:
        self.running = self.fetching = False
        self.refresh_bindings()
        self.update_status()

    def on_executed(self, message: Executed) -> None:
        self.running = False
        self.refresh_bindings()
        result, page = message.result, message.page
        if page is not None and page.error:
            result.error = page.error  # a runtime error while stepping the first rows
        self.window = None
        table = self.table
        table.clear(columns=True)
        if result.error is not None or not result.columns:
            self._report(result)
            if result.ok and result.message.endswith("changed") and self.console and self.console.allow_writes:
                self.iofold.load_catalog()  # other panes show the written data when they next appear
            self.update_status()
            return
        self.shown_sql = result.sql
        for i, name in enumerate(result.columns):
            table.add_column(cell(name + (" (hidden, F9)" if i in result.masked else ""), 40, style="bold"), key=f"c{i}")
        self.window = ResultWindow(result, PAGE_SIZE, KEEP_PAGES)
        self.window.add(page.rows if page else [])
        self._show(0, "first")
        self._report(result)
        if self.app.screen is not self:  # finished while the pane was hidden
            self._release_if_hidden()

    def _report(self, result: ResultCursor) -> None:
        took = f"{(time.perf_counter() - self.started) * 1000:,.0f} ms"
        if result.refused:
            self._say(Text(result.message, style="bold yellow"))
        elif result.interrupted:
            self._say(Text(f"cancelled after {took}", style="yellow"))
        elif result.error is not None:
            self._say(Text("error: ", style="bold red") + Text(one_line(result.error, 300), style="red"))
        elif not result.columns:
            self._say(Text(f"{result.message} · {took}", style="green"))
        else:
            w = self.window
            more = " (more as you scroll)" if w and w.more else ""
            self._say(Text(f"{plural(len(result.columns), 'column')} · {plural(w.fetched if w else 0, 'row')} fetched{more} · {took}"))

    def _say(self, text: Text) -> None:
        self.message = text
        self.query_one("#sql-message", Static).update(text)

    # -- paging --------------------------------------------------------------------------------------
    def _show(self, index: int, cursor: int | Literal["first", "last"]) -> None:
        w = self.window
        if w is None:
            return
        rows = w.page(index) or []
        w.shown = index
        start = w.first_row(index)
        self.table.show_page(
            ((str(start + i), [value_text(v) for v in row]) for i, row in enumerate(rows)),
            has_before=index > 0,
            has_after=index < w.last or (w.more and not self.released),
            cursor=cursor,
        )
        self.update_status()

    @on(PagedTable.Boundary, "#sql-results")
    def _boundary(self, event: PagedTable.Boundary) -> None:
        w = self.window
        if w is None:
            return
        if event.direction == "last":  # the page's last row: End never streams the whole result
            self.table.move_cursor(row=max(0, self.table.row_count - 1))
        elif event.direction == "after":
            if w.page(w.shown + 1) is not None:
                self._show(w.shown + 1, "first")
            elif w.more and not self.fetching and not self.released:
                self.fetching = True
                self.started = time.perf_counter()
                self._say(Text("fetching more rows… (Esc cancels)", style="yellow"))
                self.refresh_bindings()
                self._fetch()
        elif event.direction in ("before", "first"):
            target = w.base if event.direction == "first" else w.shown - 1
            if w.page(target) is not None and target != w.shown:
                self._show(target, "last" if event.direction == "before" else "first")
            elif w.shown > 0 and event.direction == "before":
                self.notify(f"rows before {w.first_row(w.base) + 1:,} are no longer held: F5 runs the statement again",
                            severity="warning")

    def _fetch(self) -> None:
        w, ticket = self.window, self.ticket("sql")  # rows of the statement run last (a newer one drops them)
        if w is None:
            return
        self.run_query(w.result.fetch_page, PAGE_SIZE, on_result=lambda page: self.on_page_fetched(page, ticket),
                       on_error=lambda _: self._stopped(), group=None, what="fetching rows")

    def on_page_fetched(self, page: Page, ticket: int) -> None:
        self.fetching = False
        self.refresh_bindings()
        w = self.window
        if not self.is_latest("sql", ticket) or w is None:
            return
        if page.error:
            w.result.error = page.error
            w.result.interrupted = page.interrupted
            self._report(w.result)
            self._show(w.shown, self.table.cursor_row)  # no next page after all
            return
        if page.rows:
            w.add(page.rows)
            self._show(w.last, "first")
        else:
            self._show(w.shown, "last")
        self._report(w.result)

    @on(PagedTable.RowSelected, "#sql-results")
    def _row_detail(self, event: PagedTable.RowSelected) -> None:
        w = self.window
        if w is None or event.row_key.value is None:
            return
        absolute = int(event.row_key.value)
        rows = w.page(w.shown) or []
        offset = absolute - w.first_row(w.shown)
        if 0 <= offset < len(rows):
            self.app.push_screen(RowDetail(f"row {absolute + 1:,}", w.result.columns, rows[offset]))

    # -- status ---------------------------------------------------------------------------------------
    def update_status(self) -> None:
        status = Text()
        if self.console is not None and self.console.allow_writes:
            status.append(" WRITES ENABLED ", style="bold white on red")
        else:
            status.append("read-only", style="green")
            reason = self.iofold.source.read_only_reason
            status.append(f" (source cannot be written: {one_line(reason, 60)})" if reason else " (F8 enables writes)",
                          style="dim")
        w = self.window
        if w is not None:
            rows = len(w.page(w.shown) or [])
            start = w.first_row(w.shown)
            total = f"of {w.fetched:,}+" if w.more and not self.released else f"of {w.fetched:,}"
            status.append(f"  ·  rows {start + 1 if rows else 0:,}–{start + rows:,} {total}", style="bold")
            if self.released:
                status.append("  ·  result closed when the pane was hidden (F5 runs again)", style="yellow")
        self.set_status(status)

    # -- cancel / focus -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running or self.fetching  # otherwise ctrl+c copies in the editor
        if action == "escape":
            return self.running or self.fetching or self.editor.has_focus
        return True

    def action_cancel(self) -> None:
        if self.console is not None and (self.running or self.fetching):
            self.console.interrupt()

    def action_escape(self) -> None:
        if self.running or self.fetching:
            self.action_cancel()
        else:
            self.table.focus()

    def action_swap_focus(self) -> None:
        (self.table if self.editor.has_focus else self.editor).focus()

    # -- history and presets --------------------------------------------------------------------------
    def action_history_step(self, step: int) -> None:
        if self.console is None:
            return
        entries = self.console.history.entries()
        if not entries:
            self.notify("no history yet for this database")
            return
        if self.hist_index is None:
            if step > 0:
                return
            self.hist_stash, index = self.editor.text, len(entries) - 1
        else:
            index = self.hist_index + step
        if index >= len(entries):
            self.hist_index = None
            self.editor.text = self.hist_stash
            return
        self.hist_index = max(0, index)
        self.editor.text = entries[self.hist_index]
        self.editor.focus()

    def action_history(self) -> None:
        if self.console is None:
            return
        entries = self.console.history.entries()[-HISTORY_PICK:]
        if not entries:
            self.notify("no history yet for this database")
            return
        options = [(str(i), one_line(sql, 110)) for i, sql in reversed(list(enumerate(entries)))]

        def chosen(value: str | None) -> None:
            if value is not None:
                self.editor.text = entries[int(value)]
                self.editor.focus()

        self.app.push_screen(PickOne("History (newest first): Enter puts it in the editor", options), chosen)

    def _presets(self) -> list[Preset]:
        return presets(workspace_scope(self.app), self.iofold.state.eval_set_id)

    def action_presets(self) -> None:
        found = {p.key: p for p in self._presets()}
        options = [(p.key, f"{p.name} — {p.description}") for p in found.values()]

        def chosen(value: str | None) -> None:
            if value in found:
                self.run_sql(found[value].sql)

        self.app.push_screen(PickOne("Presets: the seed README's queries (Enter runs)", options), chosen)

    def select_item(self, value: str) -> None:
        """Run a preset named by key or name, or else ``value`` as SQL (screenshots, jumps)."""
        wanted = value.strip().lower()
        match = next((p for p in self._presets() if wanted in (p.key.lower(), p.name.lower())), None)
        self.run_sql(match.sql if match else value)

    # -- secrets --------------------------------------------------------------------------------------
    def action_toggle_secrets(self) -> None:
        """Show or mask columns named like key/token/secret/password; the shown result is read again."""
        if self.console is None:
            return
        self.console.show_secrets = not self.console.show_secrets
        shown = self.console.show_secrets
        self.notify("secret columns shown as stored (F9 hides them)" if shown else "secret columns hidden",
                    severity="warning" if shown else "information")
        if self.window is not None and self.shown_sql:
            self.run_sql(self.shown_sql)

    # -- writes ---------------------------------------------------------------------------------------
    def action_toggle_writes(self) -> None:
        console = self.console
        if console is None:
            return
        had_more = self.window is not None and self.window.more
        if console.allow_writes:
            console.set_allow_writes(False)
            self.notify("the console is read-only again")
            self._after_mode_switch(had_more)
            return
        reason = self.iofold.source.read_only_reason or ("the source is opened immutable" if console.immutable else None)
        if reason:
            self.notify(f"writes are not possible: {reason}", severity="warning", timeout=8)
            return
        question = Text("Enable writes for this session?\n\n", style="bold")
        question.append("INSERT / UPDATE / DELETE / DDL typed here will change ")
        question.append(one_line(str(self.iofold.db.path), 80), style="bold")
        question.append(" directly, with no undo. Label changes made here are not in the label history.")

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                console.set_allow_writes(True)
            except ReadOnlyError as exc:
                self.notify(f"writes are not possible: {exc}", severity="warning")
                return
            self.notify("writes enabled for this session (F8 turns them off)", severity="warning")
            self._after_mode_switch(had_more)

        self.app.push_screen(Confirm(question), confirmed)

    def _after_mode_switch(self, had_more: bool) -> None:
        """Switching mode reopened the connection, which closed any unfinished result."""
        if had_more:
            self.released = True
            self.table.has_after = False
        self.update_status()

    def current_rows(self) -> list[Row]:
        """The rows of the page on screen (tests, copy)."""
        return list(self.window.page(self.window.shown) or []) if self.window else []
