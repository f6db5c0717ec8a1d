"""The search query language, parsed and validated here (raw user text never reaches FTS5 MATCH).

    refund                 a word (case- and accent-insensitive, whole token)
    refund timeout         both words (implicit AND)
    "charged twice"        a phrase
    refu*                  a prefix
    a OR b, a AND b, NOT a, -a, ( … )
    tool:search_docs       a field: tool, error, role, user, assistant, system, other, msg (any
                           message), io/args/result (tool arguments and results), input, output,
                           preview, id
    assistant:"sorry"      a field with a phrase

Compiled to (1) an FTS5 MATCH string in which every term is a quoted string, and (2) a LIKE prefilter
for the scan: a SQL condition that is true for every trace that can match (a superset), so the scan
only has to extract and check those rows.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Union

from iofold_tui.data.search.extract import FIELDS


class SearchSyntaxError(ValueError):
    """A query that cannot be searched; the message says why (shown as is, never a traceback)."""


@dataclass(frozen=True)
class Term:
    text: str
    columns: tuple[str, ...] | None = None  # None: every column
    prefix: bool = False
    phrase: bool = False


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Union[Term, And, Or, Not]  # noqa: UP007 - a runtime alias (3.11 can't `|` forward refs)

MAX_QUERY = 2_000
MAX_TERMS = 64
# unicode61 token characters: letters, digits, and (conservatively here) every non-ASCII character.
_TOKEN = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
_OPS = {"AND", "OR", "NOT"}


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _has_token(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co" for ch in text)


# ---------------------------------------------------------------- lexer / parser

@dataclass
class _Tok:
    kind: str  # word, phrase, op, lparen, rparen, minus
    value: str = ""
    field: tuple[str, ...] | None = None
    prefix: bool = False


def _lex(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)
    pending_field: tuple[str, ...] | None = None
    while i < n:
        ch = text[i]
        if ch.isspace():
            if pending_field is not None:
                raise SearchSyntaxError(
                    "a field name needs a term right after the colon, e.g. tool:search_docs"
                )
            i += 1
            continue
        if ch in "()":
            if pending_field is not None:
                raise SearchSyntaxError(
                    "a field name needs a term right after the colon, e.g. tool:search_docs"
                )
            out.append(_Tok("lparen" if ch == "(" else "rparen"))
            i += 1
            continue
        if ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise SearchSyntaxError('unclosed quote: a phrase needs a closing "')
            prefix = end + 1 < n and text[end + 1] == "*"
            out.append(_Tok("phrase", text[i + 1:end], pending_field, prefix))
            pending_field = None
            i = end + 1 + prefix
            continue
        if (
            ch == "-"
            and pending_field is None
            and (not out or out[-1].kind != "minus")
            and i + 1 < n
            and not text[i + 1].isspace()
        ):
            out.append(_Tok("minus"))
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in '()"':
            j += 1
        word = text[i:j]
        i = j
        if pending_field is None and word in _OPS:
            out.append(_Tok("op", word))
            continue
        if pending_field is None and ":" in word:
            name, _, rest = word.partition(":")
            if name.lower() in FIELDS and not rest.startswith("//"):
                pending_field = FIELDS[name.lower()]
                if not rest:
                    if i < n and text[i] == '"':
                        continue
                    raise SearchSyntaxError(
                        f"{name}: needs a term right after the colon, e.g. {name}:timeout"
                    )
                word = rest
            elif name and name.isalpha() and rest and not rest.startswith("//"):
                known = ", ".join(sorted(FIELDS))
                raise SearchSyntaxError(f"unknown field {name!r}: use one of {known}")
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if "*" in word:
            raise SearchSyntaxError(f"{word}*: '*' is only allowed at the end of a word (a prefix)")
        out.append(_Tok("word", word, pending_field, prefix))
        pending_field = None
    if pending_field is not None:
        raise SearchSyntaxError("a field name needs a term right after the colon")
    return out


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.pos = 0
        self.terms = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise SearchSyntaxError("empty query")
        node = self.or_expr()
        if self.peek() is not None:
            tok = self.peek()
            raise SearchSyntaxError(
                "unbalanced ')'" if tok and tok.kind == "rparen" else "unexpected text in the query"
            )
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.value == "OR":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.unary()]
        while (tok := self.peek()) is not None and not (
            tok.kind == "rparen" or (tok.kind == "op" and tok.value == "OR")
        ):
            if tok.kind == "op" and tok.value == "AND":
                self.take()
            children.append(self.unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise SearchSyntaxError("the query ends where a term was expected")
        if tok.kind == "minus" or (tok.kind == "op" and tok.value == "NOT"):
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.take() if self.peek() is not None else None
        if tok is None:
            raise SearchSyntaxError("the query ends where a term was expected")
        if tok.kind == "lparen":
            if (nxt := self.peek()) is not None and nxt.kind == "rparen":
                raise SearchSyntaxError("empty parentheses")
            node = self.or_expr()
            if (nxt := self.peek()) is None or nxt.kind != "rparen":
                raise SearchSyntaxError("unclosed '(': add a ')'")
            self.take()
            return node
        if tok.kind == "rparen":
            raise SearchSyntaxError("unbalanced ')'")
        if tok.kind == "op":
            raise SearchSyntaxError(f"{tok.value} needs a term on both sides")
        if not _has_token(tok.value):
            shown = tok.value or '""'
            raise SearchSyntaxError(f"{shown}: no letters or digits to search for")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise SearchSyntaxError(f"too many terms (at most {MAX_TERMS})")
        return Term(tok.value, tok.field, tok.prefix, tok.kind == "phrase")


def parse(text: str) -> Node:
    """The query's syntax tree; SearchSyntaxError says what is wrong."""
    if len(text) > MAX_QUERY:
        raise SearchSyntaxError(f"query too long (at most {MAX_QUERY:,} characters)")
    # NUL ends a C string and a lone surrogate cannot be encoded: both become separators, as in extract.
    text = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    node = _Parser(_lex(text)).parse()
    _check_negation(node)
    return node


def _check_negation(node: Node) -> None:
    """FTS5's NOT is binary: every AND group (and the query) needs a term that is not negated."""
    if isinstance(node, Not):
        raise SearchSyntaxError("NOT needs something to subtract from, e.g. refund NOT timeout")
    if isinstance(node, Or):
        for child in node.children:
            _check_negation(child)
    elif isinstance(node, And):
        positives = [c for c in node.children if not isinstance(c, Not)]
        if not positives:
            raise SearchSyntaxError("NOT needs something to subtract from, e.g. refund NOT timeout")
        for child in positives:
            _check_negation(child)
        for child in node.children:
            if isinstance(child, Not):
                inner = child.child
                while isinstance(inner, Not):  # NOT NOT x: keep it simple and explicit
                    raise SearchSyntaxError("double negation: remove one NOT")
                _check_negation(inner)


# ---------------------------------------------------------------- FTS5 MATCH

def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_match(node: Node) -> str:
    """The FTS5 MATCH expression: every term a quoted string, every group parenthesised."""
    if isinstance(node, Term):
        body = _quote(node.text) + (" *" if node.prefix else "")
        if node.columns:
            cols = node.columns[0] if len(node.columns) == 1 else "{" + " ".join(node.columns) + "}"
            return f"{cols} : {body}"
        return body
    if isinstance(node, Or):
        return "(" + " OR ".join(to_match(c) for c in node.children) + ")"
    if isinstance(node, And):
        pos = [to_match(c) for c in node.children if not isinstance(c, Not)]
        neg = [to_match(c.child) for c in node.children if isinstance(c, Not)]
        out = "(" + " AND ".join(pos) + ")"
        if neg:
            out += " NOT (" + " OR ".join(neg) + ")"
        return "(" + out + ")"
    raise SearchSyntaxError("NOT needs something to subtract from")


def compile_query(text: str) -> str:
    return to_match(parse(text))


def terms(node: Node) -> list[Term]:
    """The positive terms (for highlighting)."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for c in node.children for t in terms(c)]


# ---------------------------------------------------------------- LIKE prefilter for the scan

# The columns the prefilter reads (the raw values extract() gets).
HAYSTACK = ("t.id", "t.trace_id", "t.input_preview", "t.output_preview", "t.steps")


def _term_filter(term: Term) -> str | None:
    parts = []
    for tok in tokens(term.text):
        if not tok.isascii():
            return None  # accent folding may map it to ASCII: no cheap superset, verify every row
        parts.append("(" + " OR ".join(f"{col} LIKE '%{tok}%'" for col in HAYSTACK) + ")")
    return " AND ".join(parts) if parts else None


def _filter(node: Node) -> str | None:
    if isinstance(node, Term):
        return _term_filter(node)
    if isinstance(node, Not):
        return None
    subs = [_filter(c) for c in node.children]
    if isinstance(node, And):
        kept = [s for s in subs if s is not None]
        return "(" + " AND ".join(kept) + ")" if kept else None
    if any(s is None for s in subs):
        return None
    return "(" + " OR ".join(s for s in subs if s) + ")"


# A row the LIKE terms cannot judge exactly is always extracted and checked: any non-ASCII character
# (accent and case folding; its UTF-8 byte length then differs from its character length), a NUL
# (length() and LIKE stop at it, so the lengths differ too), a BLOB value, or a \u escape in the JSON.
NEEDS_CHECK = "(" + " OR ".join(
    [f"length(CAST({col} AS BLOB)) <> length({col}) OR typeof({col}) = 'blob'" for col in HAYSTACK]
    + ["instr(t.steps, '\\u') > 0"]
) + ")"


def prefilter(node: Node) -> str | None:
    """A SQL condition over ``traces t`` true for every trace that can match (tokens are ASCII letters
    and digits only, so they are inlined safely); None = no cheap restriction."""
    cond = _filter(node)
    return None if cond is None else f"({cond} OR {NEEDS_CHECK})"
