"""The SQL console pane: its keys, cancel and focus, history, presets, and the secrets and write switches.
The editor, running a statement and paging its results are ``SqlResults`` (sql_results.py).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App
from textual.binding import Binding

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.sqlconsole.presets import Preset, presets
from iofold_tui.ui.panes.sql_results import SqlResults
from iofold_tui.ui.widgets import Confirm, PickOne

HISTORY_PICK = 200


def workspace_scope(app: App[None]) -> str | None:
    """The workspace every inspection pane is scoped to (None: one workspace, show everything)."""
    state = app.state  # type: ignore[attr-defined]  # IofoldApp (ui/app.py) imports the panes
    return state.workspace_id if len(state.workspaces) > 1 else None


async def show_sql(app: App[None], sql: str) -> None:
    """Switch to the SQL pane and run ``sql`` there (the overview's jump to a figure's rows)."""
    await app.switch_mode("sql")
    screen = app.screen
    if isinstance(screen, SqlPane):
        screen.run_sql(sql)


class SqlPane(SqlResults):
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
    SqlPane #sql-editor:focus, SqlPane #sql-results:focus {
        border: round $accent; border-title-color: $accent; border-title-style: bold;
    }
    SqlPane #sql-message { height: auto; max-height: 2; padding: 0 1; }
    SqlPane #sql-results { height: 1fr; border: round $panel; border-title-color: $text-muted; }
    """

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
        reason = self.iofold.source.read_only_reason
        if not reason and console.immutable:
            reason = "the source is opened immutable"
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
