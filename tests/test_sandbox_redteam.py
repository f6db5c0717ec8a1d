"""Red-team findings against the eval sandbox (issue 12), each judged by the attacker's goal.

Goals checked: no file made outside (a world-writable folder), no other process signalled, no secret read,
the run ends in bounded time with one result per trace, and ordinary eval code is not refused. Each
Python layer is also attacked with the operating system's layers switched off (``PY_ONLY``), since the
README promises that each layer holds on its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iofold_tui.data.evalrun.results import ExecResult, SandboxError
from iofold_tui.data.evalrun.sandbox import EvalRunner, check_sandbox
from iofold_tui.data.evalrun.static_check import check_code

LINUX = sys.platform.startswith("linux")
CONFINED = LINUX and check_sandbox().complete
OS_LAYERS = frozenset({"seccomp", "landlock", "namespaces", "identity", "rlimits", "nnp", "pdeathsig"})
PY_ONLY = OS_LAYERS  # every Python layer (static, builtins, audit) and none of the operating system's
OS_ONLY = frozenset({"static", "builtins", "audit"})  # the operating system's layers alone
ALL = frozenset()

# Reached the real builtins with every Python layer on: dataclasses writes a base class's (mutable)
# Field.name into the source it compiles, and the sandbox let dataclasses compile anything (now the hook
# checks the shape of that source).
DATACLASS_ESCAPE = """
import dataclasses
@dataclasses.dataclass
class _Base:
    a: list
def real_builtins():
    field = dataclasses.fields(_Base)[0]
    field.name = "a.append(__builtins__)"
    @dataclasses.dataclass(init=False, repr=False)
    class Child(_Base):
        pass
    child = Child([])
    child == child
    return child.a[0]
def real_import(name):
    return real_builtins()["__import__"](name)
"""

# The same through typing: a ForwardRef of namedtuple-shaped text was allowed to compile, which armed
# "the next exec is namedtuple's"; get_type_hints then evaluated it in a globals dict of the eval's own,
# into which eval() puts the real builtins.
FORWARD_REF_ESCAPE = """
import typing
_REF = typing.ForwardRef("lambda _cls, a: _tuple_new(_cls, (a))")
class _Holder:
    x: _REF
def real_builtins():
    found = {}
    try:
        typing.get_type_hints(_Holder, globalns=found)
    except Exception:
        pass
    return found["__builtins__"]
def real_import(name):
    return real_builtins()["__import__"](name)
"""

# functools.wraps(f) was the real partial(update_wrapper, ...): its public ``.func`` is the unchecked
# update_wrapper, which copies any attribute (a function's __globals__) into the eval's __setattr__.
WRAPS_ESCAPE = """
import functools, json
_got = []
class _Box:
    def __setattr__(self, name, value):
        _got.append(value)
def real_builtins():
    functools.wraps(json.loads).func(_Box(), json.loads, assigned=("__glo" + "bals__",), updated=())
    return _got[0]["__builtins__"]
def real_import(name):
    return real_builtins()["__import__"](name)
"""

# Enum._convert_(name, module, filter) builds an enum from any module's globals (``self.<private>`` passes
# the static check, and ``self`` may be any object).
ENUM_CONVERT_ESCAPE = """
import enum
def _leak(self):
    return self._convert_("Leak", "proxies", lambda name: name == "importlib")
_found = []
def real_import(name):
    if not _found:  # once: it also replaces the module's own global with the enum's member
        _found.append(_leak(enum.Enum).importlib.value)
    return _found[0].import_module(name)
"""

# With the real builtins: calls CPython does not audit (mkfifo makes a file, pidfd_send_signal kills).
GOALS = """
def check(trace):
    os = real_import("os")
    signal = real_import("signal")
    os.mkfifo({fifo!r})
    signal.pidfd_send_signal(os.pidfd_open({victim}), 9)
    return (True, "escaped")
"""


@dataclass
class Target:
    scratch: Path
    victim: subprocess.Popen[bytes]
    secret_file: Path
    secret: str

    def untouched(self) -> None:
        assert sorted(os.listdir(self.scratch)) == ["secret.txt"], sorted(os.listdir(self.scratch))
        assert self.victim.poll() is None, "another process was killed"


@pytest.fixture
def target() -> Iterator[Target]:
    scratch = Path(tempfile.mkdtemp(prefix="iofold-redteam-"))
    scratch.chmod(0o777)  # only the sandbox, not permissions, may stop a write here
    secret = f"SECRET-{os.getpid()}-{time.monotonic_ns()}"
    secret_file = scratch / "secret.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o644)
    victim = subprocess.Popen(["sleep", "300"])
    try:
        yield Target(scratch, victim, secret_file, secret)
    finally:
        victim.kill()
        victim.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _run(code: str, disable: frozenset[str], traces: int = 1, timeout_s: float = 1.0,
         guard_s: float = 15.0) -> tuple[list[ExecResult], float]:
    """Runs ``code``; a watchdog cancels a run that does not end (so a regression fails, not hangs)."""
    with EvalRunner(textwrap.dedent(code), "check", jobs=1, timeout_s=timeout_s, batch_size=4,
                    _disable_layers=disable) as runner:
        watchdog = threading.Timer(guard_s, runner.cancel)
        watchdog.start()
        started = time.monotonic()
        try:
            results = list(runner.run([(f"t{i}", "[]") for i in range(traces)]))
        finally:
            watchdog.cancel()
        return results, time.monotonic() - started


# -- Python layers: library code that compiles text ------------------------------------------------------

@pytest.mark.skipif(not LINUX, reason="mkfifo/pidfd goals are Linux")
@pytest.mark.parametrize("escape", ["dataclass base field", "dataclass str subclass"])
def test_dataclass_base_field_injection_reaches_nothing(escape: str, target: Target) -> None:
    goals = GOALS.format(fifo=str(target.scratch / "pwned-dataclass"), victim=target.victim.pid)
    code = ESCAPES[escape] + goals
    results, _ = _run(code, PY_ONLY)
    target.untouched()
    assert all(r.error for r in results)


@pytest.mark.skipif(not LINUX, reason="mkfifo/pidfd goals are Linux")
def test_forward_ref_cannot_spend_namedtuples_exec(target: Target) -> None:
    goals = GOALS.format(fifo=str(target.scratch / "pwned-forwardref"), victim=target.victim.pid)
    code = FORWARD_REF_ESCAPE + goals
    assert check_code(code) == []  # nothing for the static check to see
    try:
        results, _ = _run(code, PY_ONLY)
    except Exception:  # refused while loading (the module code compiles the ForwardRef): the goal held
        results = []
    target.untouched()
    assert all(r.error for r in results)


# The same through a str subclass: Field.name looks harmless whenever checked, but its __format__ writes
# the injection while dataclasses builds the text.
DATACLASS_FORMAT_ESCAPE = """
import dataclasses
class _Sly(str):
    def __format__(self, spec):
        return "a.append(__builtins__)"
@dataclasses.dataclass
class _Base:
    a: list
def real_builtins():
    dataclasses.fields(_Base)[0].name = _Sly("a")
    @dataclasses.dataclass(init=False, repr=False)
    class Child(_Base):
        pass
    child = Child([])
    child == child
    return child.a[0]
def real_import(name):
    return real_builtins()["__import__"](name)
"""

# dataclasses.asdict deep-copied its leaves; deepcopy calls typing's alias __reduce__, which returns
# ``globals()[self._name]`` — a private attribute ``self.<name> = ...`` may set — and reconstructs with it.
ALIAS_REDUCE_ESCAPE = """
import dataclasses, typing
@dataclasses.dataclass
class _Holder:
    value: object
def _grab(self):
    self._name = "__builtins__"
    return dataclasses.asdict(_Holder(self))["value"]
def real_import(name):
    return _grab(typing.Literal["__import__"])(name)
"""

# asdict/astuple/replace fetch every field by name: a real Field renamed "__reduce__", in the fake
# __dataclass_fields__ of a typing alias subclass (``_root=True`` lets it be subclassed) built with
# name="__builtins__", fetches the bound alias __reduce__, whose result holds the real builtins dict.
FIELD_NAME_ESCAPE = """
import dataclasses, typing
def _reduce():
    field = dataclasses.fields(dataclasses.make_dataclass("_D", ["q"]))[0]
    field.name = "__reduce__"
    X = type("X", (type(typing.Literal["x"]),), {"__dataclass_fields__": {"__reduce__": field}}, _root=True)
    alias = X(typing.Literal, ("__import__",), name="__builtins__")
    if "{how}" != "replace":
        return dataclasses.{how}(alias)
    seen = []
    X.__init__ = lambda self, **fields: seen.append(fields)  # replace() hands every field to the class
    dataclasses.replace(alias)
    return seen[0]
def real_import(name):
    got = _reduce()
    func, args = (got["__reduce__"] if isinstance(got, dict) else got[0])()
    return func(*args)(name)
"""

ESCAPES = {"dataclass base field": DATACLASS_ESCAPE, "dataclass str subclass": DATACLASS_FORMAT_ESCAPE,
           "typing.ForwardRef": FORWARD_REF_ESCAPE,
           "functools.wraps().func": WRAPS_ESCAPE, "Enum._convert_": ENUM_CONVERT_ESCAPE,
           "typing alias __reduce__": ALIAS_REDUCE_ESCAPE,
           "dunder field name (asdict)": FIELD_NAME_ESCAPE.replace("{how}", "asdict"),
           "dunder field name (astuple)": FIELD_NAME_ESCAPE.replace("{how}", "astuple"),
           "dunder field name (replace)": FIELD_NAME_ESCAPE.replace("{how}", "replace")}


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_every_escape_is_contained_by_the_os_layers(escape: str, target: Target) -> None:
    """With every layer on, even a Python-layer escape (the dataclass one still works) reaches nothing."""
    code = ESCAPES[escape] + GOALS.format(fifo=str(target.scratch / "pwned-all"), victim=target.victim.pid)
    try:
        results, _ = _run(code, ALL)
    except Exception:  # refused while loading: the goal held
        results = []
    target.untouched()
    assert all(r.error for r in results), results


@pytest.mark.skipif(not LINUX, reason="mkfifo/pidfd goals are Linux")
@pytest.mark.parametrize("escape", ["functools.wraps().func", "Enum._convert_", "typing alias __reduce__",
                                    "dunder field name (asdict)", "dunder field name (astuple)",
                                    "dunder field name (replace)"])
def test_library_objects_hand_out_no_real_builtins(escape: str, target: Target) -> None:
    goals = GOALS.format(fifo=str(target.scratch / "pwned-library"), victim=target.victim.pid)
    code = ESCAPES[escape] + goals
    results, _ = _run(code, PY_ONLY)
    target.untouched()
    assert results and all(r.error for r in results), results


@pytest.mark.skipif(not LINUX, reason="needs the Linux goals")
def test_audit_hook_tables_cannot_be_replaced(target: Target) -> None:
    """The audit hook alone: enum.global_enum writes an enum's members into sys.modules[cls.__module__];
    naming the hook's module put a member that contains everything in place of its allow-list."""
    code = f"""
    import enum
    class Everything(enum.Enum):
        __module__ = "audit"
        _ALLOWED_EVENTS = 1
        def __contains__(self, item):
            return True
    def check(trace):
        try:
            enum.global_enum(Everything)
        except BaseException:
            pass
        return (True, open({str(target.secret_file)!r}).read())
    """
    results, _ = _run(code, PY_ONLY | {"static", "builtins"})
    assert results
    for r in results:
        assert target.secret not in r.reason + (r.error or "") + r.stdout + r.stderr
        assert r.result is None and r.error, r


@pytest.mark.skipif(not LINUX, reason="mkfifo/pidfd goals are Linux")
def test_audit_hook_alone_stops_unaudited_calls(target: Target) -> None:
    """CPython raises no audit event for os.mkfifo, os.mknod, os.pidfd_open + signal.pidfd_send_signal and a
    few more: the worker deletes them before lockdown (the OS layers stop them all anyway)."""
    code = ("def real_import(name):\n    return __import__(name)\n"
            + GOALS.format(fifo=str(target.scratch / "pwned-unaudited"), victim=target.victim.pid))
    results, _ = _run(code, PY_ONLY | {"static", "builtins"})
    target.untouched()
    assert results and all(r.error for r in results), results


@pytest.mark.skipif(not LINUX, reason="needs signal.setitimer and the Linux goals")
def test_audit_hook_has_no_window_for_signal_handlers(target: Target) -> None:
    """The audit hook alone (real builtins): while it looked at its caller's frame, a flag let every event
    through, and the eval's SIGALRM handler runs inside that window. Goal: read a file."""
    code = f"""
    import signal
    got = []
    busy = []
    def handler(signum, frame):
        if busy or got:
            return
        busy.append(1)
        try:
            got.append(open({str(target.secret_file)!r}).read())
        except BaseException:
            pass
        busy.clear()
    def check(trace):
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        deadline = __import__("time").monotonic() + 0.6
        while not got and __import__("time").monotonic() < deadline:
            try:
                compile("1", "x", "eval")
            except PermissionError:
                pass
        signal.setitimer(signal.ITIMER_REAL, 0)
        return (bool(got), "".join(got))
    """
    results, _ = _run(code, PY_ONLY | {"static", "builtins"}, timeout_s=2.0)
    assert results
    for r in results:
        assert target.secret not in r.reason + (r.error or "") + r.stdout + r.stderr
        assert r.result is not True, r


# -- the parent: a run always ends --------------------------------------------------------------------------

FORGED_RETIRE = """
def _forge(os):
    body = b'["retire"]'
    os.write(4, len(body).to_bytes(4, "big") + body)
    while True:  # the worker's CPU timer or the parent's wall clock ends this
        pass
"""


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
@pytest.mark.parametrize("layers", ["os-only", "all"])
def test_forged_retire_does_not_retry_a_trace_forever(layers: str) -> None:
    """``["retire"]`` re-queued the worker's unfinished traces; a worker that forges it on every trace made
    the replacement run the same trace again, forever (with every layer on, through the escape above)."""
    if layers == "os-only":
        code = FORGED_RETIRE + "import os\ndef check(trace):\n    _forge(os)\n"
        disable = OS_ONLY
    else:
        code = DATACLASS_ESCAPE + FORGED_RETIRE + "def check(trace):\n    _forge(real_import('os'))\n"
        disable = ALL
    traces, timeout_s = 3, 0.5
    results, elapsed = _run(code, disable, traces=traces, timeout_s=timeout_s)
    assert sorted(r.trace_id for r in results) == [f"t{i}" for i in range(traces)]
    assert all(r.result is None and r.error for r in results)
    assert elapsed < traces * (timeout_s + 1.0) + 2.0, elapsed


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
def test_replacement_workers_cannot_stretch_a_run() -> None:
    """An eval that ends its worker on every trace and stalls at module level: a replacement worker gets one
    trace's deadline for its module code (the app compiles the code once), so the run stays bounded."""
    code = "import os, time\ntime.sleep(2.0)\ndef check(trace):\n    os._exit(1)\n"
    traces, timeout_s = 3, 0.2
    kill_after = timeout_s + 0.5
    try:
        _, elapsed = _run(code, OS_ONLY, traces=traces, timeout_s=timeout_s)
    except SandboxError:  # replacements that cannot start in time may end the run: that is bounded too
        elapsed = 0.0
    assert elapsed < traces * kill_after + 1.0, elapsed


# -- no false refusals ---------------------------------------------------------------------------------------

ORDINARY = {
    "dataclass variants (the source check)": """
        import dataclasses, typing
        from dataclasses import dataclass, field, InitVar, KW_ONLY
        @dataclass
        class A:
            x: int
            y: str = "a"
            z: list = field(default_factory=list)
        @dataclass(frozen=True, order=True, slots=True)
        class B:
            self: int
            other: int = 0
        @dataclass(unsafe_hash=True, kw_only=True)
        class C:
            a: int = 1
            b: InitVar[int] = 2
            def __post_init__(self, b):
                self.a += b
        @dataclass(eq=False, repr=False)
        class D:
            _: KW_ONLY
            q: int = field(default=3, repr=False, compare=False, hash=None, init=False)
            r: typing.ClassVar[int] = 4
            s: list = field(default_factory=list, init=False)
        @dataclass
        class E(A):
            w: int = 5
        @dataclass(frozen=True, slots=True, weakref_slot=True)
        class F:
            name: str = field(default_factory=str)
            value: str = "v"
        M = dataclasses.make_dataclass(
            "M", [("b", int, 0), ("c", int, field(default=1))], bases=(F,), frozen=True
        )
        @dataclass(order=True)
        class G:
            é: int = 1
            name: str = field(default="n", compare=False)
        def check(trace):
            b = B(1, 2)
            try:
                b.other = 3
                frozen = "not frozen"
            except dataclasses.FrozenInstanceError:
                frozen = "frozen"
            out = [repr(A(1)), repr(b), str(b < B(2)), frozen, str(hash(C(a=1))), str(C(a=1).a), repr(D()),
                   str(D().q), repr(E(1, w=2)), repr(F()), repr(M(b=2)), str(G() <= G(2)),
                   str(dataclasses.asdict(E(1))),
                   repr(dataclasses.replace(b, other=9)), str(A(1) == A(1)), str(dataclasses.astuple(M()))]
            return (all(out), " | ".join(out))
    """,
    "a dataclass under from __future__ import annotations": """
        from __future__ import annotations
        from dataclasses import InitVar, dataclass, field
        from typing import ClassVar
        @dataclass(frozen=True, order=True)
        class Step:
            role: str
            text: str = ""
            tags: list[str] = field(default_factory=list, compare=False, hash=False)
            kinds: ClassVar[int] = 2
        @dataclass
        class Score:
            value: float
            bonus: InitVar[float | None] = None
            def __post_init__(self, bonus: float | None) -> None:
                self.value += bonus or 0
        def check(trace: dict) -> tuple[bool, str]:
            return (Step("a") < Step("b") and Score(1, 1).value == 2, repr(Step("user", "hi")))
    """,
    "NamedTuple/TypedDict/Protocol/Generic under from __future__ import annotations": """
        from __future__ import annotations
        import enum, functools, typing
        from typing import NamedTuple, TypedDict, Protocol, Generic, TypeVar, Optional
        T = TypeVar("T")
        class P(NamedTuple):
            a: int
            b: Optional[str] = None
        class TD(TypedDict, total=False):
            x: int
        class Proto(Protocol):
            def name(self) -> str: ...
        class Box(Generic[T]):
            def __init__(self, v: T) -> None:
                self.v = v
        class C(enum.Enum):
            A = 1
        @functools.lru_cache(maxsize=128)
        def f(x: int) -> int:
            return x * 2
        class K:
            @functools.cached_property
            def v(self) -> int:
                return 1
            @property
            def w(self) -> int:
                return 2
        def check(trace: dict[str, object]) -> tuple[bool, str]:
            return (True, f"{P(1)} {TD(x=1)} {Box(3).v} {C.A} {f(2)} {K().v} {K().w}")
    """,
    "a non-ASCII name (the parser imports unicodedata)": """
        def check(trace):
            café = "ok"
            return (True, café)
    """,
    "datetime.strftime (imports time from C)": """
        import datetime
        def check(trace):
            d = datetime.datetime(2024, 1, 2, 3, 4)
            return (True, d.strftime("%Y-%m-%d %H:%M") + f" {d:%b} " + str(d.timetuple().tm_yday)
                    + datetime.date(2024, 1, 2).strftime(" %A"))
    """,
    "hasattr with a dunder": """
        def check(trace):
            steps = trace["steps"]
            return (hasattr(steps, "__iter__") and not hasattr(3, "__len__"), "duck typing")
    """,
    "__hash__ = None in a class body": """
        class Key:
            def __init__(self, v):
                self.v = v
            def __eq__(self, other):
                return isinstance(other, Key) and other.v == self.v
            __hash__ = None
        def check(trace):
            return (Key(1) == Key(1), "eq")
    """,
    "__getattr__ = dict.get in a class body": """
        class AttrDict(dict):
            __getattr__ = dict.get
        def check(trace):
            return (AttrDict(x=1).x == 1, "attrdict")
    """,
}


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_code_is_not_refused(name: str) -> None:
    code = textwrap.dedent(ORDINARY[name])
    assert check_code(code) == []
    results, _ = _run(code, ALL)
    assert [(r.result, r.error) for r in results] == [(True, None)], results


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
def test_string_annotations_compile_but_never_run() -> None:
    """typing.ForwardRef may compile a plain type expression (NamedTuple under future annotations needs it),
    never anything that calls, and evaluating one (an exec from typing) stays blocked."""
    code = """
    import typing
    def check(trace):
        out = []
        for source in ["list[int] | None", "typing.Dict[str, 'X']", "(lambda: 0)()", "x._y", "f(x)"]:
            try:
                typing.ForwardRef(source)
                out.append("compiled")
            except PermissionError:
                out.append("blocked")
        class H:
            x: typing.ForwardRef("int")
        try:
            typing.get_type_hints(H)
            out.append("evaluated")
        except PermissionError:
            out.append("blocked")
        return (True, " ".join(out))
    """
    results, _ = _run(code, ALL)
    assert [r.reason for r in results] == ["compiled compiled blocked blocked blocked blocked"], results


def test_relaxations_hand_out_nothing() -> None:
    """What the relaxed rules give back is a bool or a class attribute: never a real module or frame."""
    assert check_code("def check(trace):\n    x = (lambda: 0).__globals__\n    return (True, '')\n")
    assert check_code("def check(trace):\n    return (hasattr(check, 'gi_frame'), '')\n")
    assert check_code("__builtins__ = {}\ndef check(trace):\n    return (True, '')\n")  # module level
    assert check_code(
        "class A:\n    def f(self):\n        __class__ = 1\ndef check(trace):\n    return (True, '')\n"
    )
