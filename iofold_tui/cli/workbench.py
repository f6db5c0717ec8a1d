"""The eval workbench, headless: ``eval-version``, ``undo-version``, ``compare``, ``export-evals``
(registered in cli/__init__.py). Bad input (unknown id, code the sandbox refuses, a file that is not
UTF-8) gives
one line per problem on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from iofold_tui.cli.common import fail, guarded, open_any, patch_output_option, source_argument

SHOWN_FLIPS = 20


def _refuse(message: str, problems: list[str]) -> None:
    from iofold_tui.data.sanitize import one_line

    detail = ": " + "; ".join(problems) if problems else ""
    click.echo(f"iofold-tui: {one_line(message + detail, None)}", err=True)
    sys.exit(2)


@click.command("eval-version")
@click.argument("source")
@click.argument("eval_id")
@click.option("--code", "code_file", required=True, type=click.Path(dir_okay=False),
              help="The new version's code (a UTF-8 .py file; '-' for stdin).")
@click.option(
    "--activate", is_flag=True, help="Also make it the active version (the active one is archived)."
)
@guarded
def eval_version_cmd(source: str, eval_id: str, code_file: str, activate: bool) -> None:
    """Make the next version of EVAL_ID's eval with the code in FILE (status draft); prints the new id."""
    from iofold_tui.data.evals.drafts import DraftError, create_version, read_code_file, workbench_path

    if code_file == "-":
        data = sys.stdin.buffer.read()
        try:
            code = data.decode("utf-8")
        except UnicodeDecodeError:
            fail("--code -: stdin is not UTF-8 text")
    else:
        code = read_code_file(code_file)
    opened = open_any(source)
    try:
        new = create_version(opened.db.conn(), workbench_path(opened.history_path), eval_id, code,
                             activate=activate, read_only_reason=opened.read_only_reason)
    except DraftError as exc:
        _refuse(f"{code_file}: {exc}" if exc.problems else str(exc), exc.problems)
    click.echo(new.id)
    click.echo(
        f"{new.name} v{new.version} (parent {new.parent_eval_id}), status "
        f"{'active' if new.promoted else 'draft'}; undo with: iofold-tui undo-version {source}",
        err=True,
    )


@click.command("undo-version")
@click.argument("source")
@guarded
def undo_version_cmd(source: str) -> None:
    """Undo the last eval version made or promoted with iofold-tui."""
    from iofold_tui.data.evals.drafts import DraftError, undo_last, workbench_path

    opened = open_any(source)
    try:
        done = undo_last(opened.db.conn(), workbench_path(opened.history_path),
                         read_only_reason=opened.read_only_reason)
    except DraftError as exc:
        fail(str(exc))
    click.echo(done.description)


def _metric_rows(cmp: Any) -> list[str]:
    from iofold_tui.data.matrix.stats import METRICS

    ma, mb, deltas = cmp.a.metrics(), cmp.b.metrics(), cmp.deltas()
    lines = [f"  {'metric':<20} {'A':>26} {'B':>26} {'Δ (B−A)':>9}"]
    for name in METRICS:
        d = deltas[name]
        lines.append(f"  {name:<20} {ma[name].text():>26} {mb[name].text():>26} "
                     f"{'n/a' if d is None else f'{d:+.3f}':>9}")
    return lines


def _matrix_rows(stats: Any) -> list[str]:
    from iofold_tui.data.matrix.stats import RATINGS, STATES

    lines = [f"    {'':<11}" + "".join(f"{s:>9}" for s in STATES)]
    for r in RATINGS:
        lines.append(f"    {r:<11}" + "".join(f"{stats.cells[r][s]:>9,}" for s in STATES))
    return lines


@click.command("compare")
@source_argument
@click.argument("eval_a", required=False)
@click.argument("eval_b", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@click.option("--limit", type=click.IntRange(0), default=None,
              help=f"Trace ids per flip list (default: {SHOWN_FLIPS} in text, all with --json).")
@guarded
def compare_cmd(source: str | None, demo: bool, eval_a: str | None, eval_b: str | None, as_json: bool,
                limit: int | None) -> None:
    """Compare two versions of one eval set: both confusion matrices, metric deltas, and the traces each
    change fixed (contradiction → agreement), broke (agreement → contradiction) or changed."""
    from itertools import islice

    from iofold_tui.data.evals.compare import FLIP_KINDS, CompareError, compare, iter_flips
    from iofold_tui.data.sanitize import one_line

    if demo and eval_b is None:
        source, eval_a, eval_b = None, source, eval_a
    if not eval_a or not eval_b:
        fail("compare needs two eval ids: iofold-tui compare SOURCE EVAL_A EVAL_B")
    opened = open_any(source, demo=demo, read_only=True)
    conn = opened.db.conn()
    try:
        cmp = compare(conn, str(eval_a), str(eval_b))
    except CompareError as exc:
        fail(str(exc))
    cap = limit if limit is not None else (None if as_json else SHOWN_FLIPS)
    counts = cmp.counts
    flips = {k: list(islice(iter_flips(conn, cmp, k), cap)) for k in FLIP_KINDS}
    if as_json:
        click.echo(json.dumps(cmp.to_dict(flips), indent=2))
        return
    for tag, s in (("A", cmp.a), ("B", cmp.b)):
        click.echo(f"{tag}: {one_line(s.name, 60)} v{s.version} ({one_line(s.eval_id, 60)}, {s.status})  "
                   f"n = {s.n:,}, contradictions {s.contradictions:,}, errors {s.errors:,}")
        click.echo("\n".join(_matrix_rows(s)))
    click.echo("metrics (scoped to the eval set; errors, neutral and unlabelled are excluded from n):")
    click.echo("\n".join(_metric_rows(cmp)))
    titles = {
        "fixed": "fixed (contradiction → agreement)",
        "broken": "broken (agreement → contradiction)",
        "changed": "changed verdict (pass/fail/error)",
        "only_a": "run by A only",
        "only_b": "run by B only",
    }
    for kind in FLIP_KINDS:
        ids = flips[kind]
        more = counts[kind] - len(ids)
        click.echo(f"{titles[kind]}: {counts[kind]:,}")
        if ids:
            click.echo(
                "  " + " ".join(one_line(t, 60) for t in ids) + (f" … {more:,} more" if more > 0 else "")
            )


@click.command("export-evals")
@click.argument("source")
@patch_output_option
@click.option(
    "--since", help="Only versions made after this time (ISO-8601, e.g. 2025-11-01T12:00; naive = UTC)."
)
@click.option("--with-executions", is_flag=True,
              help="Also their executions, and the counters recomputed on D1 from its own rows.")
@guarded
def export_evals_cmd(source: str, output: str, since: str | None, with_executions: bool) -> None:
    """The eval versions made with iofold-tui as an idempotent, conflict-safe D1 patch
    (apply with `wrangler d1 execute DB --file F`)."""
    from iofold_tui.data.evals.drafts import workbench_path
    from iofold_tui.data.evals.patch import CONFLICT_MARK, write_eval_patch

    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r}: not an ISO-8601 date/time")
    opened = open_any(source, read_only=True)
    conn = opened.db.conn()
    sidecar = workbench_path(opened.history_path)
    if output == "-":
        summary = write_eval_patch(conn, sidecar, sys.stdout, since=since_dt, with_executions=with_executions,
                                   source_name=str(opened.origin))
    else:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            summary = write_eval_patch(conn, sidecar, fh, since=since_dt, with_executions=with_executions,
                                       source_name=str(opened.origin))
    gone = f"; {summary.missing} made here are no longer in the database" if summary.missing else ""
    click.echo(
        f"{summary.versions} eval versions, {summary.executions:,} executions"
        + ("" if output == "-" else f" written to {output}")
        + gone
        + f" (rows named '{CONFLICT_MARK}' in wrangler's output are versions D1 already holds with other "
          f"code)",
        err=True,
    )
