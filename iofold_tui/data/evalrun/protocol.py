"""The app's side of the worker protocol (``worker/main.py`` has the other): frames, and everything read
back from a worker checked as coming from a process that runs hostile code.

App -> worker frames are a 4-byte big-endian length + ``marshal`` (the app is trusted); worker -> app
frames are a length + JSON, never unmarshalled, and a result row is validated field by field.
"""

from __future__ import annotations

import signal
import struct
from typing import Any

from iofold_tui.data.evalrun.results import ExecResult

HEADER = struct.Struct(">I")
MAX_EXECUTION_MS = 2**31 - 1  # what a worker may claim; more is a protocol error, not an OverflowError


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def death_message(returncode: int | None, timeout_s: float) -> str:
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return f"timeout after {timeout_s} s (CPU limit)"
        try:
            return f"worker crashed ({signal.Signals(sig).name})"
        except ValueError:
            return f"worker crashed (signal {sig})"
    return f"worker exited unexpectedly (code {returncode})"


def storable(text: str) -> str:
    """Lone surrogates (which a hostile worker can send in JSON) cannot be stored: made visible."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def row_to_result(trace_id: str, row: Any) -> ExecResult:
    """Validates a worker's result row strictly (it comes from a process running hostile code)."""
    if not (isinstance(row, list) and len(row) == 7):
        raise ValueError("malformed result row")
    _, result, reason, ms, error, out, err = row
    if not (
        (result is None or isinstance(result, bool))
        and isinstance(reason, str)
        and type(ms) is int
        and 0 <= ms <= MAX_EXECUTION_MS
        and (error is None or isinstance(error, str))
        and isinstance(out, str)
        and isinstance(err, str)
        and (result is None) == (error is not None)
    ):
        raise ValueError("malformed result row")
    return ExecResult(
        trace_id, result, storable(reason), ms, None if error is None else storable(error),
        storable(out), storable(err),
    )

