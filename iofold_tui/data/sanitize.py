"""The one sanitiser every piece of untrusted text passes through before it is shown.

Trace text is hostile: ANSI escapes, control characters, bidi overrides and multi-MB values. We never
strip silently: ESC becomes the visible ``␛``, other C0/C1 controls their Unicode "control picture",
so a user sees that something odd is in their data. Markup is not a concern here because the UI only
ever renders the result as plain ``Text``/``Content`` (never parsed as markup).
"""

from __future__ import annotations

import json

# Characters that reorder or hide text on a terminal: shown as ⟨U+XXXX⟩.
_INVISIBLE = {0x200B, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _build_table(keep_newlines: bool) -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x20):
        table[code] = chr(0x2400 + code)  # ␀ ␁ ... ␛ ... ␟
    table[0x7F] = "␡"
    for code in range(0x80, 0xA0):
        table[code] = f"⟨U+{code:04X}⟩"
    for code in _INVISIBLE:
        table[code] = f"⟨U+{code:04X}⟩"
    table[0x09] = "    "  # tabs expand unpredictably in cells
    if keep_newlines:
        table[0x0A] = "\n"
        table[0x0D] = "␍"
    else:
        table[0x0A] = "⏎"
        table[0x0D] = ""
    return table


_MULTILINE = _build_table(keep_newlines=True)
_ONE_LINE = _build_table(keep_newlines=False)
DEFAULT_LIMIT = 200_000


def to_str(value: object) -> str:
    """Any database value as text: bytes as a hex preview, JSON-able containers as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        head = raw[:32].hex(" ")
        return f"<BLOB {len(raw)} bytes: {head}{' …' if len(raw) > 32 else ''}>"
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return repr(value)
    return str(value)


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def clean(value: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """Multi-line safe text: newlines kept, every other control character made visible."""
    text = _truncate(to_str(value), limit)
    return text.translate(_MULTILINE)


def one_line(value: object, width: int | None = 200) -> str:
    """Single-line safe text for table cells: newlines shown as ⏎, truncated to ``width`` characters."""
    text = to_str(value)
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text.translate(_ONE_LINE)
