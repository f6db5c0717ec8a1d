"""Command line: ``iofold-tui SOURCE`` opens the TUI; subcommands are headless and sit on the same core.

Bad input never shows a traceback: SourceError (and the few other expected failures) become one line
on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, cast

import click

from iofold_tui import __version__
from iofold_tui.data.errors import ReadOnlyError, SourceError

EXIT_BAD_INPUT = 2
MIN_SIZE, MAX_SIZE = (40, 12), (1000, 500)  # screenshot --size: below 40x12 no pane can lay out


class DefaultOpenGroup(click.Group):
    """``iofold-tui db.sqlite`` and ``iofold-tui --demo`` mean ``iofold-tui open …``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        asks_for_help = bool(args) and args[0] in ("--help", "-h", "--version")
        if not asks_for_help and (not args or args[0] not in self.commands):
            args = ["open", *args]
        return super().parse_args(ctx, args)


def fail(message: str) -> NoReturn:
    click.echo(f"iofold-tui: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


_SOURCE_NAME: list[str] = []  # the file the user named for the database being read (innermost last)


@contextlib.contextmanager
def guard_database(opened: Any) -> Iterator[None]:  # noqa: ANN401 - an OpenedSource
    """While reading ``opened``, a SQLite error names its file (the user's, not a cache working copy)."""
    _SOURCE_NAME.append(_user_name(opened))
    try:
        yield
    finally:
        _SOURCE_NAME.pop()


def _user_name(opened: Any) -> str:  # noqa: ANN401 - an OpenedSource
    return "demo database" if opened.kind == "demo" else str(opened.origin)


def fail_reading(message: str) -> NoReturn:
    """``fail`` for a problem met while reading the open database: the line names the user's file."""
    fail(f"{_SOURCE_NAME[-1]}: {message}" if _SOURCE_NAME else message)


def _database_error(exc: Exception) -> str:
    where = _SOURCE_NAME[-1] if _SOURCE_NAME else "database"
    text = str(exc) or type(exc).__name__
    if "malformed" in text or "not a database" in text:
        return f"{where}: corrupt SQLite database ({text}); copy what you can with `sqlite3 FILE .recover`"
    return f"{where}: database error: {text}"


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line + exit 2."""
    import functools
    import sqlite3

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a reader that left (`| head`) shows up here, not at interpreter exit
            return result
        except BrokenPipeError:  # `iofold-tui sql db "…" | head -1`: the reader left, nothing to report
            _quiet_exit()
        except SourceError as exc:
            fail(str(exc))
        except ReadOnlyError as exc:
            fail_reading(f"cannot write: {exc}")
        except ValueError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:
            fail(_database_error(exc))
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', '') or 'error'}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            fail("interrupted")
        except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback (IOFOLD_TUI_DEBUG=1 shows it)
            if os.environ.get("IOFOLD_TUI_DEBUG"):
                raise
            fail(f"unexpected error: {type(exc).__name__}: {exc} (set IOFOLD_TUI_DEBUG=1 for details)")

    return wrapper


def _quiet_exit() -> None:
    """Leave without flushing into the closed pipe (Python would print "Exception ignored …")."""
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(0)


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


def _set_api_base(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        os.environ["IOFOLD_D1_API_BASE"] = value  # read by data/source/d1client.py
    return value


def api_base_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--api-base URL``: the D1 REST API base for d1:// sources (tests, self-hosted proxies)."""
    return click.option("--api-base", metavar="URL", expose_value=False, callback=_set_api_base, is_eager=True,
                        help="D1 REST API base for d1:// sources (default https://api.cloudflare.com/client/v4; "
                             "also IOFOLD_D1_API_BASE).")(fn)


def open_any(source: str | None, *, demo: bool = False, read_only: bool = False):  # noqa: ANN201
    from iofold_tui.data.source.loader import open_source

    if not source and not demo:
        fail("no source given: a .sqlite file, a wrangler d1 export .sql, a wrangler project dir, or --demo")

    opened = open_source(source, demo=demo, read_only=read_only, progress=_progress_printer("loading D1 export"))
    _SOURCE_NAME.append(_user_name(opened))  # SQLite errors from here on name this file
    return opened


@click.group(cls=DefaultOpenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iofold-tui")
def main() -> None:
    """Browse, label and evaluate an iofold database: a SQLite file, a `wrangler d1 export` .sql file,
    a wrangler project directory, or a live D1 database (d1://NAME, token in CLOUDFLARE_API_TOKEN).
    `iofold-tui --demo` opens a built-in demo."""


@main.command("open")
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
    opened = open_any(source, demo=demo, read_only=read_only)
    if carry:
        if opened.kind != "d1-export":
            fail(f"{source}: --carry-labels carries labels between copies of `wrangler d1 export` .sql files")
        _carry(opened, str(source), None, dry_run=False)
    from iofold_tui.ui.app import IofoldApp

    app = IofoldApp(opened, pane="review" if review else pane, eval_set=eval_set, select=select)
    app.run()


@main.command()
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
    _stranded_notice(opened, source)


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
    if not (MIN_SIZE[0] <= cols <= MAX_SIZE[0] and MIN_SIZE[1] <= rows <= MAX_SIZE[1]):
        fail(f"--size {size}: from {MIN_SIZE[0]}x{MIN_SIZE[1]} to {MAX_SIZE[0]}x{MAX_SIZE[1]}")
    opened = open_any(source, demo=demo)
    if select is not None and opened.db.query_one(
            "SELECT 1 FROM traces WHERE id = ? UNION ALL SELECT 1 FROM evals WHERE id = ? LIMIT 1",
            (select, select)) is None:
        from iofold_tui.data.sanitize import one_line

        fail(f"--select {one_line(select, 80)}: no trace or eval with this id in {_user_name(opened)}")
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
@click.option("--check", "check", metavar="REMOTE_EXPORT",
              help="Write nothing: list the changes that would conflict with REMOTE_EXPORT (a newer `wrangler d1 "
                   "export` .sql, SQLite file or wrangler dir of the same D1 database). Exit 1 if any.")
@guarded
def export_labels(source: str | None, demo: bool, output: str, since: str | None, fmt: str,
                  check: str | None) -> None:
    """Every label change made with iofold-tui, as a D1 patch (apply with `wrangler d1 execute DB --file F`),
    or as CSV / JSON lines. Each statement applies only while the D1 row is still as this copy last saw
    it: a label changed in D1 since is left as it is and listed as a conflict."""
    from datetime import datetime

    from iofold_tui.data.labels.patch import Format, write_changes
    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.data.text import plural

    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r}: not an ISO-8601 date/time")
    opened = open_any(source, demo=demo, read_only=True)
    refuse_live(opened, "export-labels")
    if check is not None:
        _check_labels(opened, check, since_dt)
        return
    store = LabelStore(opened.db.path, history_path=opened.history_path, read_only_reason=opened.read_only_reason)
    try:
        if output == "-":
            summary = write_changes(store, sys.stdout, since=since_dt, fmt=cast(Format, fmt))
            sys.stdout.flush()
        else:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                summary = write_changes(store, fh, since=since_dt, fmt=cast(Format, fmt))
    finally:
        store.close()
    click.echo(f"{plural(summary.count, 'label change')} ({plural(summary.upserts, 'upsert')}, "
               f"{plural(summary.deletes, 'deletion')})" + ("" if output == "-" else f" written to {output}"),
               err=True)
    _stranded_notice(opened, source)


def refuse_live(opened: Any, command: str) -> None:  # noqa: ANN401 - an OpenedSource
    """Commands about copies of a D1 database: on the live database itself there is nothing to send back."""
    if opened.kind == "d1-remote":
        fail(f"{opened.target}: {command} works on copies of a D1 database, not on the live one "
             "(`iofold-tui pull` a copy, work there, then `push`)")


def _stranded_notice(opened: Any, source: str | None) -> None:  # noqa: ANN401 - an OpenedSource
    """One line on stderr when labels made on an older copy of this D1 database are not in it."""
    from iofold_tui.data.labels.carry import check_opened

    report = check_opened(opened)
    notice = report.notice(str(source)) if report else None
    if notice:
        click.echo(f"note: {notice}", err=True)


def _check_labels(opened: Any, remote_source: str, since: Any) -> None:  # noqa: ANN401 - OpenedSource, datetime
    """``export-labels --check``: what the patch would do to a newer copy of the D1 database."""
    from iofold_tui.data.labels.patch import check_against, describe_conflict, load_net_changes
    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.data.text import plural

    store = LabelStore(opened.db.path, history_path=opened.history_path, read_only_reason=opened.read_only_reason)
    try:
        net = load_net_changes(store, since)
    finally:
        store.close()
    remote = open_any(remote_source, read_only=True)
    with guard_database(remote):
        report = check_against(net, remote.db.conn())
    conflicts = report.conflicts
    click.echo(f"{plural(len(net), 'label change')} checked against {remote_source}: "
               f"{report.count('apply'):,} to apply, {report.count('done'):,} already there, "
               f"{plural(len(conflicts), 'conflict')}" + (" (left as they are in D1 by the patch):" if conflicts else ""))
    for item in conflicts:
        click.echo(f"  {describe_conflict(item)}")
    if conflicts:
        sys.exit(1)


@main.command("carry-labels")
@click.argument("source", required=True)
@click.option("--from", "from_file", metavar="OLD_EXPORT",
              help="Only labels made on copies of this older export file (default: every older copy).")
@click.option("--dry-run", is_flag=True, help="Only say what would be carried and what conflicts.")
@guarded
def carry_labels_cmd(source: str, from_file: str | None, dry_run: bool) -> None:
    """Carry labels made on an older export of the same D1 database (recognised by its workspace and
    eval-set ids) into SOURCE's working copy, so `export-labels SOURCE` includes them. Labels changed in
    D1 since (as SOURCE shows) are conflicts: listed, not carried."""
    opened = open_any(source)
    refuse_live(opened, "carry-labels")
    if opened.kind != "d1-export":
        fail(f"{source}: carry-labels carries labels between copies of `wrangler d1 export` .sql files")
    _carry(opened, source, Path(from_file).expanduser().resolve() if from_file else None, dry_run=dry_run)


def _carry(opened: Any, source: str, from_file: Path | None, *, dry_run: bool) -> None:  # noqa: ANN401
    from iofold_tui.data.labels.carry import carry_labels, check_opened
    from iofold_tui.data.labels.patch import describe_conflict
    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.data.text import plural

    report = check_opened(opened, export_file=from_file)
    if report is None or not report.items:
        if from_file is not None:
            fail(f"{from_file}: no labels made on a copy of this file for the D1 database in {source}")
        click.echo("nothing to carry: no older copy of this D1 database holds labels", err=True)
        return
    names = ", ".join(sorted({c.name for c in report.copies}))
    click.echo(f"{plural(len(report.items), 'label change')} made on {names}: "
               f"{len(report.to_carry):,} to carry, {len(report.of('done')):,} already in this export, "
               f"{plural(len(report.conflicts), 'conflict')}" + (" (changed in D1 since; not carried):"
                                                               if report.conflicts else ""))
    for _, item in report.conflicts:
        click.echo(f"  {describe_conflict(item)}")
    if dry_run:
        return
    if opened.read_only_reason:
        fail(f"{source}: cannot carry labels: {opened.read_only_reason}")
    store = LabelStore(opened.db.path, history_path=opened.history_path, read_only_reason=opened.read_only_reason)
    try:
        result = carry_labels(store, report)
    finally:
        store.close()
    click.echo(f"carried {plural(result.carried, 'label change')} into {source} as one undoable step; "
               f"`iofold-tui export-labels {source}` includes them")


from iofold_tui.cli_inspect import overview_cmd, sql_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(overview_cmd)
main.add_command(sql_cmd)

from iofold_tui.cli_eval import run_eval_cmd, undo_run_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(run_eval_cmd)
main.add_command(undo_run_cmd)

from iofold_tui.cli_workbench import (  # noqa: E402 - they reuse the helpers above
    compare_cmd,
    eval_version_cmd,
    export_evals_cmd,
    undo_version_cmd,
)

for _command in (eval_version_cmd, undo_version_cmd, compare_cmd, export_evals_cmd):
    main.add_command(_command)

from iofold_tui.cli_search import index_cmd, search_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(index_cmd)
main.add_command(search_cmd)

from iofold_tui.cli_team import agreement_cmd, annotator_cmd, import_labels_cmd  # noqa: E402 - they reuse the helpers above

for _command in (agreement_cmd, import_labels_cmd, annotator_cmd):
    main.add_command(_command)

from iofold_tui.cli_d1 import pull_cmd, push_cmd  # noqa: E402 - they reuse the helpers above

main.add_command(pull_cmd)
main.add_command(push_cmd)

if __name__ == "__main__":
    main()
