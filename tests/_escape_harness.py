"""Runs eval code in the sandbox as a separate "app" process, so a test can give it secrets in its
environment and $HOME, run it as another uid, and see whether anything outlives it.

    python _escape_harness.py SPEC.json OUT.json

SPEC: {"code": str, "name": str, "traces": [[id, steps]], "disable": [...], "timeout_s": float}.
OUT: {"results": [...], "error": str|null, "elapsed_s": float, "leftover": [pids], "layers": {...}}.
The harness is a child subreaper: anything a worker leaves behind becomes its child and is counted.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    from iofold_tui.data.evalrun.results import EvalCodeError, SandboxError
    from iofold_tui.data.evalrun.sandbox import EvalRunner

    out: dict[str, object] = {"results": [], "error": None, "layers": {}}
    start = time.monotonic()
    try:
        with EvalRunner(spec["code"], spec.get("name"), jobs=spec.get("jobs", 2),
                        timeout_s=spec.get("timeout_s", 1.0), batch_size=spec.get("batch_size", 4),
                        _disable_layers=frozenset(spec.get("disable", ()))) as runner:
            out["layers"] = {layer.name: layer.active for layer in runner.confinement.layers}
            for r in runner.run(spec["traces"]):
                out["results"].append([r.trace_id, r.result, r.reason, r.execution_time_ms, r.error,
                                       r.stdout, r.stderr])
    except (EvalCodeError, SandboxError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["elapsed_s"] = time.monotonic() - start
    time.sleep(0.2)  # let an orphan be re-parented to us
    leftover = _children()
    out["leftover"] = leftover
    for pid in leftover:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with open(sys.argv[2], "w", encoding="utf-8") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
