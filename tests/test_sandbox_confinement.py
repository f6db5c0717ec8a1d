"""The sandbox's OS layers as the user meets them: --check-sandbox, refusal without the required
layers (CLI and TUI), --unconfined, and ordinary eval code that must not be refused."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from iofold_tui.cli import main
from iofold_tui.data.evalrun import sandbox
from iofold_tui.data.evalrun.confinement import Confinement, Layer
from iofold_tui.data.evalrun.results import SandboxUnavailable
from iofold_tui.data.evalrun.sandbox import EvalRunner
from iofold_tui.data.evalrun.static_check import check_code
from iofold_tui.data.evalrun.worker.confine import LAYERS

CONFINED = sandbox.check_sandbox().complete


def _without(*missing: str) -> Confinement:
    return Confinement(tuple(Layer(name, name not in missing, "test") for name in LAYERS))


@pytest.fixture
def seed_db(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "seed.sqlite"
    result = CliRunner().invoke(main, ["demo-db", str(db), "--traces", "60"])
    assert result.exit_code == 0, result.output
    eval_id = sqlite3.connect(db).execute("SELECT id FROM evals ORDER BY id LIMIT 1").fetchone()[0]
    return db, eval_id


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
def test_check_sandbox_lists_every_layer() -> None:
    result = CliRunner().invoke(main, ["run-eval", "--check-sandbox"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sandbox: confined by the OS (")
    for title in ("seccomp-BPF", "Landlock", "no_new_privs", "hard resource limits"):
        assert title in result.stdout


def test_check_sandbox_exits_1_when_a_layer_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "check_sandbox", lambda: _without("landlock"))
    result = CliRunner().invoke(main, ["run-eval", "--check-sandbox"])
    assert result.exit_code == 1
    assert "NOT confined: missing Landlock" in result.stdout and "OFF  Landlock" in result.stdout


def test_run_eval_refuses_without_layers_unless_unconfined(
    monkeypatch: pytest.MonkeyPatch, seed_db: tuple[Path, str]
) -> None:
    db, eval_id = seed_db
    before = db.read_bytes()
    monkeypatch.setattr(sandbox, "check_sandbox", lambda: _without("seccomp", "landlock"))
    refused = CliRunner().invoke(main, ["run-eval", str(db), eval_id, "--jobs", "1"])
    assert refused.exit_code == 2
    assert "refusing to run eval code from" in refused.stderr and str(db) in refused.stderr
    assert "OFF  seccomp-BPF" in refused.stderr
    assert db.read_bytes() == before  # nothing ran, nothing was written
    ran = CliRunner().invoke(main, ["run-eval", str(db), eval_id, "--jobs", "1", "--unconfined", "--json"])
    assert ran.exit_code == 0, ran.output
    assert '"done"' in ran.stdout


def test_runner_refuses_before_compiling_when_the_os_gives_less(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's report arrives before any eval code is compiled; a missing layer stops it there."""
    import iofold_tui.data.evalrun.worker_pool as pool

    real = pool.parse_report
    monkeypatch.setattr(pool, "parse_report", lambda report, verified: Confinement(tuple(
        Layer(layer.name, layer.active and layer.name != "seccomp", layer.detail)
        for layer in real(report, verified).layers)))
    code = "raise SystemExit('module code must never run')\ndef check(trace):\n    return (True, '')\n"
    with pytest.raises(SandboxUnavailable) as caught:
        EvalRunner(code, "check", jobs=1)
    assert [layer.name for layer in caught.value.confinement.missing] == ["seccomp"]


ORDINARY = '''
import dataclasses, enum, functools, itertools, statistics, string, typing
from typing import NamedTuple, TypedDict


class Verdict(NamedTuple):
    ok: bool
    why: str


class Row(TypedDict):
    role: str
    content: str


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Stats:
    words: int
    mean: float = 0.0


class Base:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Child(Base):
    __slots__ = ("extra",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.extra = type(self).__name__


@functools.lru_cache(maxsize=None)
def weight(word: str) -> int:
    return len(word)


def check(trace: dict) -> tuple[bool, str]:
    words = list(itertools.chain.from_iterable(str(s).split() for s in trace["steps"]))
    try:
        {}["missing"]
    except KeyError as e:
        kind = type(e).__name__ + "/" + e.__class__.__name__
    stats = Stats(len(words), statistics.fmean([weight(w) for w in words] or [0]))
    level = Level.HIGH if stats.words > 2 else Level.LOW
    child = Child("c")
    template = string.Template("$n words").substitute(n=stats.words)
    row: Row = {"role": "user", "content": "x"}
    counted = dataclasses.asdict(stats)["words"]
    v = Verdict(level is Level.HIGH, f"{kind} {template} {child.extra} {row['role']} {counted}")
    return (v.ok, v.why)
'''


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
def test_ordinary_llm_style_code_is_not_refused() -> None:
    code = textwrap.dedent(ORDINARY)
    assert check_code(code, "check") == []
    with EvalRunner(code, "check", jobs=1) as runner:
        results = {r.trace_id: r for r in runner.run([("t1", '["a b c d"]'), ("t2", '["x"]')])}
    assert results["t1"].error is None, results["t1"].error
    assert results["t1"].result is True and results["t1"].reason == "KeyError/KeyError 4 words Child user 4"
    assert results["t2"].result is False


@pytest.mark.parametrize("snippet", [
    "match trace:\n        case object(__globals__=g):\n            pass",
    "match trace:\n        case object(gi_frame=f):\n            pass",
    "match trace:\n        case Thing(a):\n            pass",
])
def test_class_patterns_that_read_hidden_attributes_are_refused(snippet: str) -> None:
    code = f"def check(trace):\n    {snippet}\n    return (True, '')\n"
    assert any("class pattern" in problem for problem in check_code(code, "check"))


def test_harmless_class_patterns_pass() -> None:
    code = ("def check(trace):\n    match trace:\n        case {'steps': list(s)}:\n"
            "            return (True, str(len(s)))\n"
            "        case str(x) | int(x):\n            return (False, 'scalar')\n    return (False, '')\n")
    assert check_code(code, "check") == []


@pytest.mark.skipif(not CONFINED, reason="the OS does not confine the sandbox here")
def test_a_worker_message_reaches_the_terminal_only_sanitised(seed_db: tuple[Path, str]) -> None:
    db, eval_id = seed_db
    hostile = ("raise ValueError('\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\u202e')\n"
               "def check(trace):\n    return (True, '')\n")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evals SET code = ? WHERE id = ?", (hostile, eval_id))
    conn.close()
    result = CliRunner().invoke(main, ["run-eval", str(db), eval_id, "--jobs", "1"])
    assert result.exit_code == 2
    assert "ValueError" in result.stderr
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.stderr
