"""The Python layers of the sandbox worker (defence in depth under the OS layers of ``confine``).

  1. a minimal builtins dict and a restricted ``__import__`` handing out *proxies* of the allowed modules:
     public, non-module attributes only, and a ``__name__`` that names no real module, so ``from json
     import decoder`` cannot fall back to ``sys.modules["json.decoder"]``;
  2. a getattr family that refuses ``_`` names and frame attributes;
  3. an allow-list audit hook installed at lockdown and never switched off: it has no on/off state the
     eval could reach, and the worker never needs to relax it (tracebacks are read by line number only).

Stdlib only; imported by ``main`` before any eval code exists.
"""

from __future__ import annotations

import ast
import builtins
import collections
import dataclasses
import enum
import functools
import importlib
import keyword
import re
import sys
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
# Attributes a proxy leaves out although they are public: they hand out objects by attribute name.
# enum.global_enum writes a class's members into ``sys.modules[cls.__module__]``, and ``__module__`` is the
# eval's to choose: the worker's own modules (the audit hook's tables) included.
_HIDDEN = {"string": {"Formatter"}, "enum": {"global_enum"}}
# Audit events that pure computation in the allowed modules raises; everything else is refused.
_ALLOWED_EVENTS = frozenset({"builtins.id", "sys._getframe", "object.__setattr__", "object.__delattr__",
                             "marshal.loads"})
# The only source compiled after lockdown: collections.namedtuple's generated __new__ ...
_NAMEDTUPLE_SRC = re.compile(r"lambda _cls, ([\w, ]*): _tuple_new\(_cls, \(\1\)\)")
# ... and the methods dataclasses writes. Their text is built from Field.name, which the eval can change
# (a base class's fields, a str subclass whose __format__ runs while the text is built), so the text itself
# is checked (``_dataclass_source_ok``) before it may compile.
_DATACLASSES_GLOBALS = vars(dataclasses)
_COLLECTIONS_GLOBALS = vars(collections)
_TYPING_GLOBALS = vars(typing)


_DUNDER = re.compile(r"__\w+__")


def refused(name: object) -> bool:
    return type(name) is not str or (
        (name.startswith("_") and name not in UNDERSCORE_OK and name not in SAFE_DUNDERS) or name in FRAME_ATTRS
    )


def safe_getattr(obj: object, name: str, *default: object) -> object:
    if refused(name):
        raise AttributeError(f"access to attribute {name!r} is not allowed in an eval")
    return getattr(obj, name, *default)


def safe_hasattr(obj: object, name: str) -> bool:
    # Only a bool comes back, so duck-typing checks like ``hasattr(x, "__iter__")`` are fine; private and
    # frame names stay refused like everywhere else.
    if refused(name) and not (type(name) is str and _DUNDER.fullmatch(name)):
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


_DC_BUILTIN_NAMES = frozenset({"type", "super", "hash", "NotImplemented"})
_DC_CALLS = frozenset({"type", "super", "hash", "FrozenInstanceError"})
_DC_DUNDER_ATTRS = frozenset({"__class__", "__qualname__", "__setattr__", "__delattr__", "__post_init__"})
_DC_NODES = (ast.Assign, ast.Expr, ast.If, ast.Raise, ast.Return, ast.Pass, ast.Load, ast.Store, ast.Constant,
             ast.Tuple, ast.Compare, ast.BoolOp, ast.Or, ast.Is, ast.In, ast.Eq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
             ast.BinOp, ast.Add, ast.JoinedStr, ast.FormattedValue, ast.IfExp)


def _dataclass_source_ok(source: object) -> bool:
    """Whether ``source`` has the shape of what dataclasses' ``_create_fn`` writes for plain field names:
    ``def __create_fn__(<names>): def <method>(<params>): <body>; return <method>``, where the body reads
    only those names and a few builtins, reads attributes only of a name (one level; ``self.__class__.
    __qualname__`` and ``super(...)`` aside) and calls only type/super/hash/FrozenInstanceError, the default
    factories and ``__setattr__``/``__delattr__``/``__post_init__``. Injected text breaks one of these."""
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    if not isinstance(source, str):
        return False
    try:  # an AST only (its compile event comes from this module: allowed by the hook)
        tree = compile(source, "<dataclass>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if not (isinstance(tree, ast.Module) and len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef)):
        return False
    outer = tree.body[0]
    outer_args = outer.args
    if (outer.name != "__create_fn__" or outer.decorator_list or outer.returns or outer_args.posonlyargs
            or outer_args.vararg or outer_args.kwonlyargs or outer_args.kwarg or outer_args.defaults
            or any(arg.annotation for arg in outer_args.args) or len(outer.body) != 2):
        return False
    outer_names = {arg.arg for arg in outer_args.args}
    inner, back = outer.body
    if not (isinstance(inner, ast.FunctionDef) and not inner.decorator_list and isinstance(back, ast.Return)
            and isinstance(back.value, ast.Name) and back.value.id == inner.name):
        return False
    inner_args = inner.args
    if inner_args.posonlyargs or inner_args.vararg or inner_args.kwarg:
        return False
    params = inner_args.args + inner_args.kwonlyargs
    # Annotations, defaults and the return annotation are evaluated in __create_fn__: its names only.
    outer_scope = [arg.annotation for arg in params] + inner_args.defaults + inner_args.kw_defaults + [inner.returns]
    if not all(node is None or (isinstance(node, ast.Name) and node.id in outer_names) for node in outer_scope):
        return False
    names = outer_names | {arg.arg for arg in params} | _DC_BUILTIN_NAMES
    return all(_dataclass_node_ok(node, names) for statement in inner.body for node in ast.walk(statement))


_TYPE_EXPRESSION_NODES = (ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant,
                          ast.BinOp, ast.BitOr, ast.Starred, ast.Load)


def _type_expression_ok(source: object) -> bool:
    """Whether ``source`` (what typing.ForwardRef compiles: a string annotation under ``from __future__
    import annotations``) is a plain type expression: names, public attributes, subscripts, ``|``, tuples,
    lists and constants — no call, no private or dunder name. Only compiling is allowed for it; evaluating
    it (an exec from typing) stays blocked, and such a code object could do nothing anyway."""
    if isinstance(source, bytes):  # the compile event carries the source as bytes
        source = source.decode("utf-8", "replace")
    if not isinstance(source, str) or len(source) > 1000:
        return False
    try:
        tree = compile(source, "<annotation>", "eval", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _TYPE_EXPRESSION_NODES) or (isinstance(node, ast.BinOp) and not isinstance(
                node.op, ast.BitOr)):
            return False
        if (isinstance(node, ast.Name) and node.id.startswith("__")) or (
                isinstance(node, ast.Attribute) and node.attr.startswith("_")):
            return False
    return True


def _dataclass_node_ok(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attribute):
        value = node.value
        if node.attr.startswith("__") and node.attr not in _DC_DUNDER_ATTRS:
            return False
        return (isinstance(value, ast.Name)
                or (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super")
                or (isinstance(value, ast.Attribute) and value.attr == "__class__" and node.attr == "__qualname__"
                    and isinstance(value.value, ast.Name)))
    if isinstance(node, ast.Call):
        func = node.func
        return not node.keywords and (
            (isinstance(func, ast.Name) and (func.id in _DC_CALLS or func.id.startswith("_dflt_")))
            or (isinstance(func, ast.Attribute) and func.attr in ("__setattr__", "__delattr__", "__post_init__")))
    return isinstance(node, _DC_NODES)


def _checked_fields(cls: object) -> None:
    """dataclasses writes field names into generated source: only plain identifiers may get there."""
    annotations = getattr(cls, "__dict__", {}).get("__annotations__", {})
    for name in annotations if isinstance(annotations, dict) else ():
        if type(name) is not str or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise TypeError(f"dataclass field name {name!r} is not allowed in an eval")


def _safe_dataclass(cls: object = None, /, **kwargs: object) -> object:
    def wrap(klass: object) -> object:
        _checked_fields(klass)
        if not getattr(klass, "__doc__", None):  # else dataclasses reads __code__ for a signature (audited)
            klass.__doc__ = getattr(klass, "__name__", "dataclass")
        return dataclasses.dataclass(klass, **kwargs)  # type: ignore[call-overload]

    return wrap if cls is None else wrap(cls)


def _safe_make_dataclass(cls_name: str, fields: typing.Iterable[object], **kwargs: object) -> object:
    names = [item if isinstance(item, str) else item[0] for item in fields]  # type: ignore[index]
    for name in names:
        if type(name) is not str or name.startswith("_"):
            raise TypeError(f"dataclass field name {name!r} is not allowed in an eval")
    if "namespace" in kwargs:
        raise TypeError("make_dataclass(namespace=...) is not allowed in an eval")
    return dataclasses.make_dataclass(cls_name, fields, namespace={"__doc__": str(cls_name)},  # type: ignore[arg-type]
                                      **kwargs)  # type: ignore[arg-type]


def _safe_update_wrapper(wrapper: object, wrapped: object, assigned: object = functools.WRAPPER_ASSIGNMENTS,
                         updated: object = functools.WRAPPER_UPDATES) -> object:
    # Other attribute names would copy e.g. a function's __globals__ onto an object the eval can read.
    if assigned != functools.WRAPPER_ASSIGNMENTS or updated != functools.WRAPPER_UPDATES:
        raise TypeError("update_wrapper with custom attribute names is not allowed in an eval")
    return functools.update_wrapper(wrapper, wrapped)  # type: ignore[arg-type]


def _safe_wraps(wrapped: object, assigned: object = functools.WRAPPER_ASSIGNMENTS,
                updated: object = functools.WRAPPER_UPDATES) -> object:
    if assigned != functools.WRAPPER_ASSIGNMENTS or updated != functools.WRAPPER_UPDATES:
        raise TypeError("wraps with custom attribute names is not allowed in an eval")
    # Not functools.wraps(): that is a partial whose public ``.func`` is the real update_wrapper.
    return functools.partial(_safe_update_wrapper, wrapped=wrapped)


def _field_names(obj: object) -> list[str]:
    """The field names of a dataclass instance, each read once and checked: asdict/astuple/replace fetch
    fields by name, and a field (or a fake ``__dataclass_fields__``) may be named ``__reduce__``."""
    names = []
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]
        name = field.name
        if type(name) is not str or _DUNDER.fullmatch(name) or name in FRAME_ATTRS:
            raise TypeError(f"dataclass field name {name!r} is not allowed in an eval")
        names.append(name)
    return names


def _safe_replace(obj: object, /, **changes: object) -> object:
    """dataclasses.replace for evals: the fields' names are checked (``_field_names``); InitVar fields
    are passed only when given."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("replace() should be called on dataclass instances")
    init = {field.name: field.init for field in dataclasses.fields(obj)}
    for name in _field_names(obj):
        if not init.get(name, True):
            if name in changes:
                raise ValueError(f"field {name} is declared with init=False, it cannot be specified with replace()")
        elif name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


def _plain(obj: object, factory: typing.Callable[[list[typing.Any]], object], pairs: bool) -> object:
    """asdict/astuple's walk, without copy.deepcopy: deepcopy calls library ``__reduce__`` methods on
    library objects, and typing's alias reduces to ``globals()[self._name]`` (a private attribute the eval
    can set: ``"__builtins__"`` gives the real builtins). Leaves are returned as they are, not copied."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [(name, _plain(getattr(obj, name), factory, pairs)) for name in _field_names(obj)]
        return factory(items if pairs else [value for _, value in items])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_plain(value, factory, pairs) for value in obj])  # type: ignore[arg-type]
    if isinstance(obj, list | tuple | set | frozenset):
        return type(obj)(_plain(value, factory, pairs) for value in obj)
    if isinstance(obj, dict):
        return type(obj)((_plain(key, factory, pairs), _plain(value, factory, pairs)) for key, value in obj.items())
    return obj


def _safe_asdict(obj: object, *, dict_factory: typing.Callable[..., object] = dict) -> object:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on dataclass instances")
    return _plain(obj, dict_factory, True)


def _safe_astuple(obj: object, *, tuple_factory: typing.Callable[..., object] = tuple) -> object:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("astuple() should be called on dataclass instances")
    return _plain(obj, tuple_factory, False)


_REPLACEMENTS: dict[str, dict[str, object]] = {
    "dataclasses": {"dataclass": _safe_dataclass, "make_dataclass": _safe_make_dataclass,
                    "asdict": _safe_asdict, "astuple": _safe_astuple, "replace": _safe_replace},
    "functools": {"update_wrapper": _safe_update_wrapper, "wraps": _safe_wraps},
}


def _proxy(name: str) -> types.ModuleType:
    """A fresh module holding only the public, non-module attributes of an allowed module."""
    real = importlib.import_module(name)  # before lockdown: imports are blocked after
    proxy = types.ModuleType(f"{name} (sandboxed)", real.__doc__)
    hidden = _HIDDEN.get(name, set())
    for key, value in vars(real).items():
        if not key.startswith("_") and not isinstance(value, types.ModuleType) and key not in hidden:
            setattr(proxy, key, value)
    for key, value in _REPLACEMENTS.get(name, {}).items():
        setattr(proxy, key, value)
    return proxy


def _disarm() -> None:
    """Library methods that read or write any module's globals by a name the eval chooses. Private names,
    but a private attribute is in reach of ``self.<name>`` (the static check lets methods use their own),
    and ``self`` can be any object: ``Enum._convert_(name, "restrict", filter)`` hands out that module's
    ``sys`` and ``builtins`` and overwrites its globals. The worker never calls it after start-up."""
    if "_convert_" in vars(enum.EnumType):
        delattr(enum.EnumType, "_convert_")
    # typing's alias reduces to ``globals()[self._name]`` (its module's ``__builtins__`` too), and an alias
    # subclass (``_root=True``) takes any name: nothing in the worker pickles or copies aliases.
    alias = getattr(typing, "_GenericAlias", None)
    if isinstance(alias, type) and "__reduce__" in vars(alias):
        type.__setattr__(alias, "__reduce__", _no_reduce)


# Calls CPython raises no audit event for: out of the worker's modules before lockdown, so even code that
# reached the real ``os``/``signal`` (and got past the OS layers' EPERM) finds nothing to call.
_UNAUDITED = {
    "os": ("mkfifo", "mknod", "pidfd_open", "setpriority", "sendfile", "splice", "copy_file_range",
           "openpty", "memfd_create", "eventfd", "forkpty", "login_tty"),
    "signal": ("pidfd_send_signal", "pthread_kill"),
}


def _strip_unaudited() -> None:
    for module_name, names in _UNAUDITED.items():
        module = sys.modules.get(module_name)
        for name in names:
            if module is not None and hasattr(module, name):
                delattr(module, name)
    posix = sys.modules.get("posix")
    for name in _UNAUDITED["os"]:
        if posix is not None and hasattr(posix, name):
            delattr(posix, name)


def _no_reduce(self: object) -> object:
    raise TypeError("typing aliases cannot be reduced in an eval")


def build_proxies() -> dict[str, types.ModuleType]:
    _disarm()
    _strip_unaudited()
    proxies = {name: _proxy(name) for name in ALLOWED_MODULES}
    proxies["collections"].abc = proxies["collections.abc"]  # type: ignore[attr-defined]
    return proxies


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


def install_audit_hook(module_code: types.CodeType) -> None:
    """From here on every audit event outside the allow-list raises. There is no way back: the hook is
    a closure over nothing the eval can reach, and ``sys.addaudithook`` hooks cannot be removed.
    ``module_code`` (the eval's compiled module) may be executed once."""
    getframe = sys._getframe
    first_exec = [module_code]
    # Bound here, not looked up in this module's globals at each event: nothing the eval does to a module's
    # namespace changes what the hook allows.
    allowed, dataclasses_globals, collections_globals = _ALLOWED_EVENTS, _DATACLASSES_GLOBALS, _COLLECTIONS_GLOBALS
    namedtuple_source, blocked, dataclass_source_ok, own_globals = (
        _NAMEDTUPLE_SRC.fullmatch, PermissionError, _dataclass_source_ok, globals())
    typing_globals, type_expression_ok = _TYPING_GLOBALS, _type_expression_ok

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in allowed:
            return
        if event in ("compile", "exec"):
            # Judged by the *direct* caller (the frame that called compile/exec/eval), through f_globals:
            # reading f_code would raise an audit event of its own, and a "checking" flag that let events
            # through meanwhile would let the eval's signal handlers or finalizers (gc runs at any
            # allocation) act with the hook off. No state carries over between events either: a "the next
            # exec is namedtuple's" flag would be spent by whichever exec comes next (typing.ForwardRef
            # compiles namedtuple-shaped text too, and its evaluation then runs in the eval's globals).
            caller = getframe(1).f_globals  # raises "sys._getframe": allowed above
            if caller is dataclasses_globals:  # _create_fn's exec(text): the text is checked at its compile
                if event == "exec" or dataclass_source_ok(args[0] if args else None):
                    return
            elif caller is own_globals and event == "compile":  # the checks' own parse (an AST only)
                return
            elif caller is typing_globals and event == "compile" and type_expression_ok(args[0] if args else None):
                return  # ForwardRef("list[int]"): compiled, never evaluated (an exec from typing is blocked)
            if caller is collections_globals:  # namedtuple's one eval() of the one shape of source
                if event == "exec":
                    return
                source = args[0] if args else None
                if isinstance(source, bytes):
                    source = source.decode("utf-8", "replace")
                if isinstance(source, str) and namedtuple_source(source):
                    return
            if event == "exec" and args and first_exec and args[0] is first_exec[0]:
                first_exec.clear()
                return
        raise blocked(f"{event} is blocked by the iofold sandbox")

    sys.addaudithook(hook)
