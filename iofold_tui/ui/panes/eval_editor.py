"""The eval editor: write the next version of an eval, check it as you type, save it, try it, compare it.

Opened with ``n`` in the evals pane on any version. A Python ``TextArea``; the sandbox's own static check
runs (debounced) after each edit in a worker, and each problem is marked in the gutter at its line (●)
and listed under the editor. ``ctrl+s`` saves a new version (``data.evals.drafts.create_version``: next
version, status draft, parent = the version the editor started from, or the last one saved here);
``ctrl+o`` edits in ``$EDITOR`` instead; ``ctrl+r`` tries the saved version on one trace, the labelled
traces or all (the run modal of ``ui/run_eval.py``: progress, cancel, undo); ``ctrl+g`` compares it with
its parent (``ui/panes/compare.py``); ``ctrl+z`` in the editor undoes typing, ``ctrl+u`` in the evals pane
is not needed: an unsaved editor asks before closing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Footer, Static, TextArea

from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evals.code_text import terminal_safe
from iofold_tui.data.evals.drafts import (
    DraftError,
    NewVersion,
    Problem,
    check,
    create_version,
    workbench_path,
)
from iofold_tui.data.evals.versions import EvalDetail, load_eval
from iofold_tui.data.sanitize import one_line
from iofold_tui.ui.try_trace import TryTraceScreen
from iofold_tui.ui.widgets import Confirm, PickOne, Prompt

CHECK_DEBOUNCE_S = 0.3
SHOWN_PROBLEMS = 4
MARK_STYLE = Style(color="white", bgcolor="red", bold=True)


class CodeEditor(TextArea):
    """A Python TextArea whose gutter marks the lines the static check complains about."""

    def __init__(self, text: str, **kwargs: object) -> None:
        super().__init__(text, language="python", theme="monokai", soft_wrap=False, tab_behavior="indent",
                         show_line_numbers=True, **kwargs)  # type: ignore[arg-type]
        self.problem_lines: frozenset[int] = frozenset()  # 1-based

    def mark(self, lines: frozenset[int]) -> None:
        if lines != self.problem_lines:
            self.problem_lines = lines
            self._line_cache.clear()
            self.refresh()

    def _render_line(self, y: int) -> Strip:
        strip = super()._render_line(y)
        line = int(self.scroll_offset.y) + y + 1  # no soft wrap: one screen row per document line
        width = self.gutter_width
        if line in self.problem_lines and width > 2 and line <= self.document.line_count:
            marker = Segment(f"●{line:>{width - 3}} ", MARK_STYLE)
            return Strip.join([Strip([marker], width - 1), strip.crop(width - 1, strip.cell_length)])
        return strip


@dataclass
class Checked(Message):
    code: str  # the text checked: the result is stale once the editor holds another
    problems: list[Problem]


@dataclass
class Saved(Message):
    new: NewVersion | None
    error: str | None
    problems: list[str]
    code: str = ""


class EvalEditorScreen(Screen[str | None]):
    """Dismissed with the id of the last version saved here (or None)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save version", id="editor.save", priority=True),
        Binding("ctrl+r", "try_it", "Try it", id="editor.try", priority=True),
        Binding("ctrl+g", "compare", "Compare", id="editor.compare", priority=True),
        Binding("ctrl+o", "external", "$EDITOR", id="editor.external", priority=True),
        Binding("escape", "close", "Close", id="editor.close", priority=True),
    ]
    DEFAULT_CSS = """
    EvalEditorScreen #editor-title { height: auto; padding: 0 1; background: $boost; }
    EvalEditorScreen CodeEditor { height: 1fr; }
    EvalEditorScreen #editor-problems { height: auto; max-height: 6; padding: 0 1; }
    """

    def __init__(self, source_id: str) -> None:
        super().__init__()
        self.source_id = source_id
        self.detail: EvalDetail | None = None
        self.saved: NewVersion | None = None
        self.saved_text: str | None = None  # the editor text as last saved (or loaded)
        self.problems: list[Problem] = []
        self._timer: Timer | None = None
        self.checking = False

    def compose(self) -> ComposeResult:
        yield Static(Text("loading…", style="dim"), id="editor-title")
        yield CodeEditor("", id="code-editor")
        yield Static(id="editor-problems")
        yield Footer()

    @property
    def editor(self) -> CodeEditor:
        return self.query_one(CodeEditor)

    def on_mount(self) -> None:
        self.editor.read_only = True
        self._load()

    @work(thread=True, group="editor-load")
    def _load(self) -> None:
        detail = load_eval(self.app.db.conn(), self.source_id)  # type: ignore[attr-defined]
        self.app.call_from_thread(self._loaded, detail)

    def _loaded(self, detail: EvalDetail | None) -> None:
        if detail is None:
            title = Text(f"no eval {self.source_id}", style="bold red")
            self.query_one("#editor-title", Static).update(title)
            return
        self.detail = detail
        code, changed = terminal_safe(detail.code)
        editor = self.editor
        editor.load_text(code)
        editor.read_only = bool(self.app.source.read_only_reason)  # type: ignore[attr-defined]
        self.saved_text = code
        editor.focus()
        self._title()
        if changed:
            self.notify("the stored code holds control characters: "
                        "they are shown as symbols and saved that way", severity="warning", timeout=8)
        self._schedule_check(0)

    # -- title and problems ----------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self.saved_text is not None and self.editor.text != self.saved_text

    @property
    def parent_id(self) -> str:
        return self.saved.id if self.saved else self.source_id

    def _title(self) -> None:
        d = self.detail
        if d is None:
            return
        title = Text()
        title.append("New version of ", style="bold")
        title.append(one_line(d.summary.name, 40), style="bold cyan")
        if self.saved:
            title.append(f"  saved v{self.saved.version} ({one_line(self.saved.id, 40)}, draft)",
                         style="green")
            title.append("  ·  next save makes another version", style="dim")
        else:
            title.append(f"  from v{d.summary.version} ({one_line(d.summary.id, 40)})", style="dim")
        if self.dirty:
            title.append("  ·  modified", style="yellow")
        if self.app.source.read_only_reason:  # type: ignore[attr-defined]
            title.append("  ·  READ-ONLY source: cannot save", style="bold red")
        self.query_one("#editor-title", Static).update(title)

    def on_text_area_changed(self, _: TextArea.Changed) -> None:
        self._title()
        self._schedule_check(CHECK_DEBOUNCE_S)

    def _schedule_check(self, delay: float) -> None:
        self.checking = True
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, lambda: self._check(self.editor.text))

    @work(thread=True, exclusive=True, group="editor-check")
    def _check(self, code: str) -> None:
        name = self.detail.summary.name if self.detail else None
        self.post_message(Checked(code, check(code, name)))

    def on_checked(self, message: Checked) -> None:
        if message.code != self.editor.text:
            return  # typed since: the check of the text now in the editor is on its way
        self.checking = False
        self.problems = message.problems
        self.editor.mark(frozenset(p.line for p in message.problems if p.line is not None))
        out = Text()
        if not message.problems:
            out.append("✓ the sandbox's static check passes", style="green")
            out.append("  ·  ctrl+s saves a new draft version, ctrl+r tries it, ctrl+g compares",
                       style="dim")
        else:
            out.append(f"{len(message.problems)} problem{'s' if len(message.problems) != 1 else ''} "
                       "(the sandbox would refuse this code):", style="bold red")
            for p in message.problems[:SHOWN_PROBLEMS]:
                out.append("\n")
                out.append(f"line {p.line}: " if p.line else "", style="bold")
                out.append(one_line(p.message, 150))
            if len(message.problems) > SHOWN_PROBLEMS:
                out.append(f"\n… {len(message.problems) - SHOWN_PROBLEMS} more", style="dim")
        self.query_one("#editor-problems", Static).update(out)

    # -- save --------------------------------------------------------------------------------------------
    def action_save(self) -> None:
        if self.detail is None:
            return
        if not self.dirty and self.saved is not None:
            self.notify("no change since the last save", severity="warning")
            return
        if not self.dirty:
            self.notify(f"the code is the same as v{self.detail.summary.version}: edit it first",
                        severity="warning")
            return
        self._save(self.editor.text, self.parent_id)

    @work(thread=True, exclusive=True, group="editor-save")
    def _save(self, code: str, parent: str) -> None:
        app = self.app
        source = app.source  # type: ignore[attr-defined]
        try:
            with app.db.fresh() as conn:  # type: ignore[attr-defined]
                new = create_version(conn, workbench_path(source.history_path), parent, code,
                                     read_only_reason=source.read_only_reason)
        except DraftError as exc:
            self.post_message(Saved(None, str(exc), exc.problems))
        except (ReadOnlyError, OSError) as exc:
            self.post_message(Saved(None, f"cannot save: {exc}", []))
        except Exception as exc:  # shown, never a crash
            self.post_message(Saved(None, f"cannot save: {type(exc).__name__}: {exc}", []))
        else:
            self.post_message(Saved(new, None, [], code))

    def on_saved(self, message: Saved) -> None:
        if message.new is None:
            detail = "; ".join(message.problems[:2])
            self.notify(one_line(f"{message.error}{': ' + detail if detail else ''}", 300), severity="error",
                        timeout=8)
            return
        self.saved, self.saved_text = message.new, message.code
        self._title()
        self.notify(f"saved {one_line(message.new.name, 40)} v{message.new.version} as a draft "
                    f"({message.new.id}); ctrl+r tries it")
        self.app.refresh_panes()  # type: ignore[attr-defined]

    # -- try, compare, $EDITOR, close ---------------------------------------------------------------------
    def _need_saved(self) -> str | None:
        if self.saved is None:
            self.notify("save first (ctrl+s): runs and comparisons need the version in the database",
                        severity="warning")
            return None
        if self.dirty:
            self.notify("unsaved edits are not part of the run: it uses the saved version",
                        severity="warning")
        return self.saved.id

    def action_try_it(self) -> None:
        if self.saved is None or self.dirty:  # the editor's text on one trace needs no saved version
            if self.detail is None:
                return
            if self.saved is None:
                self._try_preview()
                return
        eval_id = self._need_saved()
        if eval_id is None:
            return
        options = [("labelled", "the labelled traces of the eval set (fast feedback)"),
                   ("trace", "one trace (by id), stored as a run…"),
                   ("preview", "one trace (by id): the editor's code, nothing stored…"),
                   ("all", "all traces of the workspace")]

        from iofold_tui.ui.run_eval import start_eval_run

        def run_on_trace(trace_id: str | None) -> None:
            if trace_id and trace_id.strip():
                start_eval_run(self.app, eval_id, selection=[trace_id.strip()])

        def chosen(value: str | None) -> None:
            if value in ("labelled", "all"):
                start_eval_run(self.app, eval_id, selection=value)
            elif value == "trace":
                self.app.push_screen(Prompt("Trace id to run on", self.last_trace or ""), run_on_trace)
            elif value == "preview":
                self._try_preview()

        version = self.saved.version if self.saved else "?"
        self.app.push_screen(PickOne(f"Run v{version} on…", options, "labelled"), chosen)

    @property
    def last_trace(self) -> str | None:
        """The trace on screen in another pane (review, trace view), to run on first."""
        stacks = getattr(self.app, "_screen_stacks", {})
        for stack in stacks.values():
            for screen in reversed(stack):
                item = getattr(screen, "current", None)
                trace_id = getattr(item, "trace_id", None) or getattr(screen, "trace_id", None)
                if isinstance(trace_id, str) and trace_id:
                    return trace_id
        return None

    def _try_preview(self) -> None:
        if self.problems:
            self.notify("fix the problems first: the sandbox refuses this code", severity="warning")
            return
        name = self.detail.summary.name if self.detail else None
        code = self.editor.text

        def try_on(trace_id: str | None) -> None:
            if trace_id and trace_id.strip():
                self.app.push_screen(TryTraceScreen(self.source_id, trace_id.strip(), code, name))

        prompt = Prompt("Run the editor's code on trace (nothing is stored)", self.last_trace or "")
        self.app.push_screen(prompt, try_on)

    def action_compare(self) -> None:
        eval_id = self._need_saved()
        if eval_id is None or self.saved is None:
            return
        from iofold_tui.ui.panes.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.saved.parent_eval_id, eval_id))

    def action_external(self) -> None:
        command = _editor_command()
        if command is None:
            self.notify("set $VISUAL or $EDITOR to edit outside", severity="warning")
            return
        name = self.detail.summary.name if self.detail else "eval"
        with tempfile.NamedTemporaryFile("w", suffix=".py", prefix=f"{one_line(name, 30)}-", delete=False,
                                         encoding="utf-8") as fh:
            fh.write(self.editor.text)
            path = Path(fh.name)
        try:
            with self.app.suspend():
                subprocess.run([*command, str(path)], check=False)
            text = path.read_text(encoding="utf-8")
        except (SuspendNotSupported, OSError, UnicodeDecodeError) as exc:
            self.notify(f"cannot use {command[0]} here ({type(exc).__name__})", severity="warning")
            return
        finally:
            path.unlink(missing_ok=True)
        safe, changed = terminal_safe(text)
        if safe != self.editor.text:
            self.editor.load_text(safe)
            self._title()
            self._schedule_check(0)
        if changed:
            self.notify("control characters from the file are shown as symbols", severity="warning")

    def action_close(self) -> None:
        if not self.dirty:
            self.dismiss(self.saved.id if self.saved else None)
            return

        def discard(yes: bool | None) -> None:
            if yes:
                self.dismiss(self.saved.id if self.saved else None)

        self.app.push_screen(Confirm(Text("Discard the unsaved edits?")), discard)


def _editor_command() -> list[str] | None:
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return shlex.split(value)
            except ValueError:
                continue
    return None
