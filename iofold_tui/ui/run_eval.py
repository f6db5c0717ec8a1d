"""Run an eval from the TUI: a modal with a progress bar, live counts, cancel, dry-run preview and undo.

    start_eval_run(app, eval_id)                 # the evals pane / matrix call this on `r`
    start_eval_run(app, eval_id, dry_run=True)   # preview the changed cells first, `a` applies for real

The sandbox runs in a thread worker (core: ``data/eval_runs.py``). After every batch written to the
database the modal posts :class:`EvalResultsApplied` to the pane under the modal (it bubbles on to the
app), so a visible matrix / evals pane can refresh just those cells and its statistics (handle
``on_eval_results_applied``); when the run ends it calls ``app.refresh_panes()``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evalrun.confinement import Confinement
from iofold_tui.data.evalrun.history import COUNTERS_NOTICE, RunError, runs_path, undo_run
from iofold_tui.data.evalrun.results import EvalCodeError, ExecResult, SandboxError, SandboxUnavailable
from iofold_tui.data.evalrun.run_results import CellChange, RunBatch, RunOptions, RunProgress, RunSummary
from iofold_tui.data.evalrun.runs import EvalRun

# Named here (explicitly re-exported) so tests and try_trace.py share one patch point for the probe.
from iofold_tui.data.evalrun.sandbox import check_sandbox as check_sandbox
from iofold_tui.data.evalrun.selection import Selection, describe_selection
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.text import cell, safe
from iofold_tui.ui.widgets import Confirm

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp

SHOWN_ROWS = 1000  # changed cells listed in the preview table
MODE_TEXT = {"write": "run", "dry-run": "dry run", "read-only": "read-only run"}
STATE_STYLE = {"pass": "green", "fail": "red", "error": "bold magenta", "not_run": "dim"}


@dataclasses.dataclass
class EvalResultsApplied(Message):
    """Results of ``eval_id`` for ``trace_ids`` were just written to ``eval_executions`` (one batch)."""

    eval_id: str
    trace_ids: tuple[str, ...]


@dataclasses.dataclass
class RunBatchDone(Message):
    batch: RunBatch


@dataclasses.dataclass
class RunEnded(Message):
    summary: RunSummary | None
    error: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    unconfined: Confinement | None = None  # the OS layers this machine lacks: ask before running without them


def unconfined_question(confinement: Confinement) -> Text:
    """What running without the missing layers means, for the confirmation dialog."""
    text = Text("The eval sandbox is not confined by the operating system here.\n\n", style="bold")
    text.append("Missing: " + ", ".join(layer.title for layer in confinement.missing) + "\n\n")
    text.append("Eval code comes from the database. Without these layers only Python-level checks stand "
                "between it and your files, SSH keys, environment (API tokens), network and this database. "
                "Run it only if you trust whoever wrote this eval.\n\n")
    text.append("Run it unconfined?", style="bold yellow")
    return text


@dataclasses.dataclass
class SandboxChecked(Message):
    confinement: Confinement


@dataclasses.dataclass
class RunUndone(Message):
    text: str
    ok: bool


def _counts(p: RunProgress) -> Text:
    text = Text()
    text.append(f"{p.done:,}/{p.total:,}", style="bold")
    text.append("   pass ")
    text.append(f"{p.passed:,}", style="green")
    text.append("   fail ")
    text.append(f"{p.failed:,}", style="red")
    text.append("   error ")
    text.append(f"{p.errors:,}", style="magenta")
    text.append(f"   contradictions {p.contradictions_before:,} → ")
    text.append(f"{p.contradictions:,}", style="bold")
    text.append(f"   cells changed {p.changed:,}   {p.rate:,.0f} traces/s", style="")
    return text


def _change_row(c: CellChange) -> tuple[Text, ...]:
    flag = ("now contradicts" if c.new_contradiction and not c.old_contradiction
            else "no longer contradicts" if c.old_contradiction and not c.new_contradiction else "")
    return (cell(c.trace_id, 28), cell(c.rating or "unlabelled", 10),
            Text(c.old, style=STATE_STYLE.get(c.old, "")), Text(c.new, style=STATE_STYLE.get(c.new, "")),
            Text(flag, style="bold red" if flag.startswith("now") else "green"),
            cell(c.error or c.reason, 60))


class RunEvalScreen(ModalScreen[RunSummary | None]):
    """Runs one eval (write, dry run, or read-only); Esc cancels a run, then closes."""

    BINDINGS = [
        Binding("escape", "cancel_or_close", "Cancel / close", id="run_eval.cancel"),
        Binding("a", "apply", "Apply for real", id="run_eval.apply"),
        Binding("u", "undo", "Undo this run", id="run_eval.undo"),
    ]
    DEFAULT_CSS = """
    RunEvalScreen { align: center middle; }
    RunEvalScreen > Vertical { width: 90%; max-width: 140; height: auto; max-height: 90%;
                               border: thick $accent; background: $surface; padding: 0 1; }
    RunEvalScreen #run-title { text-style: bold; }
    RunEvalScreen #run-notice { color: $warning; }
    RunEvalScreen ProgressBar { margin: 1 0 0 0; }
    RunEvalScreen DataTable { height: 3; display: none; }
    RunEvalScreen DataTable.shown { display: block; }
    RunEvalScreen #run-hint { color: $text-muted; }
    """

    def __init__(self, eval_id: str, dry_run: bool = False, selection: Selection = "labelled",
                 options: RunOptions | None = None) -> None:
        super().__init__()
        self.eval_id = eval_id
        self.dry_run = dry_run
        self.selection = selection
        self.options = options or RunOptions()
        self.phase = "starting"  # running -> cancelling -> done | failed; undone after an undo
        self.summary: RunSummary | None = None
        self._run: EvalRun | None = None
        self._below: Pane | None = None  # the pane the modal was opened from (found on the UI thread)

    @property
    def iofold(self) -> IofoldApp:
        return cast("IofoldApp", self.app)  # only IofoldApp opens this modal

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="run-title")
            yield Static(id="run-notice")
            yield Static(id="run-sandbox")
            yield ProgressBar(total=None, show_eta=False, id="run-progress")
            yield Static(id="run-counts")
            yield DataTable(id="run-changes", cursor_type="row", zebra_stripes=True)
            yield Static(id="run-hint")
        yield Footer()

    def on_mount(self) -> None:
        self._below = next((s for s in reversed(self.app.screen_stack) if isinstance(s, Pane)), None)
        table = self.query_one(DataTable)
        table.add_columns("trace", "label", "was", "now", "contradiction", "reason / error")
        self._start(dry_run=self.dry_run)

    # -- running ------------------------------------------------------------------------------------
    def _start(self, dry_run: bool, results: list[ExecResult] | None = None) -> None:
        self.phase = "running"
        mode = "read-only" if self.iofold.source.read_only_reason else "dry run" if dry_run else "run"
        over = "the previewed results" if results else self._what()
        self.query_one("#run-title", Static).update(cell(f"Eval {self.eval_id}: {mode} over {over}", 130))
        self.query_one("#run-notice", Static).update(
            Text(f"Note: {COUNTERS_NOTICE} (u after the run).", style="yellow") if mode == "run" else "")
        self._hint("Esc: cancel (what was already applied is kept)")
        self.refresh_bindings()
        self._execute(dry_run, results)

    def _what(self) -> str:
        return describe_selection(self.selection)

    @work(thread=True, exclusive=True, group="run-eval")
    def _execute(self, dry_run: bool, results: list[ExecResult] | None) -> None:
        app = self.iofold
        source = app.source
        if results is None:  # eval code will run: say which layers contain it, refuse without them
            try:
                confinement = check_sandbox()
            except (SandboxError, EvalCodeError, OSError) as exc:
                self.post_message(RunEnded(None, f"the sandbox cannot start: {exc}"))
                return
            self.post_message(SandboxChecked(confinement))
            if not confinement.complete and not self.options.unconfined:
                self.post_message(RunEnded(None, f"refused: {confinement.summary()}", confinement.lines(),
                                           unconfined=confinement))
                return
        with app.db.fresh() as conn:
            try:
                run = EvalRun(conn, self.eval_id, self.selection, runs_file=runs_path(source.history_path),
                              dry_run=dry_run, read_only_reason=source.read_only_reason, options=self.options,
                              results=results)
                self._run = run
                if self.phase == "cancelling":
                    run.cancel()
                summary = run.execute(on_batch=self._batch_done)
            except EvalCodeError as exc:
                self.post_message(RunEnded(None, "the eval's code cannot run:", exc.problems))
            except SandboxUnavailable as exc:
                self.post_message(RunEnded(None, f"refused: {exc}", exc.confinement.lines(),
                                           unconfined=exc.confinement))
            except (SandboxError, RunError, ReadOnlyError, sqlite3.Error) as exc:
                self.post_message(RunEnded(None, f"the run failed: {exc}"))
            except Exception as exc:  # shown in the modal instead of taking the app down
                self.post_message(RunEnded(None, f"the run failed unexpectedly: {type(exc).__name__}: {exc}"))
            else:
                self.post_message(RunEnded(summary))

    def _unconfined_answer(self, yes: bool | None) -> None:
        if yes:
            self.options = dataclasses.replace(self.options, unconfined=True)
            self._start(dry_run=self.dry_run)

    def _batch_done(self, batch: RunBatch) -> None:
        """Called on a worker thread: hand over to the UI thread, and tell the panes what changed."""
        self.post_message(RunBatchDone(batch))
        if batch.written:
            ids = tuple(r.trace_id for r in batch.results)
            # To the pane under the modal; it bubbles up to the app (which gets it directly otherwise).
            (self._below or self.app).post_message(EvalResultsApplied(self.eval_id, ids))

    def on_sandbox_checked(self, message: SandboxChecked) -> None:
        confinement = message.confinement
        style = "green" if confinement.complete else "bold red"
        self.query_one("#run-sandbox", Static).update(Text(confinement.summary(), style=style))

    def on_run_batch_done(self, message: RunBatchDone) -> None:
        p = message.batch.progress
        self.query_one(ProgressBar).update(total=max(p.total, 1), progress=p.done)
        self.query_one("#run-counts", Static).update(_counts(p))

    def on_run_ended(self, message: RunEnded) -> None:
        self._run = None
        if message.unconfined is not None and not self.options.unconfined:
            self.app.push_screen(Confirm(unconfined_question(message.unconfined)), self._unconfined_answer)
        if message.summary is None:
            self.phase = "failed"
            text = Text(message.error or "", style="bold red")
            for problem in message.problems:
                text.append("\n  ")
                text.append_text(safe(problem, limit=500))
            self.query_one("#run-notice", Static).update(text)
            self._hint("Esc: close")
            self.refresh_bindings()
            return
        summary = self.summary = message.summary
        self.phase = "done"
        self.query_one("#run-title", Static).update(
            cell(f"{summary.eval_name} v{summary.version} ({summary.eval_id}): "
                 f"{MODE_TEXT[summary.mode]} over {summary.selection}", 130))
        self.query_one(ProgressBar).update(total=max(summary.progress.total, 1),
                                           progress=summary.progress.done)
        self.query_one("#run-counts", Static).update(_counts(summary.progress))
        self.query_one("#run-notice", Static).update(self._outcome(summary))
        if summary.mode != "write":
            self._show_changes(summary)
        else:
            self.iofold.refresh_panes()
        hints = ["Esc: close"]
        if self.check_action("apply", ()):
            hints.append("a: apply these results for real")
        if self.check_action("undo", ()):
            hints.append(f"u: undo run {summary.run_id}")
        self._hint("   ".join(hints))
        self.refresh_bindings()

    def _outcome(self, summary: RunSummary) -> Text:
        p = summary.progress
        if summary.mode == "write":
            ended = "cancelled: " if summary.cancelled else "applied: "
            line = Text(f"run {summary.run_id} {ended}", style="bold")
            line.append(f"{p.done:,} of {p.total:,} traces written"
                        + (" (the rest was not run; what was written is kept)" if summary.cancelled else ""))
            line.append(f"; contradictions {p.contradictions_before:,} → {summary.contradictions:,}")
            line.append("; stored accuracy/contradiction_count replaced with recounts (u restores them)")
            return line
        line = Text(summary.notice or "", style="bold yellow")
        if summary.cancelled:
            line.append(f" (cancelled after {p.done:,} of {p.total:,})")
        return line

    def _show_changes(self, summary: RunSummary) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for index, change in enumerate(summary.changes[:SHOWN_ROWS]):
            table.add_row(*_change_row(change), key=str(index))
        table.styles.height = min(table.row_count, 18) + 1  # header + rows; `auto` would take the maximum
        table.set_class(True, "shown")
        more = len(summary.changes) - SHOWN_ROWS
        if more > 0 or summary.truncated:
            changes = len(summary.changes)
            plus = "+" if summary.truncated else ""
            self.query_one("#run-notice", Static).update(
                self._outcome(summary).append(f"  (table: first {min(changes, SHOWN_ROWS):,} "
                                              f"of {changes:,}{plus} changed cells)"))
        if summary.changes:
            table.focus()

    def _hint(self, text: str) -> None:
        self.query_one("#run-hint", Static).update(Text(text))

    # -- keys ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.summary
        if action == "apply":
            return (self.phase == "done" and summary is not None and summary.mode == "dry-run"
                    and not self.iofold.source.read_only_reason)
        if action == "undo":
            return self.phase == "done" and summary is not None and summary.run_id is not None
        return True

    def action_cancel_or_close(self) -> None:
        if self.phase in ("running", "starting"):
            self.phase = "cancelling"
            if self._run is not None:
                self._run.cancel()
            self._hint("cancelling… results already written are kept (Esc again closes when it stops)")
            return
        if self.phase in ("cancelling", "undoing"):
            return  # closes once the worker is done
        self.dismiss(self.summary)

    def on_unmount(self) -> None:
        if self._run is not None:  # the app is quitting mid-run: stop the sandbox, keep what was applied
            self._run.cancel()

    def action_apply(self) -> None:
        summary = self.summary
        if not self.check_action("apply", ()) or summary is None:
            return
        self.query_one(DataTable).set_class(False, "shown")
        self.summary = None
        # Apply exactly what was previewed; when the preview kept only part of it, run again for real.
        self._start(dry_run=False, results=None if summary.truncated else list(summary.results))

    def action_undo(self) -> None:
        summary = self.summary
        if not self.check_action("undo", ()) or summary is None or summary.run_id is None:
            return
        self.phase = "undoing"
        self.refresh_bindings()
        self._hint("undoing…")
        self._undo(summary.run_id)

    @work(thread=True, exclusive=True, group="run-eval")
    def _undo(self, run_id: int) -> None:
        source = self.iofold.source
        try:
            with self.iofold.db.fresh() as conn:
                report = undo_run(conn, runs_path(source.history_path), run_id,
                                  read_only_reason=source.read_only_reason)
            self.post_message(RunUndone(f"run {run_id} undone: {report.restored:,} executions restored, "
                                      f"{report.deleted:,} removed, counters restored", True))
        except (RunError, ReadOnlyError, sqlite3.Error) as exc:
            self.post_message(RunUndone(f"undo failed: {exc}", False))

    def on_run_undone(self, message: RunUndone) -> None:
        self.phase = "undone" if message.ok else "done"
        notice = Text(message.text, style="bold" if message.ok else "bold red")
        self.query_one("#run-notice", Static).update(notice)
        self._hint("Esc: close" + ("" if message.ok else "   u: try the undo again"))
        self.refresh_bindings()
        if message.ok:
            self.iofold.refresh_panes()

    @on(DataTable.RowSelected, "#run-changes")
    def _open_trace(self, event: DataTable.RowSelected) -> None:
        summary = self.summary
        if summary is not None and event.row_key.value is not None:
            self.iofold.open_trace(summary.changes[int(event.row_key.value)].trace_id)


def start_eval_run(app: App[Any], eval_id: str, dry_run: bool = False, selection: Selection = "labelled",
                   options: RunOptions | None = None) -> RunEvalScreen:
    """Open the run modal for ``eval_id`` (the `r` key of the evals pane and the matrix)."""
    screen = RunEvalScreen(eval_id, dry_run=dry_run, selection=selection, options=options)
    app.push_screen(screen)
    return screen
