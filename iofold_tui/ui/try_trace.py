"""Try an eval on one trace: the verdict, reason, stdout/stderr and time of one sandboxed run, stored nowhere.

The one-trace try of the workbench, opened from the eval editor (its unsaved code), the matrix cell
drill-down and review (a saved version, its code read from the database):

    app.push_screen(TryTraceScreen(eval_id, trace_id))              # the version's stored code
    app.push_screen(TryTraceScreen(eval_id, trace_id, code, name))  # the editor's code

Like the run modal (``ui/run_eval.py``) it first asks the sandbox which operating-system layers confine
a worker here, shows that summary, and refuses to run without them unless the user confirms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from iofold_tui.data.evalrun.confinement import Confinement
from iofold_tui.data.evalrun.history import RunError
from iofold_tui.data.evalrun.results import EvalCodeError, ExecResult, SandboxError, SandboxUnavailable
from iofold_tui.data.evalrun.sandbox import EvalRunner
from iofold_tui.data.evalrun.selection import iter_selected, load_target
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui import run_eval
from iofold_tui.ui.run_eval import SandboxChecked, unconfined_question
from iofold_tui.ui.text import safe
from iofold_tui.ui.widgets import Confirm

if TYPE_CHECKING:
    from iofold_tui.ui.app import IofoldApp


@dataclass
class TryResult(Message):
    result: ExecResult | None
    error: str | None
    title: str = ""
    # Refused for the missing OS layers: ask before running without them.
    unconfined: Confinement | None = None
    problems: list[str] = field(default_factory=list)


class TryTraceScreen(ModalScreen[None]):
    """An eval's code on one trace in the sandbox: verdict, reason, stdout/stderr, time. Writes nothing."""

    BINDINGS = [Binding("escape,enter", "app.pop_screen", "Close", id="editor.try_close")]
    DEFAULT_CSS = """
    TryTraceScreen { align: center middle; }
    TryTraceScreen > VerticalScroll { width: 90%; max-width: 120; height: auto; max-height: 80%;
                                      border: thick $accent; background: $surface; padding: 0 1; }
    TryTraceScreen #try-sandbox { color: $text-muted; }
    """

    def __init__(self, eval_id: str, trace_id: str, code: str | None = None, name: str | None = None) -> None:
        super().__init__()
        self.eval_id, self.trace_id, self.code, self.eval_name = eval_id, trace_id, code, name
        self.result: ExecResult | None = None
        self.error: str | None = None
        self.done = False
        self.unconfined = False  # the user said yes to running without the missing OS layers

    @property
    def iofold(self) -> IofoldApp:
        return cast("IofoldApp", self.app)  # only IofoldApp opens this modal

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(f"running on {one_line(self.trace_id, 60)}…", style="dim"), id="try-out")
            yield Static(id="try-sandbox")

    def on_mount(self) -> None:
        self._run(self.unconfined)

    @work(thread=True, exclusive=True, group="try-trace")
    def _run(self, unconfined: bool) -> None:
        title = ""
        try:
            confinement = run_eval.check_sandbox()  # the run modal's probe (cached per process)
            self.post_message(SandboxChecked(confinement))
            if not confinement.complete and not unconfined:
                self.post_message(TryResult(None, f"refused: {confinement.summary()}", unconfined=confinement,
                                            problems=confinement.lines()))
                return
            with self.iofold.db.fresh() as conn:
                target = load_target(conn, self.eval_id)
                traces = list(iter_selected(conn, target, [self.trace_id]))
            code = target.code if self.code is None else self.code
            name = target.name if self.eval_name is None else self.eval_name
            title = f"{target.name} v{target.version}"
            if self.code is not None:
                title += " (the editor's code)"
            if not traces:
                self.post_message(TryResult(None, f"no trace {self.trace_id!r} in this database", title))
                return
            with EvalRunner(code, name or None, jobs=1, unconfined=unconfined) as runner:
                results = list(runner.run(traces))
            if results:
                self.post_message(TryResult(results[0], None, title))
            else:
                self.post_message(TryResult(None, "no result", title))
        except EvalCodeError as exc:
            self.post_message(TryResult(None, "the code cannot run: " + "; ".join(exc.problems), title))
        except SandboxUnavailable as exc:
            self.post_message(TryResult(None, f"refused: {exc}", title, unconfined=exc.confinement,
                                        problems=exc.confinement.lines()))
        except (SandboxError, RunError, OSError) as exc:
            self.post_message(TryResult(None, f"sandbox failure: {exc}", title))
        except Exception as exc:  # shown, never a crash
            self.post_message(TryResult(None, f"{type(exc).__name__}: {exc}", title))

    def on_sandbox_checked(self, message: SandboxChecked) -> None:
        confinement = message.confinement
        self.query_one("#try-sandbox", Static).update(
            Text(confinement.summary(), style="green" if confinement.complete else "bold red"))

    def on_try_result(self, message: TryResult) -> None:
        self.result, self.error, self.done = message.result, message.error, True
        out = Text()
        if message.title:
            out.append(one_line(message.title, 60), style="bold cyan")
            out.append(" on ")
        out.append(f"{one_line(self.trace_id, 60)}  ", style="bold")
        r = message.result
        if r is None:
            out.append(one_line(message.error or "no result", 300), style="bold red")
            for problem in message.problems:
                out.append("\n  ")
                out.append_text(safe(problem, limit=500))
        else:
            verdict = "ERROR" if r.error else "PASS" if r.result else "FAIL"
            out.append(verdict, style="bold magenta" if r.error else "bold green" if r.result else "bold red")
            out.append(f"   {r.execution_time_ms} ms\n", style="dim")
            out.append("reason  ", style="bold")
            out.append_text(safe(r.reason, limit=2000))
            for label, text in (("error", r.error), ("stdout", r.stdout), ("stderr", r.stderr)):
                if text:
                    out.append(f"\n{label}  ", style="bold")
                    out.append_text(safe(text, limit=4000))
        out.append("\n(nothing was stored; Esc closes)", style="dim")
        self.query_one("#try-out", Static).update(out)
        if message.unconfined is not None and not self.unconfined:
            self.app.push_screen(Confirm(unconfined_question(message.unconfined)), self._unconfined_answer)

    def _unconfined_answer(self, yes: bool | None) -> None:
        if yes:
            self.unconfined, self.done = True, False
            running = Text(f"running on {one_line(self.trace_id, 60)} unconfined…", style="dim")
            self.query_one("#try-out", Static).update(running)
            self._run(True)
