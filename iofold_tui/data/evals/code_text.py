"""An eval's code and prompts as text: line diffs between two versions (unified and side by side),
export to a file, the external viewer to open it with, and code made safe for a terminal."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from iofold_tui.data.evals.versions import FIELDS, EvalDetail
from iofold_tui.data.sanitize import clean

DiffKind = Literal["equal", "add", "del", "hunk"]
SideKind = Literal["equal", "replace", "add", "del", "hunk"]


@dataclass(frozen=True)
class DiffLine:
    kind: DiffKind
    old_no: int | None
    new_no: int | None
    text: str


@dataclass(frozen=True)
class SideRow:
    kind: SideKind
    old_no: int | None
    old_text: str | None
    new_no: int | None
    new_text: str | None


@dataclass
class FieldDiff:
    field: str
    label: str
    unified: list[DiffLine]
    side: list[SideRow]
    added: int
    removed: int

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed


def split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (as the highlighter splits), without the empty tail of a final newline."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" and len(lines) > 1 else ([] if text == "" else lines)


def _groups(
    a: list[str], b: list[str], context: int | None
) -> list[Sequence[tuple[str, int, int, int, int]]]:
    matcher = difflib.SequenceMatcher(None, a, b)
    if context is None:
        return [matcher.get_opcodes()]
    return list(matcher.get_grouped_opcodes(context))


def diff_lines(
    old: str, new: str, context: int | None = 3, field_name: str = "code", label: str = "code"
) -> FieldDiff:
    """Unified lines and side-by-side rows from one difflib pass; ``context=None`` keeps every line."""
    a, b = split_lines(old), split_lines(new)
    unified: list[DiffLine] = []
    side: list[SideRow] = []
    added = removed = 0
    if a != b:
        for group in _groups(a, b, context):
            i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
            header = f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"
            unified.append(DiffLine("hunk", None, None, header))
            side.append(SideRow("hunk", None, header, None, None))
            for tag, x1, x2, y1, y2 in group:
                if tag == "equal":
                    for k in range(x2 - x1):
                        unified.append(DiffLine("equal", x1 + k + 1, y1 + k + 1, a[x1 + k]))
                        side.append(SideRow("equal", x1 + k + 1, a[x1 + k], y1 + k + 1, b[y1 + k]))
                    continue
                removed += x2 - x1
                added += y2 - y1
                unified += [DiffLine("del", i + 1, None, a[i]) for i in range(x1, x2)]
                unified += [DiffLine("add", None, j + 1, b[j]) for j in range(y1, y2)]
                for k in range(max(x2 - x1, y2 - y1)):
                    i, j = x1 + k, y1 + k
                    has_old, has_new = i < x2, j < y2
                    kind: SideKind = "replace" if has_old and has_new else "del" if has_old else "add"
                    side.append(SideRow(kind, i + 1 if has_old else None, a[i] if has_old else None,
                                        j + 1 if has_new else None, b[j] if has_new else None))
    return FieldDiff(field_name, label, unified, side, added, removed)


def eval_diff(old: EvalDetail, new: EvalDetail, context: int | None = 3) -> list[FieldDiff]:
    """Code, generation prompt and custom instructions of ``old`` → ``new``."""
    return [diff_lines(old.text_of(f), new.text_of(f), context, f, label) for f, label in FIELDS]


def unified_text(old: EvalDetail, new: EvalDetail, context: int = 3) -> str:
    """A plain unified diff (``git apply``-style headers) of all three fields, for copying."""
    parts: list[str] = []
    for f, _ in FIELDS:
        a, b = split_lines(old.text_of(f)), split_lines(new.text_of(f))
        tag = "" if f == "code" else f".{f}"
        parts += difflib.unified_diff(
            a,
            b,
            f"{old.summary.name}_v{old.summary.version}{tag}",
            f"{new.summary.name}_v{new.summary.version}{tag}",
            n=context,
            lineterm="",
        )
    return "\n".join(parts) + ("\n" if parts else "")


def default_export_name(name: str, version: int) -> str:
    """``<name>_v<version>.py`` with anything but letters, digits, ``_`` and ``-`` replaced."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_.") or "eval"
    return f"{stem[:80]}_v{version}.py"


def export_code(code: str, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the code exactly as stored; ``FileExistsError`` unless ``overwrite``."""
    path = Path(path).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    with path.open("w" if overwrite else "x", encoding="utf-8", newline="") as handle:
        handle.write(code)
    return path


def viewer_command(env: Mapping[str, str] | None = None) -> list[str] | None:
    """$PAGER, else $EDITOR, else ``less`` / ``more`` when installed; None when nothing is usable."""
    env = os.environ if env is None else env
    for var in ("PAGER", "EDITOR"):
        value = (env.get(var) or "").strip()
        if value:
            try:
                parts = shlex.split(value)
            except ValueError:
                continue
            if parts and shutil.which(parts[0]):
                return parts
    for fallback in ("less", "more"):
        if shutil.which(fallback):
            return [fallback]
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(code: str) -> tuple[str, bool]:
    """Code for a pager on the terminal: raw unless it holds control characters (then made visible)."""
    if not _CONTROL.search(code):
        return code, False
    return clean(code, limit=None), True
