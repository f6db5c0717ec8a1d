"""Search commands: ``iofold-tui index SOURCE`` and ``iofold-tui search SOURCE QUERY`` (registered in
cli/__init__.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from iofold_tui.cli.common import fail, guarded, open_any, source_argument


def _progress(label: str) -> Callable[[int, int], None]:
    """Progress on stderr: a live line on a terminal, a line per 10 % otherwise."""
    tty = sys.stderr.isatty()
    state = {"last": -1, "t": 0.0}

    def show(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        now = time.monotonic()
        if tty and (pct != state["last"] or now - state["t"] > 1):
            click.echo(f"\r{label} {pct:3d}% ({done:,} of {total:,} traces)", err=True, nl=False)
        elif not tty and pct // 10 != state["last"] // 10:
            click.echo(f"{label} {pct:3d}% ({done:,} of {total:,} traces)", err=True)
        state["last"], state["t"] = pct, now

    return show


def _key(opened: Any) -> Any:
    from iofold_tui.data.search.index import source_key

    return source_key(opened.kind, opened.origin, opened.db.path)


@click.command("index")
@source_argument
@click.option("--rebuild", is_flag=True, help="Drop the search index and build it again.")
@click.option("--verify", is_flag=True, help="Compare every row's fingerprint, not only the quick check.")
@guarded
def index_cmd(source: str | None, demo: bool, rebuild: bool, verify: bool) -> None:
    """Build or update the full-text search index of SOURCE (a sidecar in the cache dir, never inside
    the database)."""
    from iofold_tui.data.search.index import IndexUnavailable, SearchIndex, sidecar_size

    opened = open_any(source, demo=demo, read_only=True)
    if opened.kind == "d1-remote":  # it would copy every trace's steps over the network, and could not tell
        fail(f"{source}: no search index for a live D1 database (searches scan on D1); "  # when D1 changed
             "`iofold-tui pull` a working copy and index that")
    try:
        index = SearchIndex(_key(opened))
    except IndexUnavailable as exc:
        fail(str(exc))
    if rebuild:
        index.remove()
    try:
        index.conn(create=True)
    except IndexUnavailable as exc:
        click.echo(f"iofold-tui: {exc}: rebuilding it", err=True)
        index.remove()
        try:
            index.conn(create=True)
        except IndexUnavailable as again:
            fail(f"{index.path}: {again}")
    show = _progress("indexing")
    report = index.sync(opened.db.conn(), progress=show, verify=verify)
    if sys.stderr.isatty():
        click.echo("", err=True)
    size = sidecar_size(index)
    db_size = opened.db.path.stat().st_size
    index.close()
    click.echo(report.summary())
    click.echo(f"sidecar {index.path} {size / 1e6:,.1f} MB ({size / max(db_size, 1):.0%} of the database's "
               f"{db_size / 1e6:,.1f} MB)")


@click.command("search")
@source_argument
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--regex", is_flag=True, help="QUERY is a regular expression (scans every trace).")
@click.option("--order", type=click.Choice(["newest", "relevance"]), default="newest", show_default=True)
@guarded
def search_cmd(
    source: str | None, demo: bool, query: str | None, as_json: bool, limit: int, regex: bool, order: str
) -> None:
    """Full-text search: words, "phrases", prefix*, AND/OR/NOT, field:term (tool:, error:, role:, user:,
    assistant:, msg:, io:, input:, output:, id:). Uses the index when built, else scans."""
    from iofold_tui.data.sanitize import json_text, one_line
    from iofold_tui.data.search.index import run_search, trace_rows
    from iofold_tui.data.search.query import SearchSyntaxError

    if query is None and demo:  # `iofold-tui search --demo QUERY`: the one argument is the query
        source, query = None, source
    if query is None:
        fail("no QUERY given: iofold-tui search SOURCE QUERY")
    opened = open_any(source, demo=demo, read_only=True)
    conn = opened.db.conn()
    show = _progress("scanning") if sys.stderr.isatty() else None
    try:
        result = run_search(
            conn, _key(opened), str(query), order=order, limit=limit, regex=regex, progress=show
        )
    except SearchSyntaxError as exc:
        fail(f"search: {exc}")
    if show:
        click.echo("\r" + " " * 60 + "\r", err=True, nl=False)
    rows = trace_rows(conn, result.rowids)
    if as_json:
        click.echo(json_text({
            "query": query, "regex": regex, "order": result.order, "total": result.total,
            "used_index": result.used_index, "note": result.note, "complete": result.complete,
            "ms": round(result.ms, 1), "results": rows,
        }))
        return
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    for r in rows:
        preview = r["input_preview"] or r["output_preview"]
        click.echo(
            f"{one_line(r['timestamp'], 24):<24} {one_line(r['id'], 28):<28} {one_line(r['source'], 10):<10} "
            f"{one_line(preview, 100)}"
        )
    how = "index" if result.used_index else "scan"
    click.echo(
        f"{result.total:,} traces match ({how}, {result.ms:,.0f} ms); showing {len(rows):,}, {result.order} "
        f"first",
        err=True,
    )
    sys.stdout.flush()
