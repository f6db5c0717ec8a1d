"""The local eval sandbox: run an iofold eval function over traces, safely and fast (headless core).

    with EvalRunner(code, name, jobs=2) as runner:
        for result in runner.run((trace_id, steps_json) for ...):   # results arrive as they complete
            ...

Contract (spec §4): the function called is the top-level ``def`` named ``name`` when there is one, else
the last top-level ``def``; it gets ``{"trace_id": ..., "steps": [...]}`` and must return a pair
``(bool, str)``. A tuple or a list of two is accepted (JSON-minded authors return lists; the meaning is
unambiguous); anything else is an error. Invalid steps JSON: the eval still runs with ``steps = []`` (so
its output can be inspected) but the result is an error ``invalid steps JSON: ...``.

Defence in depth, each layer tested by a hostile eval in tests/test_sandbox.py:
  1. static AST check (this module): imports, dunders, frame attributes, forbidden builtins;
  2. run time, in a separate worker process (``worker.py``): minimal builtins, proxy modules,
     an allow-list audit hook, rlimits (memory, files, fds, processes, CPU), a per-trace CPU timer;
  3. this process kills a worker that overruns the wall clock, and replaces any worker that dies.
Workers are reused across traces and get batches of traces per round-trip.
"""

from __future__ import annotations

import ast
import contextlib
import json
import marshal
import os
import re
import selectors
import signal
import string
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- static check -----------------------------------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ``__future__`` only carries compiler flags (``from __future__ import annotations`` is common).
ALLOWED_MODULES = _names("json re typing math datetime difflib collections collections.abc __future__")
_ALLOWED_TEXT = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
MAX_CODE_CHARS = 1_000_000
# Builtins that are absent from the sandbox on purpose; flagged only when the code never binds the name
# itself (``input = step["input"]`` is fine).
_FORBIDDEN_NAMES = _names("eval exec compile open globals locals vars breakpoint input help exit quit")
_ALLOWED_DUNDER_NAMES = frozenset({"__name__"})
_UNDERSCORE_OK = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})
# Attributes without underscores that still lead to frames (and from there to real globals).
_FRAME_ATTRS = _names(
    "gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await cr_origin ag_frame ag_code ag_await "
    "f_back f_globals f_locals f_builtins f_code f_trace tb_frame tb_next func_globals"
)
_DUNDER = re.compile(r"__\w+__")
_FIELD_ATTR = re.compile(r"\.\s*(\w+)")


def _attr_problem(attr: str, owner: ast.expr) -> str | None:
    if _DUNDER.fullmatch(attr):
        return f"attribute {attr!r} is not allowed"
    if attr in _FRAME_ATTRS:
        return f"attribute {attr!r} is not allowed (frame access)"
    if attr.startswith("_") and attr not in _UNDERSCORE_OK:
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
            if attr.startswith("_") or attr in _FRAME_ATTRS:
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


def _node_problem(node: ast.AST, bound: set[str]) -> str | None:
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
        if _DUNDER.fullmatch(node.id) and node.id not in _ALLOWED_DUNDER_NAMES:
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
    for node in ast.walk(tree):
        problem = _node_problem(node, bound)
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


# -- runner ---------------------------------------------------------------------------------------------

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
STARTUP_TIMEOUT_S = 10.0  # interpreter start + imports + the eval's module code
_HEADER = struct.Struct(">I")
_TESTING_LAYERS = frozenset({"builtins", "audit", "rlimits"})


@dataclass(frozen=True, slots=True)
class ExecResult:
    """The outcome of one eval on one trace; ``result`` is None exactly when ``error`` is set."""

    trace_id: str
    result: bool | None
    reason: str
    execution_time_ms: int
    error: str | None
    stdout: str
    stderr: str


class EvalCodeError(ValueError):
    """The eval cannot run at all (static problems, or its module code failed); ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SandboxError(RuntimeError):
    """The sandbox itself failed: a worker cannot start, or the runner is closed."""


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def _death_message(returncode: int | None, timeout_s: float) -> str:
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return f"timeout after {timeout_s} s (CPU limit)"
        try:
            return f"worker crashed ({signal.Signals(sig).name})"
        except ValueError:
            return f"worker crashed (signal {sig})"
    return f"worker exited unexpectedly (code {returncode})"


class _Worker:
    """One worker process, its read buffer and the traces sent to it that have no result yet."""

    def __init__(self, init_frame: bytes, max_frame: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # Ctrl-C in the terminal is for the app, which then stops us
            cwd="/",
            env={},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.rfd = self.proc.stdout.fileno()
        os.set_blocking(self.rfd, False)
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.pending: deque[tuple[str, Any]] = deque()
        self.state = "starting"  # -> idle <-> busy; dead once killed
        self.done = 0  # results received for the current batch
        self.deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self.last = time.monotonic()
        self.send(init_frame)

    def send(self, data: bytes) -> bool:
        """Blocking write (the worker is waiting for it); False when the worker is gone."""
        assert self.proc.stdin is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.proc.stdin.fileno(), view) :]
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self) -> tuple[list[Any], bool]:
        """Complete messages available now, and whether the worker closed its end (died)."""
        eof = False
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        messages: list[Any] = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if size > self.max_frame:
                raise ValueError(f"oversized message ({size:,} bytes)")
            if len(self.buffer) < _HEADER.size + size:
                break
            body = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            messages.append(json.loads(body))  # JSON, never pickle/marshal: the worker is untrusted
        return messages, eof

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        self.state = "dead"


def _row_to_result(trace_id: str, row: Any) -> ExecResult:
    """Validates a worker's result row strictly (it comes from a process running hostile code)."""
    if not (isinstance(row, list) and len(row) == 7):
        raise ValueError("malformed result row")
    _, result, reason, ms, error, out, err = row
    if not (
        (result is None or isinstance(result, bool))
        and isinstance(reason, str)
        and isinstance(ms, int)
        and (error is None or isinstance(error, str))
        and isinstance(out, str)
        and isinstance(err, str)
        and (result is None) == (error is not None)
    ):
        raise ValueError("malformed result row")
    return ExecResult(trace_id, result, reason, max(ms, 0), error, out, err)


class EvalRunner:
    """Runs one eval's code in ``jobs`` reusable worker processes. A context manager.

    ``run()`` may be called from any single thread (e.g. a TUI thread worker); ``cancel()`` from any
    other thread. Raises EvalCodeError at construction when the eval cannot run at all.
    """

    def __init__(
        self,
        code: str,
        name: str | None = None,
        *,
        jobs: int | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
        output_limit: int = 65536,
        batch_size: int = 64,
        _disable_layers: frozenset[str] = frozenset(),  # tests only: prove each layer on its own
    ) -> None:
        if timeout_s <= 0 or memory_mb < 16 or output_limit < 0:
            raise ValueError("timeout_s must be > 0, memory_mb >= 16 and output_limit >= 0")
        func, problems = analyse(code, name)
        if "static" in _disable_layers and func is not None:
            problems = []
        if problems or func is None:
            raise EvalCodeError(problems)
        if not _disable_layers <= _TESTING_LAYERS | {"static"}:
            raise ValueError(f"unknown layers: {sorted(_disable_layers)}")
        self.function_name = func
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.batch_size = max(1, batch_size)
        # The wall-clock kill comes a little after the worker's own CPU timer had its chance.
        self.kill_after = timeout_s + min(1.0, max(0.5, 0.2 * timeout_s))
        self._init_frame = _frame(
            marshal.dumps(
                {
                    "code": code,
                    "func": func,
                    "timeout_s": float(timeout_s),
                    "memory_mb": int(memory_mb),
                    "output_limit": int(output_limit),
                    "kill_after": self.kill_after,
                    "disable": sorted(_disable_layers - {"static"}),
                }
            )
        )
        self._max_frame = 12 * (3 * output_limit + 8000) + 4096  # JSON-escaped worst case
        self._cancel = threading.Event()
        self._run_lock = threading.Lock()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._workers: list[_Worker] = []
        try:
            for _ in range(self.jobs):
                self._workers.append(self._spawn())
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    # -- life cycle ---------------------------------------------------------------------------------
    def __enter__(self) -> EvalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Thread-safe: the running ``run()`` stops promptly and kills its workers. Final."""
        self._cancel.set()
        with contextlib.suppress(OSError):  # pipe full (already woken) or closed
            os.write(self._wake_w, b"x")

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            self._drop(worker)
        self._workers.clear()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- workers ------------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        try:
            worker = _Worker(self._init_frame, self._max_frame)
        except OSError as exc:
            raise SandboxError(f"cannot start a sandbox worker: {exc}") from exc
        self._selector.register(worker.rfd, selectors.EVENT_READ, worker)
        return worker

    def _drop(self, worker: _Worker) -> None:
        if worker.state != "dead":
            self._selector.unregister(worker.rfd)
            worker.kill()

    def _replace(self, worker: _Worker) -> None:
        self._drop(worker)
        self._workers[self._workers.index(worker)] = self._spawn()

    def _on_startup_message(self, worker: _Worker, message: Any) -> None:
        if isinstance(message, list) and message[:1] == ["ready"]:
            worker.state = "idle"
            worker.deadline = float("inf")
        elif isinstance(message, list) and len(message) == 2 and message[0] == "setup_error":
            raise EvalCodeError([str(message[1])])
        elif isinstance(message, list) and len(message) == 2 and message[0] == "crash":
            raise SandboxError(f"sandbox worker failed to start: {str(message[1])[:300]}")
        else:
            raise SandboxError("sandbox worker sent an unexpected message during start-up")

    def _wait_ready(self) -> None:
        while any(w.state == "starting" for w in self._workers):
            timeout = min(w.deadline for w in self._workers) - time.monotonic()
            for key, _ in self._selector.select(max(timeout, 0)):
                worker = key.data
                if worker is None:
                    continue
                messages, eof = worker.receive()
                for message in messages:
                    self._on_startup_message(worker, message)
                if eof and worker.state == "starting":
                    raise SandboxError(
                        f"sandbox worker failed to start: {_death_message(worker.proc.wait(), self.timeout_s)}"
                    )
            if any(w.state == "starting" and w.deadline <= time.monotonic() for w in self._workers):
                raise SandboxError(f"sandbox worker did not start within {STARTUP_TIMEOUT_S:g} s")

    # -- running ------------------------------------------------------------------------------------
    def run(self, traces: Iterable[tuple[str, str | bytes | None]]) -> Iterator[ExecResult]:
        """Runs the eval over ``(trace_id, steps_json)`` pairs (read lazily); yields results as they
        complete, so *not* in input order. Stops early, without a result for the rest, on cancel()."""
        if self._closed:
            raise SandboxError("the eval runner is closed")
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError("EvalRunner.run() is already in progress")
        finished = False
        try:
            yield from self._run(iter(traces))
            finished = True
        finally:
            self._run_lock.release()
            if not self._closed and (self._cancel.is_set() or not finished):
                # Cancelled or abandoned mid-run: busy workers hold stale work.
                for worker in list(self._workers):
                    if self._cancel.is_set():
                        self._drop(worker)
                    elif worker.state == "busy":
                        worker.pending.clear()
                        self._replace(worker)

    def _run(self, source: Iterator[tuple[str, Any]]) -> Iterator[ExecResult]:
        retry: deque[tuple[str, Any]] = deque()  # traces a dead worker left unfinished
        exhausted = False
        self._start_failures = 0
        while not self._cancel.is_set():
            for worker in self._workers:
                if worker.state != "idle":
                    continue
                batch: list[tuple[str, Any]] = []
                while retry and len(batch) < self.batch_size:
                    batch.append(retry.popleft())
                while not exhausted and len(batch) < self.batch_size:
                    try:
                        trace_id, steps = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    if steps is not None and not isinstance(steps, str | bytes):
                        steps = bytes(steps) if isinstance(steps, memoryview | bytearray) else str(steps)
                    batch.append((str(trace_id), steps))
                if not batch:
                    break
                self._dispatch(worker, batch)
            active = [w for w in self._workers if w.state in ("busy", "starting")]
            if not any(w.state == "busy" for w in active) and exhausted and not retry:
                return
            now = time.monotonic()
            timeout = max(0.0, min((w.deadline for w in active), default=now) - now)
            results: list[ExecResult] = []
            heard: set[int] = set()
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    self._drain_wake()
                else:
                    heard.add(id(key.data))
                    self._collect(key.data, results, retry)
            now = time.monotonic()
            for worker in list(self._workers):
                if (
                    worker.state in ("busy", "starting")
                    and worker.deadline <= now
                    and id(worker) not in heard
                ):
                    self._fail(worker, f"timeout after {self.timeout_s} s", results, retry)
            for result in results:
                if self._cancel.is_set():
                    return
                yield result

    def _dispatch(self, worker: _Worker, batch: list[tuple[str, Any]]) -> None:
        worker.pending.extend(batch)
        worker.done = 0
        worker.state = "busy"
        worker.last = time.monotonic()
        worker.deadline = worker.last + self.kill_after
        # A failed write means the worker died; its EOF arrives through the selector.
        worker.send(_frame(marshal.dumps(batch)))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _collect(self, worker: _Worker, results: list[ExecResult], retry: deque[tuple[str, Any]]) -> None:
        try:
            messages, eof = worker.receive()
            for message in messages:
                if worker.state == "starting":
                    if not (isinstance(message, list) and message[:1] == ["ready"]):
                        self._fail(worker, f"worker failed to start: {str(message)[:300]}", results, retry)
                        return
                    worker.state, worker.deadline = "idle", float("inf")
                    self._start_failures = 0
                    continue
                if isinstance(message, list) and len(message) == 2 and message[0] == "crash":
                    self._fail(worker, f"sandbox worker failed: {str(message[1])[:300]}", results, retry)
                    return
                if message == ["retire"]:  # the worker asks to be replaced (after a MemoryError)
                    retry.extendleft(reversed(worker.pending))
                    worker.pending.clear()
                    self._replace(worker)
                    return
                if not worker.pending or not isinstance(message, list) or message[:1] != [worker.done]:
                    raise ValueError("unexpected message")
                trace_id, _ = worker.pending[0]
                results.append(_row_to_result(trace_id, message))
                worker.pending.popleft()
                worker.done += 1
                worker.last = time.monotonic()
                worker.deadline = worker.last + self.kill_after
                if not worker.pending:
                    worker.state, worker.deadline = "idle", float("inf")
        except ValueError as exc:  # JSONDecodeError included: a worker that breaks the protocol is killed
            self._fail(worker, f"sandbox protocol error: {exc}", results, retry)
            return
        if eof:
            self._fail(worker, _death_message(worker.proc.wait(), self.timeout_s), results, retry)

    def _fail(
        self, worker: _Worker, error: str, results: list[ExecResult], retry: deque[tuple[str, Any]]
    ) -> None:
        """The worker is killed and replaced; its current trace gets ``error``, the rest are retried."""
        if worker.state == "starting":
            self._start_failures += 1
            if self._start_failures > 3:
                raise SandboxError(f"sandbox workers keep failing to start: {error}")
        elif worker.pending:
            trace_id, _ = worker.pending.popleft()
            elapsed_ms = round((time.monotonic() - worker.last) * 1000)
            results.append(ExecResult(trace_id, None, "", elapsed_ms, error, "", ""))
            retry.extendleft(reversed(worker.pending))
            worker.pending.clear()
        self._replace(worker)
