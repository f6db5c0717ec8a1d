"""What the eval sandbox hands back: a result per trace, or why the eval or the sandbox could not run."""

from __future__ import annotations

from dataclasses import dataclass

from iofold_tui.data.evalrun.confinement import Confinement
from iofold_tui.data.sanitize import one_line


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

