"""Operating-system confinement of a sandbox worker (Linux), applied before any eval code is compiled.

Stdlib only (ctypes): the parent, which may use libseccomp, hands over a ready seccomp-BPF program.
Each layer is applied independently and reported as ``(active, detail)``; the parent decides whether
what is active is enough to run code from a database. Order matters:

  identity    a root worker becomes ``nobody`` (while it still may), so no file of root's is its own;
  namespaces  a new user + network namespace: no network interface but a down loopback;
  pdeathsig   the worker is killed when the parent dies, so nothing outlives a crashed app;
  nnp         no_new_privs: no set-uid binary or file capability can give privileges back;
  landlock    no filesystem access at all (read, write, exec, make, truncate, ioctl), no TCP bind or
              connect, and (ABI 6) no abstract unix sockets and no signals outside the worker;
  rlimits     *hard* limits (soft = hard): address space, CPU lifetime, file size 0, fds, no processes
              (after Landlock, whose ruleset needs one more descriptor);
  seccomp     an allow-list of the system calls a computing Python needs (no open, socket, execve,
              fork/clone, ptrace, kill, setrlimit, mmap/mprotect with PROT_EXEC ...), EPERM otherwise.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import struct
import sys
import typing

LAYERS = ("identity", "namespaces", "pdeathsig", "nnp", "landlock", "rlimits", "seccomp")
# Without these the worker is not a boundary (the parent refuses to run code from a database).
REQUIRED = ("rlimits", "nnp", "landlock", "seccomp")

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
# Landlock: the syscall numbers are the same on every architecture (added after the unification).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_FS_ACCESS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_CONNECT_TCP = 0b11
_SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 0b11

Report = dict[str, tuple[bool, str]]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _errno_text() -> str:
    code = ctypes.get_errno()
    return os.strerror(code) if code else "failed"


def _identity() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return True, f"uid {os.geteuid()} (not root)"
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    return True, "root dropped to nobody (65534)"


def _namespaces(libc: ctypes.CDLL) -> tuple[bool, str]:
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return False, f"unshare(user, net): {_errno_text()}"
    return True, "new user and network namespace (no network)"


def _pdeathsig(libc: ctypes.CDLL, parent: int) -> tuple[bool, str]:
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False, f"prctl(PDEATHSIG): {_errno_text()}"
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    return True, "killed with its parent"


def _hard_limit(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _rlimits(memory_bytes: int, cpu_s: int, max_fd: int) -> tuple[bool, str]:
    _hard_limit(resource.RLIMIT_CORE, 0)
    _hard_limit(resource.RLIMIT_FSIZE, 0)
    _hard_limit(resource.RLIMIT_NOFILE, max_fd + 1)
    _hard_limit(resource.RLIMIT_NPROC, 0)
    _hard_limit(resource.RLIMIT_AS, memory_bytes)
    _hard_limit(resource.RLIMIT_CPU, cpu_s)
    return True, (
        f"hard: memory {memory_bytes >> 20} MB, CPU {cpu_s} s, files 0 B, fds {max_fd + 1}, processes 0"
    )


def _nnp(libc: ctypes.CDLL) -> tuple[bool, str]:
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        return False, f"prctl(NO_NEW_PRIVS): {_errno_text()}"
    return True, "no_new_privs set"


def landlock_abi(libc: ctypes.CDLL | None = None) -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    libc = libc or _libc()
    abi = libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION
    )
    return max(int(abi), 0)


def _landlock(libc: ctypes.CDLL) -> tuple[bool, str]:
    abi = landlock_abi(libc)
    if abi < 1:
        return False, f"Landlock unavailable: {_errno_text()}"
    fs = _FS_ACCESS_BY_ABI.get(abi, _FS_ACCESS_BY_ABI[5])
    fields = [fs]
    if abi >= 4:
        fields.append(_NET_BIND_CONNECT_TCP)
    if abi >= 6:
        fields.append(_SCOPE_ABSTRACT_UNIX_AND_SIGNAL)
    attr = ctypes.create_string_buffer(struct.pack(f"={len(fields)}Q", *fields), 8 * len(fields))
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(8 * len(fields)), 0)
    if ruleset < 0:
        return False, f"landlock_create_ruleset: {_errno_text()}"
    try:  # no rule is added: every handled access is denied everywhere
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), 0) != 0:
            return False, f"landlock_restrict_self: {_errno_text()}"
    finally:
        os.close(ruleset)
    scope = ("no filesystem access" + (", no TCP" if abi >= 4 else "")
             + (", no abstract sockets or signals outside" if abi >= 6 else ""))
    return True, f"ABI {abi}: {scope}"


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp(libc: ctypes.CDLL, bpf: bytes | None, detail: str) -> tuple[bool, str]:
    if not bpf:
        return False, detail or "no filter (libseccomp unavailable)"
    if len(bpf) % 8:
        return False, "malformed filter"
    program = ctypes.create_string_buffer(bpf, len(bpf))
    fprog = _SockFprog(len(bpf) // 8, ctypes.cast(program, ctypes.c_void_p))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return False, f"prctl(SECCOMP): {_errno_text()}"
    return True, detail


def confine(spec: dict[str, object], max_fd: int, parent: int) -> Report:
    """Applies every layer not in ``spec["disable"]`` (tests switch layers off one by one)."""
    disabled = set(spec.get("disable", ()))  # type: ignore[call-overload]
    report: Report = {}
    if not sys.platform.startswith("linux"):
        return {name: (False, f"not available on {sys.platform}") for name in LAYERS}
    try:
        libc = _libc()
    except OSError as exc:
        return {name: (False, f"libc: {exc}") for name in LAYERS}
    steps: dict[str, typing.Callable[[], tuple[bool, str]]] = {
        "identity": _identity,
        "namespaces": lambda: _namespaces(libc),
        "pdeathsig": lambda: _pdeathsig(libc, parent),
        "rlimits": lambda: _rlimits(int(spec["memory_bytes"]), int(spec["cpu_s"]), max_fd),  # type: ignore[call-overload]
        "nnp": lambda: _nnp(libc),
        "landlock": lambda: _landlock(libc),
        "seccomp": lambda: _seccomp(libc, spec.get("bpf"), str(spec.get("bpf_detail", ""))),  # type: ignore[arg-type]
    }
    for name in LAYERS:
        if name in disabled:
            report[name] = (False, "disabled for a test")
            continue
        try:
            report[name] = steps[name]()
        except (OSError, ValueError, AttributeError) as exc:
            report[name] = (False, f"{type(exc).__name__}: {exc}")
    return report
