"""The one tolerant conversion for values read from a user's database.

SQLite does not enforce declared types: ``evals.accuracy`` may hold ``'high'``, ``traces.step_count``
``'many'``, ``jobs.started_at`` an integer, anything may be a BLOB or a NaN. Every numeric, boolean and
time field the app reads goes through these functions: a usable value comes back as its Python type,
anything else as ``None`` (for arithmetic) and, for display, :func:`marked` shows the raw value with a
visible ``⚠`` so the user sees what is really stored instead of a crash or a silent zero.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from iofold_tui.data.sanitize import one_line, to_str

MARK = "⚠"
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})
_INT64 = 2**63


def to_float(value: object) -> float | None:
    """A finite float, or None (NULL, text that is not a number, a BLOB, NaN, ±inf)."""
    if value is None or isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: object) -> int | None:
    """An integer (whole floats and numeric text accepted, fractions rounded), or None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isascii() and digits.isdigit() and len(text) < 20:  # '¹'.isdigit() is True, int('¹') fails
            return int(text)
    number = to_float(value)
    if number is None or abs(number) >= _INT64:
        return None
    return round(number)


def to_count(value: object) -> int:
    """A count for arithmetic: a non-negative integer, 0 for anything unusable."""
    number = to_int(value)
    return number if number is not None and number > 0 else 0


def to_bool(value: object) -> bool | None:
    """0/1 (and their usual spellings) as a bool, None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value in (0, 1):
            return bool(value)
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE and text:
            return False
    return None


def to_text(value: object) -> str:
    """Any value as text ('' for NULL, a BLOB as a hex preview): for ids, names and timestamps."""
    return to_str(value)


def to_timestamp(value: object) -> datetime | None:
    """An ISO-8601 / SQLite ``YYYY-MM-DD HH:MM:SS`` text, or a Unix time in seconds/ms, as an aware UTC
    datetime; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) > 1e11 else value  # milliseconds, as JavaScript writes them
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_valid(value: object, kind: str) -> bool:
    """Whether ``value`` converts cleanly as ``kind`` ('int', 'float', 'bool' or 'timestamp'); NULL is
    valid."""
    if value is None:
        return True
    convert = {"int": to_int, "float": to_float, "bool": to_bool, "timestamp": to_timestamp}[kind]
    return convert(value) is not None


def marked(value: object, width: int = 24) -> str:
    """The raw stored value as a visibly marked one-line text, e.g. ``⚠'many'`` or ``⚠<BLOB 2 bytes…>``."""
    return f"{MARK}{one_line(repr(value) if isinstance(value, str) else to_str(value), width)}"


def show_number(value: object, fmt: str = ",", kind: str = "int", *, null: str = "—") -> str:
    """``value`` formatted with ``fmt`` when it is a number of ``kind``, else marked raw (NULL → ``null``)."""
    if value is None:
        return null
    number = to_int(value) if kind == "int" else to_float(value)
    if number is None or (kind == "int" and isinstance(value, float) and not value.is_integer()):
        return marked(value)
    return format(number, fmt)


def show_time(value: object, *, null: str = "") -> str:
    """A timestamp as stored when it reads as one, else marked raw (a number is shown as its UTC time)."""
    if value is None:
        return null
    if isinstance(value, str) and to_timestamp(value) is not None:
        return one_line(value, 40)
    parsed = to_timestamp(value)
    if parsed is not None and isinstance(value, int | float):
        return f"{parsed:%Y-%m-%d %H:%M:%S}{MARK}"
    return marked(value)


def execution_state(result: object, error: object) -> str:
    """An ``eval_executions`` row's state, the one rule everywhere (stats, grid, verdicts): ``error``
    when an error is stored, else ``pass``/``fail`` for a result of 1/0, else ``invalid`` (2, -1, NULL,
    'true', a BLOB): neither pass nor fail, left out of every count with that reason."""
    if error is not None:
        return "error"
    if isinstance(result, int | float) and result in (0, 1):
        return "pass" if result == 1 else "fail"
    return "invalid"
