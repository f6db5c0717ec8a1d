"""The eval sandbox worker: runs one eval function over batches of traces inside several layers.

Started by ``sandbox.EvalRunner`` as ``python -I -S worker/main.py`` in a session (process group) of
its own, with an empty environment, ``/`` as its directory and no descriptor but its two pipes. Stdlib
only: it must not import iofold_tui. The order of events is the security argument:

  1. read the set-up message (the code, limits, the seccomp program) and preload every module the eval
     may use (after step 2 nothing can be read from disk);
  2. ``confine.confine``: the operating system's layers; their report goes to the parent, which stops
     here unless they are enough, before any eval code is compiled;
  3. the Python layers: module proxies (``proxies``), minimal builtins (``restrict``), the audit hook
     (``audit``);
  4. compile (``dont_inherit``: not this file's ``__future__`` flags) and run the eval's module code, then
     one trace after another under a CPU timer.

Protocol: parent -> worker frames are a 4-byte big-endian length + ``marshal`` (the parent is trusted);
worker -> parent frames are a length + JSON (the parent must never unmarshal what this process sends).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves this folder out

import _json
import collections
import datetime
import json
import marshal
import resource
import signal
import struct
import time
import types
import typing

if typing.TYPE_CHECKING:
    from iofold_tui.data.evalrun.worker import audit, confine, proxies, restrict
else:  # run as a script with -I: its siblings are top-level modules (see sys.path above)
    import audit
    import confine
    import proxies
    import restrict

_HEADER = struct.Struct(">I")
_ERROR_CAP = 4000
LINE_OFFSET = restrict.LINE_OFFSET


def _not_serialisable(value: object) -> object:
    raise TypeError(f"cannot send {type(value).__name__}")


# The protocol encoder is the C one, bound now: the eval may monkeypatch json.JSONEncoder (a plain
# Python class) for its own use, but cannot change what the worker tells the parent.
_ENCODE = _json.make_encoder(
    None, _not_serialisable, _json.encode_basestring, None, ":", ",", False, False, True
)


class _Timeout(BaseException):
    """Raised by the per-trace CPU timer; a BaseException so a plain ``except Exception`` misses it."""


class _Capture:
    """A write-only text sink for print(), capped at ``limit`` characters (the rest is counted)."""

    __slots__ = ("dropped", "limit", "parts", "size")
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


def _preload() -> None:
    """Everything the allowed modules load lazily, loaded now: after confinement no file can be read."""
    datetime.datetime.strptime("2000", "%Y")
    time.localtime()
    collections.namedtuple("_Warm", "a")
    "x".encode("latin-1").decode("cp1252")
    # Non-ASCII names: the parser imports unicodedata.
    compile("\u00e9 = 0", "<preload>", "exec", dont_inherit=True)


class Sandbox:
    def __init__(self, init: dict[str, typing.Any], max_fd: int) -> None:
        self.code: str = init["code"]
        self.func_name: str = init["func"]
        self.timeout_s: float = float(init["timeout_s"])
        self.memory_mb: int = int(init["memory_mb"])
        self.limit: int = int(init["output_limit"])
        self.disabled = frozenset(init.get("disable", ()))  # tests switch layers off to prove the others
        self.kill_after = float(init.get("kill_after", self.timeout_s + 1))
        self.cpu_budget_s = int(init.get("cpu_budget_s", 600))
        self.memory_error = f"memory limit {self.memory_mb} MB exceeded (MemoryError)"
        self.max_fd = max_fd
        self.fired = False
        self.armed = False
        self.quiet = _Capture(0)
        self.func: typing.Callable[[dict[str, object]], object] | None = None
        self.lines = self.code.splitlines()
        self.code_object: bytes = init["code_object"]
        self.bpf: bytes | None = init.get("bpf")
        self.bpf_detail = str(init.get("bpf_detail", ""))
        self.proxies: dict[str, typing.Any] = {}

    # -- set-up ---------------------------------------------------------------------------------------
    def confine(self, parent: int) -> confine.Report:
        _preload()
        self.proxies = proxies.build_proxies()
        spec = {
            "memory_bytes": self.memory_mb * 1024 * 1024,
            "cpu_s": self.cpu_budget_s,
            "disable": [name for name in confine.LAYERS if name in self.disabled],
            "bpf": None if "seccomp" in self.disabled else self.bpf,
            "bpf_detail": self.bpf_detail,
        }
        return confine.confine(spec, self.max_fd, parent)

    def setup(self) -> str | None:
        """Returns None when ready, else the problem (an exception in the module code, no function...)."""
        # The eval's namespace is a module in sys.modules: dataclasses reads string annotations (``from
        # __future__ import annotations``) in sys.modules[cls.__module__] and failed on None without it.
        module = types.ModuleType("eval")
        sys.modules["eval"] = module
        user_globals: dict[str, object] = module.__dict__
        user_globals["__builtins__"] = __builtins__
        if "builtins" not in self.disabled:
            user_globals["__builtins__"] = restrict.safe_builtins(self.proxies)
        code = marshal.loads(self.code_object)  # compiled by the app (restrict.compile_eval)
        if not isinstance(code, types.CodeType):
            return "the app sent no code object"
        signal.signal(signal.SIGPROF, self._on_timer)
        sys.stdout = sys.stderr = self.quiet
        if "audit" not in self.disabled:
            audit.install_audit_hook(code)
        problem = self._timed(lambda: exec(code, user_globals))
        if problem:
            return f"the eval's module code failed: {problem}"
        func = user_globals.get(self.func_name)
        if not callable(func):
            return f"{self.func_name} is not a function"
        self.func = func
        return None

    # -- running ----------------------------------------------------------------------------------------
    def _on_timer(self, signum: int, frame: object) -> None:
        if self.armed:  # a late tick after disarming must not escape into the worker's own code
            self.fired = True
            raise _Timeout

    def budget_left(self) -> bool:
        """False when the next trace could run into the hard CPU limit: the worker retires first."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime + self.kill_after + 2 < self.cpu_budget_s

    def _timed(self, body: typing.Callable[[], object]) -> str | None:
        """Runs ``body`` under the CPU timer; returns an error message or None."""
        try:
            self.fired = False
            self.armed = True
            signal.setitimer(signal.ITIMER_PROF, self.timeout_s)
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
        if (type(value) is tuple or type(value) is list) and len(value) == 2:
            verdict: object = value[0]
            reason: object = value[1]
            if type(verdict) is bool and isinstance(reason, str):
                return True, verdict, _cap(str.__str__(reason), self.limit)
            kinds = f"{type(value).__name__} ({type(verdict).__name__}, {type(reason).__name__})"
        elif type(value) in (tuple, list):
            kinds = f"{type(value).__name__} of {len(value)} items"  # type: ignore[arg-type]
        else:
            kinds = "None" if value is None else type(value).__name__
        return False, None, f"bad return type: expected (bool, str), got {kinds}"

    def _describe(self, exc: BaseException) -> str:
        """``Type: message (line N: source)`` for the deepest line of the eval's own code."""
        name = type(exc).__name__
        try:
            message = _cap(str(exc), 1000)
        except BaseException:  # a hostile __str__
            message = "<unprintable>"
        line = None
        tb = exc.__traceback__
        for _ in range(10_000):  # tb_lineno and tb_next are not audited; tb_frame would be
            if tb is None:
                break
            if tb.tb_lineno >= LINE_OFFSET:
                line = tb.tb_lineno - LINE_OFFSET
            tb = tb.tb_next
        text = f"{name}: {message}" if message else name
        if line is not None:
            source = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
            text += f" (line {line}: {_cap(source, 200)})" if source else f" (line {line})"
        return text


class _Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd

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
        return None if body is None else marshal.loads(body)

    def send(self, message: object) -> None:
        body = "".join(_ENCODE(message, 0)).encode("utf-8")
        data = memoryview(_HEADER.pack(len(body)) + body)
        while data:
            data = data[os.write(self.wfd, data) :]


def main() -> None:
    # The protocol moves to private descriptors; 0/1/2 point at /dev/null, so nothing the eval could
    # reach writes into the protocol stream.
    parent = os.getppid()
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    max_fd = max(rfd, wfd)
    os.closerange(max_fd + 1, 4096)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    channel = _Channel(rfd, wfd)
    try:
        _serve(channel, max_fd, parent)
    except BaseException as exc:  # tell the parent why, instead of dying silently
        channel.send(["crash", _utf8(f"{type(exc).__name__}: {exc}"[:_ERROR_CAP])])
        raise SystemExit(1) from None


def _serve(channel: _Channel, max_fd: int, parent: int) -> None:
    init = channel.receive()
    if init is None:
        return
    sandbox = Sandbox(init, max_fd)
    report = sandbox.confine(parent)
    channel.send(["confined", {name: [active, _utf8(detail)] for name, (active, detail) in report.items()}])
    if channel.receive() != "go":  # the parent decides whether these layers are enough
        return
    problem = sandbox.setup()
    if problem:
        channel.send(["setup_error", _utf8(_cap(problem, _ERROR_CAP))])
        return
    channel.send(["ready", sandbox.func_name])
    while True:
        batch = channel.receive()
        if batch is None:
            return
        for index, (trace_id, steps) in enumerate(batch):
            if not sandbox.budget_left():
                channel.send(["retire"])  # a fresh worker takes over before the hard CPU limit hits
                return
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
