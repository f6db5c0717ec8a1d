"""What the operating system contributes to the eval sandbox, seen from the parent.

The worker (``worker/confine.py``) applies the layers itself; this module builds the one thing the
worker cannot build with the standard library, the seccomp-BPF program (through libseccomp, via the
``pyseccomp`` binding, in the trusted parent), and turns a worker's report into the decision whether
code from a database may run.

The seccomp program is an allow-list: a computing CPython after start-up needs memory, its two pipes,
signals for its own CPU timer, clocks and exit. Everything else fails with EPERM (``clone3`` with ENOSYS so
nothing falls back oddly); calls from another architecture's ABI (x32, i386) kill the process (libseccomp's
default for a foreign architecture). ``mmap``/``mprotect`` may not ask for executable memory.
"""

from __future__ import annotations

import ctypes.util
import errno
import functools
import sys
import tempfile
from dataclasses import dataclass

from iofold_tui.data.evalrun.worker.confine import LAYERS, REQUIRED

ALLOWED_SYSCALLS = (
    "read", "write", "readv", "writev", "close", "fstat", "lseek",
    "brk", "munmap", "mremap", "madvise",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "setitimer", "getitimer", "getrusage",
    "clock_gettime", "clock_getres", "gettimeofday", "nanosleep", "clock_nanosleep",
    "getrandom", "futex", "sched_yield",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "exit", "exit_group",
)
_PROT_EXEC = 0x4

LAYER_TITLES = {
    "identity": "identity", "namespaces": "user+network namespace", "pdeathsig": "dies with the app",
    "rlimits": "hard resource limits", "nnp": "no_new_privs", "landlock": "Landlock",
    "seccomp": "seccomp-BPF",
}


SHORT = {"seccomp": "seccomp", "landlock": "Landlock", "nnp": "no_new_privs", "rlimits": "hard rlimits"}


@functools.lru_cache(maxsize=1)
def seccomp_program() -> tuple[bytes | None, str]:
    """(the BPF program, a description) — (None, why) where libseccomp cannot be had."""
    if not sys.platform.startswith("linux"):
        return None, f"not available on {sys.platform}"
    if ctypes.util.find_library("seccomp") is None:
        return None, "libseccomp is not installed (Debian/Ubuntu: libseccomp2)"
    try:
        import pyseccomp as seccomp  # type: ignore[import-untyped]
    except (ImportError, OSError, AttributeError) as exc:
        return None, f"the pyseccomp binding cannot load: {exc}"
    try:
        rules = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
        for name in ALLOWED_SYSCALLS:
            rules.add_rule(seccomp.ALLOW, name)
        for name in ("mmap", "mprotect"):
            rules.add_rule(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, _PROT_EXEC, 0))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with tempfile.TemporaryFile() as out:
            rules.export_bpf(out)
            out.seek(0)
            program = out.read()
    except (OSError, RuntimeError, ValueError) as exc:
        return None, f"libseccomp failed: {exc}"
    return program, f"allow-list of {len(ALLOWED_SYSCALLS) + 2} system calls, everything else EPERM"


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    active: bool
    detail: str

    @property
    def title(self) -> str:
        return LAYER_TITLES.get(self.name, self.name)

    @property
    def required(self) -> bool:
        return self.name in REQUIRED


@dataclass(frozen=True, slots=True)
class Confinement:
    """The layers one worker reported (and the parent verified where it can)."""

    layers: tuple[Layer, ...]

    @property
    def missing(self) -> list[Layer]:
        """Required layers that are not active: code from a database must not run without them."""
        return [layer for layer in self.layers if layer.required and not layer.active]

    @property
    def complete(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        out = []
        for layer in self.layers:
            mark = "on " if layer.active else ("OFF" if layer.required else "off")
            need = "" if layer.required else " (optional)"
            out.append(f"  {mark}  {layer.title:<24} {layer.detail}{need}")
        return out

    def summary(self) -> str:
        """One line: the required layers by name, the optional ones counted (``lines()`` has them all)."""
        if self.complete:
            optional = sum(1 for layer in self.layers if layer.active and not layer.required)
            required = ", ".join(SHORT.get(layer.name, layer.name) for layer in self.layers if layer.required)
            return f"sandbox: confined by the OS ({required}" + (f", +{optional} more)" if optional else ")")
        return "sandbox: NOT confined: missing " + ", ".join(layer.title for layer in self.missing)


def parse_report(message: object, verified: dict[str, tuple[bool, str]]) -> Confinement:
    """A worker's ``["confined", {...}]`` report; ``verified`` overrides what the parent saw itself."""
    raw = message if isinstance(message, dict) else {}
    layers = []
    for name in LAYERS:
        entry = raw.get(name)
        active, detail = (bool(entry[0]), str(entry[1])[:300]) if (
            isinstance(entry, list) and len(entry) == 2) else (False, "not reported")
        if name in verified:
            seen, why = verified[name]
            if active and not seen:
                active, detail = False, f"reported but not in effect ({why})"
        layers.append(Layer(name, active, detail))
    return Confinement(tuple(layers))


def verify_from_outside(pid: int) -> dict[str, tuple[bool, str]]:
    """What /proc shows of a worker: seccomp filter mode and no_new_privs (Linux only)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError as exc:
        return {"seccomp": (False, f"/proc unreadable: {exc}"), "nnp": (False, "/proc unreadable")}
    seccomp, nnp = fields.get("Seccomp", "?").strip(), fields.get("NoNewPrivs", "?").strip()
    return {"seccomp": (seccomp == "2", f"Seccomp: {seccomp}"), "nnp": (nnp == "1", f"NoNewPrivs: {nnp}")}
