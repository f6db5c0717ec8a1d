"""The searchable text of one trace, split into fields (FTS columns).

Both the sidecar index and the fallback scan call ``extract`` on the same raw values, so a query sees
exactly the same text either way. Rules that keep the scan's cheap LIKE prefilter a superset of the
matches (see ``query.prefilter``):
- numbers keep their literal JSON text (``1e5`` stays ``1e5``; never re-serialised as ``100000.0``);
- invalid UTF-8 decodes with U+FFFD (a separator, never a token), NUL becomes a space;
- invalid JSON / non-list steps are indexed as their raw text in ``io``.
Every field is capped at ``FIELD_CAP`` characters so a 5 MB step costs bounded memory and index size.
"""

from __future__ import annotations

import json
import re
from typing import Any

# FTS column order. ``ids``: trace id + external id; ``input``/``output``: the previews;
# ``user``/``assistant``/``system``/``other``: message text by role; ``tool``: tool names;
# ``io``: tool arguments and results, step input/output; ``error``: step and tool errors (with the tool
# name); ``role``: the roles present (``role:assistant``).
COLUMNS = ("ids", "input", "output", "user", "assistant", "system", "other", "tool", "io", "error", "role")

# Query field name → FTS columns.
FIELDS: dict[str, tuple[str, ...]] = {
    **{c: (c,) for c in COLUMNS},
    "id": ("ids",),
    "preview": ("input", "output"),
    "msg": ("user", "assistant", "system", "other"),
    "text": ("user", "assistant", "system", "other"),
    "args": ("io",),
    "result": ("io",),
    "tools": ("tool",),
    "errors": ("error",),
}

FIELD_CAP = 100_000
_ANSWER_KEYS = ("response", "formatted_response", "content", "answer", "output", "text", "message")
_ROLE_COLUMN = {"user": "user", "assistant": "assistant", "system": "system"}


class _Num(str):
    """A JSON number kept as its literal text."""


def _num(text: str) -> _Num:
    return _Num(text)


def loads(text: str) -> Any:
    return json.loads(text, parse_float=_num, parse_int=_num, parse_constant=_num)


def decode(value: Any) -> str:
    """Any SQLite value as text: bytes decode with U+FFFD, NUL becomes a space."""
    if value is None:
        return ""
    text = (
        value.decode("utf-8", "replace")
        if isinstance(value, bytes)
        else value
        if isinstance(value, str)
        else str(value)
    )
    return text.replace("\x00", " ") if "\x00" in text else text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


class _Fields:
    def __init__(self) -> None:
        self.parts: dict[str, list[str]] = {c: [] for c in COLUMNS}
        self.size: dict[str, int] = dict.fromkeys(COLUMNS, 0)
        self.roles: set[str] = set()
        self.tools: set[str] = set()
        self.errors: set[str] = set()

    def error(self, text: str) -> None:
        self.add("error", text)
        if len(self.errors) < 50:
            self.errors.add(normalise_error(text))

    def add(self, column: str, value: Any) -> None:
        room = FIELD_CAP - self.size[column]
        if room <= 0:
            return
        text = _text(value)
        if not text:
            return
        text = text[:room]
        self.parts[column].append(text)
        self.size[column] += len(text) + 1

    def message(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.add("other", raw)
            return
        role = _text(raw.get("role")) or "?"
        self.roles.add(role)
        self.add(_ROLE_COLUMN.get(role, "other"), raw.get("content"))

    def values(self) -> tuple[str, ...]:
        self.parts["role"] = [" ".join(sorted(self.roles))]
        return tuple("\n".join(self.parts[c])[:FIELD_CAP] for c in COLUMNS)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _step(fields: _Fields, raw: Any) -> None:
    if not isinstance(raw, dict):
        fields.add("io", raw)
        return
    for message in _list(raw.get("messages_added")):
        fields.message(message)
    for call in _list(raw.get("tool_calls")):
        if not isinstance(call, dict):
            fields.add("io", call)
            continue
        function: dict[str, Any] = fn if isinstance(fn := call.get("function"), dict) else {}
        name = _text(call.get("tool_name") or call.get("name") or function.get("name"))
        fields.add("tool", name)
        if name:
            fields.tools.add(name[:200])
        fields.add("io", call.get("arguments", call.get("args", function.get("arguments"))))
        fields.add("io", call.get("result"))
        if call.get("error"):
            fields.error(f"{name}: {_text(call['error'])}")
    step_input = raw.get("input")
    if isinstance(step_input, dict) and isinstance(step_input.get("messages"), list):
        for message in step_input["messages"]:
            fields.message(message)
    else:
        fields.add("io", step_input)
    output = raw.get("output")
    answer = None
    if isinstance(output, dict):
        answer = next(
            (output[k] for k in _ANSWER_KEYS if isinstance(output.get(k), str) and output[k].strip()), None
        )
    if answer is not None and isinstance(output, dict):
        fields.add("assistant", answer)
        rest = {k: v for k, v in output.items() if v is not answer}
        if rest:
            fields.add("io", rest)
    else:
        fields.add("io", output)
    if raw.get("error"):
        fields.error(_text(raw["error"]))


def extract(
    trace_id: Any, external_id: Any, input_preview: Any, output_preview: Any, steps: Any
) -> tuple[str, ...]:
    """The column values (in ``COLUMNS`` order) for one trace. Never raises."""
    return extract_all(trace_id, external_id, input_preview, output_preview, steps)[0]


def extract_all(trace_id: Any, external_id: Any, input_preview: Any, output_preview: Any,
                steps: Any) -> tuple[tuple[str, ...], list[str], list[str]]:
    """(column values, distinct tool names, distinct normalised error messages) of one trace."""
    fields = _Fields()

    def done() -> tuple[tuple[str, ...], list[str], list[str]]:
        return fields.values(), sorted(fields.tools), sorted(fields.errors)

    fields.add("ids", f"{decode(trace_id)} {decode(external_id)}")
    fields.add("input", decode(input_preview))
    fields.add("output", decode(output_preview))
    text = decode(steps)
    try:
        data = loads(text)
    except (ValueError, RecursionError):
        fields.add("io", text)
        return done()
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        data = data["steps"]
    if isinstance(data, list):
        for raw in data:
            try:
                _step(fields, raw)
            except RecursionError:
                fields.add("io", "")
    else:
        fields.add("io", text)
    return done()


_DIGITS = re.compile(r"\d+")
_HEX = re.compile(
    r"\b(?:0x)?[0-9a-f]{6,}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I
)
_IDS = re.compile(r"\b[a-z]+_[a-z0-9]*\d[a-z0-9]*\b", re.I)
_SPACE = re.compile(r"\s+")


def normalise_error(text: str, limit: int = 120) -> str:
    """An error message with its variable parts collapsed: ids → <id>, hex → <hex>, digits → N."""
    text = _HEX.sub("<hex>", text[:2000])
    text = _IDS.sub("<id>", text)
    text = _DIGITS.sub("N", text)
    return _SPACE.sub(" ", text).strip()[:limit]

