"""The static (AST) check of an eval's code: the first of the sandbox's Python layers, and the checker the
eval editor runs as you type. ``analyse`` returns the function to call and the problems as ``line N: ...``.

It refuses imports outside the allowed modules, dunder and frame attributes (but a few harmless dunders),
class patterns that read hidden attributes, metaclasses, and builtins that are absent on purpose. It is
defence in depth: the boundary is the operating system (see ``sandbox`` and ``worker/confine.py``).
"""

from __future__ import annotations

import ast
import re
import string

from iofold_tui.data.evalrun.worker.restrict import ALLOWED_MODULES, FRAME_ATTRS, SAFE_DUNDERS, UNDERSCORE_OK


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
MAX_CODE_CHARS = 1_000_000
# Builtins that are absent from the sandbox on purpose; flagged only when the code never binds the name
# itself (``input = step["input"]`` is fine).
_FORBIDDEN_NAMES = _names("eval exec compile open globals locals vars breakpoint input help exit quit")
# Module-level dunder names an eval may use; the rest (__builtins__, __import__, __loader__ ...) are refused.
_ALLOWED_DUNDER_NAMES = _names(
    "__name__ __slots__ __doc__ __qualname__ __all__ __version__ __author__ __module__"
)
# A class pattern with positional sub-patterns reads the attributes ``__match_args__`` names, which the
# eval can set to anything: only the builtins that match themselves may take one.
_SELF_MATCHING = _names("bool bytearray bytes dict float frozenset int list set str tuple")
_DUNDER = re.compile(r"__\w+__")
_FIELD_ATTR = re.compile(r"\.\s*(\w+)")


def _attr_problem(attr: str, owner: ast.expr) -> str | None:
    if attr in SAFE_DUNDERS:
        return None
    if _DUNDER.fullmatch(attr):
        return f"attribute {attr!r} is not allowed"
    if attr in FRAME_ATTRS:
        return f"attribute {attr!r} is not allowed (frame access)"
    if attr.startswith("_") and attr not in UNDERSCORE_OK:
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            return None
        return f"private attribute {attr!r} is not allowed (only on self/cls)"
    return None


def _format_problem(template: str) -> str | None:
    """``"{0.__class__}".format(x)`` walks attributes at run time: check literal templates here.

    A template built at run time is not checked; string formatting can only *read* a repr, never call,
    so the worst it can do is show an internal object's repr inside the worker (which holds no secrets).
    """
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return None  # malformed: fails at run time with a clear ValueError
    for _, field, spec, _ in fields:
        for attr in _FIELD_ATTR.findall(field or ""):
            if attr.startswith("_") or attr in FRAME_ATTRS:
                return f"format field {field!r} reaches a private attribute"
        if spec and "{" in spec and (problem := _format_problem(spec)):
            return problem
    return None


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _class_attributes(tree: ast.AST) -> set[int]:
    """The names a class body assigns (``__hash__ = None``, ``__getattr__ = dict.get``): a dunder there is
    a class attribute, which ``type(name, bases, {...})`` may set anyway."""
    found: set[int] = set()
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            for stmt in cls.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                    [stmt.target] if isinstance(stmt, ast.AnnAssign) else [])
                found.update(id(target) for target in targets if isinstance(target, ast.Name))
    return found


def _node_problem(node: ast.AST, bound: set[str], class_attributes: frozenset[int] | set[int] = frozenset()
                  ) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                return f"ImportError: {alias.name} is not allowed (allowed: {_ALLOWED_TEXT})"
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            return "ImportError: relative imports are not allowed"
        if node.module not in ALLOWED_MODULES:
            return f"ImportError: {node.module} is not allowed (allowed: {_ALLOWED_TEXT})"
        for alias in node.names:
            if alias.name.startswith("_"):
                return f"ImportError: {node.module}.{alias.name} is private"
    elif isinstance(node, ast.Name):
        if (
            _DUNDER.fullmatch(node.id) and node.id not in _ALLOWED_DUNDER_NAMES
            and id(node) not in class_attributes
        ):
            return f"name {node.id!r} is not allowed"
        if node.id in _FORBIDDEN_NAMES and node.id not in bound and isinstance(node.ctx, ast.Load):
            return f"{node.id}() is not available in an eval"
    elif isinstance(node, ast.Attribute):
        if problem := _attr_problem(node.attr, node.value):
            return problem
        if (
            node.attr in ("format", "format_map")
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return _format_problem(node.value.value)
    elif isinstance(node, ast.ClassDef):
        if any(keyword.arg == "metaclass" for keyword in node.keywords):
            return "metaclasses are not allowed"
    elif isinstance(node, ast.MatchClass):
        for attr in node.kwd_attrs:
            if problem := _attr_problem(attr, ast.Name("?")):
                return f"class pattern: {problem}"
        if node.patterns and not (
            isinstance(node.cls, ast.Name) and node.cls.id in _SELF_MATCHING and len(node.patterns) == 1
        ):
            return "class patterns with positional sub-patterns are not allowed (use keyword=... patterns)"
    elif isinstance(node, ast.Call):
        # getattr(x, "__class__") with a literal name is the same as x.__class__.
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id in ("getattr", "setattr", "delattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            if func.id == "hasattr" and _DUNDER.fullmatch(node.args[1].value):
                return None  # a bool only: ``hasattr(x, "__iter__")`` is ordinary duck typing
            return _attr_problem(node.args[1].value, ast.Name("?"))
    return None


def analyse(code: str, name: str | None = None) -> tuple[str | None, list[str]]:
    """(the function to call, problems). Problems read ``line N: ...``; [] when the code may run."""
    if len(code) > MAX_CODE_CHARS:
        return None, [f"the code is too long ({len(code):,} characters; at most {MAX_CODE_CHARS:,})"]
    try:
        tree = ast.parse(code, "<eval>")
    except SyntaxError as exc:
        return None, [f"line {exc.lineno}: SyntaxError: {exc.msg}"]
    except (RecursionError, MemoryError, ValueError) as exc:
        return None, [f"the code cannot be parsed: {type(exc).__name__}"]
    problems: list[str] = []
    bound = _bound_names(tree)
    class_attributes = _class_attributes(tree)
    for node in ast.walk(tree):
        problem = _node_problem(node, bound, class_attributes)
        if problem:
            entry = f"line {getattr(node, 'lineno', '?')}: {problem}"
            if entry not in problems:
                problems.append(entry)
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    func = name if name in functions else (functions[-1] if functions else None)
    if func is None:
        problems.append("no top-level function found: expected `def <name>(trace): ...`")
    problems.sort(key=lambda text: int(m.group(1)) if (m := re.match(r"line (\d+)", text)) else 0)
    return func, problems


def check_code(code: str, name: str | None = None) -> list[str]:
    """Static (AST) problems of an eval's code; [] when it may run."""
    return analyse(code, name)[1]
