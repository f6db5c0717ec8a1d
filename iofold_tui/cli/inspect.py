"""Headless inspection commands: ``iofold-tui overview``, ``iofold-tui sql`` and ``iofold-tui stats``
(registered in cli/__init__.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from iofold_tui.cli.common import fail, fail_reading, guarded, open_any, source_argument
from iofold_tui.data.sanitize import json_text


def _overview_json(figures: Any) -> dict[str, Any]:
    data = asdict(figures)
    for item, es in zip(data["eval_sets"], figures.eval_sets, strict=True):
        item.update(total=es.total, progress=es.progress, ready=es.ready)
    for item, jt in zip(data["job_types"], figures.job_types, strict=True):
        item["failure_rate"] = jt.failure_rate
    return data


def _print_overview(figures: Any) -> None:
    from iofold_tui.data.sanitize import one_line

    scope = figures.workspace_id or "all workspaces"
    click.echo(f"scope: {one_line(scope, 80)}")
    click.echo("rows per table:")
    for t in figures.tables:
        click.echo(f"  {t.table:<20} {t.count:>12,}")
    click.echo("eval sets (labels toward minimum_examples):")
    for es in figures.eval_sets:
        click.echo(
            f"  {one_line(es.name or es.id, 30):<30} pos {es.positive:>8,}  neg {es.negative:>8,}  "
            f"neu {es.neutral:>8,}  {es.total:,}/{es.minimum_examples:,} {'ready' if es.ready else 'short'}"
        )
    click.echo("evals by accuracy:")
    for b in figures.accuracy:
        click.echo(f"  {b.bucket:<7} {b.label:<12} {b.count:>8,}")
    click.echo("integrations:")
    for it in figures.integrations:
        traces = "—" if it.trace_count is None else f"{it.trace_count:,}"
        click.echo(
            f"  {one_line(it.name, 24):<24} {one_line(it.platform, 10):<10} {one_line(it.status, 8):<8} "
            f"key {it.api_key:<5} last sync {one_line(it.last_synced_at or 'never', 24):<24} traces {traces}"
            + (f"  error: {one_line(it.error_message, 120)}" if it.error_message else "")
        )
    click.echo("jobs by type:")
    for jt in figures.job_types:
        rate = "—" if jt.failure_rate is None else f"{jt.failure_rate * 100:.0f} %"
        avg = "—" if jt.avg_duration_s is None else f"{jt.avg_duration_s:.1f} s"
        statuses = ", ".join(f"{one_line(k, 12)} {v:,}" for k, v in jt.by_status.items())
        click.echo(
            f"  {one_line(jt.type, 10):<10} {jt.total:>6,}  ({statuses})  failure rate {rate}  avg {avg}"
        )
    for w in figures.warnings:
        click.echo(f"warning: {w.kind}: {w.message}")
    for note in figures.notes:
        click.echo(f"note: {note}")


@click.command("overview")
@source_argument
@click.option("--workspace", help="Workspace id to scope to (default: every workspace).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (each figure with its SQL).")
@click.option("--no-warnings", is_flag=True, help="Skip the data checks (seconds on big databases).")
@guarded
def overview_cmd(
    source: str | None, demo: bool, workspace: str | None, as_json: bool, no_warnings: bool
) -> None:
    """Row counts, label progress, accuracy buckets, integrations, jobs and data warnings."""
    from iofold_tui.data.inspect.overview import overview
    from iofold_tui.data.source.catalog import workspace_exists

    opened = open_any(source, demo=demo, read_only=True)
    conn = opened.db.conn()
    if workspace is not None and not workspace_exists(conn, workspace):
        fail(f"--workspace {workspace!r}: no such workspace")
    figures = overview(conn, workspace, warnings=not no_warnings)
    if as_json:
        click.echo(json_text(_overview_json(figures)))
    else:
        _print_overview(figures)


def _print_rows(columns: list[str], rows: list[tuple[str | None, ...]], width: int = 40) -> None:
    shown = [[("NULL" if v is None else v)[:width] for v in row] for row in rows]
    widths = [min(width, max([len(c)] + [len(r[i]) for r in shown])) for i, c in enumerate(columns)]
    click.echo("  ".join(c[:width].ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in shown:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


@click.command("sql")
@source_argument
@click.argument("query", required=False)
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1), help="Rows to print at most."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--show-secrets", is_flag=True,
              help="Print columns named like key/token/secret/password as stored (masked by default).")
@guarded
def sql_cmd(
    source: str | None, demo: bool, query: str | None, limit: int, as_json: bool, show_secrets: bool
) -> None:
    """Run one read-only SQL statement on SOURCE (writes are refused; use the TUI's console to write)."""
    from iofold_tui.data.sqlconsole.console import SqlConsole
    from iofold_tui.data.text import plural

    if query is None and demo and source is not None:
        source, query = None, source  # `iofold-tui sql --demo "SELECT …"`
    if not query:
        fail("no QUERY given")
    opened = open_any(source, demo=demo, read_only=True)
    console = SqlConsole(
        opened.db.path, immutable=opened.db.immutable, writes_blocked="the sql command is read-only"
    )
    console.write_hint = "the sql command never writes"
    console.show_secrets = show_secrets
    try:
        result = console.execute(query)
        rows: list[tuple[str | None, ...]] = []
        more = False
        if result.ok and result.columns:
            page = result.fetch_page(limit + 1)  # one more tells whether rows were left out
            if page.error:
                fail_reading(page.error)
            rows = page.rows[:limit]
            more = len(page.rows) > limit
        if not result.ok:
            fail_reading(result.message)
    finally:
        console.close()
    if as_json:
        click.echo(json_text({"columns": result.columns, "rows": [list(r) for r in rows], "truncated": more,
                              "message": result.message}))
        return
    if result.columns:
        _print_rows(result.columns, rows)
        click.echo(
            f"({plural(len(rows), 'row')}{'; more not shown, raise --limit' if more else ''})", err=True
        )
    else:
        click.echo(result.message)


@click.command()
@source_argument
@click.option("--eval-set", "eval_set", help="Eval set name or id (default: all eval sets).")
@click.option("--workspace", help="Workspace id, when the database holds several.")
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (keys named after the metrics)."
)
@guarded
def stats(source: str | None, demo: bool, eval_set: str | None, workspace: str | None, as_json: bool) -> None:
    """Per-version contradiction statistics, scoped to each eval's own eval set (errors are not fails)."""
    from iofold_tui.data.matrix.report import format_stats_text, stats_report
    from iofold_tui.data.sanitize import json_text

    opened = open_any(source, demo=demo, read_only=True)
    report = stats_report(opened.db.conn(), eval_set, workspace_id=workspace)
    click.echo(json_text(report) if as_json else format_stats_text(report))
