"""Opening a source: ``open`` (the TUI, the default command), ``info``, ``demo-db``, ``screenshot``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from iofold_tui.cli.common import (
    api_base_option,
    fail,
    guarded,
    open_any,
    progress_printer,
    source_argument,
    user_name,
)
from iofold_tui.cli.labels import carry_into, stranded_notice

MIN_SIZE, MAX_SIZE = (40, 12), (1000, 500)  # screenshot --size: below 40x12 no pane can lay out


@click.command("open")
@source_argument
@click.option("--read-only", is_flag=True, help="Never write to the database (labels are disabled).")
@click.option("--pane", default=None, help="Pane to start in (default: the last one used on this database).")
@click.option("--review", is_flag=True, help="Start in review (labelling) mode.")
@click.option("--eval-set", "eval_set", help="Eval set name or id to start with.")
@click.option("--select", help="Trace id to focus.")
@click.option("--carry-labels", "carry", is_flag=True,
              help="First carry labels made on an older export of the same D1 database (see carry-labels).")
@api_base_option
@guarded
def open_cmd(source: str | None, demo: bool, read_only: bool, pane: str, review: bool, eval_set: str | None,
             select: str | None, carry: bool) -> None:
    """Open SOURCE in the terminal UI (the default command)."""
    opened = _open_while_importing_the_ui(source, demo=demo, read_only=read_only)
    if carry:
        if opened.kind != "d1-export":
            fail(f"{source}: --carry-labels carries labels between copies of `wrangler d1 export` .sql files")
        carry_into(opened, str(source), None, dry_run=False)
    from iofold_tui.ui.app import IofoldApp

    app = IofoldApp(opened, pane="review" if review else pane, eval_set=eval_set, select=select)
    app.run()


def _open_while_importing_the_ui(source: str | None, *, demo: bool,
                                 read_only: bool) -> Any:  # an OpenedSource
    """``open_any``; for a live D1 database on a thread while this one imports the UI: opening it is mostly
    waiting on the network (the name lookup, the launch batch), importing Textual is CPU, so they overlap
    instead of adding up. Errors come out here as they would have (one line, exit 2)."""
    # The scheme test inline, as data/source/loader.py does: importing d1.opening (is_d1_target) would load
    # http.client and email (~8 ms) before every launch's first frame, for files too.
    if not (isinstance(source, str) and source.startswith("d1://")):
        return open_any(source, demo=demo, read_only=read_only)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["opened"] = open_any(source, demo=demo, read_only=read_only)
        except BaseException as exc:  # re-raised on the main thread below
            outcome["error"] = exc

    opening = threading.Thread(target=run, name="open-d1", daemon=True)
    opening.start()
    import iofold_tui.ui.app  # noqa: F401 - the import this overlaps

    opening.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["opened"]


@click.command()
@source_argument
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@api_base_option
@guarded
def info(source: str | None, demo: bool, as_json: bool) -> None:
    """Schema generation, tables with row counts, warnings."""
    from iofold_tui.data.sanitize import json_text, one_line
    from iofold_tui.data.source.info import source_info

    opened = open_any(source, demo=demo)
    report = source_info(opened)
    if as_json:
        click.echo(json_text(report))
        return
    click.echo(f"source:     {one_line(report['source'], None)} ({report['kind']})")
    click.echo(f"database:   {report['database']}")
    click.echo(f"generation: {report['generation']}   view eval_comparison: {report['view']}")
    click.echo(f"writable:   {'no — ' + report['read_only_reason'] if report['read_only_reason'] else 'yes'}")
    click.echo("tables:")
    for name, count in report["tables"].items():
        click.echo(f"  {one_line(name, 60):<24} {count:>12,}")
    for warning in report["warnings"]:
        click.echo(f"warning: {one_line(warning, None)}")
    stranded_notice(opened, source)


@click.command("demo-db")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--traces", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--eval-sets", default=3, show_default=True, type=click.IntRange(1))
@click.option("--versions", default=2, show_default=True, type=click.IntRange(1))
@click.option("--workspaces", default=1, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--step-bytes", default=1500, show_default=True, type=click.IntRange(100))
@click.option(
    "--hostile",
    is_flag=True,
    help="Add traces with hostile text (markup, escapes, invalid JSON, 5 MB steps).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@guarded
def demo_db(
    out: Path,
    traces: int,
    eval_sets: int,
    versions: int,
    workspaces: int,
    seed: int,
    step_bytes: int,
    hostile: bool,
    force: bool,
) -> None:
    """Write a deterministic synthetic iofold database of any size."""
    from iofold_tui.data.source.demo.build import generate

    if out.exists():
        if not force:
            fail(f"{out}: exists (use --force to overwrite)")
        out.unlink()
    show = progress_printer("generating") if traces >= 10_000 else None
    report = generate(out, traces=traces, eval_sets=eval_sets, versions=versions, seed=seed,
                      workspaces=workspaces, step_bytes=step_bytes, hostile=hostile,
                      progress=(lambda d, t: show(d * 1_000_000, t * 1_000_000)) if show else None)
    r = report
    click.echo(
        f"wrote {out} ({r.size_bytes / 1e6:,.1f} MB in {r.seconds:.1f} s): {r.traces:,} traces"
        f"{f' ({r.hostile_traces} hostile)' if r.hostile_traces else ''}, {r.workspaces} workspace(s), "
        f"{r.integrations} integrations, {r.eval_sets} eval sets, {r.evals} evals, {r.feedback:,} labels, "
        f"{r.executions:,} executions, {r.jobs} jobs"
    )


@click.command()
@source_argument
@click.option("--pane", default="traces", show_default=True, help="traces, trace, or any pane name.")
@click.option("--select", help="Trace (or eval, for the evals pane) id to select.")
@click.option("--eval-set", "eval_set", help="Eval set name or id.")
@click.option("--diff", "diff_with", help="Evals pane: the other version to diff against.")
@click.option("--size", default="120x40", show_default=True, help="Terminal size COLSxROWS.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@guarded
def screenshot(
    source: str | None,
    demo: bool,
    pane: str,
    select: str | None,
    eval_set: str | None,
    diff_with: str | None,
    size: str,
    output: Path,
) -> None:
    """Render a pane headlessly to an SVG (Textual's own screenshot)."""
    from iofold_tui.data.traces.lookup import trace_or_eval_exists
    from iofold_tui.ui.screenshot import take_screenshot

    try:
        cols, rows = (int(x) for x in size.lower().split("x"))
    except ValueError:
        fail(f"--size {size!r}: use COLSxROWS, e.g. 120x40")
    if not (MIN_SIZE[0] <= cols <= MAX_SIZE[0] and MIN_SIZE[1] <= rows <= MAX_SIZE[1]):
        fail(f"--size {size}: from {MIN_SIZE[0]}x{MIN_SIZE[1]} to {MAX_SIZE[0]}x{MAX_SIZE[1]}")
    opened = open_any(source, demo=demo)
    if select is not None and not trace_or_eval_exists(opened.db.conn(), select):
        from iofold_tui.data.sanitize import one_line

        fail(f"--select {one_line(select, 80)}: no trace or eval with this id in {user_name(opened)}")
    take_screenshot(opened, pane=pane, select=select, eval_set=eval_set, diff_with=diff_with,
                    size=(cols, rows), output=output)
    click.echo(f"wrote {output}")
