"""The eval sandbox worker: runs one eval function over batches of traces inside several layers.

Started by ``sandbox.EvalRunner`` as ``python -I -S worker.py`` (stdlib only: it must not import
iofold_tui). The parent has already rejected the code on its AST; this process adds the run-time layers:
  1. a minimal builtins dict, a restricted ``__import__`` that hands out *proxies* of the allowed modules
     (public, non-module attributes only, so ``typing.sys`` & co. do not exist) and a getattr family that
     refuses ``_`` names;
  2. an allow-list ``sys.addaudithook``: after set-up every audit event (open, socket, subprocess, os.*,
     import of a new module, compile/exec, ctypes, frame access ...) raises PermissionError;
  3. rlimits: address space, no file writes (FSIZE 0), no new file descriptors (NOFILE), no processes
     (NPROC 0, effective because a root worker drops to ``nobody``), a CPU backstop; plus a per-trace
     ITIMER_PROF timer. The parent adds a wall-clock kill on top.

Protocol: parent -> worker frames are a 4-byte big-endian length + ``marshal`` (the parent is trusted);
worker -> parent frames are a length + JSON (the parent must never unmarshal/unpickle what this process,
which runs hostile code, sends).
"""

from __future__ import annotations

import _json
import builtins
import collections
import collections.abc
import datetime
import importlib
import json
import marshal
import os
import re
import resource
import signal
import struct
import sys
import time
import types
import typing


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The same list as sandbox.ALLOWED_MODULES (this file must stay stdlib-only, so it is repeated).
ALLOWED_MODULES = _names("json re typing math datetime difflib collections collections.abc __future__")
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
# namedtuple's public API starts with "_"; every other "_" name is refused.
_UNDERSCORE_OK = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})
_FRAME_ATTRS = _names(
    "gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await cr_origin ag_frame ag_code ag_await "
    "f_back f_globals f_locals f_builtins f_code f_trace tb_frame tb_next func_globals"
)
_SAFE_BUILTINS = _names(
    "abs all any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod "
    "enumerate filter float format frozenset hash hex id int isinstance issubclass iter len list map "
    "max min next object oct ord pow print property range repr reversed round set slice sorted "
    "staticmethod str sum super tuple type zip Ellipsis NotImplemented __build_class__"
)
# Audit events that pure computation in the allowed modules raises; everything else is refused.
_ALLOWED_EVENTS = frozenset({"builtins.id", "sys._getframe", "object.__setattr__", "object.__delattr__"})
# The only source compiled after set-up: collections.namedtuple's generated __new__.
_NAMEDTUPLE_SRC = re.compile(r"lambda _cls, ([\w, ]*): _tuple_new\(_cls, \(\1\)\)")
_HEADER = struct.Struct(">I")


def _not_serialisable(value: object) -> object:
    raise TypeError(f"cannot send {type(value).__name__}")


# The protocol encoder is the C one, bound now: the eval may monkeypatch json.JSONEncoder (a plain
# Python class) for its own use, but cannot change what the worker tells the parent.
_ENCODE = _json.make_encoder(
    None, _not_serialisable, _json.encode_basestring, None, ":", ",", False, False, True
)
_ERROR_CAP = 4000


class _Timeout(BaseException):
    """Raised by the per-trace CPU timer; a BaseException so a plain ``except Exception`` misses it."""


class _Capture:
    """A write-only text sink for print(), capped at ``limit`` characters (the rest is counted)."""

    __slots__ = ("parts", "size", "limit", "dropped")
    encoding = "utf-8"

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.dropped = 0

    def write(self, text: object) -> int:
        if type(text) is not str:
            if not isinstance(text, str):
                raise TypeError(f"write() argument must be str, not {type(text).__name__}")
            text = str.__str__(text)  # an exact copy: no user __str__ runs
        room = self.limit - self.size
        if room > 0:
            part = text[:room]
            self.parts.append(part)
            self.size += len(part)
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)

    def flush(self) -> None:
        return None

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n… [output truncated: {self.dropped:,} more characters]"
        return text


def _utf8(text: str) -> str:
    """Lone surrogates cannot be stored in SQLite: make them visible instead."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def _refuse(name: object) -> bool:
    return (
        type(name) is not str or (name.startswith("_") and name not in _UNDERSCORE_OK) or name in _FRAME_ATTRS
    )


def _safe_getattr(obj: object, name: str, *default: object) -> object:
    if _refuse(name):
        raise AttributeError(f"access to attribute {name!r} is not allowed in an eval")
    return getattr(obj, name, *default)


def _safe_hasattr(obj: object, name: str) -> bool:
    if _refuse(name):
        raise AttributeError(f"access to attribute {name!r} is not allowed in an eval")
    return hasattr(obj, name)


def _safe_setattr(obj: object, name: str, value: object) -> None:
    if _refuse(name):
        raise AttributeError(f"setting attribute {name!r} is not allowed in an eval")
    setattr(obj, name, value)


def _safe_delattr(obj: object, name: str) -> None:
    if _refuse(name):
        raise AttributeError(f"deleting attribute {name!r} is not allowed in an eval")
    delattr(obj, name)


def _proxy(name: str) -> types.ModuleType:
    """A fresh module holding only the public, non-module attributes of an allowed module."""
    real = importlib.import_module(name)  # before lockdown: imports are blocked after
    proxy = types.ModuleType(name, real.__doc__)
    for key, value in vars(real).items():
        if not key.startswith("_") and not isinstance(value, types.ModuleType):
            setattr(proxy, key, value)
    return proxy


def _build_proxies() -> dict[str, types.ModuleType]:
    proxies = {name: _proxy(name) for name in ALLOWED_MODULES}
    proxies["collections"].abc = proxies["collections.abc"]  # type: ignore[attr-defined]
    return proxies


def _make_import(proxies: dict[str, types.ModuleType]) -> typing.Callable[..., types.ModuleType]:
    def restricted_import(
        name: str, globals: object = None, locals: object = None, fromlist: object = (), level: int = 0
    ) -> types.ModuleType:
        if level != 0:
            raise ImportError("relative imports are not allowed in an eval")
        if name not in proxies:
            raise ImportError(f"{name} is not allowed (allowed: {_ALLOWED_TEXT})")
        return proxies[name] if fromlist else proxies[name.partition(".")[0]]

    return restricted_import


def _safe_builtins(proxies: dict[str, types.ModuleType]) -> dict[str, object]:
    table: dict[str, object] = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
    for name, value in vars(builtins).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            table[name] = value
    table.update(
        getattr=_safe_getattr,
        hasattr=_safe_hasattr,
        setattr=_safe_setattr,
        delattr=_safe_delattr,
        __import__=_make_import(proxies),
    )
    return table


class _Guard:
    """The audit hook and its state: out of the eval's reach (no dunders, no frames, no sys)."""

    def __init__(self) -> None:
        self.locked = False
        self.trusted = False  # set while the worker itself reads a traceback or a message
        self.exec_ok: object = None  # the one code object allowed to run next

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.locked or event in _ALLOWED_EVENTS:
            return
        if self.trusted and event in ("object.__getattr__", "marshal.loads"):
            return
        if event == "compile" and args:
            source = args[0]
            if isinstance(source, bytes):
                source = source.decode("utf-8", "replace")
            if isinstance(source, str) and _NAMEDTUPLE_SRC.fullmatch(source):
                self.exec_ok = "namedtuple"
                return
        if event == "exec" and self.exec_ok is not None:
            allowed, self.exec_ok = self.exec_ok, None
            if allowed == "namedtuple" or (args and args[0] is allowed):
                return
        raise PermissionError(f"{event} is blocked by the iofold sandbox")


def _drop_privileges() -> None:
    """A root worker becomes ``nobody``, so RLIMIT_NPROC applies and the user's files are not writable."""
    if os.geteuid() != 0:
        return
    try:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    except OSError:
        pass  # best effort (e.g. a user namespace without that id); the other layers still hold


def _set_limit(which: int, soft: int) -> None:
    try:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY and soft > hard:
            soft = hard
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


class Sandbox:
    def __init__(self, init: dict[str, typing.Any], max_fd: int, guard: _Guard) -> None:
        self.code: str = init["code"]
        self.func_name: str = init["func"]
        self.timeout_s: float = float(init["timeout_s"])
        self.memory_mb: int = int(init["memory_mb"])
        self.limit: int = int(init["output_limit"])
        self.disabled = frozenset(init.get("disable", ()))  # tests switch layers off to prove the others
        self.kill_after = float(init.get("kill_after", self.timeout_s + 1))
        self.memory_error = f"memory limit {self.memory_mb} MB exceeded (MemoryError)"
        self.max_fd = max_fd
        self.guard = guard
        self.fired = False
        self.armed = False
        self.quiet = _Capture(0)
        self.func: typing.Callable[[dict[str, object]], object] | None = None
        self.lines = self.code.splitlines()

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self) -> str | None:
        """Returns None when ready, else the problem (an exception in the module code, no function...)."""
        datetime.datetime.strptime("2000", "%Y")  # _strptime is imported lazily: load it before lockdown
        collections.namedtuple("_Warm", "a")
        proxies = _build_proxies()
        user_globals: dict[str, object] = {"__name__": "eval", "__builtins__": builtins.__dict__}
        if "builtins" not in self.disabled:
            user_globals["__builtins__"] = _safe_builtins(proxies)
        code = compile(self.code, "<eval>", "exec")
        signal.signal(signal.SIGPROF, self._on_timer)
        sys.stdout = sys.stderr = self.quiet
        self._lockdown()
        self.guard.exec_ok = code
        problem = self._timed(lambda: exec(code, user_globals))
        if problem:
            return f"the eval's module code failed: {problem}"
        func = user_globals.get(self.func_name)
        if not callable(func):
            return f"{self.func_name} is not a function"
        self.func = func  # type: ignore[assignment]
        return None

    def _lockdown(self) -> None:
        if "rlimits" not in self.disabled:
            _drop_privileges()
            _set_limit(resource.RLIMIT_CORE, 0)
            _set_limit(resource.RLIMIT_FSIZE, 0)
            _set_limit(resource.RLIMIT_NOFILE, self.max_fd + 1)
            _set_limit(resource.RLIMIT_NPROC, 0)
            _set_limit(resource.RLIMIT_AS, self.memory_mb * 1024 * 1024)
        if "audit" not in self.disabled:
            sys.addaudithook(self.guard.hook)
            self.guard.locked = True

    # -- running ----------------------------------------------------------------------------------------
    def _on_timer(self, signum: int, frame: object) -> None:
        if self.armed:  # a late tick after disarming must not escape into the worker's own code
            self.fired = True
            raise _Timeout

    def _arm(self) -> None:
        self.fired = False
        if "rlimits" not in self.disabled:  # backstop if the timer is swallowed and the parent is gone
            usage = resource.getrusage(resource.RUSAGE_SELF)
            used = usage.ru_utime + usage.ru_stime
            _set_limit(resource.RLIMIT_CPU, int(used + self.kill_after) + 2)
        self.armed = True
        signal.setitimer(signal.ITIMER_PROF, self.timeout_s)

    def _timed(self, body: typing.Callable[[], object]) -> str | None:
        """Runs ``body`` under the CPU timer; returns an error message or None."""
        try:
            self._arm()
            try:
                body()
                error = None
            except _Timeout:
                raise
            except MemoryError:
                error = self.memory_error
            except BaseException as exc:  # the eval's own exceptions, SystemExit included
                error = self._describe(exc)
        except _Timeout:
            error = None
        finally:
            self.armed = False
            signal.setitimer(signal.ITIMER_PROF, 0)
        if self.fired:  # also when the eval caught the timeout and carried on
            return f"timeout after {self.timeout_s} s"
        return error

    def run_one(self, trace_id: str, steps_src: str | bytes | None) -> list[object]:
        out, err = _Capture(self.limit), _Capture(self.limit)
        state: dict[str, object] = {"result": None, "reason": "", "ms": 0, "error": None}

        def body() -> None:
            steps: object = []
            if steps_src is None:
                state["error"] = "invalid steps JSON: steps is NULL"
            else:
                try:
                    steps = json.loads(steps_src)
                except (ValueError, RecursionError) as exc:
                    state["error"] = f"invalid steps JSON: {exc}"
            start = time.perf_counter()
            try:
                value = self.func({"trace_id": trace_id, "steps": steps})  # type: ignore[misc]
            finally:
                state["ms"] = round((time.perf_counter() - start) * 1000)
            ok, result, reason = self._check_result(value)
            state["reason"] = reason
            if not ok:
                state["error"] = reason
                state["reason"] = ""
            elif state["error"] is None:
                state["result"] = result

        sys.stdout, sys.stderr = out, err
        try:
            problem = self._timed(body)
        finally:
            sys.stdout = sys.stderr = self.quiet
        if problem:
            state["error"], state["result"], state["reason"] = problem, None, ""
        error = state["error"]
        return [
            state["result"],
            _utf8(str(state["reason"])),
            state["ms"],
            None if error is None else _utf8(_cap(str(error), _ERROR_CAP)),
            _utf8(out.getvalue()),
            _utf8(err.getvalue()),
        ]

    def _check_result(self, value: object) -> tuple[bool, bool | None, str]:
        """(ok, result, reason-or-error). Exact types only, so no user __len__/__getitem__ runs."""
        if type(value) in (tuple, list) and len(value) == 2:  # type: ignore[arg-type]
            verdict, reason = value  # type: ignore[misc]
            if type(verdict) is bool and isinstance(reason, str):
                return True, verdict, _cap(str.__str__(reason), self.limit)
            kinds = f"{type(value).__name__} ({type(verdict).__name__}, {type(reason).__name__})"
        elif type(value) in (tuple, list):
            kinds = f"{type(value).__name__} of {len(value)} items"  # type: ignore[arg-type]
        else:
            kinds = "None" if value is None else type(value).__name__
        return False, None, f"bad return type: expected (bool, str), got {kinds}"

    def _describe(self, exc: BaseException) -> str:
        """``Type: message (line N: source)`` for the deepest frame of the eval's own code."""
        name = type(exc).__name__
        try:
            message = _cap(str(exc), 1000)
        except BaseException:  # a hostile __str__
            message = "<unprintable>"
        line = None
        self.guard.trusted = True
        try:
            tb = exc.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == "<eval>":
                    line = tb.tb_lineno
                tb = tb.tb_next
        finally:
            self.guard.trusted = False
        text = f"{name}: {message}" if message else name
        if line is not None:
            source = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
            text += f" (line {line}: {_cap(source, 200)})" if source else f" (line {line})"
        return text


class _Channel:
    def __init__(self, rfd: int, wfd: int, guard: _Guard) -> None:
        self.rfd, self.wfd, self.guard = rfd, wfd, guard

    def _read_exact(self, size: int) -> bytes | None:
        chunks: list[bytes] = []
        while size:
            chunk = os.read(self.rfd, min(size, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> typing.Any:
        header = self._read_exact(_HEADER.size)
        if header is None:
            return None
        body = self._read_exact(_HEADER.unpack(header)[0])
        if body is None:
            return None
        self.guard.trusted = True
        try:
            return marshal.loads(body)
        finally:
            self.guard.trusted = False

    def send(self, message: object) -> None:
        body = "".join(_ENCODE(message, 0)).encode("utf-8")
        data = memoryview(_HEADER.pack(len(body)) + body)
        while data:
            data = data[os.write(self.wfd, data) :]


def main() -> None:
    # The protocol moves to private descriptors; 0/1/2 point at /dev/null, so nothing the eval could
    # reach writes into the protocol stream.
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    max_fd = max(rfd, wfd)
    os.closerange(max_fd + 1, 4096)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    guard = _Guard()
    channel = _Channel(rfd, wfd, guard)
    try:
        _serve(channel, guard, max_fd)
    except BaseException as exc:  # tell the parent why, instead of dying silently
        channel.send(["crash", _utf8(f"{type(exc).__name__}: {exc}"[:_ERROR_CAP])])
        raise SystemExit(1) from None


def _serve(channel: _Channel, guard: _Guard, max_fd: int) -> None:
    init = channel.receive()
    if init is None:
        return
    sandbox = Sandbox(init, max_fd, guard)
    try:
        problem = sandbox.setup()
    except SyntaxError as exc:
        problem = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if problem:
        channel.send(["setup_error", _utf8(_cap(problem, _ERROR_CAP))])
        return
    channel.send(["ready", sandbox.func_name])
    while True:
        batch = channel.receive()
        if batch is None:
            return
        for index, (trace_id, steps) in enumerate(batch):
            try:
                row = sandbox.run_one(trace_id, steps)
            except _Timeout:  # the tick landed between the eval's end and disarming
                row = [None, "", 0, f"timeout after {sandbox.timeout_s} s", "", ""]
            channel.send([index, *row])
            if row[3] == sandbox.memory_error:
                # A fresh worker (fresh module globals, unfragmented heap) takes over the rest.
                channel.send(["retire"])
                return


if __name__ == "__main__":
    main()
