"""Understand a trace's ``steps`` JSON whatever produced it (spec §3) for display.

Producers filled steps differently: one step per Langfuse observation, one per chat message, one per
span. We reduce each to the same shape: messages, tool calls, input/output, error, metadata; and pull
out the user's request and the final answer, which people read first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Keys under which producers put the answer text in a step's output object.
_ANSWER_KEYS = ("response", "formatted_response", "content", "answer", "output", "text", "message")


@dataclass
class ToolCall:
    name: str
    arguments: Any
    result: Any = None
    error: str | None = None


@dataclass
class Message:
    role: str
    content: str


@dataclass
class Step:
    index: int
    step_id: str
    timestamp: str
    messages: list[Message] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    input: Any = None
    output: Any = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "object"  # the JSON type of the item in `steps`; anything else is shown as its value

    @property
    def title(self) -> str:
        if self.kind != "object":
            return f"#{self.index + 1} {self.kind}: {_preview(self.output)}"
        name = self.metadata.get("name") if isinstance(self.metadata, dict) else None
        kinds = [m.role for m in self.messages] + [f"tool:{t.name}" for t in self.tool_calls]
        label = str(name) if name else (", ".join(dict.fromkeys(kinds)) or "step")
        return f"#{self.index + 1} {label}" + (
            " ✗ error" if self.error or any(t.error for t in self.tool_calls) else ""
        )


@dataclass
class ParsedSteps:
    steps: list[Step]
    error: str | None = None  # set when the JSON is invalid or not a list
    raw_size: int = 0

    @property
    def user_request(self) -> str:
        for step in self.steps:
            for m in step.messages:
                if m.role == "user" and m.content.strip():
                    return m.content
        for step in self.steps:
            text = _as_text(_unwrap_input(step.input))
            if text:
                return text
        return ""

    @property
    def final_answer(self) -> str:
        for step in reversed(self.steps):
            for m in reversed(step.messages):
                if m.role == "assistant" and m.content.strip():
                    return m.content
            text = _answer_text(step.output)
            if text:
                return text
        return ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [t for s in self.steps for t in s.tool_calls]

    @property
    def errors(self) -> list[str]:
        out = [s.error for s in self.steps if s.error]
        out += [f"{t.name}: {t.error}" for t in self.tool_calls if t.error]
        return out


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return str(value)


def _answer_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        for key in _ANSWER_KEYS:
            value = output.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return ""


def _unwrap_input(value: Any) -> Any:
    """Span producers wrap the chat in ``{"messages": [...]}``: take the last user message."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        users = [m for m in value["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return users[-1].get("content")
    return value


def _message(raw: Any) -> Message | None:
    if not isinstance(raw, dict):
        return None
    return Message(role=str(raw.get("role") or "?"), content=_as_text(raw.get("content")))


def _tool(raw: Any) -> ToolCall | None:
    if not isinstance(raw, dict):
        return None
    function: dict[str, Any] = fn if isinstance(fn := raw.get("function"), dict) else {}
    name = raw.get("tool_name") or raw.get("name") or function.get("name")
    error = raw.get("error")
    return ToolCall(name=str(name or "?"), arguments=raw.get("arguments", raw.get("args")),
                    result=raw.get("result"), error=_as_text(error) if error else None)


_JSON_KINDS = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
}


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    return "object" if isinstance(value, dict) else _JSON_KINDS.get(type(value), type(value).__name__)


def _preview(value: Any, width: int = 60) -> str:
    if isinstance(value, str):
        return value[:width]
    text = json.dumps(value, ensure_ascii=False, default=str)[:width]
    return f"{len(value)} item{'s' if len(value) != 1 else ''} {text}" if isinstance(value, list) else text


def _step(index: int, raw: Any) -> Step:
    if not isinstance(raw, dict):  # a number, string, null or array where a step object belongs: keep it
        return Step(index=index, step_id=str(index), timestamp="", output=raw, kind=json_kind(raw))
    meta = raw.get("metadata")
    messages = [m for m in (_message(x) for x in _list(raw.get("messages_added"))) if m]
    tools = [t for t in (_tool(x) for x in _list(raw.get("tool_calls"))) if t]
    error = raw.get("error")
    return Step(
        index=index, step_id=str(raw.get("step_id") or index), timestamp=str(raw.get("timestamp") or ""),
        messages=messages, tool_calls=tools, input=raw.get("input"), output=raw.get("output"),
        error=_as_text(error) if error else None, metadata=meta if isinstance(meta, dict) else {},
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_steps(text: str | bytes | None) -> ParsedSteps:
    """Never raises: invalid JSON gives an empty list and an ``error`` the UI shows with the raw text."""
    if text is None:
        return ParsedSteps([], "steps is NULL")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):  # SQLite stores what it is given: a number in `steps` is a number
        return ParsedSteps([_step(0, text)], f"steps holds a {type(text).__name__}, not JSON text", 0)
    size = len(text)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return ParsedSteps([], f"invalid JSON in steps: {exc}", size)
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        data = data["steps"]
    if not isinstance(data, list):
        return ParsedSteps([_step(0, data)], f"steps is a JSON {type(data).__name__}, not a list", size)
    return ParsedSteps([_step(i, raw) for i, raw in enumerate(data)], None, size)


def pretty_json(text: str | None, limit: int = 2_000_000) -> tuple[str, bool]:
    """Indented JSON for the raw view; (text, ok). Huge values are cut to keep highlighting bounded."""
    if text is None:
        return "", False
    if not isinstance(text, str):
        return str(text), False
    try:
        out = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
        ok = True
    except (ValueError, RecursionError):
        out, ok = text, False
    return (out[:limit] + f"\n… [{len(out) - limit:,} more characters]" if len(out) > limit else out), ok
