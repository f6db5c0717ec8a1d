"""How a trace reads on screen: shared by the trace detail pane, review mode and the matrix drill-down."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from iofold_tui.data.sanitize import clean, one_line
from iofold_tui.data.text import plural
from iofold_tui.data.traces.detail import TraceDetail
from iofold_tui.data.traces.preview import preview_text
from iofold_tui.data.traces.steps import Step, ToolCall
from iofold_tui.data.values import execution_state, marked
from iofold_tui.ui.text import RATING_STYLE, rating_label

ROLE_STYLE = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta", "tool": "bold yellow"}
SUMMARY_LIMIT = 4_000


def _value(value: Any, limit: int) -> str:
    if isinstance(value, str):
        return clean(value, limit)
    try:
        return clean(json.dumps(value, ensure_ascii=False, indent=2, default=str), limit)
    except (TypeError, ValueError):
        return clean(repr(value), limit)


def _field(out: Text, label: str, body: str | Text, style: str = "") -> None:
    out.append(f"{label:<9}", style="bold")
    out.append(body if isinstance(body, Text) else Text(body, style=style))
    out.append("\n")


def verdict(result: int | None, error: str | None) -> Text:
    state = execution_state(result, error)
    if state == "error":
        return Text("ERROR", style="bold yellow")
    if state == "invalid":
        return Text(f"INVALID result {marked(result, 16)} (not 0/1)", style="bold magenta")
    return Text("PASS", style="bold green") if state == "pass" else Text("FAIL", style="bold red")


def summary(detail: TraceDetail, *, blind: bool = False, limit: int = SUMMARY_LIMIT,
            hidden_labels: int = 0) -> Text:
    """The request, final answer, tools and errors up front; labels and eval verdicts after."""
    parsed = detail.steps
    out = Text()
    steps = detail.step_count_text or plural(detail.step_count, "step")
    out.append(f"{one_line(detail.timestamp, 30)}  ·  {one_line(detail.source, 30)}  ·  {steps}"
               f"  ·  {one_line(detail.external_id, 60)}\n", style="dim")
    if parsed.error:
        out.append(f"⚠ {one_line(parsed.error, 200)} — the raw text is shown in the steps view (r)\n",
                   style="bold yellow")
    _field(out, "REQUEST", clean(preview_text(parsed.user_request or detail.input_preview), limit) or "—")
    _field(out, "ANSWER", clean(parsed.final_answer or detail.output_preview, limit) or "—")
    tools = parsed.tool_calls
    if tools:
        line = Text()
        for i, call in enumerate(tools[:30]):
            if i:
                line.append(", ")
            line.append(one_line(call.name, 40), style="bold red" if call.error else "")
            line.append(" ✗" if call.error else " ✓", style="red" if call.error else "green")
        if len(tools) > 30:
            line.append(f" … {len(tools) - 30} more")
        _field(out, "TOOLS", line)
    for err in parsed.errors[:5]:
        _field(out, "ERROR", clean(err, 500), "bold red")
    labels = Text()
    for fb in detail.feedback:
        labels.append(one_line(fb.eval_set_name, 40) + ": ")
        labels.append(fb.rating if fb.rating in RATING_STYLE else rating_label(fb.rating),
                      style=RATING_STYLE.get(fb.rating, "bold"))
        if fb.notes:
            labels.append(f' "{one_line(fb.notes, 80)}"', style="italic")
        labels.append("   ")
    if hidden_labels and not detail.feedback:  # blind mode: other eval sets' labels are not shown either
        labels = Text(f"{plural(hidden_labels, 'label')} of other eval sets hidden (blind mode: label first)",
                      style="dim")
    _field(out, "LABELS", labels if detail.feedback or hidden_labels else Text("none", style="dim"))
    if blind:
        _field(out, "EVALS", Text("hidden (blind mode: label first)", style="dim"))
    else:
        for ex in detail.executions[:12]:
            line = Text(f"{one_line(ex.eval_name, 30)} v{ex.version}: ")
            line.append(verdict(ex.result, ex.error))
            line.append(f"  {one_line(ex.error or ex.reason, 120)}", style="dim")
            _field(out, "EVAL", line)
        if len(detail.executions) > 12:
            out.append(f"… {len(detail.executions) - 12} more executions\n", style="dim")
    return out


def tool_call_text(call: ToolCall, limit: int = 20_000) -> Text:
    out = Text()
    out.append(f"⚙ {one_line(call.name, 80)}\n", style="bold yellow")
    out.append("arguments: ", style="bold")
    out.append(_value(call.arguments, limit) + "\n")
    if call.error:
        out.append("error: ", style="bold red")
        out.append(clean(call.error, limit) + "\n", style="red")
    elif call.result is not None:
        out.append("result: ", style="bold")
        out.append(_value(call.result, limit) + "\n")
    return out


def step_text(step: Step, limit: int = 50_000) -> Text:
    """One step in full: messages by role, tool calls, input/output, error, metadata."""
    out = Text()
    out.append(f"{one_line(step.title, 100)}   {one_line(step.timestamp, 40)}\n", style="bold")
    for msg in step.messages:
        out.append(f"[{one_line(msg.role, 20)}] ", style=ROLE_STYLE.get(msg.role, "bold"))
        out.append(clean(msg.content, limit) + "\n")
    for call in step.tool_calls:
        out.append(tool_call_text(call, limit))
    if step.input not in (None, "", {}, []):
        out.append("input: ", style="bold blue")
        out.append(_value(step.input, limit) + "\n")
    if step.kind != "object":  # not a step object: its value is the content, whatever it is
        out.append(f"{step.kind}: ", style="bold blue")
        out.append(_value(step.output, limit) if step.output is not None else "null")
        out.append("\n")
    elif step.output not in (None, "", {}, []):
        out.append("output: ", style="bold blue")
        out.append(_value(step.output, limit) + "\n")
    if step.error:
        out.append("error: ", style="bold red")
        out.append(clean(step.error, limit) + "\n", style="red")
    if step.metadata:
        out.append("metadata: ", style="dim bold")
        out.append(_value(step.metadata, 4_000) + "\n", style="dim")
    return out
