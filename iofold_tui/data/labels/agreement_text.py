"""The agreement report of one eval set (``AgreementSession.eval_set_report``) as text lines: what
``iofold-tui agreement`` prints and the TUI's agreement view shows. Every name is sanitised here."""

from __future__ import annotations

from typing import Any

from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural


def _pct(value: float | None, reason: dict[str, str], key: str) -> str:
    return f"{value * 100:.1f} %" if value is not None else reason.get(key, "n/a")


def _num(value: float | None, reason: dict[str, str], key: str) -> str:
    return f"{value:.3f}" if value is not None else reason.get(key, "n/a")


def report_lines(s: dict[str, Any]) -> list[str]:
    """The report of one eval set as text lines (the CLI and the TUI's agreement view)."""
    out = [f"eval set {one_line(s['name'], 60)} ({one_line(s['eval_set_id'], 60)})"]
    width = max(len(one_line(a["name"], 40)) for a in s["annotators"])
    for a in s["annotators"]:
        r = a["by_rating"]
        out.append(f"  {one_line(a['name'], 40):<{width}}  {plural(a['labelled'], 'trace')} labelled "
                   f"({r['positive']:,} positive, {r['negative']:,} negative, {r['neutral']:,} neutral)")
    for p in s["pairs"]:
        out += _pair_lines(p)
    f = s["fleiss"]
    if f is not None:
        u = f["undefined"]
        out.append(f"  Fleiss' κ ({f['annotators']} annotators, {plural(f['traces'], 'trace')} labelled "
                   f"by all): {_num(f['fleiss_kappa'], u, 'fleiss_kappa')}; all agree on "
                   f"{_pct(f['unanimous'], u, 'unanimous')}")
    if s["versions"]:
        out.append("  with the eval versions (pass = positive, fail = negative; neutral, errors, invalid "
                   "results and traces not run left out):")
        for v in s["versions"]:
            out.append(_version_line(v))
    out.append(f"  disagreements: {plural(s['disagreements'], 'trace')}")
    return out


def _pair_lines(p: dict[str, Any]) -> list[str]:
    """Two annotators: overlap, agreement, κ and (when they overlap) their confusion table."""
    u = p["undefined"]
    out = [f"  {one_line(p['a'], 40)} × {one_line(p['b'], 40)}: overlap {p['overlap']:,}, agree "
           f"{p['agree']:,} ({_pct(p['percent_agreement'], u, 'percent_agreement')}), Cohen's κ "
           f"{_num(p['cohens_kappa'], u, 'cohens_kappa')}"]
    if p["overlap"]:
        header = "".join(f"{c:>10}" for c in p["confusion"])
        out.append(f"    {'':<10}{header}   ← {one_line(p['b'], 30)}")
        for r, row in p["confusion"].items():
            out.append(f"    {r:<10}" + "".join(f"{n:>10,}" for n in row.values()))
    return out


def _version_line(v: dict[str, Any]) -> str:
    """One annotator against one eval version, with what was left out."""
    u = v["undefined"]
    ex = v["excluded"]
    return (f"    {one_line(v['annotator'], 30)} vs v{v['version']} {one_line(v['eval_name'], 30)}: "
            f"n {v['n']:,}, agree {_pct(v['percent_agreement'], u, 'percent_agreement')}, κ "
            f"{_num(v['cohens_kappa'], u, 'cohens_kappa')} (left out: {ex['neutral']:,} neutral, "
            f"{ex['errors']:,} errors, {ex['invalid_result']:,} invalid, {ex['not_run']:,} not run)")
