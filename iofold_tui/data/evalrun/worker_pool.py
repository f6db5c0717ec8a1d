"""The sandbox's worker processes, from this side: each one started, confined, ready, and replaced or killed.

``WorkerProcess`` is one process and its pipes (never blocking this process: writes wait in an outbox);
``WorkerPool`` starts ``jobs`` of them with one set-up frame, runs the start-up handshake (the worker's
report of its OS layers, checked from outside, then ``go`` or a refusal before any eval code is
compiled), and kills (the whole process group) and replaces them. ``EvalRunner`` (``sandbox.py``) runs
the traces through the pool.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from iofold_tui.data.evalrun.confinement import Confinement, parse_report, verify_from_outside
from iofold_tui.data.evalrun.protocol import HEADER, death_message, frame
from iofold_tui.data.evalrun.results import EvalCodeError, SandboxError, SandboxUnavailable
from iofold_tui.data.sanitize import one_line

WORKER_SCRIPT = Path(__file__).with_name("worker") / "main.py"
STARTUP_TIMEOUT_S = 10.0  # interpreter start + imports + the eval's module code


class WorkerProcess:
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
        while len(self.buffer) <= self.max_frame + HEADER.size:
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        messages: list[Any] = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if size > self.max_frame:
                raise ValueError(f"oversized message ({size:,} bytes)")
            if len(self.buffer) < HEADER.size + size:
                break
            body = bytes(self.buffer[HEADER.size : HEADER.size + size])
            del self.buffer[: HEADER.size + size]
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



class WorkerPool:
    """``jobs`` workers started with ``init_frame``; ``cancel()`` is thread-safe, the rest is for the one
    thread that runs the pool. Raises SandboxUnavailable at start when the OS does not confine the workers
    (unless ``unconfined``), EvalCodeError when the eval's module code fails in them."""

    def __init__(
        self, init_frame: bytes, max_frame: int, *, jobs: int, timeout_s: float, kill_after: float,
        unconfined: bool,
    ) -> None:
        self.jobs = jobs
        self.timeout_s = timeout_s
        self.kill_after = kill_after
        self.unconfined = unconfined
        self._started = False  # after the first start, replacement workers get kill_after for module code
        self._init_frame = init_frame
        self._max_frame = max_frame
        self.confinement: Confinement | None = None
        self._cancel = threading.Event()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._workers: list[WorkerProcess] = []
        try:
            for _ in range(self.jobs):
                self._workers.append(self._spawn())
            self._wait_ready()
            self._started = True
        except BaseException:
            self.close()
            raise

    # -- life cycle ---------------------------------------------------------------------------------
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
    def _spawn(self) -> WorkerProcess:
        try:
            worker = WorkerProcess(self._init_frame, self._max_frame)
        except OSError as exc:
            raise SandboxError(f"cannot start a sandbox worker: {exc}") from exc
        self._selector.register(worker.rfd, selectors.EVENT_READ, worker)
        self._watch_writes(worker)
        return worker

    def _watch_writes(self, worker: WorkerProcess) -> None:
        """Asks the selector for writability exactly while the worker's outbox holds data."""
        key = self._selector.get_map().get(worker.wfd)
        if worker.outbox and key is None:
            self._selector.register(worker.wfd, selectors.EVENT_WRITE, (worker,))
        elif not worker.outbox and key is not None:
            self._selector.unregister(worker.wfd)

    def _send(self, worker: WorkerProcess, data: bytes) -> None:
        worker.send(data)
        self._watch_writes(worker)

    def _drop(self, worker: WorkerProcess) -> None:
        if worker.state != "dead":
            for fd in (worker.rfd, worker.wfd):
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
            worker.kill()

    def _replace(self, worker: WorkerProcess) -> None:
        self._drop(worker)
        self._workers[self._workers.index(worker)] = self._spawn()

    def _on_confined(self, worker: WorkerProcess, report: Any) -> None:
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
        self._send(worker, frame(marshal.dumps("go")))

    def _startup_step(self, worker: WorkerProcess, message: Any) -> None:
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

    def _starting(self) -> list[WorkerProcess]:
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
                        f"sandbox worker failed to start: {death_message(worker.proc.wait(), self.timeout_s)}"
                    )
            if any(w.deadline <= time.monotonic() for w in self._starting()):
                raise SandboxError(f"sandbox worker did not start within {STARTUP_TIMEOUT_S:g} s")

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
