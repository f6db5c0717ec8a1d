"""Headless eval runs: ``iofold-tui run-eval`` and ``iofold-tui undo-run`` (registered in cli/__init__.py).

Exit codes of run-eval: 0 done (traces whose eval errored are results, not failures), 1 the sandbox
itself failed, 2 bad input or eval code that cannot run (each problem on its own line), 130 cancelled
with Ctrl-C (what was applied is kept and undoable).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from iofold_tui.cli.common import fail, guarded, open_any, source_argument

EXIT_SANDBOX = 1
EXIT_CANCELLED = 130
SHOWN_CHANGES = 50


def _split(source: str | None, demo: bool, second: str | None) -> tuple[str | None, str | None]:
    """With --demo the only positional is the second one (click fills SOURCE first)."""
    if demo and second is None:
        return None, source
    return source, second


def _selection(traces: str) -> Any:
    if traces in ("labelled", "all"):
        return traces
    if traces.startswith("@"):
        name = traces[1:]
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        ids = [line.strip() for line in text.splitlines() if line.strip()]
        if not ids:
            fail(f"--traces {traces}: no trace ids in the file")
        return ids
    fail(f"--traces {traces!r}: use labelled, all, or @FILE (one trace id per line; @- for stdin)")
    return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None

    def show(batch: Any) -> None:
        p = batch.progress
        pct = 100 * p.done // p.total if p.total else 100
        click.echo(
            f"\r{p.done:,}/{p.total:,} ({pct}%)  pass {p.passed:,}  fail {p.failed:,}  error {p.errors:,}  "
            f"contradictions {p.contradictions:,}  {p.rate:,.0f} traces/s ",
            err=True,
            nl=False,
        )

    return show


def _counter_text(values: Any) -> str:
    count, contra, accuracy = values
    acc = "null" if accuracy is None else f"{accuracy:.4g}" if isinstance(accuracy, float) else str(accuracy)
    return f"execution_count {count}, contradiction_count {contra}, accuracy {acc}"


def _print_summary(summary: Any, source: str) -> None:
    from iofold_tui.data.sanitize import one_line

    p = summary.progress
    head = f"run {summary.run_id}" if summary.run_id is not None else summary.mode
    click.echo(
        f"{head}: {one_line(summary.eval_name, 60)} v{summary.version} ({one_line(summary.eval_id, 60)}) "
        f"over {summary.selection}"
    )
    if summary.notice:
        click.echo(f"note: {summary.notice}")
    cancelled = " (cancelled: the rest was not run)" if summary.cancelled else ""
    click.echo(
        f"traces run:     {p.done:,} of {p.total:,}{cancelled}  ({p.rate:,.0f} traces/s, {p.elapsed_s:.1f} s)"
    )
    click.echo(f"pass/fail/error: {p.passed:,} / {p.failed:,} / {p.errors:,}   cells changed: {p.changed:,}")
    click.echo(f"contradictions: {p.contradictions_before:,} -> {summary.contradictions:,} "
               "(scoped to the eval's own set; errors are not contradictions)")
    if summary.stored_after is not None:
        click.echo(f"stored counters: {_counter_text(summary.stored_before)}")
        click.echo(f"             ->  {_counter_text(summary.stored_after)}")
        click.echo(f"undo with: iofold-tui undo-run {source} {summary.run_id}")
    if summary.mode != "write" and summary.changes:
        click.echo("changed cells (trace: old -> new, label):")
        for c in summary.changes[:SHOWN_CHANGES]:
            flag = " now a contradiction" if c.new_contradiction and not c.old_contradiction else (
                " no longer a contradiction" if c.old_contradiction and not c.new_contradiction else "")
            click.echo(f"  {one_line(c.trace_id, 40)}: {c.old} -> {c.new}  [{c.rating or 'unlabelled'}]{flag}"
                       f"  {one_line(c.error or c.reason, 60)}")
        if len(summary.changes) > SHOWN_CHANGES:
            click.echo(f"  … {len(summary.changes) - SHOWN_CHANGES:,} more (--json lists them all)")


@click.command("run-eval")
@source_argument
@click.argument("eval_id", required=False)
@click.option("--traces", default="labelled", show_default=True,
              help="labelled (labelled in the eval's set), all (its workspace), or @FILE of trace ids.")
@click.option("--jobs", type=click.IntRange(1, 64), help="Worker processes (default: CPU count).")
@click.option(
    "--timeout",
    "timeout_s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds of CPU per trace.",
)
@click.option(
    "--memory-mb", default=256, show_default=True, type=click.IntRange(16), help="Memory cap per worker."
)
@click.option("--dry-run", is_flag=True, help="Show the would-be changes per cell; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@click.option("--check-sandbox", is_flag=True,
              help="Print the sandbox layers this machine gives and exit (1 when a required one is missing).")
@click.option("--unconfined", is_flag=True,
              help="Run even where the operating system cannot confine the sandbox (trusted eval code only).")
@guarded
def run_eval_cmd(source: str | None, demo: bool, eval_id: str | None, traces: str, jobs: int | None,
                 timeout_s: float, memory_mb: int, dry_run: bool, as_json: bool, check_sandbox: bool,
                 unconfined: bool) -> None:
    """Run eval EVAL_ID's code over traces in the local sandbox and store the results as one undoable run."""
    from iofold_tui.data.evalrun import sandbox
    from iofold_tui.data.evalrun.history import runs_path
    from iofold_tui.data.evalrun.results import EvalCodeError, SandboxError
    from iofold_tui.data.evalrun.run_results import RunOptions
    from iofold_tui.data.evalrun.runs import EvalRun

    if check_sandbox:
        confinement = sandbox.check_sandbox()
        click.echo(confinement.summary())
        click.echo("\n".join(confinement.lines()))
        sys.exit(0 if confinement.complete else 1)
    source, eval_id = _split(source, demo, eval_id)
    if not eval_id:
        fail("missing EVAL_ID (see `iofold-tui run-eval --help`)")
    selection = _selection(traces)
    opened = open_any(source, demo=demo)
    run = EvalRun(
        opened.db.conn(),
        str(eval_id),
        selection,
        runs_file=runs_path(opened.history_path),
        dry_run=dry_run,
        read_only_reason=opened.read_only_reason,
        options=RunOptions(jobs=jobs, timeout_s=timeout_s, memory_mb=memory_mb, unconfined=unconfined),
    )

    def interrupt(_sig: int, _frame: object) -> None:
        click.echo("\ncancelling (Ctrl-C again to abort)…", err=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run.cancel()

    if not dry_run and not opened.read_only_reason:
        from iofold_tui.data.evalrun.history import COUNTERS_NOTICE

        click.echo(f"note: {COUNTERS_NOTICE} (iofold-tui undo-run)", err=True)
    confinement = sandbox.check_sandbox()
    click.echo(confinement.summary(), err=True)
    if not confinement.complete:
        click.echo("\n".join(confinement.lines()), err=True)
        if not unconfined:
            fail(f"refusing to run eval code from {source or 'the demo database'} without these layers "
                 "(--unconfined runs it anyway: only for eval code you trust)")
    tty = sys.stderr.isatty()
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        summary = run.execute(on_batch=_progress(tty))
    except EvalCodeError as exc:
        click.echo(f"iofold-tui: eval {eval_id} cannot run:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    except SandboxError as exc:
        click.echo(f"iofold-tui: sandbox failure: {exc}", err=True)
        sys.exit(EXIT_SANDBOX)
    finally:
        signal.signal(signal.SIGINT, previous)
        if tty:
            click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        _print_summary(summary, source or "--demo")
    if summary.cancelled:
        sys.exit(EXIT_CANCELLED)


@click.command("undo-run")
@source_argument
@click.argument("run_id", required=False)
@click.option("--list", "list_runs", is_flag=True, help="List the recent eval runs instead.")
@guarded
def undo_run_cmd(source: str | None, demo: bool, run_id: str | None, list_runs: bool) -> None:
    """Undo the last eval run (or RUN_ID): every execution and the eval's counters as they were before it."""
    from iofold_tui.data.errors import ReadOnlyError
    from iofold_tui.data.evalrun.history import list_runs as recent_runs
    from iofold_tui.data.evalrun.history import runs_path, undo_run
    from iofold_tui.data.sanitize import one_line

    source, run_id = _split(source, demo, run_id)
    if run_id is not None and not run_id.isdigit():
        fail(f"RUN_ID {run_id!r}: a run number (see `iofold-tui undo-run SOURCE --list`)")
    opened = open_any(source, demo=demo)
    sidecar = runs_path(opened.history_path)
    if list_runs:
        runs = recent_runs(sidecar) if sidecar.exists() else []
        if not runs:
            click.echo("no eval runs recorded for this database")
        for r in runs:
            click.echo(f"run {r.id:>4}  {r.created_at[:19]}  {r.status:<11}  {one_line(r.eval_id, 40)}  "
                       f"{r.done:,}/{r.total:,} traces ({one_line(r.selection, 30)})")
        return
    if not sidecar.exists():
        fail("no eval run to undo")
    try:
        report = undo_run(opened.db.conn(), sidecar, None if run_id is None else int(run_id),
                          read_only_reason=opened.read_only_reason)
    except ReadOnlyError as exc:
        fail(f"cannot undo: {exc}")
    click.echo(
        f"undid run {report.run_id} ({one_line(report.eval_id, 60)}): {report.restored:,} executions "
        f"restored, "
        f"{report.deleted:,} removed; {_counter_text(report.counters)}"
    )
