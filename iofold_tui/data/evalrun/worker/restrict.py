"""The eval's builtins and imports (the first Python layer of the worker, under the OS layers of ``confine``).

  1. a minimal builtins dict whose ``__import__`` hands out only the *proxies* of the allowed modules
     (``proxies``), never a real module;
  2. a getattr family that refuses ``_`` names and frame attributes.

The audit hook is ``audit``'s. Stdlib only and importing no sibling: the app imports this module too (the
name tables for its static check, ``compile_eval``), the worker before any eval code exists.
"""

from __future__ import annotations

import ast
import builtins
import re
import types
import typing

# The eval's code is compiled with its line numbers moved this far: any traceback line at or above it is
# the eval's own, so the worker never needs the (audited) frame of a traceback to report a line.
LINE_OFFSET = 10_000_000


def compile_eval(code: str) -> types.CodeType:
    """The eval's module code object: ``dont_inherit`` (no ``__future__`` flags of the compiling file),
    lines moved by LINE_OFFSET. Compiled once by the app and sent to each worker (marshal; app -> worker
    is the trusted direction), so no worker spends its start-up deadline compiling."""
    tree = ast.parse(code, "<eval>")
    ast.increment_lineno(tree, LINE_OFFSET)
    return compile(tree, "<eval>", "exec", dont_inherit=True)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED_MODULES = _names(
    "json re typing math datetime difflib collections collections.abc itertools functools string "
    "statistics enum dataclasses __future__"
)
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
# namedtuple's public API starts with "_"; every other "_" name is refused, but for a few harmless dunders.
UNDERSCORE_OK = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})
SAFE_DUNDERS = frozenset({"__name__", "__qualname__", "__class__", "__doc__", "__init__", "__module__"})
FRAME_ATTRS = _names(
    "gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await cr_origin ag_frame ag_code ag_await "
    "f_back f_globals f_locals f_builtins f_code f_trace tb_frame tb_next func_globals"
)
_SAFE_BUILTINS = _names(
    "abs all any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod "
    "enumerate filter float format frozenset hash hex id int isinstance issubclass iter len list map "
    "max min next object oct ord pow print property range repr reversed round set slice sorted "
    "staticmethod str sum super tuple type zip Ellipsis NotImplemented __build_class__"
)
# Modules the allowed modules' C code imports for itself through the *caller's* ``__import__`` (the eval's,
# when the eval calls the C function directly: ``datetime.strftime``, ``f"{d:%Y}"``, ``timetuple`` import
# ``time``). That C code takes the real module from sys.modules and ignores what ``__import__`` returns, so
# the eval is handed an empty stand-in: the call works and no real module reaches the eval.
_C_SELF_IMPORTS = frozenset({"time"})

DUNDER = re.compile(r"__\w+__")


def refused(name: object) -> bool:
    return type(name) is not str or (
        (name.startswith("_") and name not in UNDERSCORE_OK and name not in SAFE_DUNDERS)
        or name in FRAME_ATTRS
    )


def safe_getattr(obj: object, name: str, *default: object) -> object:
    if refused(name):
        raise AttributeError(f"access to attribute {name!r} is not allowed in an eval")
    return getattr(obj, name, *default)


def safe_hasattr(obj: object, name: str) -> bool:
    # Only a bool comes back, so duck-typing checks like ``hasattr(x, "__iter__")`` are fine; private and
    # frame names stay refused like everywhere else.
    if refused(name) and not (type(name) is str and DUNDER.fullmatch(name)):
        raise AttributeError(f"access to attribute {name!r} is not allowed in an eval")
    return hasattr(obj, name)


def safe_setattr(obj: object, name: str, value: object) -> None:
    if refused(name) or name in SAFE_DUNDERS:
        raise AttributeError(f"setting attribute {name!r} is not allowed in an eval")
    setattr(obj, name, value)


def safe_delattr(obj: object, name: str) -> None:
    if refused(name) or name in SAFE_DUNDERS:
        raise AttributeError(f"deleting attribute {name!r} is not allowed in an eval")
    delattr(obj, name)


def _make_import(proxies: dict[str, types.ModuleType]) -> typing.Callable[..., types.ModuleType]:
    def restricted_import(
        name: str, globals: object = None, locals: object = None, fromlist: object = (), level: int = 0
    ) -> types.ModuleType:
        if level != 0:
            raise ImportError("relative imports are not allowed in an eval")
        if name in _C_SELF_IMPORTS:
            return types.ModuleType(f"{name} (not available in an eval)")
        if name not in proxies:
            raise ImportError(f"{name} is not allowed (allowed: {_ALLOWED_TEXT})")
        return proxies[name] if fromlist else proxies[name.partition(".")[0]]

    return restricted_import


def safe_builtins(proxies: dict[str, types.ModuleType]) -> dict[str, object]:
    """The eval's ``__builtins__``: ``proxies`` (``proxies.build_proxies()``) are all it can import."""
    table: dict[str, object] = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
    for name, value in vars(builtins).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            table[name] = value
    table.update(
        getattr=safe_getattr,
        hasattr=safe_hasattr,
        setattr=safe_setattr,
        delattr=safe_delattr,
        __import__=_make_import(proxies),
    )
    return table
