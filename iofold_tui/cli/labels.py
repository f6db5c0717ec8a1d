"""Labels leaving this copy: ``export-labels`` (a D1 patch, CSV or JSON lines, ``--check``) and
``carry-labels`` (from an older export of the same D1 database)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, cast

import click

from iofold_tui.cli.common import (
    fail,
    guard_database,
    guarded,
    open_any,
    patch_output_option,
    refuse_live,
    source_argument,
)


@click.command("export-labels")
@source_argument
@patch_output_option
@click.option("--since", help="Only changes after this time (ISO-8601, e.g. 2025-11-01 or 2025-11-01T12:00).")
@click.option("--format", "fmt", type=click.Choice(["sql", "csv", "jsonl"]), default="sql", show_default=True)
@click.option(
    "--check",
    "check",
    metavar="REMOTE_EXPORT",
    help="Write nothing: list the changes that would conflict with REMOTE_EXPORT (a newer `wrangler d1 "
    "export` .sql, SQLite file or wrangler dir of the same D1 database). Exit 1 if any.",
)
@guarded
def export_labels(source: str | None, demo: bool, output: str, since: str | None, fmt: str,
                  check: str | None) -> None:
    """Every label change made with iofold-tui, as a D1 patch (apply with `wrangler d1 execute DB --file F`),
    or as CSV / JSON lines. Each statement applies only while the D1 row is still as this copy last saw
    it: a label changed in D1 since is left as it is and listed as a conflict."""
    from datetime import datetime

    from iofold_tui.data.labels.patch import Format, write_changes
    from iofold_tui.data.labels.remote_store import label_store_for
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
    store = label_store_for(opened)
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
    stranded_notice(opened, source)


def stranded_notice(opened: Any, source: str | None) -> None:
    """One line on stderr when labels made on an older copy of this D1 database are not in it."""
    from iofold_tui.data.labels.carry import check_opened

    report = check_opened(opened)
    notice = report.notice(str(source)) if report else None
    if notice:
        click.echo(f"note: {notice}", err=True)


def _check_labels(opened: Any, remote_source: str, since: Any) -> None:
    """``export-labels --check``: what the patch would do to a newer copy of the D1 database."""
    from iofold_tui.data.labels.patch import check_against, describe_conflict, load_net_changes
    from iofold_tui.data.labels.remote_store import label_store_for
    from iofold_tui.data.text import plural

    store = label_store_for(opened)
    try:
        net = load_net_changes(store, since)
    finally:
        store.close()
    remote = open_any(remote_source, read_only=True)
    with guard_database(remote):
        report = check_against(net, remote.db.conn())
    conflicts = report.conflicts
    click.echo(
        f"{plural(len(net), 'label change')} checked against {remote_source}: "
        f"{report.count('apply'):,} to apply, {report.count('done'):,} already there, "
        f"{plural(len(conflicts), 'conflict')}"
        + (" (left as they are in D1 by the patch):" if conflicts else "")
    )
    for item in conflicts:
        click.echo(f"  {describe_conflict(item)}")
    if conflicts:
        sys.exit(1)


@click.command("carry-labels")
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
    carry_into(opened, source, Path(from_file).expanduser().resolve() if from_file else None, dry_run=dry_run)


def carry_into(opened: Any, source: str, from_file: Path | None, *, dry_run: bool) -> None:
    from iofold_tui.data.labels.carry import carry_labels, check_opened
    from iofold_tui.data.labels.patch import describe_conflict
    from iofold_tui.data.labels.remote_store import label_store_for
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
    store = label_store_for(opened)
    try:
        result = carry_labels(store, report)
    finally:
        store.close()
    click.echo(f"carried {plural(result.carried, 'label change')} into {source} as one undoable step; "
               f"`iofold-tui export-labels {source}` includes them")
