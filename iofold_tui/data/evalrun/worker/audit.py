"""The allow-list audit hook (the last Python layer of the worker, under the OS layers of ``confine``).

Installed at lockdown and never switched off: it has no on/off state the eval could reach, and the worker
never needs to relax it (tracebacks are read by line number only). The only source it lets compile is
checked here first: namedtuple's one shape, the methods dataclasses writes, and plain type expressions
(typing.ForwardRef); those checks' own parse is the one compile this module may call.

Stdlib only and importing no sibling; imported by ``main`` before any eval code exists.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import re
import sys
import types
import typing

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


_DC_BUILTIN_NAMES = frozenset({"type", "super", "hash", "NotImplemented"})
_DC_CALLS = frozenset({"type", "super", "hash", "FrozenInstanceError"})
_DC_DUNDER_ATTRS = frozenset({"__class__", "__qualname__", "__setattr__", "__delattr__", "__post_init__"})
_DC_NODES = (
    ast.Assign, ast.Expr, ast.If, ast.Raise, ast.Return, ast.Pass, ast.Load, ast.Store, ast.Constant,
    ast.Tuple, ast.Compare, ast.BoolOp, ast.Or, ast.Is, ast.In, ast.Eq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.BinOp, ast.Add, ast.JoinedStr, ast.FormattedValue, ast.IfExp,
)


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
    if not (
        isinstance(tree, ast.Module) and len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef)
    ):
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
    outer_scope = [
        *(arg.annotation for arg in params), *inner_args.defaults, *inner_args.kw_defaults, inner.returns
    ]
    if not all(
        node is None or (isinstance(node, ast.Name) and node.id in outer_names) for node in outer_scope
    ):
        return False
    names = outer_names | {arg.arg for arg in params} | _DC_BUILTIN_NAMES
    return all(_dataclass_node_ok(node, names) for statement in inner.body for node in ast.walk(statement))


_TYPE_EXPRESSION_NODES = (
    ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant,
    ast.BinOp, ast.BitOr, ast.Starred, ast.Load,
)


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
        return (
            isinstance(value, ast.Name)
            or (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super")
            or (
                isinstance(value, ast.Attribute) and value.attr == "__class__" and node.attr == "__qualname__"
                and isinstance(value.value, ast.Name)
            )
        )
    if isinstance(node, ast.Call):
        func = node.func
        return not node.keywords and (
            (isinstance(func, ast.Name) and (func.id in _DC_CALLS or func.id.startswith("_dflt_")))
            or (
                isinstance(func, ast.Attribute)
                and func.attr in ("__setattr__", "__delattr__", "__post_init__")
            )
        )
    return isinstance(node, _DC_NODES)



def install_audit_hook(module_code: types.CodeType) -> None:
    """From here on every audit event outside the allow-list raises. There is no way back: the hook is
    a closure over nothing the eval can reach, and ``sys.addaudithook`` hooks cannot be removed.
    ``module_code`` (the eval's compiled module) may be executed once."""
    getframe = sys._getframe
    first_exec = [module_code]
    # Bound here, not looked up in this module's globals at each event: nothing the eval does to a module's
    # namespace changes what the hook allows.
    allowed, dataclasses_globals, collections_globals = (
        _ALLOWED_EVENTS, _DATACLASSES_GLOBALS, _COLLECTIONS_GLOBALS)
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
            elif caller is own_globals and event == "compile":
                return  # this module's checks parsing that source (an AST only)
            elif (
                caller is typing_globals and event == "compile"
                and type_expression_ok(args[0] if args else None)
            ):
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
