"""Readable descriptions of ``jobs.context`` / ``jobs.metadata`` / ``jobs.result`` (spec §3 shapes).

Producers wrote both snake_case and camelCase keys, so keys are normalised before lookup. Anything
unexpected (unknown keys, other job types, non-object JSON, invalid JSON) is still shown, never dropped.
All returned text is sanitized for display.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from iofold_tui.data.sanitize import clean, one_line

MAX_LISTED = 10  # error entries / trace ids listed before "… N more"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Known keys per job type, in display order, with their labels (context and result keys together:
# their names never collide, so one table serves context, metadata and result).
_LABELS: dict[str, tuple[tuple[str, str], ...]] = {
    "import": (("integration_id", "Integration"), ("filters", "Filters"), ("imported", "Imported"),
               ("skipped", "Skipped"), ("failed", "Failed"), ("errors", "Errors")),
    "generate": (("workspace_id", "Workspace"), ("eval_set_id", "Eval set"), ("eval_id", "Eval"),
                 ("accuracy", "Accuracy"), ("test_results", "Test results")),
    "execute": (("workspace_id", "Workspace"), ("eval_id", "Eval"), ("trace_ids", "Traces"),
                ("completed", "Completed"), ("failed", "Failed"), ("errors", "Errors")),
}
_FILTER_LABELS = (("date_from", "From"), ("date_to", "To"), ("limit", "Limit"))


@dataclass(frozen=True)
class JobPayload:
    fields: list[tuple[str, str]]  # (label, one-line value); "  " prefixed labels are sub-rows
    pretty: str  # indented JSON, or the raw text when invalid
    valid: bool
    warning: str | None = None


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def _cell(value: object) -> str:
    if isinstance(value, dict | list):
        return one_line(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return one_line(value)


def _percent(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:.1f} %" if 0 <= value <= 1 else _cell(value)
    return _cell(value)


def _errors(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return [("Errors", _cell(value))]
    rows = [("Errors", str(len(value)))]
    for item in value[:MAX_LISTED]:
        if isinstance(item, dict):
            norm = {_snake(str(k)): v for k, v in item.items()}
            who = norm.get("trace_id", norm.get("id", "•"))
            what = norm.get("error", norm.get("message", item))
            rows.append((f"  {one_line(who, 60)}", _cell(what)))
        else:
            rows.append(("  •", _cell(item)))
    if len(value) > MAX_LISTED:
        rows.append(("  …", f"{len(value) - MAX_LISTED} more"))
    return rows


def _trace_ids(value: object) -> str:
    if not isinstance(value, list):
        return _cell(value)
    shown = ", ".join(one_line(v, 40) for v in value[:MAX_LISTED])
    more = f" … {len(value) - MAX_LISTED} more" if len(value) > MAX_LISTED else ""
    return f"{len(value)}: {shown}{more}"


def _test_results(value: object) -> str:
    if not isinstance(value, dict):
        return _cell(value)
    norm = {_snake(str(k)): v for k, v in value.items()}
    parts = [f"{k} {_cell(norm[k])}" for k in ("correct", "incorrect", "errors", "total") if k in norm]
    if "accuracy" in norm:
        parts.append(f"accuracy {_percent(norm['accuracy'])}")
    if isinstance(norm.get("details"), list):
        parts.append(f"{len(norm['details'])} details")
    return one_line(" · ".join(parts)) if parts else _cell(value)


def _field_rows(key: str, label: str, value: object) -> list[tuple[str, str]]:
    if key == "errors":
        return _errors(value)
    if key == "filters" and isinstance(value, dict):
        norm = {_snake(str(k)): v for k, v in value.items()}
        rows = [(f"  {lab}", _cell(norm.pop(k))) for k, lab in _FILTER_LABELS if k in norm]
        rows += [(f"  {one_line(k, 40)}", _cell(v)) for k, v in norm.items()]
        return [(label, "" if rows else "none"), *rows]
    if key == "trace_ids":
        return [(label, _trace_ids(value))]
    if key == "accuracy":
        return [(label, _percent(value))]
    if key == "test_results":
        return [(label, _test_results(value))]
    return [(label, _cell(value))]


def describe_job_payload(job_type: str, json_text: object) -> JobPayload:
    """Label/value rows and pretty text for one payload column of a job of ``job_type``."""
    if json_text is None or json_text == "":
        return JobPayload([], "", True)
    try:
        value = json.loads(json_text if isinstance(json_text, str | bytes | bytearray) else str(json_text))
    except (ValueError, TypeError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return JobPayload(
            [("raw", one_line(json_text))], clean(json_text), False, f"invalid JSON: {one_line(msg, 120)}"
        )
    pretty = clean(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    if not isinstance(value, dict):
        return JobPayload([("value", _cell(value))], pretty, True,
                          f"expected a JSON object, found {type(value).__name__}")
    remaining = {_snake(str(k)): v for k, v in value.items()}
    rows: list[tuple[str, str]] = []
    if (
        job_type == "execute"
        and "eval_id" in remaining
        and "trace_ids" not in remaining
        and "completed" not in remaining
    ):
        remaining.setdefault("trace_ids", None)
    for key, label in _LABELS.get(job_type, ()):
        if key not in remaining:
            continue
        item = remaining.pop(key)
        if key == "trace_ids" and item is None:
            rows.append((label, "all traces"))
            continue
        rows.extend(_field_rows(key, label, item))
    rows.extend((one_line(k, 40), _cell(v)) for k, v in remaining.items())
    return JobPayload(rows, pretty, True)
