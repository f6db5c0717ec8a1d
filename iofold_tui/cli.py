"""Command line: ``iofold-tui SOURCE`` opens the TUI; subcommands are headless and sit on the same core.

Bad input never shows a traceback: SourceError (and the few other expected failures) become one line
on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from iofold_tui import __version__
from iofold_tui.data.errors import SourceError

EXIT_BAD_INPUT = 2


class DefaultOpenGroup(click.Group):
    """``iofold-tui db.sqlite`` and ``iofold-tui --demo`` mean ``iofold-tui open …``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        asks_for_help = bool(args) and args[0] in ("--help", "-h", "--version")
        if not asks_for_help and (not args or args[0] not in self.commands):
            args = ["open", *args]
        return super().parse_args(ctx, args)


def fail(message: str) -> None:
    click.echo(f"iofold-tui: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line + exit 2."""
    import functools
    import sqlite3

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SourceError as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:
            fail(f"database error: {exc}")
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            fail("interrupted")
        except BrokenPipeError:  # `iofold-tui info db | head`: the reader left, nothing to report
            os._exit(0)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback (IOFOLD_TUI_DEBUG=1 shows it)
            if os.environ.get("IOFOLD_TUI_DEBUG"):
                raise
            fail(f"unexpected error: {type(exc).__name__}: {exc} (set IOFOLD_TUI_DEBUG=1 for details)")

    return wrapper


def _progress_printer(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    state = {"last": -1}

    def show(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 0
        if pct != state["last"]:
            state["last"] = pct
            click.echo(f"\r{label} {pct:3d}% ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)", err=True, nl=pct >= 100)

    return show


def source_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """SOURCE (optional when --demo is given) for every command that opens a database."""
    fn = click.option("--demo", is_flag=True, help="Use the built-in demo database instead of SOURCE.")(fn)
    return click.argument("source", required=False)(fn)


def open_any(source: str | None, *, demo: bool = False, read_only: bool = False):  # noqa: ANN201
    from iofold_tui.data.source.loader import open_source

    if not source and not demo:
        fail("no source given: a .sqlite file, a wrangler d1 export .sql, a wrangler project dir, or --demo")

    return open_source(source, demo=demo, read_only=read_only, progress=_progress_printer("loading D1 export"))


@click.group(cls=DefaultOpenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iofold-tui")
def main() -> None:
    """Browse, label and evaluate an iofold database: a SQLite file, a `wrangler d1 export` .sql file,
    or a wrangler project directory. `iofold-tui --demo` opens a built-in demo."""


@main.command("open")
@source_argument
@click.option("--read-only", is_flag=True, help="Never write to the database (labels are disabled).")
@click.option("--pane", default=None, help="Pane to start in (default: the last one used on this database).")
@click.option("--review", is_flag=True, help="Start in review (labelling) mode.")
@click.option("--eval-set", "eval_set", help="Eval set name or id to start with.")
@click.option("--select", help="Trace id to focus.")
@guarded
def open_cmd(source: str | None, demo: bool, read_only: bool, pane: str, review: bool, eval_set: str | None,
             select: str | None) -> None:
    """Open SOURCE in the terminal UI (the default command)."""
    opened = open_any(source, demo=demo, read_only=read_only)
    from iofold_tui.ui.app import IofoldApp

    app = IofoldApp(opened, pane="review" if review else pane, eval_set=eval_set, select=select)  # type: ignore[arg-type]
    app.run()


@main.command()
@source_argument
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
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


@main.command("demo-db")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--traces", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--eval-sets", default=3, show_default=True, type=click.IntRange(1))
@click.option("--versions", default=2, show_default=True, type=click.IntRange(1))
@click.option("--workspaces", default=1, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--step-bytes", default=1500, show_default=True, type=click.IntRange(100))
@click.option("--hostile", is_flag=True, help="Add traces with hostile text (markup, escapes, invalid JSON, 5 MB steps).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@guarded
def demo_db(out: Path, traces: int, eval_sets: int, versions: int, workspaces: int, seed: int, step_bytes: int,
            hostile: bool, force: bool) -> None:
    """Write a deterministic synthetic iofold database of any size."""
    from iofold_tui.data.source.synth import generate

    if out.exists():
        if not force:
            fail(f"{out}: exists (use --force to overwrite)")
        out.unlink()
    show = _progress_printer("generating") if traces >= 10_000 else None
    report = generate(out, traces=traces, eval_sets=eval_sets, versions=versions, seed=seed,
                      workspaces=workspaces, step_bytes=step_bytes, hostile=hostile,
                      progress=(lambda d, t: show(d * 1_000_000, t * 1_000_000)) if show else None)
    r = report
    click.echo(f"wrote {out} ({r.size_bytes / 1e6:,.1f} MB in {r.seconds:.1f} s): {r.traces:,} traces"
               f"{f' ({r.hostile_traces} hostile)' if r.hostile_traces else ''}, {r.workspaces} workspace(s), "
               f"{r.integrations} integrations, {r.eval_sets} eval sets, {r.evals} evals, {r.feedback:,} labels, "
               f"{r.executions:,} executions, {r.jobs} jobs")


@main.command()
@source_argument
@click.option("--pane", default="traces", show_default=True, help="traces, trace, or any pane name.")
@click.option("--select", help="Trace (or eval, for the evals pane) id to select.")
@click.option("--eval-set", "eval_set", help="Eval set name or id.")
@click.option("--diff", "diff_with", help="Evals pane: the other version to diff against.")
@click.option("--size", default="120x40", show_default=True, help="Terminal size COLSxROWS.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@guarded
def screenshot(source: str | None, demo: bool, pane: str, select: str | None, eval_set: str | None, diff_with: str | None, size: str,
               output: Path) -> None:
    """Render a pane headlessly to an SVG (Textual's own screenshot)."""
    from iofold_tui.ui.screenshot import take_screenshot

    try:
        cols, rows = (int(x) for x in size.lower().split("x"))
    except ValueError:
        fail(f"--size {size!r}: use COLSxROWS, e.g. 120x40")
    opened = open_any(source, demo=demo)
    take_screenshot(opened, pane=pane, select=select, eval_set=eval_set, diff_with=diff_with,
                    size=(cols, rows), output=output)
    click.echo(f"wrote {output}")


@main.command()
@source_argument
@click.option("--eval-set", "eval_set", help="Eval set name or id (default: all eval sets).")
@click.option("--workspace", help="Workspace id, when the database holds several.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys named after the metrics).")
@guarded
def stats(source: str | None, demo: bool, eval_set: str | None, workspace: str | None, as_json: bool) -> None:
    """Per-version contradiction statistics, scoped to each eval's own eval set (errors are not fails)."""
    from iofold_tui.data.matrix.report import format_stats_text, stats_report
    from iofold_tui.data.sanitize import json_text

    opened = open_any(source, demo=demo, read_only=True)
    report = stats_report(opened.db.conn(), eval_set, workspace_id=workspace)
    click.echo(json_text(report) if as_json else format_stats_text(report))


@main.command("export-labels")
@source_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="Where to write the patch ('-' for stdout).")
@click.option("--since", help="Only changes after this time (ISO-8601, e.g. 2025-11-01 or 2025-11-01T12:00).")
@click.option("--format", "fmt", type=click.Choice(["sql", "csv", "jsonl"]), default="sql", show_default=True)
@guarded
def export_labels(source: str | None, demo: bool, output: str, since: str | None, fmt: str) -> None:
    """Every label change made with iofold-tui, as a D1 patch (apply with `wrangler d1 execute DB --file F`),
    or as CSV / JSON lines."""
    from datetime import datetime

    from iofold_tui.data.labels.patch import write_changes
    from iofold_tui.data.labels.store import LabelStore

    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r}: not an ISO-8601 date/time")
    opened = open_any(source, demo=demo, read_only=True)
    store = LabelStore(opened.db.path, history_path=opened.history_path, read_only_reason=opened.read_only_reason)
    try:
        if output == "-":
            summary = write_changes(store, sys.stdout, since=since_dt, fmt=fmt)
        else:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                summary = write_changes(store, fh, since=since_dt, fmt=fmt)
    finally:
        store.close()
    click.echo(f"{summary.count} label changes ({summary.upserts} upserts, {summary.deletes} deletions)"
               + ("" if output == "-" else f" written to {output}"), err=True)


from iofold_tui.cli_inspect import overview_cmd, sql_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(overview_cmd)
main.add_command(sql_cmd)

from iofold_tui.cli_eval import run_eval_cmd, undo_run_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(run_eval_cmd)
main.add_command(undo_run_cmd)

if __name__ == "__main__":
    main()
