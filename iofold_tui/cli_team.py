"""Labelling as a team: ``iofold-tui agreement`` and ``iofold-tui import-labels`` (registered in cli.py)."""

from __future__ import annotations

from typing import Any

import click

from iofold_tui.cli import fail, guarded, open_any

MAX_LISTED = 20  # conflicts / problems printed before "... and N more"


def _pct(value: float | None, reason: dict[str, str], key: str) -> str:
    return f"{value * 100:.1f} %" if value is not None else reason.get(key, "n/a")


def _num(value: float | None, reason: dict[str, str], key: str) -> str:
    return f"{value:.3f}" if value is not None else reason.get(key, "n/a")


def _format_set(s: dict[str, Any]) -> list[str]:
    from iofold_tui.data.sanitize import one_line
    from iofold_tui.data.text import plural

    out = [f"eval set {one_line(s['name'], 60)} ({one_line(s['eval_set_id'], 60)})"]
    width = max(len(one_line(a["name"], 40)) for a in s["annotators"])
    for a in s["annotators"]:
        r = a["by_rating"]
        out.append(f"  {one_line(a['name'], 40):<{width}}  {plural(a['labelled'], 'trace')} labelled "
                   f"({r['positive']:,} positive, {r['negative']:,} negative, {r['neutral']:,} neutral)")
    for p in s["pairs"]:
        u = p["undefined"]
        out.append(f"  {one_line(p['a'], 40)} × {one_line(p['b'], 40)}: overlap {p['overlap']:,}, agree "
                   f"{p['agree']:,} ({_pct(p['percent_agreement'], u, 'percent_agreement')}), Cohen's κ "
                   f"{_num(p['cohens_kappa'], u, 'cohens_kappa')}")
        if p["overlap"]:
            out.append(f"    {'':<10}" + "".join(f"{c:>10}" for c in p["confusion"]) + f"   ← {one_line(p['b'], 30)}")
            for r, row in p["confusion"].items():
                out.append(f"    {r:<10}" + "".join(f"{n:>10,}" for n in row.values()))
    f = s["fleiss"]
    if f is not None:
        u = f["undefined"]
        out.append(f"  Fleiss' κ ({f['annotators']} annotators, {plural(f['traces'], 'trace')} labelled by all): "
                   f"{_num(f['fleiss_kappa'], u, 'fleiss_kappa')}; all agree on "
                   f"{_pct(f['unanimous'], u, 'unanimous')}")
    if s["versions"]:
        out.append("  with the eval versions (pass = positive, fail = negative; neutral, errors, invalid results "
                   "and traces not run left out):")
        for v in s["versions"]:
            u = v["undefined"]
            ex = v["excluded"]
            out.append(f"    {one_line(v['annotator'], 30)} vs v{v['version']} {one_line(v['eval_name'], 30)}: "
                       f"n {v['n']:,}, agree {_pct(v['percent_agreement'], u, 'percent_agreement')}, κ "
                       f"{_num(v['cohens_kappa'], u, 'cohens_kappa')} (left out: {ex['neutral']:,} neutral, "
                       f"{ex['errors']:,} errors, {ex['invalid_result']:,} invalid, {ex['not_run']:,} not run)")
    out.append(f"  disagreements: {plural(s['disagreements'], 'trace')}")
    return out


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys in the README).")
@guarded
def agreement_cmd(source: str | None, others: tuple[str, ...], demo: bool, eval_set: str | None, history: bool,
                  list_disagreements: bool, after: str | None, limit: int, as_json: bool) -> None:
    """How far annotators agree: SOURCE's labels against OTHER copies of the database (.sqlite, `wrangler
    d1 export` .sql, wrangler dir) or label files (export-labels CSV / JSON lines / .sql patch). Cohen's κ
    per pair, Fleiss' κ for three or more, percent agreement, confusion tables, and each annotator against
    each eval version. Reads only."""
    from iofold_tui.data.labels.agreement import open_agreement
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
        report = session.report(eval_set)
    if as_json:
        click.echo(json_text(report))
        return
    names = ", ".join(one_line(a["name"], 40) for a in report["annotators"])
    click.echo(f"agreement between {names}")
    for s in report["eval_sets"]:
        for line in _format_set(s):
            click.echo(line)
    for name, count in (report.get("unknown_eval_sets") or {}).items():
        click.echo(f"note: {one_line(name, 40)} has {count:,} labels in eval sets {one_line(report['source'], 80)} "
                   "does not have (left out)")


@click.command("import-labels")
@click.argument("source", required=False)
@click.argument("file", required=False)
@click.option("--demo", is_flag=True, help="Use the built-in demo database as SOURCE.")
@click.option("--from", "from_copy", metavar="OTHER",
              help="Import from another copy of the database (.sqlite, `wrangler d1 export` .sql, wrangler dir).")
@click.option("--eval-set", "eval_set", help="Only this eval set (name or id; default: all).")
@click.option("--apply", "apply", is_flag=True, help="Write the new labels (one undoable step); default: preview.")
@click.option("--prefer", type=click.Choice(["mine", "theirs"]),
              help="With --apply: resolve conflicts by keeping mine or taking theirs (default: leave them listed).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@guarded
def import_labels_cmd(source: str | None, file: str | None, demo: bool, from_copy: str | None,
                      eval_set: str | None, apply: bool, prefer: str | None, as_json: bool) -> None:
    """Import someone else's labels into SOURCE: an export-labels CSV / JSON lines file or .sql label patch
    (FILE), or another copy of the database (--from). Shows what is new, the same, or conflicting (same
    trace and eval set, another rating or note); --apply writes the new ones as one undoable step."""
    from iofold_tui.data.labels.importing import apply_import, plan_import
    from iofold_tui.data.labels.store import LabelStore
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
        store = LabelStore(opened.db.path, history_path=opened.history_path,
                           read_only_reason=opened.read_only_reason)
        try:
            result = apply_import(store, plan, prefer)  # type: ignore[arg-type]
        finally:
            store.close()
    if as_json:
        data = plan.to_dict()
        if result is not None:
            data["applied"] = {"written": result.written, "new": result.new, "theirs": result.theirs,
                               "kept_mine": result.kept_mine, "changed_meanwhile": result.changed_meanwhile,
                               "conflicts_left": len(result.conflicts_left),
                               "step_id": result.step.id if result.step else None}
        click.echo(json_text(data))
        return
    click.echo(f"{one_line(theirs, None)}: {plural(len(plan.items), 'label')} read: {counts['new']:,} new, "
               f"{counts['same']:,} the same, {plural(counts['conflict'], 'conflict')}"
               + (" (same trace and eval set, another rating or note)" if conflicts else "")
               + (f"; {plural(plan.other_sets, 'row')} of other eval sets left out" if plan.other_sets else ""))
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
    click.echo(f"imported {plural(result.written, 'label')} ({', '.join(parts)}) into "
               f"{one_line(source or 'the demo database', None)} as one undoable step (u in the TUI undoes it)"
               + (f"; {plural(result.changed_meanwhile, 'label')} changed meanwhile left out"
                  if result.changed_meanwhile else "")
               + (f"; {plural(len(result.conflicts_left), 'conflict')} left as they are"
                  if result.conflicts_left else ""))
