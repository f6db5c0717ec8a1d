"""What a preview says: a message-list ``input_preview`` (a JSON array of chat messages, as some
integrations store it) reads as its last user message, not as raw JSON.

Previews are cut (by iofold, and at 400 characters by the list's query), so the JSON is often
truncated: the last ``"role": "user"`` message's ``content`` is then read up to where the text stops.
"""

from __future__ import annotations

import json
import re
from typing import Any

_USER = re.compile(r'"role"\s*:\s*"user"')
_CONTENT = re.compile(r'"(?:content|text)"\s*:\s*"((?:[^"\\]|\\.)*)("?)', re.S)


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "..."}, ...]
        parts = [text for p in content if isinstance(p, dict) and isinstance(text := p.get("text"), str)]
        return " ".join(parts) if parts else None
    return None


def _unescape(body: str) -> str:
    for cut in range(4):  # a cut inside an escape sequence: drop its tail
        try:
            return str(json.loads('"' + body[:len(body) - cut] + '"'))
        except ValueError:
            continue
    return body


def preview_text(value: object) -> str:
    """``value`` as a human reads it: the last user message of a message list, else unchanged."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    head = value.lstrip()
    if not head.startswith("[") or '"role"' not in head[:200]:
        return value
    try:
        messages = json.loads(head)
    except ValueError:
        messages = None
    if isinstance(messages, list):
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        for message in reversed(users):
            text = _content_text(message.get("content"))
            if text is not None:
                return text
        return value
    found = list(_USER.finditer(head))  # truncated JSON: the last user message as far as it goes
    if not found:
        return value
    for start in (m.end() for m in reversed(found)):
        content = _CONTENT.search(head, start)
        if content is not None:
            text = _unescape(content.group(1))
            return text if content.group(2) else text + "…"
    return value
