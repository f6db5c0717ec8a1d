"""Live D1 commands: ``pull`` (a local working copy) and ``push`` (its labels back), and ``--api-base``.

Registered in cli.py. The token is read from CLOUDFLARE_API_TOKEN by the client only; nothing here prints it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from iofold_tui.cli.common import api_base_option, fail, guarded, open_any, refuse_live


def _client(target: str) -> Any:
    from iofold_tui.data.errors import SourceError
    from iofold_tui.data.source.d1.api import D1Error
    from iofold_tui.data.source.d1.opening import connect_client, is_d1_target

    if not is_d1_target(target):
        fail(f"{target}: expected d1://DATABASE (a D1 database name or id)")
    try:
        return connect_client(target)
    except D1Error as exc:
        raise SourceError(target, str(exc)) from None


@click.command("pull")
@click.argument("target")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@api_base_option
@guarded
def pull_cmd(target: str, out: Path, force: bool) -> None:
    """Copy the live D1 database TARGET (d1://NAME) to the local SQLite file OUT, to work offline.
    Labels made on OUT go back with `iofold-tui push OUT d1://NAME` (or `export-labels`)."""
    from iofold_tui.data.errors import SourceError
    from iofold_tui.data.source.d1.api import D1Error
    from iofold_tui.data.source.d1.pull import pull

    if out.exists() and not force:
        fail(f"{out}: exists (use --force to overwrite)")
    client = _client(target)
    tty = sys.stderr.isatty()

    def show(table: str, n: int) -> None:
        if tty:
            click.echo(f"\r{table}: {n:,} rows", err=True, nl=False)

    try:
        report = pull(client, out, progress=show)
    except D1Error as exc:
        raise SourceError(target, str(exc)) from None
    if tty:
        click.echo("", err=True)
    total = sum(report.tables.values())
    click.echo(f"pulled {target} to {out}: {total:,} rows in {len(report.tables)} tables, "
               f"{report.requests:,} requests, {report.bytes / 1e6:,.1f} MB in {report.seconds:.1f} s")


@click.command("push")
@click.argument("copy")
@click.argument("target")
@click.option("--dry-run", is_flag=True, help="Only say what would be sent.")
@api_base_option
@guarded
def push_cmd(copy: str, target: str, dry_run: bool) -> None:
    """Send the label changes made on COPY (a pulled copy or export of the same database) to the live D1
    database TARGET, as conditional statements: a label changed on D1 since is a conflict, left as it is.
    Exit 1 when there are conflicts."""
    from iofold_tui.data.errors import SourceError
    from iofold_tui.data.labels.history import LabelHistory
    from iofold_tui.data.labels.patch import describe_conflict, load_net_changes, state_json
    from iofold_tui.data.labels.remote_store import label_store_for
    from iofold_tui.data.source.d1.api import D1Error
    from iofold_tui.data.source.d1.pull import push
    from iofold_tui.data.text import plural

    opened = open_any(copy, read_only=True)
    refuse_live(opened, "push COPY")
    store = label_store_for(opened)
    try:
        net = load_net_changes(store)
    finally:
        store.close()
    if dry_run or not net:
        click.echo(
            f"{plural(len(net), 'label change')} to send to {target}" + (" (dry run)" if dry_run else "")
        )
        return
    client = _client(target)
    try:
        report = push(client, net)
    except D1Error as exc:
        raise SourceError(target, str(exc)) from None
    history = LabelHistory(opened.history_path)
    try:  # what D1 now holds from us: a later push may replace it without calling it a conflict
        sent = [n for n in net if all(c.change != n for c in report.conflicts)]
        history.record_exported((n.eval_set_id, n.trace_id, state_json(n.final_state)) for n in sent)
    finally:
        history.close()
    click.echo(f"{plural(len(net), 'label change')} pushed to {target}: {report.applied:,} applied, "
               f"{report.already:,} already there, {plural(len(report.conflicts), 'conflict')} "
               f"({report.requests:,} requests)")
    for item in report.conflicts:
        click.echo(f"  {describe_conflict(item)}")
    if report.conflicts:
        sys.exit(1)
