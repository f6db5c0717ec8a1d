"""Cells and texts of the evals pane: the list's rows (stored counters beside recomputed ones), the note
under the list, the details tab, the tests and training tabs. Built from sanitised values only."""

from __future__ import annotations

from rich.text import Text

from iofold_tui.data.evals.code_text import split_lines
from iofold_tui.data.evals.eval_parsing import TestRow
from iofold_tui.data.evals.versions import (
    ChainLink,
    EvalDetail,
    EvalSummary,
    TrainingTrace,
    accuracy_band,
)
from iofold_tui.data.matrix.stats import EvalCounts
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural
from iofold_tui.ui.panes.evals_widgets import DISAGREE, Highlighter
from iofold_tui.ui.text import cell, rating_text, safe

BAND_STYLE = {"high": "bold green", "mid": "bold yellow", "low": "bold red", "none": "dim"}
STATUS_STYLE = {"active": "bold green", "draft": "cyan", "archived": "dim"}


def _num(value: int | None, style: str = "", raw: str | None = None) -> Text:
    if raw is not None:  # stored, but not a number: the value as stored, marked
        return Text(one_line(raw, 14), style="yellow", justify="right")
    if value is None:
        return Text("—", style="dim", justify="right")
    return Text(f"{value:,}", style=style, justify="right")


def _acc(value: float | None, raw: str | None = None) -> Text:
    if raw is not None:
        return Text(one_line(raw, 14), style="yellow", justify="right")
    shown = "—" if value is None else f"{value:.2f}"
    return Text(shown, style=BAND_STYLE[accuracy_band(value)], justify="right")


def list_cells(s: EvalSummary, link: ChainLink, counts: EvalCounts | None, counted: bool) -> list[Text]:
    """One row of the eval list: stored counters beside recomputed ones, disagreement highlighted."""
    if link.depth:  # a later version: indented under the first of its chain
        label = f"{'  ' * min(link.depth - 1, 6)}└ v{s.version}"
    else:
        label = f"{one_line(s.name, 60)} v{s.version}"
    name = Text("⚠ " if link.note else "", style="yellow")
    name.append(cell(label, 70, style="" if link.depth else "bold"))
    pending = Text("…" if not counted else "?", style="dim", justify="right")
    cells = [name, cell(s.status, 12, STATUS_STYLE.get(s.status, "yellow")), cell(s.model_used, 40),
             _acc(s.accuracy, s.shown("accuracy", s.accuracy))]
    raw_exec = s.shown("execution_count", s.execution_count)
    raw_contra = s.shown("contradiction_count", s.contradiction_count)
    if counts is None:
        return [*cells, pending, _num(s.execution_count, raw=raw_exec), pending,
                _num(s.contradiction_count, raw=raw_contra), pending, pending, cell(s.created_at[:10], 10)]
    exec_differs = s.execution_count != counts.execution_count
    contra_differs = s.contradiction_count != counts.contradictions
    return [*cells, _acc(counts.accuracy),
            _num(s.execution_count, DISAGREE if exec_differs else "", raw_exec),
            _num(counts.execution_count, "bold yellow" if exec_differs else ""),
            _num(s.contradiction_count, DISAGREE if contra_differs else "", raw_contra),
            _num(counts.contradictions, "bold yellow" if contra_differs else ""),
            _num(counts.errors, "red" if counts.errors else "dim"), cell(s.created_at[:10], 10)]


def note_text(detail: EvalDetail, link: ChainLink | None, hl: Highlighter | None) -> Text:
    """One or two lines under the list: what is wrong with the selected eval, or that it is fine."""
    text = Text()
    problems = ([link.note] if link and link.note else []) + detail.problems
    if detail.check.ok and not detail.check.note:
        text.append(f"✓ valid Python · calls {one_line(detail.check.entry, 40)}()", style="green")
    for problem in problems:
        text.append("  ⚠ " if text else "⚠ ", style="yellow")
        text.append(one_line(problem, 160), style="yellow")
    lines = len(hl.plain) if hl else 0
    text.append(f"  ·  {plural(lines, 'line')}", style="dim")
    if hl is not None and hl.capped:
        text.append(f" (highlighted up to line {hl.limit:,}; the rest is plain)", style="yellow")
    return text


def _section(text: Text, title: str, body: str, empty: str = "(none)") -> None:
    text.append(f"\n{title}\n", style="bold underline")
    text.append_text(safe(body) if body.strip() else Text(empty, style="dim"))
    text.append("\n")


def details_text(detail: EvalDetail, link: ChainLink | None, counts: EvalCounts | None,
                 lineage: list[EvalSummary], counting: bool) -> Text:
    s = detail.summary
    text = Text()
    text.append(f"{one_line(s.name, 80)} v{s.version}", style="bold")
    text.append(f"  ·  {one_line(s.status, 20)}  ·  {one_line(s.model_used, 60)}"
                f"  ·  created {one_line(s.created_at, 30)}"
                f"  ·  updated {one_line(detail.updated_at, 30)}\n", style="")
    chain = " ← ".join(f"v{e.version}" for e in lineage) or f"v{s.version}"
    text.append("version chain: ", style="bold")
    text.append(chain + (" (parent by version order)" if link and link.inferred else ""))
    if link and link.note:
        text.append(f"  ⚠ {one_line(link.note, 160)}", style="yellow")
    text.append("\n\nstored vs recomputed", style="bold underline")
    text.append("  (recomputed: labels of this eval set only; errored runs are neither pass nor fail)\n",
                style="dim")
    rows = [("accuracy", s.accuracy, None if counts is None else counts.accuracy),
            ("execution_count", s.execution_count, None if counts is None else counts.execution_count),
            ("contradiction_count", s.contradiction_count, None if counts is None else counts.contradictions)]
    for label, stored, live in rows:
        shown_live = "computing…" if counting else "—" if live is None else (
            f"{live:.3f}" if isinstance(live, float) else f"{live:,}")
        shown_stored = s.shown(label, stored) or (
            "—" if stored is None else f"{stored:.3f}" if isinstance(stored, float) else f"{stored:,}")
        differs = label != "accuracy" and counts is not None and stored != live
        text.append(f"  {label:<20} stored {shown_stored:>10}   recomputed {shown_live:>10}",
                    style=DISAGREE if differs else "")
        if label == "accuracy":
            text.append("   (stored: generation test set; recomputed: executions)", style="dim")
        text.append("\n")
    if counts is not None:
        text.append(f"  {'errored executions':<20} {counts.errors:>17,}\n",
                    style="red" if counts.errors else "dim")
        if s.contradiction_count is not None and s.contradiction_count > counts.contradictions:
            text.append("  the stored contradiction_count is higher: it was likely taken from the unscoped "
                        "eval_comparison view (other sets' labels, errors counted as fails)\n",
                        style="yellow")
    _section(text, "description", detail.description)
    _section(text, "generation prompt", detail.generation_prompt)
    _section(text, "custom instructions", detail.custom_instructions)
    text.append("\ncode\n", style="bold underline")
    lines = len(split_lines(detail.code))
    text.append(f"{plural(lines, 'line')}, {plural(len(detail.code), 'character')}  ·  ")
    text.append(one_line(detail.check.note, 200) if detail.check.note else f"calls {detail.check.entry}()",
                style="yellow" if detail.check.note else "green")
    text.append("\n")
    text.append_text(tests_summary(detail))
    text.append_text(training_summary(detail, None))
    return text


def tests_summary(detail: EvalDetail) -> Text:
    results = detail.test_results
    text = Text("\ntest results: ", style="bold")
    if not results.rows and not results.summary and not results.problems:
        text.append("none stored\n", style="dim")
        return text
    text.append(f"{plural(results.total_rows, 'row')} ({results.shape})")
    if results.summary:
        stored = ", ".join(f"{k} {one_line(v, 12)}" for k, v in results.summary.items())
        text.append(f"  ·  stored summary: {stored}")
    text.append(f"  ·  {plural(results.mismatches, 'mismatch', 'mismatches')}",
                style="bold red" if results.mismatches else "green")
    text.append("  ·  Enter opens the trace\n", style="dim")
    for problem in results.problems:
        text.append(f"⚠ {one_line(problem, 200)}\n", style="yellow")
    return text


def training_summary(detail: EvalDetail, training: list[TrainingTrace] | None) -> Text:
    text = Text("\ntraining traces: ", style="bold")
    text.append(f"{len(detail.training_ids):,}")
    if training is not None:
        missing = sum(1 for t in training if not t.exists)
        if missing:
            text.append(f"  ·  {missing:,} not in the database", style="bold red")
        if len(detail.training_ids) > len(training):
            text.append(f"  ·  showing the first {len(training):,}", style="yellow")
        text.append("  ·  Enter opens the trace", style="dim")
    text.append("\n")
    if detail.training_problem:
        text.append(f"⚠ {one_line(detail.training_problem, 200)}\n", style="yellow")
    return text


def _verdict(value: bool | None, raw: str) -> Text:
    if value is None:
        return cell(raw or "—", 12, "dim")
    return Text("✓ pass", style="green") if value else Text("✗ fail", style="red")


def test_cells(row: TestRow) -> list[Text]:
    bad = row.match is False
    if row.match:
        match = Text("✓", style="green")
    else:
        match = Text("✗", style="bold red") if bad else Text("?", style="dim")
    reason = cell(row.error, 300, "red") if row.error else cell(row.reason, 300, "bold red" if bad else "")
    time = Text("" if row.time_ms is None else f"{row.time_ms:,.0f} ms", justify="right")
    return [cell(row.trace_id, 60, "bold red" if bad else ""), _verdict(row.expected, row.expected_text),
            _verdict(row.predicted, row.predicted_text), match, reason, time]


def training_cells(trace: TrainingTrace) -> list[Text]:
    exists = Text("yes", style="green") if trace.exists else Text("MISSING", style="bold red")
    return [cell(trace.id, 60), exists, rating_text(trace.rating) if trace.exists else Text(""),
            cell(trace.preview, 200)]
