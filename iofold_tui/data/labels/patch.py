"""Export the label changes made with iofold-tui: a D1 SQL patch, CSV or JSON lines.

Per (eval set, trace) touched, the patch carries the *final* state the history records (not each
step), so applying it twice equals applying it once:
  - a row exists at the end  -> INSERT ... ON CONFLICT(eval_set_id, trace_id) DO UPDATE SET ...
  - no row at the end        -> DELETE FROM feedback WHERE eval_set_id = ... AND trace_id = ...
With ``since=None`` keys whose final row equals the row they had before iofold-tui touched them are
left out (net effect nil, e.g. labelled then undone). With ``since`` the state at that time is not
replayed: every key touched (labelled, undone or redone) since then is written with its final state,
which is still correct and idempotent for a D1 database that already received earlier patches.

The upsert also sets ``id`` and ``created_at``: after "clear, then label again" the working copy holds
a new feedback id, and the patched D1 database should end with identical rows.
D1 rejects BEGIN/COMMIT in ``--file`` input, so there are none. Text with control characters (newlines)
is written as ``'a' || char(10) || 'b'``: exact, and unlike wrangler's own ``replace(..., '\\n',
char(10))`` it cannot alter text that also holds the two characters backslash-n.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from iofold_tui.data.labels.history import APPLIED, FeedbackRow, LabelChange, LabelHistory, utc_stamp
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.sanitize import one_line

Format = Literal["sql", "csv", "jsonl"]
FORMATS: tuple[str, ...] = ("sql", "csv", "jsonl")
COLUMNS = ("eval_set_id", "trace_id", "action", "rating", "notes", "changed_at", "feedback_id")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab stays literal, as wrangler's own export does


@dataclass(frozen=True, slots=True)
class NetChange:
    """The net effect of iofold-tui on one (eval set, trace)."""

    eval_set_id: str
    trace_id: str
    final: FeedbackRow | None  # None: the row must not exist
    last_id: str | None  # the feedback id involved (the deleted one for a deletion)
    changed_at: str  # UTC time of the latest label/undo/redo touching this key

    @property
    def action(self) -> str:
        return "delete" if self.final is None else "upsert"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    upserts: int
    deletes: int

    @property
    def count(self) -> int:
        return self.upserts + self.deletes


def sql_literal(value: str | float | int | None) -> str:
    """A SQLite/D1 literal: NULL, a number, or a quoted string with '' and control chars as char(N)."""
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return repr(value)
    parts: list[str] = []
    pos = 0
    for m in _CONTROL.finditer(value):
        if m.start() > pos:
            parts.append("'" + value[pos:m.start()].replace("'", "''") + "'")
        parts.append(f"char({ord(m.group())})")
        pos = m.end()
    if pos < len(value) or not parts:
        parts.append("'" + value[pos:].replace("'", "''") + "'")
    return " || ".join(parts)


def _since_stamp(since: datetime | None) -> str | None:
    if since is None:
        return None
    return utc_stamp(since if since.tzinfo else since.replace(tzinfo=UTC))  # naive = UTC


def net_changes(history: LabelHistory, since: datetime | None = None) -> Iterator[NetChange]:
    """Stream the net change per key, ordered by (eval_set_id, trace_id)."""
    window = _since_stamp(since)
    for group in history.iter_key_histories(window):
        changes: list[LabelChange] = [c for _, _, c in group]
        applied = [c for status, _, c in group if status == APPLIED]
        final = applied[-1].new if applied else changes[0].old
        if window is None and final == changes[0].old:
            continue
        rows = [r for c in reversed(changes) for r in (c.new, c.old) if r is not None]
        yield NetChange(changes[0].eval_set_id, changes[0].trace_id, final,
                        rows[0].id if final is None and rows else (final.id if final else None),
                        max(at for _, at, _ in group))


def _upsert(n: NetChange) -> str:
    row = n.final
    assert row is not None
    values = ", ".join(sql_literal(v) for v in (row.id, n.eval_set_id, n.trace_id, row.rating, row.notes,
                                               row.created_at, row.updated_at))
    return ("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
            f"VALUES ({values}) ON CONFLICT(eval_set_id, trace_id) DO UPDATE SET id=excluded.id, "
            "rating=excluded.rating, notes=excluded.notes, created_at=excluded.created_at, "
            "updated_at=excluded.updated_at;")


def _delete(n: NetChange) -> str:
    return (f"DELETE FROM feedback WHERE eval_set_id={sql_literal(n.eval_set_id)} "
            f"AND trace_id={sql_literal(n.trace_id)};")


def _record(n: NetChange) -> dict[str, str | None]:
    return {"eval_set_id": n.eval_set_id, "trace_id": n.trace_id, "action": n.action,
            "rating": n.final.rating if n.final else None, "notes": n.final.notes if n.final else None,
            "changed_at": n.changed_at, "feedback_id": n.last_id}


def write_changes(source: LabelStore | Path, out: TextIO, *, since: datetime | None = None,
                  fmt: Format = "sql") -> ExportSummary:
    """Write the patch for ``source`` (a LabelStore, or a history sidecar path) to ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    # A private connection: the store's own may be mid-write on another thread.
    history = LabelHistory(source.history.path if isinstance(source, LabelStore) else Path(source))
    try:
        net = list(net_changes(history, since))
        db = str(source.db_path.resolve()) if isinstance(source, LabelStore) else history.meta("source_db")
    finally:
        history.close()
    summary = ExportSummary(sum(n.final is not None for n in net), sum(n.final is None for n in net))
    if fmt == "sql":
        sets = _eval_set_rows(source.db_path, {n.eval_set_id for n in net if n.final is not None}) \
            if isinstance(source, LabelStore) else []
        _write_sql(out, net, summary, db, since, sets)
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_record(n) for n in net)
    else:
        for n in net:
            out.write(json.dumps(_record(n), ensure_ascii=False) + "\n")
    return summary


def _eval_set_rows(db_path: Path, ids: set[str]) -> list[tuple[object, ...]]:
    """The eval sets the upserts need, read from the labelled database (a set created in iofold-tui
    does not exist in D1 yet, and the feedback rows' foreign key would fail without it)."""
    if not ids:
        return []
    conn = sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT id, workspace_id, name, description, minimum_examples, created_at, updated_at FROM eval_sets "
            "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id", (json.dumps(sorted(ids)),)).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _eval_set_insert(row: tuple[object, ...]) -> str:
    values = ", ".join(sql_literal(v) for v in row)  # type: ignore[arg-type]
    # No conflict target: an eval set D1 already has (same id, or same workspace + name) is left alone.
    return ("INSERT INTO eval_sets (id, workspace_id, name, description, minimum_examples, created_at, updated_at) "
            f"VALUES ({values}) ON CONFLICT DO NOTHING;")


def _write_sql(out: TextIO, net: list[NetChange], summary: ExportSummary, db: str | None,
               since: datetime | None, eval_sets: list[tuple[object, ...]]) -> None:
    # Header values go through one_line: a path or time holding a newline must not end the comment.
    out.write("-- iofold-tui label patch (idempotent; no BEGIN/COMMIT, as D1 requires)\n")
    out.write(f"-- source: {one_line(db or 'unknown', None)}\n")
    out.write(f"-- generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC\n")
    if since is not None:
        out.write(f"-- since: {_since_stamp(since)} UTC\n")
    out.write(f"-- changes: {summary.count} ({summary.upserts} upserts, {summary.deletes} deletions)\n")
    out.write("-- apply: wrangler d1 execute <DATABASE> --remote --file <this file>\n")
    for row in eval_sets:
        out.write(_eval_set_insert(row) + "\n")
    for n in net:
        out.write((_upsert(n) if n.final is not None else _delete(n)) + "\n")
    if not net:  # wrangler rejects a file without statements ("SQL code did not contain a statement")
        out.write("SELECT 0 WHERE 0; -- no label changes: a no-op so the file still applies\n")


def export_changes(source: LabelStore | Path, *, since: datetime | None = None, fmt: Format = "sql") -> str:
    """The patch as a string (``write_changes`` streams to a file instead)."""
    buf = io.StringIO()
    write_changes(source, buf, since=since, fmt=fmt)
    return buf.getvalue()
