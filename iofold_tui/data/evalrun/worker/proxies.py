"""The modules an eval may import, as proxies (the second Python layer of the worker): built by ``main``
before lockdown and handed out by ``restrict``'s ``__import__``.

A proxy holds only the public, non-module attributes of its module, and a ``__name__`` that names no real
module, so ``from json import decoder`` cannot fall back to ``sys.modules["json.decoder"]``. A few library
functions hand out objects by attribute names the eval chooses (dataclasses, functools.wraps): the proxies
carry checked versions of them. Library methods of that kind the proxies cannot hide are disarmed
(``_disarm``), and calls CPython does not audit are removed from ``os``/``signal`` (``_strip_unaudited``).

Stdlib only; imported by ``main`` before any eval code exists.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import keyword
import sys
import types
import typing

if typing.TYPE_CHECKING:
    from iofold_tui.data.evalrun.worker.restrict import ALLOWED_MODULES, DUNDER, FRAME_ATTRS
else:  # run as a script with -I: the worker's modules are top-level modules (see main.py)
    from restrict import ALLOWED_MODULES, DUNDER, FRAME_ATTRS

# Attributes a proxy leaves out although they are public: they hand out objects by attribute name.
# enum.global_enum writes a class's members into ``sys.modules[cls.__module__]``, and ``__module__`` is the
# eval's to choose: the worker's own modules (the audit hook's tables) included.
_HIDDEN = {"string": {"Formatter"}, "enum": {"global_enum"}}


def _checked_fields(cls: object) -> None:
    """dataclasses writes field names into generated source: only plain identifiers may get there."""
    annotations = getattr(cls, "__dict__", {}).get("__annotations__", {})
    for name in annotations if isinstance(annotations, dict) else ():
        if (
            type(name) is not str or not name.isidentifier() or keyword.iskeyword(name)
            or name.startswith("__")
        ):
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
        if type(name) is not str or DUNDER.fullmatch(name) or name in FRAME_ATTRS:
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
                raise ValueError(
                    f"field {name} is declared with init=False, it cannot be specified with replace()"
                )
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
        return type(obj)(
            (_plain(key, factory, pairs), _plain(value, factory, pairs)) for key, value in obj.items()
        )
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
    and ``self`` can be any object: ``Enum._convert_(name, "proxies", filter)`` hands out that module's
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

