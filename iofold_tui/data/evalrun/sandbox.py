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
  2. run time, in the worker (``worker/restrict.py``, ``worker/proxies.py``, ``worker/audit.py``): minimal
     builtins, proxy modules, an allow-list audit hook, a per-trace CPU timer;
  3. this process kills a worker (its whole process group) that overruns the wall clock, replaces any
     worker that dies or breaks the protocol, and never blocks on a worker: writes wait in an outbox
     (``worker_pool.py``; what a worker sends is checked by ``protocol.py``).
Workers are reused across traces and get batches of traces per round-trip.
"""

from __future__ import annotations

import functools
import marshal
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from iofold_tui.data.evalrun.confinement import Confinement, seccomp_program
from iofold_tui.data.evalrun.protocol import death_message, frame, row_to_result
from iofold_tui.data.evalrun.results import EvalCodeError, ExecResult, SandboxError, SandboxUnavailable
from iofold_tui.data.evalrun.static_check import analyse
from iofold_tui.data.evalrun.worker.restrict import LINE_OFFSET, compile_eval
from iofold_tui.data.evalrun.worker_pool import WorkerPool, WorkerProcess
from iofold_tui.data.sanitize import one_line

# Layers a test may switch off to prove the others hold on their own.
_TESTING_LAYERS = frozenset(
    {"builtins", "audit", "rlimits", "identity", "namespaces", "pdeathsig", "nnp", "landlock", "seccomp"}
)
CPU_BUDGET_S = 600  # a worker's lifetime CPU (hard limit); it retires itself before reaching it


class EvalRunner(WorkerPool):
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
        unconfined = unconfined or bool(_disable_layers - {"static", "builtins", "audit"})
        self.memory_mb = memory_mb
        self.batch_size = max(1, batch_size)
        # The wall-clock kill comes a little after the worker's own CPU timer had its chance.
        kill_after = timeout_s + min(1.0, max(0.5, 0.2 * timeout_s))
        bpf, bpf_detail = seccomp_program()
        try:  # parsed already by analyse(); compiling cannot run any of it
            code_object = compile_eval(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            line = getattr(exc, "lineno", None)
            if line and line > LINE_OFFSET:
                line -= LINE_OFFSET
            where = f" (line {line})" if line else ""
            raise EvalCodeError([f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}{where}"]) from None
        init_frame = frame(
            marshal.dumps(
                {
                    "code": code,
                    "code_object": marshal.dumps(code_object),
                    "func": func,
                    "timeout_s": float(timeout_s),
                    "memory_mb": int(memory_mb),
                    "output_limit": int(output_limit),
                    "kill_after": kill_after,
                    "cpu_budget_s": CPU_BUDGET_S,
                    "bpf": bpf,
                    "bpf_detail": bpf_detail,
                    "disable": sorted(_disable_layers - {"static"}),
                }
            )
        )
        self._run_lock = threading.Lock()
        super().__init__(
            init_frame,
            12 * (3 * output_limit + 8000) + 4096,  # the largest frame: JSON-escaped worst case
            jobs=max(1, jobs or os.cpu_count() or 1),
            timeout_s=float(timeout_s),
            kill_after=kill_after,
            unconfined=unconfined,
        )

    # -- life cycle ---------------------------------------------------------------------------------
    def __enter__(self) -> EvalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def _dispatch(self, worker: WorkerProcess, batch: list[tuple[str, Any]]) -> None:
        worker.pending.extend(batch)
        worker.done = 0
        worker.state = "busy"
        worker.last = time.monotonic()
        worker.deadline = worker.last + self.kill_after
        self._send(worker, frame(marshal.dumps(batch)))

    def _collect(
        self, worker: WorkerProcess, results: list[ExecResult], retry: deque[tuple[str, Any]]
    ) -> None:
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
                    error = f"sandbox worker failed: {one_line(str(message[1]), 300)}"
                    self._fail(worker, error, results, retry)
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
                results.append(row_to_result(trace_id, message))
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
            self._fail(worker, death_message(worker.proc.wait(), self.timeout_s), results, retry)

    def _fail(
        self, worker: WorkerProcess, error: str, results: list[ExecResult], retry: deque[tuple[str, Any]]
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
