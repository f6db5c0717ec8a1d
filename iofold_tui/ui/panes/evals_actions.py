"""The evals pane's actions on the selected version: copy, open in a pager and export its code (or the diff
shown), and jumps elsewhere (the matrix column, the traces it ran on, a run, the editor, the comparison)."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from rich.text import Text
from textual.app import SuspendNotSupported

from iofold_tui.data.evals import code_text as core
from iofold_tui.data.paths import cache_dir
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.navigation import OpenMatrixColumn
from iofold_tui.ui.panes.evals_base import EvalsPaneBase
from iofold_tui.ui.widgets import Confirm, Prompt


class EvalsActions(EvalsPaneBase):
    """Part of ``EvalsPane``."""

    # -- copy, open, export ----------------------------------------------------------------------------
    def _payload(self) -> tuple[str, str] | None:
        """What y/o act on: the diff in the diff tab, else the code. Returns (text, file name)."""
        detail, _ = self.model.current()
        if detail is None:
            self.notify("no eval selected", severity="warning")
            return None
        name = core.default_export_name(detail.summary.name, detail.summary.version)
        base = self.model.detail(self.model.diff_key[0]) if self.model.diff_key else None
        if self.active_tab == "diff" and base is not None:
            return core.unified_text(base, detail), name.removesuffix(".py") + ".diff"
        return detail.code, name

    def action_copy(self) -> None:
        payload = self._payload()
        if payload is None:
            return
        self.app.copy_to_clipboard(payload[0])
        lines = len(core.split_lines(payload[0]))
        what = "diff" if payload[1].endswith(".diff") else "code"
        self.notify(f"copied the {what} ({plural(lines, 'line')}) via OSC 52; "
                    "your terminal must allow clipboard writes")

    def action_open_external(self) -> None:
        payload = self._payload()
        if payload is None:
            return
        command = core.viewer_command()
        if command is None:
            self.notify("set $PAGER or $EDITOR (no less/more found)", severity="error")
            return
        text, changed = core.terminal_safe(payload[0])
        folder = cache_dir() / "open"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / payload[1]
        path.write_text(text, encoding="utf-8")
        try:
            with self.app.suspend():
                subprocess.run([*command, str(path)], check=False)
        except (SuspendNotSupported, OSError) as exc:
            self.notify(f"cannot open {command[0]} here ({type(exc).__name__}); the file is {path}",
                        severity="warning")
            return
        note = " (control characters made visible)" if changed else ""
        self.notify(f"opened a read-only copy: {path}{note}; edits are not saved to the database")

    def action_export(self) -> None:
        detail, _ = self.model.current()
        if detail is None:
            self.notify("no eval selected", severity="warning")
            return
        default = core.default_export_name(detail.summary.name, detail.summary.version)

        def write(path_text: str, overwrite: bool) -> None:
            try:
                path = core.export_code(detail.code, path_text, overwrite=overwrite)
            except FileExistsError:
                self.app.push_screen(Confirm(Text(f"{one_line(path_text, 80)} exists. Overwrite?")),
                                     lambda yes: write(path_text, True) if yes else None)
                return
            except OSError as exc:
                self.notify(f"cannot write {one_line(path_text, 80)}: {exc.strerror or exc}",
                            severity="error")
                return
            self.notify(f"wrote {path} ({plural(len(detail.code), 'character')})")

        def chosen(value: str | None) -> None:
            if value is not None:
                write(value.strip() or default, False)

        self.app.push_screen(Prompt("Export the code to (relative to the current directory)", default),
                             chosen)

    # -- jumps ---------------------------------------------------------------------------------------
    def _open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        if trace_id:
            self.app.push_screen(TraceDetailScreen(trace_id))

    def action_matrix(self) -> None:
        if not self.selected_id:
            return
        self.post_message(OpenMatrixColumn(self.selected_id))

    def action_run_eval(self, dry_run: bool) -> None:
        """Re-run the selected eval locally in the sandbox over the eval set's labelled traces."""
        from iofold_tui.ui.run_eval import start_eval_run

        if self.selected_id:
            start_eval_run(self.app, self.selected_id, dry_run=dry_run)

    def action_new_version(self) -> None:
        """The eval editor on the selected version (saving makes the next version)."""
        from iofold_tui.ui.panes.eval_editor import EvalEditorScreen

        if self.selected_id:
            self.app.push_screen(EvalEditorScreen(self.selected_id))

    def action_compare(self) -> None:
        """The selected version against its parent (or a version picked with b): matrices, deltas, flips."""
        from iofold_tui.ui.panes.compare import CompareScreen

        base = self.model.base_id()
        if self.selected_id and base:
            self.app.push_screen(CompareScreen(base, self.selected_id))
        elif self.selected_id:
            self.notify("this version has no parent: press b to pick the version to compare with",
                        severity="warning")

    def on_eval_results_applied(self) -> None:
        self.stale = True  # counters change: the list reloads when the run finishes (refresh_panes)

    def action_executions(self) -> None:
        """The trace list filtered to the traces this eval ran on (an indexed EXISTS, no cap)."""
        if not self.selected_id:
            return
        state = self.iofold.state
        state.trace_filter = replace(state.trace_filter.cleared(), executed_by_eval=self.selected_id)
        self.app.switch_mode("traces")
        self.iofold.refresh_panes()
        self.notify(f"traces {self.selected_id} ran on (c clears the filter)", timeout=6)
