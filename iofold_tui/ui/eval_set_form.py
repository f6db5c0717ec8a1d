"""Create an eval set (name, description, minimum_examples) the way iofold's API does."""

from __future__ import annotations

import sqlite3

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.eval_sets import DEFAULT_MINIMUM, EvalSetError, insert_eval_set


class EvalSetForm(ModalScreen[str | None]):
    """Dismisses with the new eval set's id (committed), or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="eval_set_form.cancel"),
        Binding("ctrl+s", "create", "Create", id="eval_set_form.create"),
    ]
    DEFAULT_CSS = """
    EvalSetForm { align: center middle; }
    EvalSetForm > Vertical {
        width: 72; height: auto; border: thick $accent; background: $surface; padding: 0 1;
    }
    EvalSetForm Horizontal { height: auto; margin-top: 1; }
    EvalSetForm #form-error { color: $error; height: auto; }
    """

    def __init__(self, workspace_id: str | None, workspace_name: str = "") -> None:
        super().__init__()
        self.workspace_id = workspace_id
        self.workspace_name = workspace_name

    def compose(self) -> ComposeResult:
        with Vertical():
            workspace = one_line(self.workspace_name or self.workspace_id, 40)
            yield Label(Text(f"New eval set in {workspace}", style="bold"))
            yield Label("Name")
            yield Input(placeholder="e.g. response-quality", id="es-name")
            yield Label("Description (what a positive trace looks like)")
            yield Input(id="es-description")
            yield Label("Minimum examples before an eval can be generated")
            yield Input(str(DEFAULT_MINIMUM), type="integer", id="es-minimum")
            yield Label("", id="form-error")
            with Horizontal():
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#es-name", Input).focus()

    def _error(self, message: str) -> None:
        self.query_one("#form-error", Label).update(Text(message))

    def action_create(self) -> None:
        if self.workspace_id is None:
            self._error("this database has no workspace to put an eval set in")
            return
        name = self.query_one("#es-name", Input).value
        description = self.query_one("#es-description", Input).value
        minimum_text = self.query_one("#es-minimum", Input).value.strip() or str(DEFAULT_MINIMUM)
        try:
            minimum = int(minimum_text)
        except ValueError:
            self._error(f"not a whole number: {one_line(minimum_text, 20)}")
            return
        workspace = self.workspace_id
        try:
            new_id = self.app.db.write(  # type: ignore[attr-defined]
                lambda conn: insert_eval_set(conn, workspace, name, description, minimum))
        except EvalSetError as exc:
            self._error(str(exc))
            return
        except (ReadOnlyError, sqlite3.Error) as exc:
            self._error(f"not created: {one_line(str(exc), 120)}")
            return
        self.dismiss(new_id)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_create()
