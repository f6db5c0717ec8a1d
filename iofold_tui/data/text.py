"""Words for counts: ``plural(1, "eval")`` is "1 eval", ``plural(2, "eval")`` "2 evals"."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` with thousands separators and the noun in the right number ("1 step", "1,525 steps",
    ``plural(n, "match", "matches")``)."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"
