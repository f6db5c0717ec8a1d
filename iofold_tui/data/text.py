"""Small wording helpers shared by the CLI and the UI (no textual/rich here)."""

from __future__ import annotations


def plural(n: int, noun: str, plural_noun: str | None = None) -> str:
    """``plural(1, "label change")`` → "1 label change"; ``plural(1500, "step")`` → "1,500 steps".

    The last word gets an "s" (or "es" after s/x/z/ch/sh) unless ``plural_noun`` is given."""
    if n == 1:
        return f"1 {noun}"
    if plural_noun is None:
        plural_noun = noun + ("es" if noun.endswith(("s", "x", "z", "ch", "sh")) else "s")
    return f"{n:,} {plural_noun}"
