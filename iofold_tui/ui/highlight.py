"""Matches of the active full-text query highlighted in already-sanitised ``Text`` (trace view, review).

Only styles are added to the Text: the characters are the sanitiser's, nothing is parsed as markup. A
term matches where the index's tokenizer would: whole tokens (letters and digits; ``search_docs`` is the
phrase "search docs"), case-insensitive, the last token open-ended for a ``prefix*``. Accent folding is
not reproduced (an accented match the index found may stay unhighlighted).
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.text import Text

from iofold_tui.data.search.query import SearchSyntaxError, parse, terms, tokens
from iofold_tui.data.search.scan import compile_regex

STYLE = "bold black on yellow"
_TOK = "0-9A-Za-z\u0080-\U0010ffff"


@lru_cache(maxsize=32)
def pattern(query: str) -> re.Pattern[str] | None:
    """One regex for the positive terms of ``query`` (None: nothing to highlight or not a valid query)."""
    if not query.strip():
        return None
    if query.startswith("re:"):  # the trace list's regex mode: the same case-insensitive regex
        try:
            return compile_regex(query[3:])
        except SearchSyntaxError:
            return None
    try:
        found = terms(parse(query))
    except SearchSyntaxError:
        return None
    alternatives = []
    for term in found:
        toks = tokens(term.text)
        if not toks:
            continue
        body = f"[^{_TOK}]+".join(re.escape(t) for t in toks)
        tail = f"[{_TOK}]*" if term.prefix else f"(?![{_TOK}])"
        alternatives.append(f"(?<![{_TOK}]){body}{tail}")
    if not alternatives:
        return None
    # longest first, so a phrase wins over one of its words
    alternatives.sort(key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def highlight(text: Text, query: str) -> Text:
    """``text`` with the matches of ``query`` styled (in place; returned for chaining)."""
    compiled = pattern(query)
    if compiled is not None and text.plain:
        text.highlight_regex(compiled, STYLE)
    return text


def count(text: Text, query: str) -> int:
    compiled = pattern(query)
    return 0 if compiled is None else sum(1 for _ in compiled.finditer(text.plain))


def active_query(state: object) -> str:
    """The full-text query the trace list is filtered by ('' when none: a facet's rowid set has a
    step_text but no query)."""
    query = getattr(state, "search_query", "")
    flt = getattr(state, "trace_filter", None)
    return query if query and flt is not None and query == flt.step_text else ""


def _raw(value: object, limit: int = 20_000) -> str:
    return value[:limit] if isinstance(value, str) else repr(value)[:limit]


def step_matches(step: object, query: str) -> bool:
    """The step (or tool call) has a match of ``query`` in its title, messages, tool calls, input, output
    or error (raw values, not rendered: marking the steps tree stays cheap for 500 steps)."""
    compiled = pattern(query)
    if compiled is None:
        return False
    parts: list[str] = [_raw(getattr(step, "title", "")), _raw(getattr(step, "name", ""))]
    parts += [_raw(m.content) for m in getattr(step, "messages", [])]
    calls = getattr(step, "tool_calls", None)
    for call in calls if calls is not None else [step]:
        parts += [_raw(getattr(call, "name", "")), _raw(getattr(call, "arguments", "")),
                  _raw(getattr(call, "result", "")), _raw(getattr(call, "error", ""))]
    for name in ("input", "output", "error"):
        value = getattr(step, name, None)
        if value is not None:
            parts.append(_raw(value))
    return any(compiled.search(p) for p in parts if p)
