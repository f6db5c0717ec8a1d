"""Read another person's labels from a file: a CSV / JSON-lines export or a D1 label patch (.sql), as
``iofold-tui export-labels`` writes them (labels/patch.py). Every line is checked; problems are collected
per line (with its number), never raised one at a time, so a caller can report them all and apply nothing.

A row says what the other person's copy holds for one (eval set, trace) at the end: ``upsert`` (a rating,
maybe a note) or ``delete`` (no label). CSV/JSONL columns: ``eval_set_id``, ``trace_id``, ``rating``
(required; empty for a deletion), ``action`` (upsert | delete, default from the rating), ``notes``, and the
informational ``changed_at``, ``feedback_id``, ``annotator``. Unknown columns are an error (a file from
something else, or a typo). A CSV cannot tell an empty note from no note: both are no note.

A patch is read statement by statement (one per line, as export-labels writes them): the UPDATE / INSERT
of a key give its final row, a DELETE its deletion; the eval-set inserts, the closing conflict SELECTs and
comments are skipped. Literals are decoded here (NULL, numbers, '' quoting, ``char(N)``), never executed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from iofold_tui.data.ratings import RATINGS
from iofold_tui.data.sanitize import one_line

REQUIRED = ("eval_set_id", "trace_id", "rating")
KNOWN = frozenset({*REQUIRED, "action", "notes", "changed_at", "feedback_id", "annotator"})
PATCH_MARK = "-- iofold-tui label patch"
MAX_FIELD = 1_000_000  # characters; a note longer than this is not a note


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One (eval set, trace) as the file says it ends: ``rating`` None means "no label" (a deletion)."""

    line: int
    eval_set_id: str
    trace_id: str
    rating: str | None
    notes: str | None
    annotator: str | None = None

    @property
    def action(self) -> str:
        return "delete" if self.rating is None else "upsert"


@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 0: the file as a whole
    message: str

    def text(self, name: str) -> str:
        where = f"{name}:{self.line}" if self.line else name
        return f"{where}: {self.message}"


@dataclass
class LabelFile:
    path: Path
    fmt: str  # csv | jsonl | patch
    rows: list[LabelRow] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def sniff_format(path: Path) -> str | None:
    """``csv`` / ``jsonl`` / ``patch`` for a label file, None for anything else (a database, a D1 export)."""
    if path.is_dir():
        return None
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"SQLite format 3\x00"):
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.startswith(PATCH_MARK):
        return "patch"
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    first = text.split("\n", 1)[0]
    if "eval_set_id" in first and "," in first:
        return "csv"
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)


def read_label_file(path: Path, fmt: str | None = None) -> LabelFile:
    """Parse ``path`` (format sniffed unless given). Never raises for bad content: see ``errors``."""
    path = Path(path)
    fmt = fmt or sniff_format(path)
    out = LabelFile(path, fmt or "unknown")
    if fmt is None:
        out.errors.append(
            LineError(0, "not a label file (expected an export-labels CSV, JSON lines or .sql patch)")
        )
        return out
    try:
        raw = path.read_bytes()
    except OSError as exc:
        out.errors.append(LineError(0, f"cannot read: {exc.strerror or exc}"))
        return out
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        out.errors.append(LineError(line, "not UTF-8 text"))
        return out
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "patch": _read_patch}[fmt]
    candidates = list(reader(text, out.errors))
    _check_rows(candidates, out)
    return out


def _check_rows(candidates: list[tuple[int, dict[str, object]]], out: LabelFile) -> None:
    seen: dict[tuple[str, str], LabelRow] = {}
    for line, rec in candidates:
        row = _row(line, rec, out.errors)
        if row is None:
            continue
        key = (row.eval_set_id, row.trace_id)
        first = seen.get(key)
        if first is not None:
            if out.fmt == "patch" and (first.rating, first.notes) == (row.rating, row.notes):
                continue  # a patch's UPDATE and INSERT of one key carry the same final row
            out.errors.append(
                LineError(
                    line,
                    f"duplicate row for trace {one_line(row.trace_id, 60)} in eval set "
                    f"{one_line(row.eval_set_id, 60)} (first on line {first.line})",
                )
            )
            continue
        seen[key] = row
        out.rows.append(row)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _row(line: int, rec: dict[str, object], errors: list[LineError]) -> LabelRow | None:
    get = rec.get
    es, tid, raw_rating, notes_raw, action_raw = (
        get("eval_set_id"),
        get("trace_id"),
        get("rating"),
        get("notes"),
        get("action"),
    )
    if (
        type(es) is str
        and type(tid) is str
        and es
        and tid
        and raw_rating in RATINGS
        and action_raw in (None, "upsert")
        and (notes_raw is None or (type(notes_raw) is str and len(notes_raw) <= MAX_FIELD))
    ):
        annotator = get("annotator")  # the common row, without the checks below
        return LabelRow(line, es, tid, raw_rating, notes_raw or None,
                        annotator if type(annotator) is str and annotator else _text(annotator) or None)
    problems: list[str] = []
    es, tid = _text(es), _text(tid)
    if not es:
        problems.append("no eval_set_id")
    if not tid:
        problems.append("no trace_id")
    rating = _text(raw_rating) or None
    action = _text(action_raw) or ("upsert" if rating is not None else "delete")
    notes = _text(notes_raw) or None
    not_text = notes_raw is not None and not isinstance(notes_raw, str | int | float)
    if not_text or isinstance(notes_raw, bool):
        problems.append("notes is not text")
    if notes is not None and len(notes) > MAX_FIELD:
        problems.append("notes longer than 1,000,000 characters")
    if action not in ("upsert", "delete"):
        problems.append(f"action {one_line(action, 30)!r} is not upsert or delete")
    elif action == "upsert" and rating not in RATINGS:
        problems.append("no rating" if rating is None and raw_rating in (None, "")
                        else f"invalid rating {one_line(raw_rating, 30)!r} (positive, negative or neutral)")
    elif action == "delete" and rating is not None:
        problems.append("a delete row has a rating")
    if problems:
        errors.append(LineError(line, "; ".join(problems)))
        return None
    annotator = _text(get("annotator")) or None
    return LabelRow(line, es or "", tid or "", rating if action == "upsert" else None,
                    notes if action == "upsert" else None, annotator)


def _read_csv(text: str, errors: list[LineError]) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        errors.append(LineError(0, "empty file (no header line)"))
        return
    except csv.Error as exc:
        errors.append(LineError(1, f"not CSV: {exc}"))
        return
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in KNOWN]
    dup = sorted({h for h in header if header.count(h) > 1})
    if missing or unknown or dup:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + \
                ([f"unknown column(s) {', '.join(one_line(u, 30) for u in unknown)}"] if unknown else []) + \
                ([f"repeated column(s) {', '.join(dup)}"] if dup else [])
        errors.append(LineError(1, "; ".join(parts) + f" (expected {', '.join(REQUIRED)} and optionally "
                                                   "action, notes, changed_at, feedback_id, annotator)"))
        return
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(LineError(reader.line_num, f"not CSV: {exc}"))
            return
        line = reader.line_num  # the last physical line of this record (a quoted note may span lines)
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            errors.append(LineError(line, f"{len(values)} fields, the header has {len(header)}"))
            continue
        yield line, {h: (v if v != "" else None) for h, v in zip(header, values, strict=True)}


def _read_jsonl(text: str, errors: list[LineError]) -> Iterator[tuple[int, dict[str, object]]]:
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            errors.append(LineError(number, f"not JSON: {exc.args[0] if exc.args else exc}"))
            continue
        if not isinstance(rec, dict):
            errors.append(LineError(number, "not a JSON object"))
            continue
        keys = [str(k) for k in rec]
        missing = [c for c in REQUIRED if c not in rec]
        unknown = [k for k in keys if k not in KNOWN]
        if missing or unknown:
            parts = ([f"missing key(s) {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown key(s) {', '.join(one_line(u, 30) for u in unknown)}"] if unknown else [])
            errors.append(LineError(number, "; ".join(parts)))
            continue
        yield number, rec


# ---------------------------------------------------------------- D1 label patches

_STR = r"'(?:[^']|'')*'"
_ATOM = rf"(?:NULL|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|{_STR}|char\(\d+\))"
_LIT = rf"({_ATOM}(?:\s*\|\|\s*{_ATOM})*)"
_KEY = rf"eval_set_id = {_LIT} AND trace_id = {_LIT}"
_UPDATE = re.compile(
    rf"UPDATE feedback SET id = {_LIT}, rating = {_LIT}, notes = {_LIT}, created_at = {_LIT}, "
    rf"updated_at = {_LIT} WHERE {_KEY} AND \(.*\);"
)
_INSERT = re.compile(
    r"INSERT INTO feedback \(id, eval_set_id, trace_id, rating, notes, created_at, updated_at\) "
    rf"SELECT {_LIT}, {_LIT}, {_LIT}, {_LIT}, {_LIT}, {_LIT}, {_LIT} WHERE NOT EXISTS .*;"
)
_DELETE = re.compile(rf"DELETE FROM feedback WHERE {_KEY} AND \(.*\);")
_SKIP = re.compile(r"^(?:--|INSERT INTO eval_sets |SELECT )")
_ATOMS = re.compile(_ATOM)


def decode_literal(text: str) -> str | int | float | None:
    """The value of a literal as labels/patch.py's ``sql_literal`` writes it (never executed)."""
    parts: list[str] = []
    for m in _ATOMS.finditer(text):
        atom = m.group()
        if atom == "NULL":
            return None
        if atom.startswith("'"):
            parts.append(atom[1:-1].replace("''", "'"))
        elif atom.startswith("char("):
            parts.append(chr(int(atom[5:-1])))
        else:
            return float(atom) if any(c in atom for c in ".eE") else int(atom)
    return "".join(parts)


def _read_patch(text: str, errors: list[LineError]) -> Iterator[tuple[int, dict[str, object]]]:
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or _SKIP.match(line):
            continue
        try:
            if m := _UPDATE.fullmatch(line):
                _, rating, notes, _, _, es, tid = (decode_literal(g) for g in m.groups())
                yield number, {"eval_set_id": es, "trace_id": tid, "rating": rating, "notes": notes}
            elif m := _INSERT.fullmatch(line):
                _, es, tid, rating, notes, _, _ = (decode_literal(g) for g in m.groups())
                yield number, {"eval_set_id": es, "trace_id": tid, "rating": rating, "notes": notes}
            elif m := _DELETE.fullmatch(line):
                es, tid = (decode_literal(g) for g in m.groups())
                yield number, {"eval_set_id": es, "trace_id": tid, "rating": None, "action": "delete"}
            else:
                errors.append(LineError(number, "not a statement of an iofold-tui label patch"))
        except (ValueError, OverflowError):
            errors.append(LineError(number, "a literal cannot be read"))
