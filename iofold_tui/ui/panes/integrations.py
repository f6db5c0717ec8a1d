"""The integrations pane: platform, status, error, last sync and trace counts per integration.

The API key is never read (the core selects only whether it is set); secrets inside ``config`` come
back masked from the core as well.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from iofold_tui.data.inspect.integrations import IntegrationInfo, list_integrations
from iofold_tui.data.inspect.util import literal
from iofold_tui.data.text import plural
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.sql import show_sql, workspace_scope
from iofold_tui.ui.text import cell, safe

FIXED = (("name", 20), ("platform", 10), ("status", 7), ("key", 6), ("last sync", 20), ("traces", 10))


def key_text(state: str) -> Text:
    return Text(state, style="green" if state == "set" else "bold yellow")


def detail_text(it: IntegrationInfo) -> Text:
    out = Text()
    out.append_text(cell(it.name or it.id, 60, style="bold"))
    out.append("  ")
    out.append_text(cell(it.platform, 20, style="bold cyan"))
    out.append("  ")
    out.append_text(cell(it.status, 12, style="bold red" if it.status == "error" else "green"))
    for label, value in (("id", it.id), ("workspace", it.workspace_id), ("base url", it.base_url),
                         ("created", it.created_at), ("last sync", it.last_synced_at or "never")):
        out.append(f"\n{label:<11}", style="cyan")
        out.append_text(cell(value if value is not None else "—", 200))
    out.append(f"\n{'api key':<11}", style="cyan")
    out.append_text(key_text(it.api_key))
    out.append("  (api_key_encrypted is never read or shown)", style="dim")
    out.append(f"\n{'traces':<11}", style="cyan")
    out.append("—" if it.trace_count is None else f"{it.trace_count:,}  (Enter lists them in the SQL pane)")
    if it.error_message:
        out.append("\n\nerror\n", style="bold red")
        out.append_text(safe(it.error_message, "red", limit=20_000))
    out.append("\n\nconfig", style="bold underline")
    if not it.config_pretty:
        out.append("  (none)", style="dim")
    else:
        if not it.config_valid:
            out.append("  (not valid JSON: shown as stored)", style="yellow")
        out.append("  secret-looking keys are masked\n", style="dim")
        out.append_text(safe(it.config_pretty, limit=50_000))
    return out


class IntegrationsPane(Pane):
    pane_title = "Integrations"
    requires = ("integrations",)
    BINDINGS = [
        Binding("enter", "traces", "Its traces", id="integrations.traces"),
        Binding("d", "focus_detail", "Detail", id="integrations.detail"),
        Binding("escape", "focus_list", "List", id="integrations.list", show=False),
    ]
    DEFAULT_CSS = """
    IntegrationsPane #integration-detail { height: 1fr; border-top: solid $panel; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.items: list[IntegrationInfo] = []
        self.pending_select: str | None = None

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="integrations", cursor_type="row", zebra_stripes=True)
        table.styles.height = "auto"  # inline: app.tcss gives every DataTable 1fr
        table.styles.max_height = "45%"
        for label, width in FIXED:
            table.add_column(label, width=width, key=label)
        table.add_column("error", width=20, key="error")
        yield table
        with VerticalScroll(id="integration-detail"):
            yield Static(id="integration-detail-text")

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#integrations", DataTable)

    def on_resize(self) -> None:
        table = self.table
        fixed = sum(w for _, w in FIXED)
        gaps = 2 * len(table.columns) + 2
        table.columns[ColumnKey("error")].width = max(12, table.size.width - fixed - gaps)
        table.refresh(layout=True)

    # -- loading ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        db = self.iofold.db

        def load(ws: str | None) -> list[IntegrationInfo]:
            with db.fresh() as conn:
                return list_integrations(conn, ws)

        self.run_query(load, workspace_scope(self.app), on_result=self._show_items,
                       on_error=lambda _: self._show_items([]), group="list", what="reading integrations")
        self.table.focus()

    def _show_items(self, items: list[IntegrationInfo]) -> None:
        table = self.table
        keep = self.pending_select or self.selected_id
        self.items = items
        table.clear()
        for it in self.items:
            table.add_row(
                cell(it.name, 20), cell(it.platform, 10),
                cell(it.status, 7, style="bold red" if it.status == "error" else "green"),
                key_text(it.api_key),
                cell(it.last_synced_at or "never", 20, style="" if it.last_synced_at else "dim"),
                Text("—" if it.trace_count is None else f"{it.trace_count:,}", justify="right"),
                cell(it.error_message or "", 200, style="red"),
                key=it.id,
            )
        ids = [it.id for it in self.items]
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        self.pending_select = None
        errors = sum(1 for it in self.items if it.status == "error")
        status = Text(plural(len(self.items), "integration"), style="bold")
        if errors:
            status.append(f"  ·  {errors} in error", style="bold red")
        empty = sum(1 for it in self.items if it.api_key != "set")
        if empty:
            status.append(f"  ·  {empty} without an API key", style="yellow")
        self.set_status(status)
        self._show_selected()

    @property
    def selected(self) -> IntegrationInfo | None:
        table = self.table
        if not table.row_count or not self.items:
            return None
        return self.items[min(table.cursor_row, len(self.items) - 1)]

    @property
    def selected_id(self) -> str | None:
        it = self.selected
        return it.id if it else None

    @on(DataTable.RowHighlighted, "#integrations")
    def _highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        it = self.selected
        text = detail_text(it) if it else Text("no integrations in this workspace", style="dim")
        self.query_one("#integration-detail-text", Static).update(text)

    # -- actions ---------------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#integrations")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_traces()

    def action_traces(self) -> None:
        it = self.selected
        if it is None:
            return
        sql = ("SELECT id, trace_id, source, timestamp, step_count, has_errors, input_preview, "
               "output_preview\n"
               f"FROM traces\nWHERE integration_id = {literal(it.id)}\nORDER BY timestamp DESC")
        self.run_worker(show_sql(self.app, sql), group="integrations-jump", exclusive=True)

    def action_focus_detail(self) -> None:
        self.query_one("#integration-detail", VerticalScroll).focus()

    def action_focus_list(self) -> None:
        self.table.focus()

    def select_item(self, integration_id: str) -> None:
        ids = [it.id for it in self.items]
        if integration_id in ids:
            self.table.move_cursor(row=ids.index(integration_id), animate=False)
            self._show_selected()
        else:
            self.pending_select = integration_id
