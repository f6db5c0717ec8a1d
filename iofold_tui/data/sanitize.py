"""The one sanitiser every piece of untrusted text passes through before it is shown.

Trace text is hostile: ANSI escapes, control characters, bidi overrides and multi-MB values. We never
strip silently: ESC becomes the visible ``␛``, other C0/C1 controls their Unicode "control picture",
so a user sees that something odd is in their data. Markup is not a concern here because the UI only
ever renders the result as plain ``Text``/``Content`` (never parsed as markup).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator

# Characters that reorder, hide or control text on a terminal, all shown as ⟨U+XXXX⟩: every code point
# of Unicode's Cc (controls), Cf (format: bidi embeddings/overrides/isolates, U+061C, zero-width space
# and joiners, BOM, soft hyphen, tag characters …), Zl/Zp (line/paragraph separators) and Cs (lone
# surrogates, which a terminal cannot even encode). Format characters live in planes 0, 1 and 14 only.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_PLANES = (range(0x0000, 0x20000), range(0xE0000, 0xE1000))
# ⟨\xFF⟩ is how the connection's decoder (data/db.py) shows a byte that is not UTF-8; a string decoded
# with ``surrogateescape`` carries the same bytes as U+DC80..U+DCFF and gets the same marker.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
_EMOJI = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF"
# A zero-width joiner inside an emoji sequence (👩‍👩‍👧) is what makes it one picture: kept.
_EMOJI_ZWJ = re.compile(f"(?<=[{_EMOJI}\uFE0F])⟨U\\+200D⟩(?=[{_EMOJI}])")


def hidden_code_points() -> Iterator[int]:
    """Every code point the sanitiser makes visible (besides tab and newline, which it lays out)."""
    category = unicodedata.category
    for plane in _PLANES:
        for start in range(plane.start, plane.stop, 1024):
            if 0xD800 <= start < 0xE000:
                continue  # the surrogates, below
            chars = "".join(map(chr, range(start, start + 1024)))
            if not chars.isprintable():  # most blocks hold no Cc/Cf/Z*: skipped in one C call
                yield from (start + i for i, ch in enumerate(chars) if category(ch) in _HIDDEN_CATEGORIES)
    yield from range(0xD800, 0xE000)


def _marker(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ ␁ ... ␛ ... ␟
    if code == 0x7F:
        return "␡"
    if code in _ESCAPED_BYTES:
        return f"⟨\\x{code - 0xDC00:02X}⟩"
    return f"⟨U+{code:04X}⟩"


# hidden_code_points() for Unicode 14.0 (Python 3.11) as ranges: scanning the planes at import cost ~20 ms of
# every launch. Another Unicode version computes its own; tests/test_hostile_values.py checks these equal.
_BAKED_RANGES = {
    "14.0.0": (
        (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
        (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
        (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
        (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
        (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
    ),
}


def _hidden() -> tuple[int, ...]:
    baked = _BAKED_RANGES.get(unicodedata.unidata_version)
    if baked is None:
        return tuple(hidden_code_points())
    return tuple(code for start, stop in baked for code in range(start, stop + 1))


_HIDDEN = _hidden()


def _build_table(keep_newlines: bool) -> dict[int, str]:
    table = {code: _marker(code) for code in _HIDDEN}
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
    return _visible(text, _MULTILINE)


def one_line(value: object, width: int | None = 200) -> str:
    """Single-line safe text for table cells: newlines shown as ⏎, truncated to ``width`` characters."""
    text = to_str(value)
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return _visible(text, _ONE_LINE)


def _visible(text: str, table: dict[int, str]) -> str:
    if text.isascii() and text.isprintable():
        return text  # the common case, without a per-character pass
    out = text.translate(table)
    if "⟨U+200D⟩" in out:
        out = _EMOJI_ZWJ.sub("\u200d", out)
    return out


def _json_escape(code: int) -> str:
    if code > 0xFFFF:  # JSON escapes are UTF-16: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


_JSON_ESCAPES = {code: _json_escape(code) for code in _HIDDEN if code >= 0x7F}


def json_text(value: object, *, indent: int | None = 2) -> str:
    """JSON for a terminal or a pipe: readable non-ASCII text, but every control, format, bidi and
    separator character (and any lone surrogate) escaped as ``\\uXXXX``, so the output can neither
    drive the terminal nor hide or reorder text, and always encodes as UTF-8."""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=to_str).translate(_JSON_ESCAPES)
