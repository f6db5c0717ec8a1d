"""Labels made on an older export of the same D1 database, in the TUI (the core is data/labels/carry.py).

After the first frame a worker checks the other copies' histories; when some of their labels have not
gone back to D1 the app says so in one notification, and the command palette gains "Carry labels from
an older copy": a confirmation (what is carried, how many conflicts stay as this export has them), then
one undoable step (`u` undoes it like any label).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from iofold_tui.data.labels.carry import StrandedReport, carry_labels, check_opened
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.labeling import label_store
from iofold_tui.ui.widgets import Confirm

COMMAND = "Carry labels from an older copy"


def start_stranded_check(app: Any) -> None:  # the IofoldApp
    if app.source.kind != "d1-export":
        return
    app.run_worker(lambda: _check(app), thread=True, group="stranded", exclusive=True, exit_on_error=False)


def _check(app: Any) -> None:
    report = check_opened(app.source)
    notice = report.short_notice(f"ctrl+p → {COMMAND}") if report else None
    if report is not None and notice:
        app.call_from_thread(_show, app, report, notice)


def _show(app: Any, report: StrandedReport, notice: str) -> None:
    app.state.stranded_labels = report
    app.notify(notice, title="labels", severity="warning", timeout=12)


def stranded(app: Any) -> StrandedReport | None:
    report = app.state.stranded_labels
    return report if report is not None and report.not_in_d1 else None


def ask_carry(app: Any) -> None:
    report = stranded(app)
    if report is None:
        app.notify("no labels from an older copy to carry")
        return
    names = ", ".join(sorted({one_line(c.name, 40) for c, _ in report.to_carry + report.conflicts}))
    question = Text(f"Carry {plural(len(report.to_carry), 'label change')} made on {names} into this copy?\n",
                    style="bold")
    question.append("They are written as one step (u undoes it) and go back to D1 with export-labels.")
    if report.conflicts:
        n = len(report.conflicts)
        stays, it = ("it stays", "it") if n == 1 else ("they stay", "them")
        question.append(f"\n{plural(n, 'label was', 'labels were')} changed in D1 since (as this export "
                        f"shows): {stays} as D1 has {it}.")
    app.push_screen(Confirm(question), lambda yes: _carry(app) if yes else None)


def _carry(app: Any) -> None:
    report = stranded(app)
    if report is None:
        return

    def work() -> None:
        try:
            result = carry_labels(label_store(app), report)
        except Exception as exc:  # a notification, not a crash
            app.call_from_thread(app.notify, f"labels not carried: {one_line(str(exc), 200)}",
                                 severity="error")
            return
        app.call_from_thread(_done, app, result.carried, len(result.conflicts))

    app.run_worker(work, thread=True, group="stranded", exclusive=True, exit_on_error=False)


def _done(app: Any, carried: int, conflicts: int) -> None:
    app.state.stranded_labels = None
    left = f"; {plural(conflicts, 'conflict')} left as D1 has {'it' if conflicts == 1 else 'them'}" \
        if conflicts else ""
    app.notify(f"carried {plural(carried, 'label change')} (u undoes){left}", title="labels")
    app.refresh_panes()
