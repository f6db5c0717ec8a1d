"""A database whose trace text attacks the renderer: markup, escapes, controls, invalid JSON, 5 MB steps."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
from conftest import build_db

HOSTILE_STRINGS = [
    "[bold red]not markup[/bold red] [/x] [link=http://evil]click[/link] [@click=app.quit]quit[/]",
    "\x1b[2J\x1b[31mANSI red\x1b[0m \x1b]0;title\x07 \x1b[?1049h",
    "ctrl \x00 \x07 \x08 \x0b \x0c \x7f \x85 \u202eevil\u202c \u200b",
    "emoji 🙂👩‍👩‍👧 CJK 中文 日本語 한국어 RTL עברית",
    "tab\tand\rcarriage",
]


def make_hostile_db(path: Path) -> tuple[Path, list[str]]:
    build_db(path, seed=True)
    db = sqlite_utils.Database(path)
    workspace_id, integration_id = db.execute("SELECT workspace_id, id FROM integrations LIMIT 1").fetchone()
    eval_set_id = db.execute("SELECT id FROM eval_sets LIMIT 1").fetchone()[0]

    def trace(row_id: str, **fields: object) -> None:
        db["traces"].insert({"id": row_id, "workspace_id": workspace_id, "integration_id": integration_id,
                             **fields})

    ids = []
    for i, text in enumerate(HOSTILE_STRINGS):
        steps = json.dumps([{
            "step_id": f"h{i}", "timestamp": text, "messages_added": [{"role": "user", "content": text},
                                                                       {"role": text, "content": text}],
            "tool_calls": [{"tool_name": text, "arguments": {text: text}, "error": text}],
            "input": text, "output": {"response": text}, "metadata": {"name": text}, "error": text,
        }])
        ids.append(f"hostile_{i}")
        trace(f"hostile_{i}", trace_id=text, source=text[:20], timestamp=f"2026-01-0{i + 1}T00:00:00Z",
              steps=steps, input_preview=text, output_preview=text, step_count=1, has_errors=1)
        db["feedback"].insert({"id": f"fb_h{i}", "eval_set_id": eval_set_id, "trace_id": f"hostile_{i}",
                               "rating": "negative", "notes": text})
    big = json.dumps([{"step_id": f"s{n}", "messages_added": [{"role": "assistant", "content": "x" * 5000}]}
                      for n in range(1000)])
    for trace_id, steps in (
        ("invalid_json", '{"steps": [unclosed'),
        ("empty_steps", "[]"),
        ("big_steps", big),
        ("not_a_list", '{"a": 1}'),
        ("blob_steps", b"\x00\x01binary"),
    ):
        ids.append(trace_id)
        trace(trace_id, trace_id=trace_id, source="langfuse", timestamp="2026-02-01T00:00:00Z", steps=steps,
              input_preview="p", output_preview="o", step_count=0, has_errors=0)
    db.close()
    return path, ids
