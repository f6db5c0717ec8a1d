"""The eval sandbox: correct results, and hostile evals against each layer of the defence.

Layers: static (AST), builtins (minimal builtins + proxy modules), audit (allow-list audit hook),
rlimits (memory/files/fds/processes/CPU), and the parent's wall-clock kill. Tests switch the outer
layers off (``_disable_layers``) to prove that each inner layer holds on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from iofold_tui.data.evalrun.results import EvalCodeError, ExecResult
from iofold_tui.data.evalrun.sandbox import EvalRunner
from iofold_tui.data.evalrun.static_check import check_code
from iofold_tui.data.paths import schema_dir

FAST = {"jobs": 1, "timeout_s": 0.5}
STEPS = json.dumps([{"step_id": "s1", "output": {"response": "All good"}, "tool_calls": []}])
LAYERS_UP_TO = {
    "static": frozenset({"static"}),
    "builtins": frozenset({"static", "builtins"}),
    "audit": frozenset({"static", "builtins", "audit"}),
}


def run_code(
    code: str, traces: list[tuple[str, str | None]] | None = None, **options: object
) -> dict[str, ExecResult]:
    settings = {**FAST, **options}
    with EvalRunner(textwrap.dedent(code), **settings) as runner:  # type: ignore[arg-type]
        results = list(runner.run(traces or [("t1", STEPS)]))
    assert len(results) == len(traces or [1]), "every trace gets exactly one result"
    return {result.trace_id: result for result in results}


def one(code: str, **options: object) -> ExecResult:
    return run_code(code, **options)["t1"]


# -- correct results ------------------------------------------------------------------------------------

SEED_LIKE = """
import json
import re

def response_is_polite(trace: dict) -> tuple[bool, str]:
    steps = trace["steps"]
    text = " ".join(json.dumps(step.get("output", "")) for step in steps)
    if re.search(r"\\b(stupid|idiot)\\b", text, re.I):
        return (False, f"rude word in {len(steps)} steps")
    return (True, "polite")
"""


def _reference(steps_json: str) -> tuple[bool, str]:
    namespace: dict[str, object] = {}
    exec(SEED_LIKE, namespace)  # the same function, run unconfined, as the oracle
    return namespace["response_is_polite"]({"trace_id": "x", "steps": json.loads(steps_json)})  # type: ignore[operator]


def test_normal_eval_gives_the_same_results_as_plain_python() -> None:
    traces = [
        (
            f"t{i}",
            json.dumps([{"output": {"response": "you idiot" if i % 3 == 0 else f"hello {i}"}}] * (i % 4 + 1)),
        )
        for i in range(200)
    ]
    results = run_code(SEED_LIKE, traces, jobs=2, batch_size=16)
    for trace_id, steps in traces:
        got = results[trace_id]
        assert got.error is None
        assert (got.result, got.reason) == _reference(steps)
        assert got.execution_time_ms >= 0
    assert sum(r.result is False for r in results.values()) == 67


def test_list_of_two_is_accepted_and_namedtuple_collections_work() -> None:
    result = one(
        """
        from collections import Counter, namedtuple
        import collections.abc, datetime, difflib, math, typing
        Pair = namedtuple("Pair", "a b")
        def check(trace):
            c = Counter("abca")
            ratio = difflib.SequenceMatcher(None, "abc", "abd").ratio()
            day = datetime.datetime.strptime("2024-01-02", "%Y-%m-%d").day
            ok = isinstance(trace["steps"], collections.abc.Sequence)
            return [ok, f"{c['a']} {Pair(1, 2)._asdict()['b']} {round(ratio, 2)} {day} {math.floor(2.5)}"]
        """
    )
    assert (result.result, result.reason, result.error) == (True, "2 2 0.67 2 2", None)


def test_the_named_function_is_called_else_the_last_one() -> None:
    code = "def first(trace):\n    return (True, 'first')\ndef helper(trace):\n    return (False, 'last')\n"
    assert run_code(code, name="first")["t1"].reason == "first"
    assert run_code(code, name="missing")["t1"].reason == "last"
    assert run_code(code)["t1"].reason == "last"


def test_print_is_captured_and_escape_sequences_kept_as_is() -> None:
    result = one(
        """
        def check(trace):
            print("red \\x1b[31mtext\\x1b[0m", trace["trace_id"])
            print("second", "line", sep="-")
            return (True, "ok")
        """
    )
    assert result.stdout == "red \x1b[31mtext\x1b[0m t1\nsecond-line\n"


def test_invalid_steps_json_is_an_error_but_the_eval_sees_an_empty_list() -> None:
    results = run_code(
        "def check(trace):\n    return (True, f'{len(trace[\"steps\"])} steps')\n",
        [("bad", "{not json"), ("null", None), ("good", "[1, 2]")],
    )
    assert results["bad"].result is None and results["bad"].error.startswith("invalid steps JSON: ")
    assert results["bad"].reason == "0 steps"
    assert results["null"].error == "invalid steps JSON: steps is NULL"
    assert (results["good"].result, results["good"].reason) == (True, "2 steps")


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("None", "got None"),
        ("1", "got int"),
        ("(1, 'x')", "got tuple (int, str)"),
        ("('yes', 'x')", "got tuple (str, str)"),
        ("(True, 'x', 1)", "got tuple of 3 items"),
        ("[True]", "got list of 1 items"),
        ("(True, None)", "got tuple (bool, NoneType)"),
    ],
)
def test_bad_return_types_are_clear_errors(returned: str, message: str) -> None:
    result = one(f"def check(trace):\n    return {returned}\n")
    assert result.result is None
    assert result.error == f"bad return type: expected (bool, str), got {message.removeprefix('got ')}"


def test_an_exception_names_its_type_message_and_line() -> None:
    result = one("def check(trace):\n    x = 1\n    return (x / 0 > 1, 'never')\n")
    assert result.result is None
    assert result.error == "ZeroDivisionError: division by zero (line 3: return (x / 0 > 1, 'never'))"


def test_module_code_failure_and_missing_function_stop_the_run_before_it_starts() -> None:
    with pytest.raises(EvalCodeError, match="ValueError: boom"):
        EvalRunner("raise ValueError('boom')\ndef check(trace):\n    return (True, '')\n", **FAST)  # type: ignore[arg-type]
    with pytest.raises(EvalCodeError, match="no top-level function"):
        EvalRunner("x = 1\n", **FAST)  # type: ignore[arg-type]


# -- static layer ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("import os", "ImportError: os is not allowed"),
        ("import json, os", "ImportError: os is not allowed"),
        ("from os import path", "ImportError: os is not allowed"),
        ("import importlib", "ImportError: importlib is not allowed"),
        ("from . import x", "relative imports"),
        ("from collections import _sys", "is private"),
        ("x = __import__('os')", "name '__import__' is not allowed"),
        ("x = ().__class__.__mro__[1].__subclasses__()", "attribute '__mro__'"),
        ("x = type.__subclasses__(object)", "attribute '__subclasses__'"),
        ("x = getattr(__builtins__, 'open')", "name '__builtins__' is not allowed"),
        ("x = getattr(1, '__dict__')", "attribute '__dict__'"),
        ("x = (lambda: 0).__globals__", "attribute '__globals__'"),
        ("g = (i for i in []); x = g.gi_frame.f_back", "attribute 'gi_frame'"),
        ("x = '{0.__class__}'.format(1)", "format field"),
        ("x = f'{(1).__class__.__base__}'", "attribute '__base__'"),
        ("x = eval('1')", "eval() is not available"),
        ("x = open('/etc/passwd')", "open() is not available"),
        ("x = [].copy()._private", "private attribute '_private'"),
        ("class A(metaclass=type): pass", "metaclasses are not allowed"),
    ],
)
def test_static_check_rejects_hostile_code(snippet: str, expected: str) -> None:
    problems = check_code(f"{snippet}\ndef check(trace):\n    return (True, '')\n")
    assert any(expected in problem for problem in problems), problems
    assert problems[0].startswith("line ")
    with pytest.raises(EvalCodeError):
        EvalRunner(f"{snippet}\ndef check(trace):\n    return (True, '')\n", **FAST)  # type: ignore[arg-type]


def test_static_check_accepts_ordinary_eval_code() -> None:
    code = """
import json, re
from typing import Any
class Helper:
    def __init__(self) -> None:
        self._seen = 0
def check(trace: dict[str, Any]) -> tuple[bool, str]:
    input = trace["steps"]            # shadowing a builtin name is fine
    open = len(input)
    return (open >= 0, "{} steps".format(open) + " {0[k]}".format({"k": "v"}))
"""
    assert check_code(code) == []
    assert check_code("def f(:\n") == ["line 1: SyntaxError: invalid syntax"]


# -- run-time layers: hostile code with the outer layers switched off ------------------------------------


ESCAPES = {
    # name: (layers switched off, code, substring of the error)
    "import os at run time": ("static", "import os", "ImportError: os is not allowed"),
    "__import__": ("static", "__import__('os')", "ImportError: os is not allowed"),
    "importlib": ("static", "import importlib", "ImportError: importlib is not allowed"),
    "typing.sys": ("static", "import typing\ntyping.sys.modules", "AttributeError"),
    "getattr builtins": ("static", "getattr(__builtins__, 'open')", "AttributeError"),
    "getattr dunder": ("static", "getattr((), '__subclasshook__')", "not allowed in an eval"),
    "lambda globals": ("static", "(lambda: 0).__globals__['__builtins__']['open']", "KeyError: 'open'"),
    "subclasses wrap_close": (
        "static",
        "[c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__ == '_wrap_close'][0]"
        ".__init__.__globals__['system']('touch {tmp}/pwned')",
        "PermissionError: os.system is blocked",
    ),
    "type subclasses open": (
        "static",
        "[c for c in type.__subclasses__(object) if c.__name__ == '_wrap_close'][0]"
        ".__init__.__globals__['__builtins__']['open']('{tmp}/pwned', 'w')",
        "PermissionError: open is blocked",
    ),
    "generator frame": (
        "static",
        "(i for i in [1]).gi_frame.f_back.f_globals",
        "object.__getattr__ is blocked",
    ),
    "traceback frame": (
        "static",
        "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_back",
        "object.__getattr__ is blocked",
    ),
    "function code": ("static", "(lambda: 0).__code__", "object.__getattr__ is blocked"),
    "open for writing": (
        "builtins",
        "open('{tmp}/pwned', 'w').write('x')",
        "PermissionError: open is blocked",
    ),
    "os.system": ("builtins", "import os\nos.system('touch {tmp}/pwned')", "os.system is blocked"),
    "new import": ("builtins", "import sqlite3", "PermissionError: import is blocked"),
    "subprocess": ("builtins", "import subprocess", "import is blocked"),
    "ctypes": (
        "builtins", "import ctypes\nctypes.CDLL(None).system(b'touch {tmp}/pwned')",
        "ctypes.dlopen is blocked",
    ),
    "exec": ("builtins", "exec('x = 1')", "compile is blocked"),
    "fork": ("builtins", "import os\nos.fork()", "os.fork is blocked"),
    "database": ("builtins", "import os\nos.remove('{db}')", "os.remove is blocked"),
    "fork bomb": ("builtins", "import os\nwhile True:\n    os.fork()", "os.fork is blocked"),
    "relative write": ("builtins", "open('pwned', 'w')", "PermissionError: open is blocked"),
    # Below the Python layers only the operating system's stand (seccomp/Landlock answer EPERM).
    "os relative write": ("audit", "open('pwned', 'w')", "PermissionError"),
    "os file": ("audit", "open('{tmp}/pwned', 'w')", "PermissionError"),
    "os fork": ("audit", "import os\npid = os.fork()\nif pid == 0: os._exit(0)", "PermissionError"),
    "os database": ("audit", "open('{db}', 'r+b').write(b'x')", "PermissionError"),
}


@dataclass
class EscapeRun:
    results: dict[str, ExecResult]
    scratch: Path
    db: Path
    db_digest: str
    root_before: list[str]


@pytest.fixture(scope="module")
def escape_run(tmp_path_factory: pytest.TempPathFactory) -> EscapeRun:
    """Every escape attempt, one trace each, in one runner per layer configuration (fast)."""
    base = tmp_path_factory.mktemp("escapes")
    base.chmod(0o777)
    scratch = base / "scratch"
    scratch.mkdir()
    scratch.chmod(0o777)  # writable by anyone: only the sandbox, not permissions, may stop a write
    db = base / "victim.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript((schema_dir() / "schema.sql").read_text())
    conn.close()
    db.chmod(0o666)
    run = EscapeRun({}, scratch, db, hashlib.sha256(db.read_bytes()).hexdigest(), sorted(os.listdir("/")))
    for layer, disabled in LAYERS_UP_TO.items():
        cases = sorted(case for case, (case_layer, _, _) in ESCAPES.items() if case_layer == layer)
        branches = "".join(
            f"    if trace['trace_id'] == {case!r}:\n"
            + textwrap.indent(ESCAPES[case][1].format(tmp=scratch, db=db), "        ")
            + "\n"
            for case in cases
        )
        code = f"def check(trace):\n{branches}    return (True, 'escaped')\n"
        run.results.update(run_code(code, [(case, "[]") for case in cases], _disable_layers=disabled))
    return run


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escape_attempts_fail_at_each_layer(case: str, escape_run: EscapeRun) -> None:
    result = escape_run.results[case]
    assert result.result is None and result.error is not None
    assert ESCAPES[case][2] in result.error, result.error
    assert os.listdir(escape_run.scratch) == []
    # The worker's cwd is "/"; the test's own cwd is checked too in case that ever changes.
    assert sorted(os.listdir("/")) == escape_run.root_before
    assert not Path("pwned").exists() and not Path("/pwned").exists()
    assert hashlib.sha256(escape_run.db.read_bytes()).hexdigest() == escape_run.db_digest
    assert sorted(p.name for p in escape_run.db.parent.iterdir()) == ["scratch", "victim.sqlite"]


def test_format_string_tricks_only_ever_produce_text() -> None:
    # A run-time template passes the static check; formatting can read a repr but never call or escape.
    result = one(
        """
        def check(trace):
            template = "{0." + "_" * 2 + "globals" + "_" * 2 + "}"
            leaked = template.format(check)
            return (type(leaked) is str, leaked[:20])
        """
    )
    assert result.result is True and result.reason.startswith("{")


@pytest.mark.parametrize("layer", ["static", "builtins", "audit"])
def test_no_network_connection_at_any_layer(layer: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    attempts = [
        "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=0.2)",
        "__import__('socket').create_connection(('127.0.0.1', PORT))",
        "import _socket\n_socket.socket().connect(('127.0.0.1', PORT))",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:PORT/')",
    ]
    traces = [(f"a{i}", "[]") for i in range(len(attempts))]
    body = "\n".join(
        f"    if trace['trace_id'] == 'a{i}':\n{textwrap.indent(code.replace('PORT', str(port)), '        ')}"
        for i, code in enumerate(attempts)
    )
    try:
        results = run_code(
            f"def check(trace):\n{body}\n    return (True, 'connected')\n",
            traces,
            _disable_layers=LAYERS_UP_TO[layer],
        )
        assert all(r.error and r.result is None for r in results.values()), results
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


# -- resource limits and the wall-clock kill -------------------------------------------------------------

LOOP_THEN_OK = "def check(trace):\n    if trace['trace_id'] == 'slow':\n{loop}\n    return (True, 'fine')\n"


@pytest.mark.parametrize(
    "loop",
    [
        "        while True: pass",  # the worker's own CPU timer
        "        while True:\n            try:\n                while True: pass\n"
        "            except BaseException: pass",
        "        import re\n        re.match(r'(a+)+$', 'a' * 40 + 'b')",  # stuck in C: only a kill stops it
    ],
    ids=["plain", "swallows-timeout", "in-c-code"],
)
def test_infinite_loop_times_out_and_the_run_goes_on(loop: str) -> None:
    traces = [("before", "[]"), ("slow", "[]"), ("after1", "[]"), ("after2", "[]")]
    start = time.monotonic()
    results = run_code(LOOP_THEN_OK.format(loop=loop), traces, batch_size=4)
    elapsed = time.monotonic() - start
    assert results["slow"].error is not None and results["slow"].error.startswith("timeout after 0.5 s")
    assert results["slow"].result is None
    assert all(results[t].result is True for t in ("before", "after1", "after2"))
    assert elapsed < 0.5 + 1.0 + 1.0  # timeout + grace + worker restart


@pytest.mark.parametrize(
    "bomb",
    ["x = 'a' * (10 ** 9)", "x = []\n        while True: x.append(' ' * 10 ** 6)", "x = [0] * (10 ** 9)"],
)
def test_memory_bomb_is_a_memory_error_and_the_worker_survives(bomb: str) -> None:
    code = (
        f"def check(trace):\n    if trace['trace_id'] == 'bomb':\n        {bomb}\n    return (True, 'fine')\n"
    )
    results = run_code(code, [("bomb", "[]"), ("next", "[]")], memory_mb=128, timeout_s=5.0)
    assert results["bomb"].error == "memory limit 128 MB exceeded (MemoryError)"
    assert results["next"].result is True


def test_giant_output_is_capped_and_marked() -> None:
    result = one(
        """
        def check(trace):
            for _ in range(10 * 1024):
                print("x" * 1023)
            return (True, "r" * 100000)
        """,
        output_limit=1000,
        timeout_s=5.0,
    )
    assert result.result is True
    assert result.stdout.startswith("x" * 1000 + "\n… [output truncated: ")
    assert len(result.stdout) < 1100 and "10,484,760 more characters" in result.stdout
    assert len(result.reason) < 1100 and result.reason.endswith("99,000 more characters]")


# -- cancel and threads ---------------------------------------------------------------------------------


def test_cancel_from_another_thread_stops_the_run_and_kills_the_workers() -> None:
    code = "def check(trace):\n    n = 0\n    for i in range(200000): n += i\n    return (True, str(n))\n"
    runner = EvalRunner(code, jobs=2, timeout_s=5.0, batch_size=4)
    seen: list[ExecResult] = []
    processes = [worker.proc for worker in runner._workers]

    def consume() -> None:
        for result in runner.run((f"t{i}", "[]") for i in range(100000)):
            seen.append(result)
            if len(seen) == 5:
                threading.Thread(target=runner.cancel).start()

    thread = threading.Thread(target=consume)
    start = time.monotonic()
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - start < 5
    assert 5 <= len(seen) < 100000
    assert all(proc.poll() is not None for proc in processes)
    assert list(runner.run([("late", "[]")])) == []  # cancel is final
    runner.close()


def test_monkeypatching_json_cannot_forge_what_the_worker_reports() -> None:
    results = run_code(
        """
        import json
        class Box:
            size = 0
        def check(trace):
            Box.size += 1
            json.JSONEncoder.encode = lambda self, o: '[0, true, "forged", 0, null, "", ""]'
            json.JSONEncoder.iterencode = lambda self, o, _one_shot=False: iter(["forged"])
            return (False, f"box {Box.size}")
        """,
        [("first", "[]"), ("second", "[]")],
    )
    assert (results["first"].result, results["first"].reason) == (False, "box 1")
    assert (results["second"].result, results["second"].reason) == (False, "box 2")


def test_a_hostile_exception_str_cannot_escape_the_timer() -> None:
    result = one(
        """
        class Nasty(Exception):
            def __str__(self):
                while True:
                    pass
        def check(trace):
            raise Nasty()
        """
    )
    assert result.error == "timeout after 0.5 s"


def test_an_abandoned_run_leaves_no_stale_results_for_the_next() -> None:
    code = "def check(trace):\n    return (True, trace['trace_id'])\n"
    with EvalRunner(code, jobs=2, timeout_s=5.0, batch_size=8) as runner:
        for _ in runner.run((f"old{i}", "[]") for i in range(1000)):
            break
        fresh = [(f"new{i}", "[]") for i in range(50)]
        results = list(runner.run(fresh))
    assert sorted(r.trace_id for r in results) == sorted(t for t, _ in fresh)
    assert all(r.reason == r.trace_id for r in results)


def test_deep_recursion_is_an_error_not_a_crash() -> None:
    result = one("def f(n):\n    return f(n + 1)\ndef check(trace):\n    return (f(0) > 0, '')\n")
    assert result.error is not None and result.error.startswith("RecursionError: maximum recursion depth")


def test_a_dead_worker_is_replaced_and_the_run_goes_on() -> None:
    code = """
        import os
        def check(trace):
            if trace["trace_id"] == "kill":
                import ctypes
                ctypes.string_at(0)
            if trace["trace_id"] == "exit":
                os._exit(3)
            return (True, "fine")
        """
    traces = [("a", "[]"), ("kill", "[]"), ("b", "[]"), ("exit", "[]"), ("c", "[]")]
    results = run_code(code, traces, _disable_layers=LAYERS_UP_TO["audit"], batch_size=5)
    assert results["kill"].error == "worker crashed (SIGSEGV)"
    assert results["exit"].error == "worker exited unexpectedly (code 3)"
    assert all(results[t].result is True for t in "abc")


def test_future_annotations_and_dunder_name_are_fine() -> None:
    code = (
        "from __future__ import annotations\n"
        "def check(trace: dict) -> tuple[bool, str]:\n"
        "    return (True, __name__)\n"
        "if __name__ == '__main__':\n"
        "    raise SystemExit('not run')\n"
    )
    assert check_code(code) == []
    assert one(code).reason == "eval"


def test_the_seed_eval_reproduces_the_stored_executions(seed_conn: sqlite3.Connection) -> None:
    (eval_id, name, code) = seed_conn.execute("SELECT id, name, code FROM evals").fetchone()
    stored = {
        row["trace_id"]: (bool(row["result"]), row["reason"])
        for row in seed_conn.execute(
            "SELECT trace_id, result, reason FROM eval_executions WHERE eval_id = ?", (eval_id,)
        )
    }
    traces = [(row["id"], row["steps"]) for row in seed_conn.execute("SELECT id, steps FROM traces")]
    results = run_code(code, traces, name=name, jobs=2)
    assert stored and {tid: (r.result, r.reason) for tid, r in results.items() if tid in stored} == stored
