"""A database whose trace text attacks the renderer: markup, escapes, controls, invalid JSON, 5 MB steps."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

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
    conn = sqlite3.connect(path)
    ids = []
    for i, text in enumerate(HOSTILE_STRINGS):
        steps = json.dumps([{
            "step_id": f"h{i}", "timestamp": text, "messages_added": [{"role": "user", "content": text},
                                                                       {"role": text, "content": text}],
            "tool_calls": [{"tool_name": text, "arguments": {text: text}, "error": text}],
            "input": text, "output": {"response": text}, "metadata": {"name": text}, "error": text,
        }])
        ids.append(f"hostile_{i}")
        conn.execute(
            "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview,"
            " output_preview, step_count, has_errors) SELECT ?, workspace_id, id, ?, ?, ?, ?, ?, ?, 1, 1 "
            "FROM integrations LIMIT 1",
            (f"hostile_{i}", text, text[:20], f"2026-01-0{i + 1}T00:00:00Z", steps, text, text),
        )
        conn.execute(
            "INSERT INTO feedback(id, eval_set_id, trace_id, rating, notes) SELECT ?, id, ?, 'negative', ? "
            "FROM eval_sets LIMIT 1",
            (f"fb_h{i}", f"hostile_{i}", text),
        )
    big = json.dumps(
        [
            {"step_id": f"s{n}", "messages_added": [{"role": "assistant", "content": "x" * 5000}]}
            for n in range(1000)
        ]
    )
    for trace_id, steps in (
        ("invalid_json", '{"steps": [unclosed'),
        ("empty_steps", "[]"),
        ("big_steps", big),
        ("not_a_list", '{"a": 1}'),
        ("blob_steps", b"\x00\x01binary"),
    ):
        ids.append(trace_id)
        conn.execute(
            "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview,"
            " output_preview, step_count, has_errors) SELECT ?, workspace_id, id, ?, 'langfuse', "
            "'2026-02-01T00:00:00Z', ?, 'p', 'o', 0, 0 FROM integrations LIMIT 1",
            (trace_id, trace_id, steps),
        )
    conn.commit()
    conn.close()
    return path, ids
