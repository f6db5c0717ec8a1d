"""Escape attempts against the eval sandbox, judged by the attacker's goal, never by a message.

Every attempt runs inside a separate "app" process (tests/_escape_harness.py) that holds secrets the way
a user's shell does: an API token in its environment, an SSH key in $HOME, a token in the database. The
goals checked after each run:

  * no file created, changed or removed anywhere the attacker aimed (a world-writable folder, the
    database and its journal, $HOME), the database byte-identical;
  * no connection or datagram reached a listener on this machine (TCP, UDP, unix path, abstract unix);
  * no secret in any result field (reason, error, stdout, stderr);
  * no process left behind, no other process signalled, the app itself alive;
  * the run ends in bounded time and every trace gets exactly one result.

Two configurations: every layer (the Python layers catch most attempts first), and the operating
system's *required* layers alone (static check, builtins, audit hook, namespaces and the drop to
``nobody`` all switched off, so the attacker has the real ``os`` and ``ctypes``). As root, the whole
suite runs again as an unprivileged uid (``setpriv``) with the system Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iofold_tui.data.evalrun.sandbox import check_sandbox

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not check_sandbox().complete,
    reason="the operating system does not confine the sandbox here",
)

HARNESS = Path(__file__).with_name("_escape_harness.py")
REPO = Path(__file__).resolve().parent.parent
SECRETS = {"env": "SECRET-ENV-7f3a9c", "ssh": "SECRET-SSH-41be02", "db": "SECRET-DB-c0ffee"}
OS_ONLY = ["static", "builtins", "audit", "namespaces", "identity"]
TIMEOUT_S = 1.0

PRELUDE = """
import ctypes, os, resource, signal, struct, sys, time, json
libc = ctypes.CDLL(None, use_errno=True)

def inet(port):
    return struct.pack("=H", 2) + struct.pack(">H", port) + bytes([127, 0, 0, 1]) + bytes(8)

def unix(path):
    raw = path.encode() if isinstance(path, str) else path
    return struct.pack("=H", 1) + raw + bytes(108 - len(raw))

def frame(payload):
    return struct.pack(">I", len(payload)) + payload

def forge(payload):
    for fd in range(3, 8):
        try:
            os.write(fd, payload)
        except OSError:
            pass
"""

# name -> the body of one trace's branch (the OS-only configuration: real builtins, real modules).
OS_ATTACKS = {
    "write in a world-writable folder": "open('{scratch}/pwned-open', 'w').write('x')",
    "os.open O_CREAT": "os.close(os.open('{scratch}/pwned-osopen', os.O_CREAT | os.O_WRONLY, 0o666))",
    "relative write after chdir": "os.chdir('{scratch}')\nopen('pwned-relative', 'w').write('x')",
    "mkdir": "os.mkdir('{scratch}/pwned-dir')",
    "symlink to the database": "os.symlink('{db}', '{scratch}/pwned-link')",
    "hard link to the database": "os.link('{db}', '{scratch}/pwned-hardlink')",
    "mkfifo": "os.mkfifo('{scratch}/pwned-fifo')",
    "plant a hot journal": "open('{db}-journal', 'wb').write(b'x' * 4096)",
    "delete the database": "os.unlink('{db}')",
    "rename the database": "os.rename('{db}', '{db}.moved')",
    "chmod the database": "os.chmod('{db}', 0o777)",
    "utime the database": "os.utime('{db}', (0, 0))",
    "truncate the database": "os.truncate('{db}', 0)",
    "overwrite database pages": "fh = open('{db}', 'r+b')\nfh.seek(0)\nfh.write(bytes(4096))\nfh.close()",
    "write to $HOME": "open('{home}/pwned-home', 'w').write('x')",
    "read the database": "return (True, open('{db}', 'rb').read().decode('latin-1'))",
    "read the SSH key": "return (True, open('{home}/.ssh/id_rsa').read())",
    "read the app's environment": (
        "return (True, open(f'/proc/{{os.getppid()}}/environ', 'rb').read().decode('latin-1'))"
    ),
    "read the app's memory": (
        "fh = open(f'/proc/{{os.getppid()}}/mem', 'rb')\nreturn (True, fh.read(1 << 20).decode('latin-1'))"
    ),
    "the app's open files": (
        "out = []\nfor fd in os.listdir(f'/proc/{{os.getppid()}}/fd'):\n"
        "    out.append(open(f'/proc/{{os.getppid()}}/fd/{{fd}}', 'rb').read(1 << 16).decode('latin-1'))\n"
        "return (True, ''.join(out))"
    ),
    "own environment": "return (True, repr(dict(os.environ)) + repr(os.getenv('IOFOLD_SECRET')))",
    "ptrace the app": (
        "rc = libc.ptrace(16, os.getppid(), 0, 0)\n"
        "if rc != 0:\n    raise OSError(ctypes.get_errno(), 'ptrace')\n"
        "return (True, 'attached')"
    ),
    "TCP connect": (
        "s = libc.socket(2, 1, 0)\nif s < 0:\n    raise OSError(ctypes.get_errno(), 'socket')\n"
        "if libc.connect(s, inet({tcp_port}), 16) != 0:\n    raise OSError(ctypes.get_errno(), 'connect')\n"
        "libc.send(s, b'pwned', 5, 0)"
    ),
    "UDP datagram": (
        "s = libc.socket(2, 2, 0)\nif s < 0:\n    raise OSError(ctypes.get_errno(), 'socket')\n"
        "libc.sendto(s, b'pwned', 5, 0, inet({udp_port}), 16)"
    ),
    "unix socket by path": (
        "s = libc.socket(1, 1, 0)\nif s < 0:\n    raise OSError(ctypes.get_errno(), 'socket')\n"
        "if libc.connect(s, unix('{unix_path}'), 110) != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'connect')\n"
        "libc.send(s, b'pwned', 5, 0)"
    ),
    "abstract unix socket": (
        "s = libc.socket(1, 1, 0)\nif s < 0:\n    raise OSError(ctypes.get_errno(), 'socket')\n"
        "if libc.connect(s, unix(b'\\0{abstract}'), 3 + len('{abstract}')) != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'connect')\nlibc.send(s, b'pwned', 5, 0)"
    ),
    "fork and write": (
        "pid = os.fork()\nif pid == 0:\n    open('{scratch}/pwned-fork', 'w').write('x')\n    os._exit(0)"
    ),
    "leave a daemon behind": (
        "pid = os.fork()\nif pid == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)"
    ),
    "execv a shell": "os.execv('/bin/sh', ['sh', '-c', 'touch {scratch}/pwned-exec'])",
    "os.system": "os.system('touch {scratch}/pwned-system')",
    "posix_spawn": "os.posix_spawn('/usr/bin/touch', ['touch', '{scratch}/pwned-spawn'], {{}})",
    "libc system()": "libc.system(b'touch {scratch}/pwned-libc')",
    "raise the file-size limit": (
        "resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "open('{scratch}/pwned-rlimit', 'w').write('x')"
    ),
    "raise the memory limit": (
        "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "x = bytearray(3 << 30)\nreturn (True, 'allocated 3 GB')"
    ),
    "kill the app": "os.kill(os.getppid(), 9)",
    "kill the app's process group": "os.killpg(os.getpgid(os.getppid()), 9)",
    "kill another process": "os.kill({sleeper}, 9)",
    "spin with the CPU timer off": (
        "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.setitimer(signal.ITIMER_PROF, 0)\n"
        "while True:\n    pass"
    ),
    "memory bomb": "x = [bytearray(1 << 20) for _ in range(10_000)]",
    "forge a too-deep message": "forge(frame(b'[' * 200_000 + b']' * 200_000))\ntime.sleep(30)",
    "forge an out-of-range time": (
        "forge(b''.join(frame(json.dumps([i, True, 'x', 10 ** 30, None, '', '']).encode())"
        " for i in range(4)))\n"
        "time.sleep(30)"
    ),
    "forge results then stop reading": (
        "forge(b''.join(frame(json.dumps([i, True, 'forged', 1, None, '', '']).encode())"
        " for i in range(4)))\n"
        "time.sleep(30)"
    ),
    "flood the channel": "forge(b'\\xff' * (8 << 20))\ntime.sleep(30)",
    "lone surrogates in the protocol": (
        "forge(b''.join(frame(b'[' + str(i).encode()"
        " + b', true, \"\\\\ud800\", 1, null, \"\\\\udfff\", \"\"]') "
        "for i in range(4)))\ntime.sleep(30)"
    ),
    "memfd exec": (
        "fd = os.memfd_create('x')\nos.write(fd, b'#!/bin/sh\\ntouch {scratch}/pwned-memfd\\n')\n"
        "os.execve(fd, ['x'], {{}})"
    ),
}

# Attempts through the Python layers (every layer on): each gets its own runner, since a static refusal
# stops the whole eval. Each tries to reach a real module and then write a file and read the SSH key.
GOAL = (
    "    open('{scratch}/pwned-{n}', 'w').write('x')\n"
    "    return (True, open('{home}/.ssh/id_rsa').read())\n"
)
PY_ATTACKS = {
    "json.decoder submodule": (
        "from json import decoder\ndef check(trace):\n"
        "    open = decoder.re.enum.sys.modules['builtins'].open\n"
    ),
    "class pattern keyword": (
        "def check(trace):\n    match check:\n        case object(__globals__=g):\n"
        "            open = g['__builtins__']['open']\n"
    ),
    "class pattern positional": (
        "import collections.abc\ndef check(trace):\n"
        "    D = type('D', (collections.abc.Callable,),"
        " {{'__match_args__': ('__glo' + 'bals__',), '__call__': len}})\n"
        "    D.register(type(check))\n    match check:\n        case D(g):\n"
        "            open = g['__builtins__']['open']\n"
    ),
    "frame by getattr": (
        "def check(trace):\n    g = (i for i in [1])\n    f = getattr(g, 'gi_' + 'frame')\n"
        "    open = f.f_globals['__builtins__']['open']\n"
    ),
    "update_wrapper copies globals": (
        "import functools\nclass Box:\n    def __setattr__(self, name, value):\n"
        "        self.__dict__[name] = value\n"
        "def check(trace):\n"
        "    box = functools.update_wrapper(Box(), check, assigned=('__glo' + 'bals__',))\n"
        "    open = vars(box)['__globals__']['__builtins__']['open']\n"
    ),
    "string.Formatter get_field": (
        "import string\ndef check(trace):\n"
        "    g = string.Formatter().get_field('0.__globals__', (check,), {{}})[0]\n"
        "    open = g['__builtins__']['open']\n"
    ),
    "dataclass field injection": (
        "import dataclasses\ndef check(trace):\n"
        "    X = type('X', (), {{'__annot' + 'ations__':"
        " {{\"a=__import__('os').system('touch {scratch}/pwned-dc')\": int}}}})\n"
        "    dataclasses.dataclass(X)\n    open = None\n"
    ),
    "make_dataclass dunder field": (
        "import dataclasses\ndef check(trace):\n"
        "    X = dataclasses.make_dataclass('X', ['__glo' + 'bals__'])\n    open = None\n"
    ),
    "typing.get_type_hints evaluates": (
        "import typing\ndef f(x: \"__import__('os').system('touch {scratch}/pwned-hints')\"): pass\n"
        "def check(trace):\n    typing.get_type_hints(f)\n    open = None\n"
    ),
    "namedtuple field injection": (
        "import collections\ndef check(trace):\n"
        "    collections.namedtuple('X', [\"a=__import__('os')\"])\n    open = None\n"
    ),
    "traceback frame by getattr": (
        "def check(trace):\n    try:\n        1 / 0\n    except Exception as e:\n"
        "        tb = getattr(e, '__trace' + 'back__')\n"
        "    open = tb.tb_frame.f_globals['__builtins__']['open']\n"
    ),
    "format walks to builtins": (
        "def check(trace):\n    text = ('{{0.__glo' + 'bals__}}').format(check)\n    open = None\n"
    ),
    "module-level escape": (
        "import json\nopen = json.decoder.re.enum.sys.modules['builtins'].open\ndef check(trace):\n"
    ),
}


@dataclass
class Stage:
    scratch: Path
    home: Path
    db: Path
    db_digest: str
    scratch_before: list[str]
    home_before: list[str]
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    abstract: socket.socket
    abstract_name: str
    sleeper: subprocess.Popen[bytes]

    def fields(self) -> dict[str, object]:
        return {
            "scratch": self.scratch, "home": self.home, "db": self.db, "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1], "unix_path": self.unix.getsockname(),
            "abstract": self.abstract_name, "sleeper": self.sleeper.pid,
        }


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder every uid can traverse (pytest's own tmp folders are root's alone)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="iofold-escape-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stage(base: Path) -> Iterator[Stage]:
    tmp_path = base
    scratch = tmp_path / "world-writable"
    scratch.mkdir(mode=0o777)
    scratch.chmod(0o777)  # only the sandbox, not permissions, may stop a write here
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN KEY----- {SECRETS['ssh']}\n")
    for path in (home, home / ".ssh"):
        path.chmod(0o777)
    (home / ".ssh" / "id_rsa").chmod(0o666)
    db = scratch / "victim.sqlite"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE integrations (id TEXT PRIMARY KEY, api_key_encrypted TEXT)")
        conn.execute("INSERT INTO integrations VALUES ('i1', ?)", (SECRETS["db"],))
        conn.execute("CREATE TABLE feedback (id TEXT PRIMARY KEY, rating TEXT)")
        conn.executemany("INSERT INTO feedback VALUES (?, 'positive')", [(f"f{i}",) for i in range(50)])
    conn.close()
    db.chmod(0o666)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(scratch / "listener.sock"))
    os.chmod(scratch / "listener.sock", 0o777)
    unix.listen(8)
    unix.setblocking(False)
    abstract_name = f"iofold-escape-{os.getpid()}-{time.monotonic_ns()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    abstract.setblocking(False)
    sleeper = subprocess.Popen(["sleep", "300"])
    stage = Stage(scratch, home, db, hashlib.sha256(db.read_bytes()).hexdigest(), sorted(os.listdir(scratch)),
                  sorted(os.listdir(home)), tcp, udp, unix, abstract, abstract_name, sleeper)
    try:
        yield stage
    finally:
        sleeper.kill()
        sleeper.wait()
        for sock in (tcp, udp, unix, abstract):
            sock.close()


def _os_only_code(stage: Stage) -> tuple[str, list[list[object]]]:
    fields = stage.fields()
    branches = "".join(
        f"    if trace['trace_id'] == {name!r}:\n" + textwrap.indent(body.format(**fields), "        ") + "\n"
        for name, body in OS_ATTACKS.items()
    )
    code = PRELUDE + "\ndef check(trace):\n" + branches + "    return (False, 'no attack')\n"
    return code, [["benign", "[]"]] + [[name, "[]"] for name in OS_ATTACKS]  # benign first: a forging
    # worker that stalls gets the *next* trace of its batch blamed, which is its own eval's doing


@dataclass
class Python:
    """How to start the app: the test's interpreter, or the system one for another uid."""

    argv_prefix: list[str]
    env: dict[str, str]


def _app_env(stage: Stage, pythonpath: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(stage.home), "IOFOLD_SECRET": SECRETS["env"],
            "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"}


def _run_app(python: Python, stage: Stage, spec: dict[str, object], tmp: Path) -> dict[str, object]:
    spec_file, out_file = tmp / f"spec-{time.monotonic_ns()}.json", tmp / f"out-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    spec_file.chmod(0o644)
    out_dir = out_file.parent
    out_dir.chmod(0o777)
    started = time.monotonic()
    proc = subprocess.run([*python.argv_prefix, str(HARNESS), str(spec_file), str(out_file)], env=python.env,
                          capture_output=True, timeout=120, cwd=str(stage.scratch.parent))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    out = json.loads(out_file.read_text())
    out["wall_s"] = time.monotonic() - started
    return out


def _assert_goals_held(stage: Stage, out: dict[str, object], traces: int | None) -> None:
    # Nothing written, changed or removed.
    assert sorted(os.listdir(stage.scratch)) == stage.scratch_before, sorted(os.listdir(stage.scratch))
    assert sorted(os.listdir(stage.home)) == stage.home_before
    assert hashlib.sha256(stage.db.read_bytes()).hexdigest() == stage.db_digest
    assert oct(stage.db.stat().st_mode & 0o777) == oct(0o666) and stage.db.stat().st_mtime > 0
    # No connection, no datagram.
    for listener in (stage.tcp, stage.unix, stage.abstract):
        with pytest.raises(BlockingIOError):
            listener.accept()
    with pytest.raises(BlockingIOError):
        stage.udp.recv(64)
    # No secret anywhere in what came back.
    text = json.dumps(out, ensure_ascii=False)
    for secret in SECRETS.values():
        assert secret not in text
    # Nothing left running, nobody else signalled.
    assert out["leftover"] == []
    assert stage.sleeper.poll() is None
    # One result per trace, storable text, bounded time.
    results = out["results"]
    if traces is not None:
        assert sorted(r[0] for r in results) == sorted({r[0] for r in results}) and len(results) == traces
    for row in results:
        for value in row[2], row[4], row[5], row[6]:
            if isinstance(value, str):
                value.encode("utf-8")


def _system_python_as_nobody(tmp: Path) -> Python | None:
    """The app as uid/gid 65534 with the system interpreter (the test's may live under /root)."""
    if os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists():
        return None
    probe = subprocess.run(["/usr/bin/python3", "-c", "import ctypes, sqlite3"], capture_output=True)
    if probe.returncode != 0:
        return None
    lib = tmp / "pylib"
    shutil.copytree(
        REPO / "iofold_tui", lib / "iofold_tui", ignore=shutil.ignore_patterns("ui", "__pycache__")
    )
    import pyseccomp

    shutil.copy(pyseccomp.__file__, lib / "pyseccomp.py")
    for root, _dirs, files in os.walk(tmp):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    tmp.chmod(0o777)
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/python3", "-I"]
    return Python(prefix, {})


def _pythons(stage: Stage, tmp: Path) -> list[tuple[str, Python]]:
    own = Python([sys.executable], _app_env(stage, str(REPO)))
    found = [("as this user", own)]
    nobody = _system_python_as_nobody(tmp)
    if nobody is not None:
        nobody.env = _app_env(stage, str(tmp / "pylib"))
        # -I ignores PYTHONPATH: the harness gets the path through a tiny bootstrap instead.
        boot = tmp / "boot.py"
        boot.write_text(f"import runpy, sys\nsys.path.insert(0, {str(tmp / 'pylib')!r})\n"
                        f"sys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n")
        boot.chmod(0o644)
        nobody.argv_prefix = [*nobody.argv_prefix, str(boot)]
        found.append(("as nobody", nobody))
    return found


def test_os_layers_alone_contain_every_attack(stage: Stage, base: Path) -> None:
    tmp_path = base
    code, traces = _os_only_code(stage)
    for who, python in _pythons(stage, tmp_path / "apps"):
        spec = {"code": code, "name": "check", "traces": traces, "disable": OS_ONLY, "timeout_s": TIMEOUT_S}
        out = _run_app(python, stage, spec, tmp_path)
        assert out["error"] is None, (who, out["error"])
        assert out["layers"]["seccomp"] and out["layers"]["landlock"] and out["layers"]["rlimits"], who
        _assert_goals_held(stage, out, len(traces))
        by_id = {row[0]: row for row in out["results"]}
        # The eval ran.
        assert by_id["benign"][1] is False and by_id["benign"][2] == "no attack", by_id["benign"]
        assert by_id["kill the app"][4]  # the attempt failed (the app is evidently alive: it answered)
        # Bounded: each trace at most the wall-clock kill; with 2 workers about half of that in total.
        assert out["elapsed_s"] < len(traces) * (TIMEOUT_S + 1.0) / 2 + 10, (who, out["elapsed_s"])


def _py_code(name: str, stage: Stage) -> str:
    fields = {**stage.fields(), "n": name.replace(" ", "-")}
    return PY_ATTACKS[name].format(**fields) + GOAL.format(**fields)


@pytest.mark.parametrize("name", sorted(PY_ATTACKS))
def test_python_layer_escapes_reach_nothing(name: str, stage: Stage, base: Path) -> None:
    tmp_path = base
    python = Python([sys.executable], _app_env(stage, str(REPO)))
    spec = {"code": _py_code(name, stage), "name": "check", "traces": [["t1", "[]"], ["t2", "[]"]],
            "timeout_s": TIMEOUT_S, "jobs": 1}
    out = _run_app(python, stage, spec, tmp_path)
    _assert_goals_held(stage, out, None if out["error"] else 2)
    for row in out["results"]:
        assert row[1] is None and row[4], row  # refused at run time: no verdict
    assert out["error"] or out["results"]


def test_python_layer_escapes_as_nobody(stage: Stage, base: Path) -> None:
    tmp_path = base
    pythons = _pythons(stage, tmp_path / "apps")
    if len(pythons) < 2:
        pytest.skip("needs root, setpriv and /usr/bin/python3")
    _, nobody = pythons[1]
    for name in sorted(PY_ATTACKS):
        spec = {"code": _py_code(name, stage), "name": "check", "traces": [["t1", "[]"]],
                "timeout_s": TIMEOUT_S, "jobs": 1}
        out = _run_app(nobody, stage, spec, tmp_path)
        _assert_goals_held(stage, out, None if out["error"] else 1)


def test_a_worker_is_confined_before_any_eval_code_runs(tmp_path: Path) -> None:
    """Module-level code is eval code too: it already runs under seccomp (visible in /proc)."""
    from iofold_tui.data.evalrun.sandbox import EvalRunner

    code = "def check(trace):\n    return (True, '')\n"
    with EvalRunner(code, "check", jobs=1) as runner:
        pid = runner._workers[0].proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status
        own_net = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert own_net or not runner.confinement.layers[1].active
    # Killed as a group when the runner closes.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_worker_dies_with_the_app(tmp_path: Path) -> None:
    """SIGKILL the app mid-run: its workers (in their own sessions) must not outlive it."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from iofold_tui.data.evalrun.sandbox import EvalRunner
        code = "def check(trace):\\n    while True:\\n        pass\\n"
        runner = EvalRunner(code, "check", jobs=2, timeout_s=60)
        print(" ".join(str(w.proc.pid) for w in runner._workers), flush=True)
        list(runner.run([("a", "[]"), ("b", "[]")]))
    """))
    app = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    pids = [int(p) for p in app.stdout.readline().split()]  # type: ignore[union-attr]
    app.send_signal(signal.SIGKILL)
    app.wait()
    deadline = time.monotonic() + 5
    alive = pids
    def running(pid: int) -> bool:  # a zombie ("Z" state) is dead
        proc = Path(f"/proc/{pid}")
        return proc.exists() and "Z" not in (proc / "stat").read_text().split(")")[1][:3]

    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if running(p)]
        time.sleep(0.05)
    assert alive == []
