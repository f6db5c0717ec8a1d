"""The compare view's text: the two versions' confusion matrices, the metric deltas, the code diff, and
blocks laid side by side (plain Rich Text: no table layout engine on the first frame)."""

from __future__ import annotations

import difflib

from rich.text import Text

from iofold_tui.data.evals.compare import Comparison
from iofold_tui.data.matrix.stats import METRICS, RATINGS, STATES, MatrixStats
from iofold_tui.data.sanitize import clean, one_line

METRIC_NAMES = {
    "accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1",
    "specificity": "specificity", "cohens_kappa": "Cohen's κ", "contradiction_rate": "contradiction rate",
}
HIGHER_IS_BETTER = {m: m != "contradiction_rate" for m in METRICS}


def version_label(s: MatrixStats) -> str:
    return f"{one_line(s.name, 30)} v{s.version}"


def count_text(n: int, compact: bool) -> str:
    """``12,345``, or ``12.3k`` / ``1.2M`` when two matrices must share a narrow screen."""
    if not compact or n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 100_000 else f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


STATE_HEADERS = {"pass": "pass", "fail": "fail", "error": "error", "invalid": "invalid", "not_run": "not run"}
SHORT_HEADERS = {"pass": "pass", "fail": "fail", "error": "err", "invalid": "inv", "not_run": "n/r"}
AGREE = (("positive", "pass"), ("negative", "fail"))
CONTRADICT = (("positive", "fail"), ("negative", "pass"))


def grid(rows: list[list[Text]], right: set[int], gap: int = 1) -> Text:
    """Rows of cells laid out in columns (plain Text: no table layout engine on the first frame)."""
    widths = [max(row[i].cell_len for row in rows) for i in range(len(rows[0]))]
    out = Text(no_wrap=True, overflow="crop")
    for n, row in enumerate(rows):
        if n:
            out.append("\n")
        for i, (cell_text, width) in enumerate(zip(row, widths, strict=True)):
            pad = " " * (width - cell_text.cell_len)
            out.append(" " * gap if i else "")
            if i in right:
                out.append(pad)
            out.append_text(cell_text)
            if i not in right:
                out.append(pad)
    return out


def matrix_table(stats: MatrixStats, tag: str, compact: bool = False) -> Text:
    """The rating × state table of one version; agreements green, contradictions red, errors magenta."""
    headers = SHORT_HEADERS if compact else STATE_HEADERS
    rows = [[Text("label", style="bold"), *(Text(headers.get(s, s), style="bold") for s in STATES)]]
    for rating in RATINGS:
        cells = [Text(rating[:3] if compact else rating, style="bold")]
        for state in STATES:
            n = stats.cells[rating][state]
            if (rating, state) in AGREE:
                style = "green"
            elif (rating, state) in CONTRADICT and n:
                style = "bold red"
            elif state in ("error", "invalid") and n:
                style = "magenta"
            else:
                style = "dim" if not n else ""
            cells.append(Text(count_text(n, compact), style=style))
        rows.append(cells)
    title = Text(f"{tag}: {version_label(stats)} ({one_line(stats.status, 10)})\n", style="bold")
    return title + grid(rows, set(range(1, len(STATES) + 1)))


def metrics_table(cmp: Comparison) -> Text:
    rows = [[Text(h, style="bold") for h in ("metric", "A", "B", "Δ B−A")]]
    ma, mb, deltas = cmp.a.metrics(), cmp.b.metrics(), cmp.deltas()
    for name in METRICS:
        d = deltas[name]
        if d is None:
            delta = Text("n/a", style="dim")
        else:
            better = (d > 0) == HIGHER_IS_BETTER[name]
            delta = Text(f"{d:+.3f}", style="dim" if abs(d) < 5e-4 else "green" if better else "red")
        rows.append([Text(METRIC_NAMES.get(name, name), style="bold"), Text(one_line(ma[name].text(), 40)),
                     Text(one_line(mb[name].text(), 40)), delta])
    a, b = cmp.a, cmp.b
    for label, va, vb, lower_better in (("n (judged)", a.n, b.n, False),
                                        ("contradictions", a.contradictions, b.contradictions, True),
                                        ("errors", a.errors, b.errors, True)):
        style = "dim" if va == vb or not lower_better else "green" if vb < va else "red"
        rows.append([Text(label, style="bold"), Text(f"{va:,}"), Text(f"{vb:,}"),
                     Text(f"{vb - va:+,}", style=style)])
    return grid(rows, {1, 2, 3}, gap=2)


def diff_text(cmp: Comparison) -> Text:
    """The unified code diff A → B, each line through the sanitiser."""
    a, b = cmp.code_a.splitlines(), cmp.code_b.splitlines()
    out = Text()
    lines = list(difflib.unified_diff(a, b, f"A {cmp.a.eval_id}", f"B {cmp.b.eval_id}", lineterm="", n=3))
    if not lines:
        return Text("the code of the two versions is identical", style="dim")
    for line in lines:
        style = ("bold" if line.startswith(("---", "+++")) else "cyan" if line.startswith("@@")
                 else "green" if line.startswith("+") else "red" if line.startswith("-") else "")
        out.append(clean(line, 2000) + "\n", style=style)
    return out


def side_by_side(left: Text, right: Text, width: int, gap: int = 4) -> Text:
    """Two blocks of lines next to each other, or one above the other when they do not fit ``width``."""
    a, b = left.split("\n"), right.split("\n")
    wide = max((line.cell_len for line in a), default=0)
    if wide + gap + max((line.cell_len for line in b), default=0) > width:
        return left + Text("\n\n") + right
    out = Text(no_wrap=True, overflow="crop")
    for i in range(max(len(a), len(b))):
        if i:
            out.append("\n")
        line = a[i] if i < len(a) else Text()
        out.append_text(line)
        if i < len(b):
            out.append(" " * (wide - line.cell_len + gap))
            out.append_text(b[i])
    return out
