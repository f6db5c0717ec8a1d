"""Import another person's labels: preview (new / same / conflicting), then apply as ONE undoable step.

Their labels come from a label file (``export-labels`` CSV / JSON lines / D1 label patch, read by
labels/label_file.py) or another copy of the database (``--from``: a SQLite file, a ``wrangler d1 export``
.sql or a wrangler dir, opened read-only). Everything is checked before anything is written: wrong
columns, invalid ratings, duplicate rows, eval sets or traces the source does not have — each reported
with its line (a copy's rows with their rowid), and then nothing is applied.

Per (eval set, trace) their label is compared with mine (the source's ``feedback`` row):
  new       - I have no label, they have one;
  same      - the same rating and note (no note and an empty note are the same), or both have none;
  conflict  - another rating or note, or they removed a label I have.
``apply_import`` writes the new ones (and with ``prefer="theirs"`` the conflicts) through the label
store's bulk path (``LabelStore.put_rows``: one transaction, one history step, undone by ``u``); each row
is written only while mine is still what the preview read (a label changed meanwhile is left out and
counted). ``prefer="mine"`` keeps mine for every conflict; without a rule they stay listed as conflicts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from iofold_tui.data.db import tolerant
from iofold_tui.data.errors import SourceError
from iofold_tui.data.labels.history import FeedbackRow, Step
from iofold_tui.data.labels.label_file import LabelRow, LineError, read_label_file, sniff_format
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.ratings import RATINGS
from iofold_tui.data.sanitize import one_line

Prefer = Literal["mine", "theirs"]
_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class ImportItem:
    line: int
    eval_set_id: str
    trace_id: str
    rating: str | None  # theirs (None: they have no label)
    notes: str | None
    mine: FeedbackRow | None
    status: str  # new | same | conflict
    annotator: str | None = None

    def describe(self) -> str:
        def label(rating: object, notes: object) -> str:
            if rating is None:
                return "no label"
            note = "" if notes in (None, "") else f" (note: {one_line(notes, 40)})"
            return f"{one_line(rating, 20)}{note}"

        mine = label(self.mine.rating, self.mine.notes) if self.mine else "no label"
        return (f"{one_line(self.eval_set_id, 40)} / {one_line(self.trace_id, 60)}: mine {mine}, "
                f"theirs {label(self.rating, self.notes)}")

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "eval_set_id": self.eval_set_id, "trace_id": self.trace_id,
                "status": self.status, "theirs": {"rating": self.rating, "notes": self.notes,
                                                  "annotator": self.annotator},
                "mine": None if self.mine is None else {"rating": self.mine.rating, "notes": self.mine.notes,
                                                        "feedback_id": self.mine.id}}


@dataclass
class ImportPlan:
    origin: str  # the file or copy the user named
    fmt: str  # csv | jsonl | patch | database
    items: list[ImportItem] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    other_sets: int = 0  # rows of other eval sets, left out by --eval-set

    @property
    def ok(self) -> bool:
        return not self.errors

    def of(self, status: str) -> list[ImportItem]:
        return [i for i in self.items if i.status == status]

    def counts(self) -> dict[str, int]:
        return {s: sum(i.status == s for i in self.items) for s in ("new", "same", "conflict")}

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "format": self.fmt, "rows": len(self.items), **self.counts(),
                "other_eval_sets": self.other_sets,
                "conflicts": [i.to_dict() for i in self.of("conflict")],
                "errors": [{"line": e.line, "message": e.message} for e in self.errors]}


@dataclass(frozen=True)
class ImportResult:
    written: int  # labels written (new + conflicts resolved as theirs)
    new: int
    theirs: int  # conflicts resolved by taking theirs
    kept_mine: int  # conflicts resolved by keeping mine
    changed_meanwhile: int  # left out: my label changed after the preview
    conflicts_left: list[ImportItem]
    step: Step | None


def _read_copy(other: str, eval_set_ids: set[str] | None) -> tuple[str, list[LabelRow], list[LineError]]:
    """Their labels from another copy of the database (read-only); a row's "line" is its rowid."""
    from iofold_tui.data.db import connect
    from iofold_tui.data.source.loader import open_source

    opened = open_source(Path(other).expanduser(), read_only=True)
    rows: list[LabelRow] = []
    errors: list[LineError] = []
    with contextlib.closing(connect(opened.db.path, read_only=True, immutable=opened.db.immutable)) as conn:
        conn.row_factory = None
        try:
            cur = conn.execute("SELECT rowid, eval_set_id, trace_id, rating, notes FROM feedback")
        except sqlite3.Error as exc:
            raise SourceError(other, f"cannot read its labels: {exc}") from None
        for rowid, es, tid, rating, notes in cur:
            if eval_set_ids is not None and es not in eval_set_ids:
                continue
            if rating not in RATINGS:
                errors.append(LineError(int(rowid),
                                        f"feedback row {rowid}: invalid rating {one_line(rating, 30)!r}"))
                continue
            if not isinstance(es, str) or not isinstance(tid, str):
                errors.append(LineError(int(rowid),
                                        f"feedback row {rowid}: eval_set_id / trace_id is not text"))
                continue
            rows.append(LabelRow(int(rowid), es, tid, rating, notes if isinstance(notes, str) else
                                 (None if notes is None else str(notes))))
    with contextlib.suppress(Exception):
        opened.db.close()
    return "database", rows, errors


def resolve_eval_set(conn: sqlite3.Connection, wanted: str, where: str) -> str:
    rows = [(str(r[0]), r[1]) for r in conn.execute("SELECT id, name FROM main.eval_sets")]
    if any(i == wanted for i, _ in rows):
        return wanted
    named = [i for i, n in rows if n == wanted]
    if len(named) > 1:
        raise ValueError(f"--eval-set {wanted!r}: {len(named)} eval sets have this name in {where}; "
                         "give its id")
    if not named:
        raise ValueError(f"--eval-set {wanted!r}: no eval set with this name or id in {where}")
    return named[0]


def plan_import(source: Any, theirs: str | Path, *, from_copy: bool = False,  # an OpenedSource
                eval_set: str | None = None) -> ImportPlan:
    """Read and check their labels against ``source`` (an OpenedSource); reads only."""
    where = "demo database" if source.kind == "demo" else str(source.origin)
    path = Path(theirs).expanduser()
    if not path.exists():
        raise SourceError(path, "no such file or directory")
    from iofold_tui.data.source.d1.pull import labels_file

    mine, _ = labels_file(source)  # a live D1: a fresh labels-only copy (it cannot ATTACH)
    conn = sqlite3.connect(f"{mine.resolve().as_uri()}?mode=ro", uri=True,
                           isolation_level=None, check_same_thread=False)
    tolerant(conn)
    try:
        es_id = resolve_eval_set(conn, eval_set, where) if eval_set is not None else None
        fmt = None if (from_copy or path.is_dir()) else sniff_format(path)
        if fmt is None:
            fmt, rows, errors = _read_copy(str(path), None if es_id is None else {es_id})
            other_sets = 0
        else:
            parsed = read_label_file(path, fmt)
            rows, errors = parsed.rows, list(parsed.errors)
            other_sets = 0
            if es_id is not None:
                kept = [r for r in rows if r.eval_set_id == es_id]
                other_sets, rows = len(rows) - len(kept), kept
        plan = ImportPlan(str(path), fmt, errors=errors)
        plan.other_sets = other_sets
        _classify(conn, rows, plan, where)
        plan.errors.sort(key=lambda e: e.line)
        return plan
    finally:
        conn.close()


def _classify(conn: sqlite3.Connection, rows: list[LabelRow], plan: ImportPlan, where: str) -> None:
    conn.execute("ATTACH ':memory:' AS scratch")
    conn.execute("CREATE TABLE scratch.imp "
                 "(line INTEGER PRIMARY KEY, eval_set_id, trace_id, rating, notes, annotator)")
    conn.executemany("INSERT INTO scratch.imp VALUES (?, ?, ?, ?, ?, ?)",
                     ((r.line, r.eval_set_id, r.trace_id, r.rating, r.notes, r.annotator) for r in rows))
    for line, es in conn.execute("SELECT line, eval_set_id FROM scratch.imp WHERE eval_set_id NOT IN "
                                 "(SELECT id FROM main.eval_sets)"):
        plan.errors.append(LineError(line, f"eval set {one_line(es, 60)} is not in {where}"))
    for line, tid in conn.execute("SELECT line, trace_id FROM scratch.imp i WHERE NOT EXISTS "
                                  "(SELECT 1 FROM main.traces t WHERE t.id = i.trace_id)"):
        plan.errors.append(LineError(line, f"trace {one_line(tid, 60)} is not in {where}"))
    if plan.errors:
        return
    cur = conn.execute(
        "SELECT i.line, i.eval_set_id, i.trace_id, i.rating, i.notes, i.annotator, "
        "f.id, f.rating, f.notes, f.created_at, f.updated_at FROM scratch.imp i "
        "LEFT JOIN main.feedback f ON f.eval_set_id = i.eval_set_id AND f.trace_id = i.trace_id "
        "ORDER BY i.line")
    for line, es, tid, rating, notes, annotator, fid, mr, mn, mc, mu in cur:
        mine = None if fid is None or mr is None else FeedbackRow(fid, mr, mn, mc, mu)
        if rating is None:
            status = "same" if mine is None else "conflict"
        elif mine is None:
            status = "new"
        else:
            status = "same" if (mine.rating, mine.notes or None) == (rating, notes or None) else "conflict"
        plan.items.append(ImportItem(line, es, tid, rating, notes, mine, status, annotator))


def feedback_ids(n: int) -> Iterator[str]:
    """``n`` new feedback ids in iofold's style (``fb_`` + a random UUID v4, as ``new_feedback_id``), made in
    one batch: ``uuid.uuid4()`` one at a time costs a second per 100k labels."""
    raw = bytearray(os.urandom(16 * n))
    for i in range(n):
        b = raw[16 * i:16 * i + 16]
        b[6] = (b[6] & 0x0F) | 0x40  # version 4
        b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = b.hex()
        yield f"fb_{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _state(row: FeedbackRow | None) -> tuple[object, ...] | None:
    return None if row is None else (row.id, row.rating, row.notes, row.updated_at)


def import_rows(plan: ImportPlan, prefer: Prefer | None,
                now: str) -> Iterator[tuple[str, str, tuple[object, ...] | None, FeedbackRow | None]]:
    """The ``put_rows`` items that apply ``plan`` with the conflict rule ``prefer``."""
    ids = feedback_ids(sum(i.status in ("new", "conflict") for i in plan.items))
    for item in plan.items:
        if item.status == "new":
            new = FeedbackRow(next(ids), item.rating or "", item.notes, now, now)
            yield item.eval_set_id, item.trace_id, None, new
        elif item.status == "conflict" and prefer == "theirs":
            mine = item.mine
            if item.rating is None:
                yield item.eval_set_id, item.trace_id, _state(mine), None
            elif mine is None:  # not reached (a conflict has a row of mine), kept for safety
                yield item.eval_set_id, item.trace_id, None, FeedbackRow(next(ids), item.rating, item.notes,
                                                                         now, now)
            else:
                yield item.eval_set_id, item.trace_id, _state(mine), FeedbackRow(
                    mine.id, item.rating, item.notes, mine.created_at, now)


def import_annotator(plan: ImportPlan) -> str:
    """Whose labels an import writes, for the label history: the file's one ``annotator`` name, else
    "import: <file name>" (nobody in particular is known)."""
    names = {i.annotator for i in plan.items if i.status in ("new", "conflict")}
    if len(names) == 1 and None not in names:
        return str(next(iter(names)))
    return f"import: {Path(plan.origin).name}"


def apply_import(store: LabelStore, plan: ImportPlan, prefer: Prefer | None = None) -> ImportResult:
    """Write the plan as ONE undoable step (see the module docstring). Refuses a plan with errors."""
    if plan.errors:
        raise ValueError(f"{plan.origin}: {len(plan.errors)} problem(s); nothing applied")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rows = list(import_rows(plan, prefer, now))
    step = store.put_rows(rows, kind="import", annotator=import_annotator(plan)) if rows else None
    written = {(c.eval_set_id, c.trace_id) for c in step.changes} if step else set()
    conflicts = plan.of("conflict")
    theirs = sum((i.eval_set_id, i.trace_id) in written for i in conflicts) if prefer == "theirs" else 0
    new = sum((i.eval_set_id, i.trace_id) in written for i in plan.of("new"))
    left = [] if prefer is not None else conflicts
    if prefer == "theirs":
        left = [i for i in conflicts if (i.eval_set_id, i.trace_id) not in written]
    return ImportResult(len(written), new, theirs, len(conflicts) if prefer == "mine" else 0,
                        len(rows) - len(written), left, step)
