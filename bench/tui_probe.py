"""Measure a TUI as a user sees it: launch a real process in tmux, poll the screen until a marker shows.

Used by bench/bench.py for "launch → rows on screen" and peak RSS (VmHWM from /proc while it runs).
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LaunchResult:
    seconds: float
    peak_rss_mb: float
    screen: str


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _pane_pid(session: str) -> int | None:
    out = _tmux("list-panes", "-t", session, "-F", "#{pane_pid}").strip()
    return int(out) if out.isdigit() else None


def _tree_rss_mb(root: int) -> float:
    """Peak RSS (VmHWM) of the process tree under the pane's shell."""
    best = 0.0
    pids = [root]
    seen: set[int] = set()
    while pids:
        pid = pids.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                best = max(best, int(line.split()[1]) / 1024)
        pids.extend(int(c) for c in children)
    return best


def launch(command: list[str], marker: str | Callable[[str], bool], *, timeout: float = 60.0,
           size: tuple[int, int] = (140, 40), cwd: Path | None = None) -> LaunchResult:
    """Start ``command`` in a fresh tmux session; time until ``marker`` (a string, or a test of the
    captured screen) is on screen."""
    ready = marker if callable(marker) else (lambda screen: marker in screen)
    session = f"bench-{uuid.uuid4().hex[:8]}"
    shell_cmd = (f"cd {shlex.quote(str(cwd))} && " if cwd else "") + "exec " + shlex.join(command)
    start = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), shell_cmd],
        check=True,
    )
    try:
        pid = _pane_pid(session)
        peak = 0.0
        while True:
            screen = _tmux("capture-pane", "-t", session, "-p")
            if pid:
                peak = max(peak, _tree_rss_mb(pid))
            if ready(screen):
                elapsed = time.perf_counter() - start
                if pid:
                    peak = max(peak, _tree_rss_mb(pid))
                return LaunchResult(elapsed, peak, screen)
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"{marker!r} did not appear within {timeout}s; screen:\n{screen}")
            time.sleep(0.01)
    finally:
        _tmux("kill-session", "-t", session)


class Session:
    """A real process in a tmux session, driven with ``send-keys`` (what a user's terminal would send)."""

    def __init__(
        self, command: list[str], *, size: tuple[int, int] = (140, 40), cwd: Path | None = None
    ) -> None:
        self.name = f"bench-{uuid.uuid4().hex[:8]}"
        shell_cmd = (f"cd {shlex.quote(str(cwd))} && " if cwd else "") + "exec " + shlex.join(command)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                        shell_cmd], check=True)

    def screen(self) -> str:
        return _tmux("capture-pane", "-t", self.name, "-p")

    def wait_for(self, marker: str, timeout: float = 120.0) -> str:
        deadline = time.perf_counter() + timeout
        while marker not in (screen := self.screen()):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{marker!r} did not appear within {timeout}s; screen:\n{screen}")
            time.sleep(0.05)
        return screen

    def keys(self, *keys: str) -> None:
        _tmux("send-keys", "-t", self.name, *keys)

    def close(self) -> None:
        _tmux("kill-session", "-t", self.name)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
