"""The local eval sandbox: run an iofold eval function over traces, safely and fast (headless core).

    with EvalRunner(code, name, jobs=2) as runner:
        for result in runner.run((trace_id, steps_json) for ...):   # results arrive as they complete
            ...

Contract (spec §4): the function called is the top-level ``def`` named ``name`` when there is one, else
the last top-level ``def``; it gets ``{"trace_id": ..., "steps": [...]}`` and must return a pair
``(bool, str)``. A tuple or a list of two is accepted (JSON-minded authors return lists; the meaning is
unambiguous); anything else is an error. Invalid steps JSON: the eval still runs with ``steps = []`` (so
its output can be inspected) but the result is an error ``invalid steps JSON: ...``.

The boundary is the operating system (``worker/confine.py``, ``confinement.py``): every worker is
confined (seccomp allow-list, Landlock with no filesystem access, hard rlimits, no_new_privs, a user and
network namespace where the kernel allows it) before any eval code is compiled, and a runner refuses to
start when a required layer is missing unless the caller passes ``unconfined=True``. Under it, defence in
depth, each layer tested by hostile evals in tests/:
  1. static AST check (``static_check.py``): imports, dunders, frame attributes, class patterns, builtins;
  2. run time, in the worker (``worker/restrict.py``): minimal builtins, proxy modules, an allow-list
     audit hook, a per-trace CPU timer;
  3. this process kills a worker (its whole process group) that overruns the wall clock, replaces any
     worker that dies or breaks the protocol, and never blocks on a worker: writes wait in an outbox.
Workers are reused across traces and get batches of traces per round-trip.
"""

from __future__ import annotations

import contextlib
import functools
import json
import marshal
import os
import selectors
import signal
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

from iofold_tui.data.evalrun.confinement import (
    Confinement,
    parse_report,
    seccomp_program,
    verify_from_outside,
)
from iofold_tui.data.evalrun.static_check import analyse
from iofold_tui.data.evalrun.worker.restrict import LINE_OFFSET, compile_eval
from iofold_tui.data.sanitize import one_line

# -- runner ---------------------------------------------------------------------------------------------

WORKER_SCRIPT = Path(__file__).with_name("worker") / "main.py"
STARTUP_TIMEOUT_S = 10.0  # interpreter start + imports + the eval's module code
_HEADER = struct.Struct(">I")
# Layers a test may switch off to prove the others hold on their own.
_TESTING_LAYERS = frozenset(
    {"builtins", "audit", "rlimits", "identity", "namespaces", "pdeathsig", "nnp", "landlock", "seccomp"}
)
MAX_EXECUTION_MS = 2**31 - 1  # what a worker may claim; more is a protocol error, not an OverflowError
CPU_BUDGET_S = 600  # a worker's lifetime CPU (hard limit); it retires itself before reaching it


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
        self.problems = [one_line(problem, 2000) for problem in problems]  # may come from the worker
        super().__init__("; ".join(self.problems))


class SandboxError(RuntimeError):
    """The sandbox itself failed: a worker cannot start, or the runner is closed."""


class SandboxUnavailable(SandboxError):
    """The operating system does not give every required layer; ``confinement`` says which are missing.
    Nothing of the eval's code was compiled. Pass ``unconfined=True`` to run anyway."""

    def __init__(self, confinement: Confinement) -> None:
        self.confinement = confinement
        super().__init__(confinement.summary())


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


def _storable(text: str) -> str:
    """Lone surrogates (which a hostile worker can send in JSON) cannot be stored: made visible."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Worker:
    """One worker process, its buffers and the traces sent to it that have no result yet."""

    def __init__(self, init_frame: bytes, max_frame: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # its own process group, killed as one; Ctrl-C is for the app
            cwd="/",
            env={},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.rfd = self.proc.stdout.fileno()
        self.wfd = self.proc.stdin.fileno()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)  # a worker that stops reading must never block this process
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.outbox = bytearray()
        self.pending: deque[tuple[str, Any]] = deque()
        self.state = "starting"  # -> confined -> idle <-> busy; dead once killed
        self.confinement: Confinement | None = None
        self.done = 0  # results received for the current batch
        self.answered = 0  # results received in its lifetime
        self.deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self.last = time.monotonic()
        self.send(init_frame)

    def send(self, data: bytes) -> None:
        """Queues ``data`` and writes what the pipe takes now; ``flush`` writes the rest when writable."""
        self.outbox += data
        self.flush()

    def flush(self) -> bool:
        """Writes what fits without blocking; True when nothing is left (or the worker is gone)."""
        while self.outbox:
            try:
                written = os.write(self.wfd, self.outbox)
            except BlockingIOError:
                return False
            except OSError:  # the worker died; its EOF arrives through the selector
                self.outbox.clear()
                return True
            del self.outbox[:written]
        return True

    def receive(self) -> tuple[list[Any], bool]:
        """Complete messages available now, and whether the worker closed its end (died).
        Raises ValueError for anything that is not a well-formed message (the worker is then killed)."""
        eof = False
        while len(self.buffer) <= self.max_frame + _HEADER.size:
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
            try:  # JSON, never pickle/marshal: the worker is untrusted
                messages.append(json.loads(body))
            except (ValueError, RecursionError, MemoryError) as exc:  # too deep, not UTF-8, huge ints ...
                raise ValueError(f"undecodable message ({type(exc).__name__})") from None
        return messages, eof

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # and anything it might have started
            with contextlib.suppress(OSError):
                self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a member that outlived the leader
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
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
        and type(ms) is int
        and 0 <= ms <= MAX_EXECUTION_MS
        and (error is None or isinstance(error, str))
        and isinstance(out, str)
        and isinstance(err, str)
        and (result is None) == (error is not None)
    ):
        raise ValueError("malformed result row")
    return ExecResult(
        trace_id, result, _storable(reason), ms, None if error is None else _storable(error),
        _storable(out), _storable(err),
    )


class EvalRunner:
    """Runs one eval's code in ``jobs`` reusable worker processes. A context manager.

    ``run()`` may be called from any single thread (e.g. a TUI thread worker); ``cancel()`` from any
    other thread. Raises EvalCodeError at construction when the eval cannot run at all, and
    SandboxUnavailable when the OS does not confine the workers (unless ``unconfined``).
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
        unconfined: bool = False,
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
        self.unconfined = unconfined or bool(_disable_layers - {"static", "builtins", "audit"})
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.batch_size = max(1, batch_size)
        # The wall-clock kill comes a little after the worker's own CPU timer had its chance.
        self.kill_after = timeout_s + min(1.0, max(0.5, 0.2 * timeout_s))
        bpf, bpf_detail = seccomp_program()
        try:  # parsed already by analyse(); compiling cannot run any of it
            code_object = compile_eval(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line - LINE_OFFSET if line and line > LINE_OFFSET else line})" if line else ""
            raise EvalCodeError([f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}{where}"]) from None
        self._started = False  # after the first start, replacement workers get kill_after for module code
        self._init_frame = _frame(
            marshal.dumps(
                {
                    "code": code,
                    "code_object": marshal.dumps(code_object),
                    "func": func,
                    "timeout_s": float(timeout_s),
                    "memory_mb": int(memory_mb),
                    "output_limit": int(output_limit),
                    "kill_after": self.kill_after,
                    "cpu_budget_s": CPU_BUDGET_S,
                    "bpf": bpf,
                    "bpf_detail": bpf_detail,
                    "disable": sorted(_disable_layers - {"static"}),
                }
            )
        )
        self._max_frame = 12 * (3 * output_limit + 8000) + 4096  # JSON-escaped worst case
        self.confinement: Confinement | None = None
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
            self._started = True
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
        self._watch_writes(worker)
        return worker

    def _watch_writes(self, worker: _Worker) -> None:
        """Asks the selector for writability exactly while the worker's outbox holds data."""
        key = self._selector.get_map().get(worker.wfd)
        if worker.outbox and key is None:
            self._selector.register(worker.wfd, selectors.EVENT_WRITE, (worker,))
        elif not worker.outbox and key is not None:
            self._selector.unregister(worker.wfd)

    def _send(self, worker: _Worker, data: bytes) -> None:
        worker.send(data)
        self._watch_writes(worker)

    def _drop(self, worker: _Worker) -> None:
        if worker.state != "dead":
            for fd in (worker.rfd, worker.wfd):
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
            worker.kill()

    def _replace(self, worker: _Worker) -> None:
        self._drop(worker)
        self._workers[self._workers.index(worker)] = self._spawn()

    def _on_confined(self, worker: _Worker, report: Any) -> None:
        """The worker's layers are up and no eval code exists in it yet: go on, or refuse."""
        confinement = parse_report(report, verify_from_outside(worker.proc.pid))
        worker.confinement = confinement
        if self.confinement is None:
            self.confinement = confinement
        if not confinement.complete and not self.unconfined:
            raise SandboxUnavailable(confinement)
        worker.state = "confined"
        if self._started:  # a replacement: its module code (CPU-timed already) gets one trace's deadline
            worker.deadline = time.monotonic() + self.kill_after
        self._send(worker, _frame(marshal.dumps("go")))

    def _startup_step(self, worker: _Worker, message: Any) -> None:
        """One start-up message: ``confined`` (then ``go``), then ``ready`` or why not."""
        if worker.state == "starting" and isinstance(message, list) and len(message) == 2 and (
            message[0] == "confined"
        ):
            self._on_confined(worker, message[1])
        elif worker.state == "confined" and isinstance(message, list) and message[:1] == ["ready"]:
            worker.state = "idle"
            worker.deadline = float("inf")
        elif isinstance(message, list) and len(message) == 2 and message[0] == "setup_error":
            raise EvalCodeError([str(message[1])])
        elif isinstance(message, list) and len(message) == 2 and message[0] == "crash":
            raise SandboxError(f"sandbox worker failed to start: {one_line(str(message[1]), 300)}")
        else:
            raise SandboxError("sandbox worker sent an unexpected message during start-up")

    def _starting(self) -> list[_Worker]:
        return [w for w in self._workers if w.state in ("starting", "confined")]

    def _wait_ready(self) -> None:
        while self._starting():
            timeout = min(w.deadline for w in self._starting()) - time.monotonic()
            for key, _ in self._selector.select(max(timeout, 0)):
                if isinstance(key.data, tuple):
                    key.data[0].flush()
                    self._watch_writes(key.data[0])
                    continue
                worker = key.data
                if worker is None:
                    continue
                try:
                    messages, eof = worker.receive()
                except ValueError as exc:
                    raise SandboxError(f"sandbox worker failed to start: {exc}") from None
                for message in messages:
                    self._startup_step(worker, message)
                if eof and worker.state in ("starting", "confined"):
                    raise SandboxError(
                        f"sandbox worker failed to start: {_death_message(worker.proc.wait(), self.timeout_s)}"
                    )
            if any(w.deadline <= time.monotonic() for w in self._starting()):
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
            active = [w for w in self._workers if w.state in ("busy", "starting", "confined")]
            if not any(w.state == "busy" for w in active) and exhausted and not retry:
                return
            now = time.monotonic()
            timeout = max(0.0, min((w.deadline for w in active), default=now) - now)
            results: list[ExecResult] = []
            heard: set[int] = set()
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    self._drain_wake()
                elif isinstance(key.data, tuple):
                    if key.data[0].state != "dead":
                        key.data[0].flush()
                        self._watch_writes(key.data[0])
                else:
                    heard.add(id(key.data))
                    self._collect(key.data, results, retry)
            now = time.monotonic()
            for worker in list(self._workers):
                if (
                    worker.state in ("busy", "starting", "confined")
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
        self._send(worker, _frame(marshal.dumps(batch)))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _collect(self, worker: _Worker, results: list[ExecResult], retry: deque[tuple[str, Any]]) -> None:
        if worker.state == "dead":
            return
        try:
            messages, eof = worker.receive()
            for message in messages:
                if worker.state in ("starting", "confined"):  # a replacement worker coming up mid-run
                    self._startup_step(worker, message)
                    if worker.state == "idle":
                        self._start_failures = 0
                    continue
                if isinstance(message, list) and len(message) == 2 and message[0] == "crash":
                    self._fail(worker, f"sandbox worker failed: {one_line(str(message[1]), 300)}", results, retry)
                    return
                if message == ["retire"]:  # the worker asks to be replaced (MemoryError, CPU budget)
                    if not worker.answered:
                        # A fresh worker has its whole CPU budget and retires after MemoryError only with
                        # that trace's result sent: this is the eval's own forgery. Charged to its trace,
                        # or the same trace would be retried by replacement after replacement forever.
                        self._fail(worker, "sandbox protocol error: the worker retired without a result",
                                   results, retry)
                        return
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
                worker.answered += 1
                worker.last = time.monotonic()
                worker.deadline = worker.last + self.kill_after
                if not worker.pending:
                    worker.state, worker.deadline = "idle", float("inf")
        except (SandboxUnavailable, EvalCodeError):
            raise
        except (ValueError, SandboxError) as exc:  # a worker that breaks the protocol is killed
            self._fail(worker, f"sandbox protocol error: {one_line(str(exc), 300)}", results, retry)
            return
        if eof:
            self._fail(worker, _death_message(worker.proc.wait(), self.timeout_s), results, retry)

    def _fail(
        self, worker: _Worker, error: str, results: list[ExecResult], retry: deque[tuple[str, Any]]
    ) -> None:
        """The worker is killed and replaced; its current trace gets ``error``, the rest are retried."""
        if worker.state in ("starting", "confined"):
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


@functools.lru_cache(maxsize=1)
def check_sandbox() -> Confinement:
    """The layers this machine gives a worker (``iofold-tui run-eval --check-sandbox``); probed once per
    process with a trivial eval (~0.1 s): the kernel's answer does not change while the app runs."""
    with EvalRunner("def probe(trace):\n    return (True, '')\n", "probe", jobs=1, unconfined=True) as runner:
        assert runner.confinement is not None
        return runner.confinement
