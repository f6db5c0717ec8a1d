"""The only way data reaches the screen: sanitised, as ``Text`` (never parsed as markup)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from iofold_tui.data.sanitize import DEFAULT_LIMIT, clean, one_line

if TYPE_CHECKING:
    from rich.syntax import Syntax

RATING_STYLE = {"positive": "bold green", "negative": "bold red", "neutral": "yellow"}
RATING_SYMBOL = {"positive": "✓ pos", "negative": "✗ neg", "neutral": "○ neu", None: "· —"}


def safe(value: object, style: str = "", limit: int | None = DEFAULT_LIMIT) -> Text:
    """Multi-line untrusted text."""
    return Text(clean(value, limit), style=style, no_wrap=False)


def cell(value: object, width: int | None = 120, style: str = "") -> Text:
    """Single-line untrusted text for a table cell."""
    return Text(one_line(value, width), style=style, no_wrap=True, overflow="ellipsis")


def rating_label(rating: object) -> str:
    """A rating in words: one of the three in capitals, anything else stored there visibly marked."""
    if rating in RATING_STYLE:
        return str(rating).upper()
    if rating is None:
        return "⚠ NULL (not a rating)"
    return f"⚠ {one_line(repr(rating) if isinstance(rating, str) else rating, 20)} (not a rating)"


def rating_text(rating: str | None) -> Text:
    symbol = RATING_SYMBOL.get(rating, f"? {one_line(rating, 10)}")
    return Text(symbol, style=RATING_STYLE.get(rating or "", "dim"))


def code(source: object, language: str = "python", *, line_numbers: bool = True, start_line: int = 1,
         word_wrap: bool = False) -> Syntax:
    """Pygments-highlighted code (through rich's Syntax); control characters made visible first."""
    from rich.syntax import Syntax  # pygments costs ~40 ms at start-up: load it when code is first shown
    return Syntax(clean(source, limit=None), language, line_numbers=line_numbers, start_line=start_line,
                  word_wrap=word_wrap, theme="monokai", background_color="default")
