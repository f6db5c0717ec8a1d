"""The jobs pane: import / generate / execute jobs newest first, keyset-paged, filterable by status and
type, with the selected job's context / metadata / result described per type (spec §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from iofold_tui.data.inspect.job_payloads import JobPayload
from iofold_tui.data.inspect.jobs import (
    JOB_STATUSES,
    JOB_TYPES,
    STALE_JOB_HOURS,
    JobCursor,
    JobPage,
    JobRow,
    list_jobs,
    stale_running,
)
from iofold_tui.data.inspect.overview import job_groups
from iofold_tui.data.text import plural
from iofold_tui.ui.paged_table import Direction, PagedTable
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes.sql import workspace_scope
from iofold_tui.ui.text import cell, safe
from iofold_tui.ui.widgets import PickOne

PAGE_SIZE = 100
FIND_PAGES = 1_000  # pages walked looking for a job id (100k jobs)
PRETTY_LIMIT = 20_000  # characters of pretty JSON shown per payload (an execute job may list 1M trace ids)
STATUS_STYLE = {"queued": "dim", "running": "bold yellow", "completed": "green", "failed": "bold red",
                "cancelled": "magenta"}
FIXED = (("id", 14), ("type", 8), ("status", 9), ("progress", 15), ("created", 16), ("started", 8),
         ("completed", 9), ("duration", 8))


@dataclass
class JobsLoaded:
    page: JobPage
    matching: int
    counts: dict[tuple[str | None, str | None], int]
    page_no: int
    focus_id: str | None
    cursor: Literal["first", "last"]
    stale: int  # jobs "running" for more than STALE_JOB_HOURS
    # The keyset starts of pages 0..page_no (a search walked them).
    starts: list[JobCursor | None] | None = None


@dataclass
class DetailReady(Message):
    job: JobRow
    parts: dict[str, JobPayload]


def progress_text(job: JobRow, width: int = 10) -> Text:
    pct = job.progress_pct
    filled = round(pct * width / 100)
    style = STATUS_STYLE.get(job.status or "", "")
    bar = Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")
    return bar + Text(f"{pct:>4}%")


def clock(value: str | None, created: str | None) -> Text:
    """A timestamp as HH:MM:SS when on the creation day, else MM-DD HH:MM; '—' when unset."""
    if not value:
        return Text("—", style="dim")
    text = value.replace("T", " ")
    same_day = created is not None and created.replace("T", " ")[:10] == text[:10]
    return cell(text[11:19] if same_day and len(text) >= 19 else text[5:16], 9)


def human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h" if seconds < 172_800 else f"{seconds / 86_400:.0f}d"


def duration_text(job: JobRow) -> Text:
    seconds, running = (job.duration_s, False) if job.duration_s is not None else (job.elapsed_s, True)
    if seconds is None:
        return Text("—", style="dim", justify="right")
    if seconds < 0:
        return Text("negative", style="red", justify="right")  # completed before it started: bad data
    if running and job.stale:  # "running" for days: its worker most likely died
        return Text("⚠ " + human_seconds(seconds), style="bold red", justify="right")
    if running:
        return Text("⟳ " + human_seconds(seconds), style="yellow", justify="right")
    return Text(human_seconds(seconds), justify="right")


def detail_text(job: JobRow, parts: dict[str, JobPayload]) -> Text:
    out = Text()
    out.append_text(cell(job.id, 60, style="bold"))
    out.append("  ")
    out.append_text(cell(job.type, 12, style="bold cyan"))
    out.append("  ")
    out.append_text(cell(job.status, 12, style=STATUS_STYLE.get(job.status or "", "")))
    if job.stale and job.elapsed_s is not None:
        out.append(f"  ⚠ stale: \"running\" for {human_seconds(job.elapsed_s)} since it started",
                   style="bold red")
    out.append(f"  {job.progress_pct}%")
    if job.workspace_id:
        out.append("  workspace ")
        out.append_text(cell(job.workspace_id, 40))
    out.append("\ncreated ")
    out.append_text(cell(job.created_at or "—", 30))
    out.append("  started ")
    out.append_text(cell(job.started_at or "—", 30))
    out.append("  completed ")
    out.append_text(cell(job.completed_at or "—", 30))
    if job.error:
        out.append("\n\nerror\n", style="bold red")
        out.append_text(safe(job.error, "red", limit=PRETTY_LIMIT))
    if not parts:
        out.append("\n\nno context, metadata or result stored", style="dim")
    for name, payload in parts.items():
        out.append(f"\n\n{name}", style="bold underline")
        if payload.warning:
            out.append(f"  ({payload.warning})", style="yellow")
        for label, value in payload.fields:
            out.append("\n")
            out.append_text(cell(label, 24, style="cyan"))
            out.append(" " * max(1, 16 - len(label)))
            out.append_text(cell(value, 200))
        if payload.pretty:
            out.append("\n")
            out.append_text(safe(payload.pretty, "dim", limit=PRETTY_LIMIT))
    return out


class JobsPane(Pane):
    pane_title = "Jobs"
    requires = ("jobs",)
    BINDINGS = [
        Binding("s", "pick_status", "Status", id="jobs.status"),
        Binding("t", "pick_type", "Type", id="jobs.type"),
        Binding("c", "clear_filters", "Clear", id="jobs.clear"),
        Binding("d", "focus_detail", "Detail", id="jobs.detail"),
        Binding("escape", "focus_list", "List", id="jobs.list", show=False),
    ]
    DEFAULT_CSS = """
    JobsPane #job-detail { height: 1fr; border-top: solid $panel; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None
        self.type: str | None = None
        self.page: JobPage | None = None
        self.page_no = 0
        self.starts: list[JobCursor | None] = [None]  # keyset start of each page seen
        self.matching: int | None = None
        self.counts: dict[tuple[str | None, str | None], int] = {}
        self.stale_count = 0  # jobs "running" for more than STALE_JOB_HOURS
        self.shown_id: str | None = None
        self.ws: str | None = None

    def compose_body(self) -> ComposeResult:
        table = PagedTable(id="jobs")
        table.styles.height = "auto"  # inline: app.tcss gives every DataTable 1fr
        table.styles.max_height = "55%"
        for label, width in FIXED:
            table.add_column(label, width=width, key=label)
        table.add_column("error", width=20, key="error")
        yield table
        with VerticalScroll(id="job-detail"):
            yield Static(id="job-detail-text")

    @property
    def table(self) -> PagedTable:
        return self.query_one("#jobs", PagedTable)

    def on_resize(self) -> None:
        table = self.table
        fixed = sum(w for _, w in FIXED)
        gaps = 2 * len(table.columns) + 2
        table.columns[ColumnKey("error")].width = max(12, table.size.width - fixed - gaps)
        table.refresh(layout=True)
        table._require_update_dimensions = True

    # -- loading ---------------------------------------------------------------------------------------
    def reload(self, *, keep: bool = True) -> None:
        """Re-query the page on screen (the database changed) keeping the cursor, or start over."""
        ws = workspace_scope(self.app)
        keep = keep and ws == self.ws  # another workspace: its first page
        self.ws = ws
        if keep and self.page is not None:
            self._fetch(self.page_no, self.starts[self.page_no], self.table.cursor_key, "first")
        else:
            self.page_no, self.starts = 0, [None]
            self._fetch(0, None, None, "first")
        self.table.focus()

    def _fetch(self, page_no: int, start: JobCursor | None, focus_id: str | None,
               cursor: Literal["first", "last"]) -> None:
        self.run_query(self._load, workspace_scope(self.app), self.status, self.type, page_no, start,
                       focus_id, cursor, on_result=self.on_jobs_loaded, group="page", what="reading jobs")

    def _load(self, ws: str | None, status: str | None, job_type: str | None, page_no: int,
              start: JobCursor | None, focus_id: str | None, cursor: Literal["first", "last"],
              find: bool = False) -> JobsLoaded | None:
        """One page (in a worker). ``find``: walk the pages from ``start`` until one holds ``focus_id``."""
        starts: list[JobCursor | None] | None = [start] if find else None
        with self.iofold.db.fresh() as conn:
            page = list_jobs(conn, ws, status, job_type, PAGE_SIZE, start)
            while find and starts is not None and not any(r.id == focus_id for r in page.rows):
                if page.next_cursor is None or len(starts) > FIND_PAGES:
                    return None
                starts.append(page.next_cursor)
                page_no += 1
                page = list_jobs(conn, ws, status, job_type, PAGE_SIZE, page.next_cursor)
            groups = job_groups(conn, ws)
            stale = stale_running(conn, ws)
        counts = {(g.type, g.status): g.count for g in groups}
        matching = sum(n for (t, s), n in counts.items() if status in (None, s) and job_type in (None, t))
        return JobsLoaded(page, matching, counts, page_no, focus_id, cursor, stale, starts)

    def on_jobs_loaded(self, message: JobsLoaded | None) -> None:
        if message is None:
            self.notify("no such job with these filters", severity="warning")
            return
        self.page, self.page_no = message.page, message.page_no
        self.matching, self.counts = message.matching, message.counts
        self.stale_count = message.stale
        if message.starts is not None:
            self.starts = message.starts
        del self.starts[message.page_no + 1:]
        if message.page.next_cursor is not None:
            self.starts.append(message.page.next_cursor)
        rows = message.page.rows
        index: int | Literal["first", "last"] = message.cursor
        if message.focus_id is not None:
            index = next((i for i, r in enumerate(rows) if r.id == message.focus_id), 0)
        self.table.show_page(((r.id, self._cells(r)) for r in rows), has_before=message.page_no > 0,
                             has_after=message.page.next_cursor is not None, cursor=index)
        if not rows:
            self.shown_id = None
            self.query_one("#job-detail-text", Static).update(Text("no jobs match", style="dim"))
        self.update_status()
        self._show_selected()

    def _cells(self, job: JobRow) -> list[Text]:
        return [
            cell(job.id, 14),
            cell(job.type, 8, style="cyan"),
            cell(job.status, 9, style=STATUS_STYLE.get(job.status or "", "")),
            progress_text(job),
            cell((job.created_at or "—").replace("T", " ")[:16], 16),
            clock(job.started_at, job.created_at),
            clock(job.completed_at, job.created_at),
            duration_text(job),
            cell(job.error or "", 200, style="red"),
        ]

    @on(PagedTable.Boundary, "#jobs")
    def _boundary(self, event: PagedTable.Boundary) -> None:
        direction: Direction = event.direction
        if direction == "after" and self.page_no + 1 < len(self.starts):
            self._fetch(self.page_no + 1, self.starts[self.page_no + 1], None, "first")
        elif direction == "before" and self.page_no > 0:
            self._fetch(self.page_no - 1, self.starts[self.page_no - 1], None, "last")
        elif direction == "first":
            self._fetch(0, None, None, "first")
        elif direction == "last" and self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1)  # keyset pages: the page's last row

    def update_status(self) -> None:
        status = Text()
        rows = len(self.page.rows) if self.page else 0
        if self.matching is not None:
            first = self.page_no * PAGE_SIZE
            status.append(f"{first + 1 if rows else 0:,}–{first + rows:,} of {plural(self.matching, 'job')}",
                          style="bold")
        parts = [f"status={self.status}" if self.status else "", f"type={self.type}" if self.type else ""]
        shown = [p for p in parts if p]
        if shown:
            status.append("  ·  filters: " + " · ".join(shown), style="cyan")
        else:
            status.append("  ·  no filters (s status, t type)", style="dim")
        running = sum(n for (_, s), n in self.counts.items() if s == "running")
        if running:
            status.append(f"  ·  {running:,} running", style="yellow")
        if self.stale_count:
            status.append(f"  ·  ⚠ {plural(self.stale_count, 'job')} \"running\" for more than "
                          f"{STALE_JOB_HOURS} h: stale, the worker probably died", style="bold red")
        self.set_status(status)

    # -- detail ----------------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#jobs")
    def _highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        key = self.table.cursor_key
        job = next((r for r in self.page.rows if r.id == key), None) if self.page else None
        if job is None:
            return
        self.shown_id = job.id
        self._describe(job)

    @work(thread=True, exclusive=True, group="jobs-detail")
    def _describe(self, job: JobRow) -> None:
        # JSON parsing of large payloads: off the UI thread
        self.post_message(DetailReady(job, job.describe()))

    def on_detail_ready(self, message: DetailReady) -> None:
        if message.job.id == self.shown_id:
            self.query_one("#job-detail-text", Static).update(detail_text(message.job, message.parts))

    def action_focus_detail(self) -> None:
        self.query_one("#job-detail", VerticalScroll).focus()

    def action_focus_list(self) -> None:
        self.table.focus()

    # -- filters ---------------------------------------------------------------------------------------
    def _pick(self, title: str, values: tuple[str, ...], current: str | None, count_of: int) -> None:
        def total(value: str | None) -> int:
            return sum(n for key, n in self.counts.items() if value is None or key[count_of] == value)

        options = [("*", f"all  ({total(None):,})")] + [(v, f"{v}  ({total(v):,})") for v in values]

        def chosen(value: str | None) -> None:
            if value is None:
                return
            picked = None if value == "*" else value
            if count_of == 1:
                self.status = picked
            else:
                self.type = picked
            self.reload(keep=False)

        self.app.push_screen(PickOne(title, options, current or "*"), chosen)

    def action_pick_status(self) -> None:
        self._pick("Jobs with status", JOB_STATUSES, self.status, 1)

    def action_pick_type(self) -> None:
        self._pick("Jobs of type", JOB_TYPES, self.type, 0)

    def action_clear_filters(self) -> None:
        self.status = self.type = None
        self.reload(keep=False)

    def select_item(self, job_id: str) -> None:
        """Select ``job_id``: on the page shown, else the page holding it (``--select``, screenshots)."""
        if self.page and any(r.id == job_id for r in self.page.rows):
            index = next(i for i, r in enumerate(self.page.rows) if r.id == job_id)
            self.table.move_cursor(row=index, animate=False)
            self._show_selected()
            return
        self.run_query(self._load, workspace_scope(self.app), self.status, self.type, 0, None, job_id,
                       "first", True, on_result=self.on_jobs_loaded, group="page", what="finding the job")
