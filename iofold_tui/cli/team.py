"""Labelling as a team: ``iofold-tui agreement`` and ``iofold-tui import-labels`` (registered in
cli/__init__.py)."""

from __future__ import annotations

import click

from iofold_tui.cli.common import fail, guarded, open_any

MAX_LISTED = 20  # conflicts / problems printed before "... and N more"


@click.command("agreement")
@click.argument("source", required=False)
@click.argument("others", nargs=-1)
@click.option("--demo", is_flag=True, help="Use the built-in demo database as SOURCE.")
@click.option("--eval-set", "eval_set", help="Eval set name or id (default: every eval set of SOURCE).")
@click.option("--history", "history", is_flag=True,
              help="Also count each annotator of SOURCE's label history as an annotator.")
@click.option("--disagreements", "list_disagreements", is_flag=True,
              help="List the traces labelled differently (needs one eval set), --limit at a time.")
@click.option("--after", help="With --disagreements: the page after this trace id.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--versions/--no-versions", default=True, show_default=True,
              help="Also each annotator against each eval version of the set.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@guarded
def agreement_cmd(
    source: str | None,
    others: tuple[str, ...],
    demo: bool,
    eval_set: str | None,
    history: bool,
    list_disagreements: bool,
    after: str | None,
    limit: int,
    versions: bool,
    as_json: bool,
) -> None:
    """How far annotators agree: SOURCE's labels against OTHER copies of the database (.sqlite, `wrangler
    d1 export` .sql, wrangler dir) or label files (export-labels CSV / JSON lines / .sql patch). Cohen's κ
    per pair, Fleiss' κ for three or more, percent agreement, confusion tables, and each annotator against
    each eval version. Reads only."""
    from iofold_tui.data.labels.agreement_open import open_agreement
    from iofold_tui.data.labels.agreement_text import report_lines
    from iofold_tui.data.sanitize import json_text, one_line

    if demo and source is not None:
        others = (source, *others)
        source = None
    if not others and not history:
        fail("agreement needs at least one OTHER annotator (a database copy or a label file), or --history")
    opened = open_any(source, demo=demo, read_only=True)
    with open_agreement(opened, list(others), history_annotators=history) as session:
        if list_disagreements:
            sets = session.eval_sets(eval_set)
            if len(sets) != 1:
                fail("--disagreements lists one eval set at a time: give --eval-set NAME")
            es = sets[0][0]
            page = session.disagreements(es, after=after, limit=limit)
            if as_json:
                click.echo(json_text({"eval_set_id": es, "after": after, "traces": [
                    {"trace_id": d.trace_id, "ratings": d.ratings} for d in page],
                    "next_after": page[-1].trace_id if len(page) == limit else None}))
            else:
                for d in page:
                    click.echo(f"{one_line(d.trace_id, None)}\t" + "\t".join(
                        f"{one_line(n, 40)}={r or '-'}" for n, r in d.ratings.items()))
                if len(page) == limit:
                    click.echo(f"more: --after {one_line(page[-1].trace_id, None)}", err=True)
            return
        report = session.report(eval_set, versions=versions)
    if as_json:
        click.echo(json_text(report))
        return
    names = ", ".join(one_line(a["name"], 40) for a in report["annotators"])
    click.echo(f"agreement between {names}")
    for s in report["eval_sets"]:
        for line in report_lines(s):
            click.echo(line)
    for name, count in (report.get("unknown_eval_sets") or {}).items():
        click.echo(
            f"note: {one_line(name, 40)} has {count:,} labels in eval sets {one_line(report['source'], 80)} "
            "does not have (left out)"
        )


@click.command("import-labels")
@click.argument("source", required=False)
@click.argument("file", required=False)
@click.option("--demo", is_flag=True, help="Use the built-in demo database as SOURCE.")
@click.option(
    "--from",
    "from_copy",
    metavar="OTHER",
    help="Import from another copy of the database (.sqlite, `wrangler d1 export` .sql, wrangler dir).",
)
@click.option("--eval-set", "eval_set", help="Only this eval set (name or id; default: all).")
@click.option(
    "--apply", "apply", is_flag=True, help="Write the new labels (one undoable step); default: preview."
)
@click.option(
    "--prefer",
    type=click.Choice(["mine", "theirs"]),
    help="With --apply: resolve conflicts by keeping mine or taking theirs (default: leave them listed).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guarded
def import_labels_cmd(source: str | None, file: str | None, demo: bool, from_copy: str | None,
                      eval_set: str | None, apply: bool, prefer: str | None, as_json: bool) -> None:
    """Import someone else's labels into SOURCE: an export-labels CSV / JSON lines file or .sql label patch
    (FILE), or another copy of the database (--from). Shows what is new, the same, or conflicting (same
    trace and eval set, another rating or note); --apply writes the new ones as one undoable step."""
    from iofold_tui.data.labels.importing import apply_import, plan_import
    from iofold_tui.data.labels.remote_store import label_store_for
    from iofold_tui.data.sanitize import json_text, one_line
    from iofold_tui.data.text import plural

    if demo and source is not None and file is None:
        source, file = None, source
    theirs = from_copy or file
    if from_copy and file:
        fail("give FILE or --from OTHER, not both")
    if not theirs:
        fail("import-labels needs a FILE (export-labels CSV / JSON lines / .sql patch) or --from OTHER")
    if prefer and not apply:
        fail("--prefer resolves conflicts while applying: add --apply")
    opened = open_any(source, demo=demo, read_only=not apply)
    plan = plan_import(opened, theirs, from_copy=bool(from_copy), eval_set=eval_set)
    if not plan.ok:
        if as_json:
            click.echo(json_text(plan.to_dict()))
        for e in plan.errors[:MAX_LISTED]:
            click.echo(f"iofold-tui: {e.text(one_line(theirs, None))}", err=True)
        more = len(plan.errors) - MAX_LISTED
        fail(f"{one_line(theirs, None)}: {plural(len(plan.errors), 'problem')}"
             f"{f' ({more:,} not shown)' if more > 0 else ''}; nothing applied")
    counts = plan.counts()
    conflicts = plan.of("conflict")
    result = None
    if apply:
        if opened.read_only_reason:
            fail(f"{source}: cannot import labels: {opened.read_only_reason}")
        store = label_store_for(opened)  # a live D1: conditional statements, as its label keys
        try:
            result = apply_import(store, plan, prefer)  # type: ignore[arg-type]
        finally:
            store.close()
        if prefer is not None:  # resolved by the rule: off the TUI's queue too
            from iofold_tui.data.labels.conflict_queue import drop_conflicts

            left = {(i.eval_set_id, i.trace_id) for i in result.conflicts_left}
            drop_conflicts(opened.db.path, {(i.eval_set_id, i.trace_id) for i in conflicts} - left)
        if result.conflicts_left:
            from datetime import UTC, datetime

            from iofold_tui.data.labels.conflict_queue import add_conflicts

            queued = add_conflicts(opened.db.path, result.conflicts_left, str(theirs),
                                   datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
            click.echo(
                f"{plural(queued, 'conflict')} queued: resolve them one by one in the TUI (Overview, then C) "
                "or import again with --prefer mine|theirs",
                err=True,
            )
    if as_json:
        data = plan.to_dict()
        if result is not None:
            data["applied"] = {"written": result.written, "new": result.new, "theirs": result.theirs,
                               "kept_mine": result.kept_mine, "changed_meanwhile": result.changed_meanwhile,
                               "conflicts_left": len(result.conflicts_left),
                               "step_id": result.step.id if result.step else None}
        click.echo(json_text(data))
        return
    click.echo(
        f"{one_line(theirs, None)}: {plural(len(plan.items), 'label')} read: {counts['new']:,} new, "
        f"{counts['same']:,} the same, {plural(counts['conflict'], 'conflict')}"
        + (" (same trace and eval set, another rating or note)" if conflicts else "")
        + (f"; {plural(plan.other_sets, 'row')} of other eval sets left out" if plan.other_sets else "")
    )
    listed = conflicts if result is None else result.conflicts_left
    for item in listed[:MAX_LISTED]:
        click.echo(f"  {item.describe()}")
    if len(listed) > MAX_LISTED:
        click.echo(f"  … and {len(listed) - MAX_LISTED:,} more (--json lists them all)")
    if result is None:
        click.echo("preview only, nothing written: --apply writes the new labels as one undoable step"
                   + ("; --prefer mine|theirs resolves the conflicts" if conflicts else ""), err=True)
        return
    parts = [f"{result.new:,} new"]
    if result.theirs:
        parts.append(f"{result.theirs:,} conflicts resolved as theirs")
    if result.kept_mine:
        parts.append(f"{result.kept_mine:,} conflicts kept as mine")
    click.echo(
        f"imported {plural(result.written, 'label')} ({', '.join(parts)}) into "
        f"{one_line(source or 'the demo database', None)} as one undoable step (u in the TUI undoes it)"
        + (
            f"; {plural(result.changed_meanwhile, 'label')} changed meanwhile left out"
            if result.changed_meanwhile
            else ""
        )
        + (
            f"; {plural(len(result.conflicts_left), 'conflict')} left as they are"
            if result.conflicts_left
            else ""
        )
    )


@click.command("annotator")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Forget the saved name (back to the OS user).")
@guarded
def annotator_cmd(name: str | None, unset: bool) -> None:
    """Show or set the annotator name recorded with every label this user writes (default: the OS user;
    the IOFOLD_TUI_ANNOTATOR environment variable overrides it)."""
    from iofold_tui.data.labels.annotator import resolve_annotator, set_annotator
    from iofold_tui.data.sanitize import one_line

    if name is not None and unset:
        fail("give NAME or --unset, not both")
    if name is not None or unset:
        set_annotator(None if unset else name)
    current, where = resolve_annotator()
    click.echo(f"{one_line(current, None)} (from {where})")
