"""The SQL pane's editor, running a statement and paging its results (``SqlPane`` in sql.py adds its keys,
history, presets, secrets and the write switch).

Statements run on the console's own connection in a thread worker (data/sqlconsole/). Only the
pages the user walks through are fetched, and at most KEEP_PAGES of them are held. An unfinished
result holds a read transaction, so it is released whenever the pane hides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Static, TextArea

from iofold_tui.data.sanitize import one_line
from iofold_tui.data.sqlconsole.console import Page, ResultCursor, SqlConsole
from iofold_tui.data.text import plural
from iofold_tui.ui.paged_table import PagedTable
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.sql_widgets import ResultWindow, Row, RowDetail, value_text
from iofold_tui.ui.text import cell

PAGE_SIZE = 200
KEEP_PAGES = 25  # 5,000 rows at most in memory; older pages come back by running again
WELCOME = ("-- F5 (or ctrl+enter) runs; F3 presets; F4 history; read-only until F8\n"
           "SELECT name, type FROM sqlite_master ORDER BY type, name")


@dataclass
class Executed:
    result: ResultCursor
    page: Page | None  # the first rows, when the statement returns rows


class SqlResults(Pane):

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
        self.console = SqlConsole(app.db.path, immutable=app.db.immutable,
                                  writes_blocked=app.source.read_only_reason)
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

        self.run_query(execute, sql, on_result=self.on_executed, on_error=lambda _: self._stopped(),
                       group="sql", what="the statement")

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
            wrote = result.ok and result.message.endswith("changed")
            if wrote and self.console and self.console.allow_writes:
                self.iofold.load_catalog()  # other panes show the written data when they next appear
            self.update_status()
            return
        self.shown_sql = result.sql
        for i, name in enumerate(result.columns):
            title = name + (" (hidden, F9)" if i in result.masked else "")
            table.add_column(cell(title, 40, style="bold"), key=f"c{i}")
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
            columns, rows = plural(len(result.columns), "column"), plural(w.fetched if w else 0, "row")
            self._say(Text(f"{columns} · {rows} fetched{more} · {took}"))

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
                self.notify(f"rows before {w.first_row(w.base) + 1:,} are no longer held: "
                            "F5 runs the statement again", severity="warning")

    def _fetch(self) -> None:
        w, ticket = self.window, self.ticket("sql")  # rows of the statement run last (a newer one drops them)
        if w is None:
            return
        self.run_query(w.result.fetch_page, PAGE_SIZE,
                       on_result=lambda page: self.on_page_fetched(page, ticket),
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
            why = f" (source cannot be written: {one_line(reason, 60)})" if reason else " (F8 enables writes)"
            status.append(why, style="dim")
        w = self.window
        if w is not None:
            rows = len(w.page(w.shown) or [])
            start = w.first_row(w.shown)
            total = f"of {w.fetched:,}+" if w.more and not self.released else f"of {w.fetched:,}"
            status.append(f"  ·  rows {start + 1 if rows else 0:,}–{start + rows:,} {total}", style="bold")
            if self.released:
                status.append("  ·  result closed when the pane was hidden (F5 runs again)", style="yellow")
        self.set_status(status)


    def current_rows(self) -> list[Row]:
        """The rows of the page on screen (tests, copy)."""
        return list(self.window.page(self.window.shown) or []) if self.window else []
