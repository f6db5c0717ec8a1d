"""Export the label changes made with iofold-tui: a D1 SQL patch, CSV or JSON lines.

Per (eval set, trace) touched, the patch carries the *final* state the history records (not each
step). The shared D1 database may have moved on since the export this copy was made from (a colleague
labels too), so every statement is conditional on the row still being a state this copy has seen
(the export's row, or the final row of an earlier patch from this copy; matched on id, rating, notes
and updated_at, so a row someone set back to an old value, which iofold stamps, is not mistaken for it):
  - the row must exist at the end -> UPDATE ... WHERE <row is one of those states>
                                     INSERT ... SELECT ... WHERE NOT EXISTS (<any row>)  (if "no row" is one)
  - no row at the end              -> DELETE ... WHERE <row is one of those states>
A row in any other state (relabelled, re-noted, cleared and labelled again elsewhere) is a conflict:
left as it is, and listed by the ``SELECT`` at the end of the patch (after the statements: the keys
whose row does not hold our label; wrangler prints it for ``--local``; ``--remote --file`` goes through
D1's import API, which reports counts only, so check with ``export-labels --check NEWER_EXPORT``).
Applying the patch twice equals applying it once. One ambiguity is resolved as "insert only if
absent": when the export had no row and an earlier patch inserted ours, "no row" in D1 may mean that
patch was never applied or that someone deleted the label since; the label is inserted.

With ``since=None`` keys whose final row equals the row they had before iofold-tui touched them are
left out (net effect nil, e.g. labelled then undone) unless an earlier patch wrote another state for them.
With ``since`` the state at that time is not
replayed: every key touched (labelled, undone or redone) since then is written with its final state.

The update also sets ``id`` and ``created_at``: after "clear, then label again" the working copy holds
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

from iofold_tui.data.labels.annotator import key_annotators
from iofold_tui.data.labels.history import APPLIED, FeedbackRow, LabelChange, LabelHistory, utc_stamp
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.sanitize import one_line

Format = Literal["sql", "csv", "jsonl"]
FORMATS: tuple[str, ...] = ("sql", "csv", "jsonl")
COLUMNS = ("eval_set_id", "trace_id", "action", "rating", "notes", "changed_at", "feedback_id", "annotator")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab stays literal, as wrangler's own export does


@dataclass(frozen=True, slots=True)
class NetChange:
    """The net effect of iofold-tui on one (eval set, trace)."""

    eval_set_id: str
    trace_id: str
    final: FeedbackRow | None  # None: the row must not exist
    last_id: str | None  # the feedback id involved (the deleted one for a deletion)
    changed_at: str  # UTC time of the latest label/undo/redo touching this key
    # The states D1 may hold for the key as far as this copy knows: the export's row and the final row of
    # each earlier patch (RowState, None for "no row"). The D1 row is replaced only while it is one of them.
    seen: tuple[RowState | None, ...] = ()

    @property
    def action(self) -> str:
        return "delete" if self.final is None else "upsert"

    @property
    def final_state(self) -> RowState | None:
        return state_of(self.final)

    def verdict(self, remote: RowState | None, trace_exists: bool = True) -> Verdict:
        """What applying this change does to a D1 row currently in state ``remote``."""
        final = self.final_state
        if remote == final or (remote is not None and final is not None and remote[:3] == final[:3]):
            return "done"  # the same label (timestamps aside)
        if remote not in self.seen:
            return "conflict"
        if remote is None and not trace_exists:
            return "trace missing"
        return "apply"


# (id, rating, notes, updated_at) of a feedback row. updated_at is there so that a row set back to an
# earlier value by someone else (iofold stamps every change) is not taken for one this copy saw.
RowState = tuple[str, str, "str | int | float | None", "str | int | float | None"]
Verdict = Literal["apply", "done", "conflict", "trace missing", "eval set missing"]


def state_of(row: FeedbackRow | None) -> RowState | None:
    return None if row is None else (row.id, row.rating, row.notes, row.updated_at)


def state_json(state: RowState | None) -> str:
    return json.dumps(None if state is None else list(state), ensure_ascii=False)


def _state_from_json(text: str) -> RowState | None:
    value = json.loads(text)
    return None if value is None else (value[0], value[1], value[2], value[3])


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
        # What D1 may hold: the export's row, or a final state an earlier patch wrote. Intermediate states
        # never left this copy, so a D1 row equal to one of them is someone else's (a conflict).
        exported = history.exported_states(changes[0].eval_set_id, changes[0].trace_id)
        seen = tuple(dict.fromkeys((state_of(changes[0].old), *map(_state_from_json, exported))))
        if window is None and final == changes[0].old and set(seen) <= {state_of(final)}:
            continue  # net nil, and no earlier patch wrote anything else for it
        rows = [r for c in reversed(changes) for r in (c.new, c.old) if r is not None]
        yield NetChange(changes[0].eval_set_id, changes[0].trace_id, final,
                        rows[0].id if final is None and rows else (final.id if final else None),
                        max(at for _, at, _ in group), seen)


def _key(n: NetChange) -> str:
    return f"eval_set_id = {sql_literal(n.eval_set_id)} AND trace_id = {sql_literal(n.trace_id)}"


def _is_state(state: RowState) -> str:
    fid, rating, notes, updated_at = state
    return (f"(id = {sql_literal(fid)} AND rating = {sql_literal(rating)} AND notes IS {sql_literal(notes)} "
            f"AND updated_at IS {sql_literal(updated_at)})")


def statements(n: NetChange) -> list[str]:
    """The conditional statements that move the D1 row of ``n``'s key to its final state (see module doc)."""
    final = n.final_state
    rows_seen = [s for s in n.seen if s is not None and (final is None or s[:3] != final[:3])]
    from_rows = " OR ".join(_is_state(s) for s in rows_seen)
    out: list[str] = []
    row = n.final
    if row is None:
        if from_rows:
            out.append(f"DELETE FROM feedback WHERE {_key(n)} AND ({from_rows});")
        return out
    if from_rows:
        out.append(f"UPDATE feedback SET id = {sql_literal(row.id)}, rating = {sql_literal(row.rating)}, "
                   f"notes = {sql_literal(row.notes)}, created_at = {sql_literal(row.created_at)}, "
                   f"updated_at = {sql_literal(row.updated_at)} WHERE {_key(n)} AND ({from_rows});")
    if None in n.seen:
        values = ", ".join(sql_literal(v) for v in (row.id, n.eval_set_id, n.trace_id, row.rating, row.notes,
                                                   row.created_at, row.updated_at))
        out.append("INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes, created_at, updated_at) "
                   f"SELECT {values} WHERE NOT EXISTS (SELECT 1 FROM feedback WHERE {_key(n)}) "
                   f"AND EXISTS (SELECT 1 FROM traces WHERE id = {sql_literal(n.trace_id)});")
    return out


CONFLICT_CHUNK_BYTES = 50_000  # D1 refuses statements over 100 KB


def _conflict_selects(net: list[NetChange]) -> Iterator[str]:
    """``SELECT``s, run after the statements, listing the keys whose D1 row does not hold our final label:
    exactly the changes that were skipped (changed in D1 since, or an insert whose trace D1 lacks)."""
    chunk: list[str] = []
    size = 0
    for n in net:
        final = n.final_state
        item = json.dumps([n.eval_set_id, n.trace_id, *(final[:3] if final else (None, None, None))],
                          ensure_ascii=False)
        chunk.append(item)
        size += len(item.encode()) + item.count("'")  # its bytes in the literal ('' doubles a quote)
        if size >= CONFLICT_CHUNK_BYTES:
            yield _conflict_select("[" + ",".join(chunk) + "]")
            chunk, size = [], 0
    if chunk:
        yield _conflict_select("[" + ",".join(chunk) + "]")


def _conflict_select(keys_json: str) -> str:
    return (
        "SELECT 'conflict: left as it is in D1' AS iofold_tui, o.e AS eval_set_id, o.t AS trace_id, "
        "f.rating AS d1_rating, f.notes AS d1_notes, f.id AS d1_feedback_id, o.r AS our_rating "
        "FROM (SELECT json_extract(value, '$[0]') AS e, json_extract(value, '$[1]') AS t, "
        "json_extract(value, '$[2]') AS i, json_extract(value, '$[3]') AS r, json_extract(value, '$[4]') AS "
        "n "
        f"FROM json_each({sql_literal(keys_json)})) AS o "
        "LEFT JOIN feedback AS f ON f.eval_set_id = o.e AND f.trace_id = o.t "
        "WHERE NOT (f.id IS o.i AND f.rating IS o.r AND f.notes IS o.n) "  # IS: no NULL three-valued logic
        "ORDER BY o.e, o.t;"
    )


def _record(n: NetChange, annotator: str | None = None) -> dict[str, str | None]:
    return {"eval_set_id": n.eval_set_id, "trace_id": n.trace_id, "action": n.action,
            "rating": n.final.rating if n.final else None, "notes": n.final.notes if n.final else None,
            "changed_at": n.changed_at, "feedback_id": n.last_id, "annotator": annotator}


def write_changes(source: LabelStore | Path, out: TextIO, *, since: datetime | None = None,
                  fmt: Format = "sql", record: bool = True) -> ExportSummary:
    """Write the patch for ``source`` (a LabelStore, or a history sidecar path) to ``out``.

    A SQL patch is remembered in the history (``record``): the states it writes may be in D1 later, and
    the next patch may replace them without calling that a conflict."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    # A private connection: the store's own may be mid-write on another thread.
    history = LabelHistory(source.history.path if isinstance(source, LabelStore) else Path(source))
    try:
        net = list(net_changes(history, since))
        who = (
            {} if fmt == "sql" else key_annotators(history.conn)
        )  # who made each key's latest label (issue 18)
        db = str(source.db_path.resolve()) if isinstance(source, LabelStore) else history.meta("source_db")
    finally:
        history.close()
    summary = ExportSummary(sum(n.final is not None for n in net), sum(n.final is None for n in net))
    if fmt == "sql":
        sets = _eval_set_rows(source.db_path, {n.eval_set_id for n in net if n.final is not None}) \
            if isinstance(source, LabelStore) else []
        _write_sql(out, net, summary, db, since, sets)
        if record and net:  # a later patch may replace what this one writes
            history = LabelHistory(history.path)
            try:
                history.record_exported((n.eval_set_id, n.trace_id, state_json(n.final_state)) for n in net)
            finally:
                history.close()
    elif fmt == "csv":
        # CRLF (RFC 4180): the writer quotes a field holding any line-terminator character, so a lone CR in
        # a note or id is quoted too (with "\n" alone it was written bare and split the row on reading).
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(_record(n, who.get((n.eval_set_id, n.trace_id))) for n in net)
    else:
        for n in net:
            out.write(json.dumps(_record(n, who.get((n.eval_set_id, n.trace_id))), ensure_ascii=False) + "\n")
    return summary


def _eval_set_rows(db_path: Path, ids: set[str]) -> list[tuple[object, ...]]:
    """The eval sets the upserts need, read from the labelled database (a set created in iofold-tui
    does not exist in D1 yet, and the feedback rows' foreign key would fail without it)."""
    if not ids:
        return []
    conn = sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT id, workspace_id, name, description, minimum_examples, created_at, updated_at FROM "
            "eval_sets "
            "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(sorted(ids)),),
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _eval_set_insert(row: tuple[object, ...]) -> str:
    values = ", ".join(sql_literal(v) for v in row)  # type: ignore[arg-type]
    # No conflict target: an eval set D1 already has (same id, or same workspace + name) is left alone.
    return (
        "INSERT INTO eval_sets (id, workspace_id, name, description, minimum_examples, created_at, "
        "updated_at) "
        f"VALUES ({values}) ON CONFLICT DO NOTHING;"
    )


def _write_sql(out: TextIO, net: list[NetChange], summary: ExportSummary, db: str | None,
               since: datetime | None, eval_sets: list[tuple[object, ...]]) -> None:
    # Header values go through one_line: a path or time holding a newline must not end the comment.
    out.write("-- iofold-tui label patch (idempotent; no BEGIN/COMMIT, as D1 requires)\n")
    out.write(
        "-- every statement applies only while the D1 row is still as this copy last saw it; a row changed\n"
        "-- in D1 since is left as it is and listed by the SELECT at the end (a conflict)\n"
    )
    out.write(f"-- source: {one_line(db or 'unknown', None)}\n")
    out.write(f"-- generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC\n")
    if since is not None:
        out.write(f"-- since: {_since_stamp(since)} UTC\n")
    out.write(f"-- changes: {summary.count} ({summary.upserts} upserts, {summary.deletes} deletions)\n")
    out.write("-- check first: iofold-tui export-labels <SOURCE> --check <a newer wrangler d1 export>\n")
    out.write("-- apply: wrangler d1 execute <DATABASE> --remote --file <this file>\n")
    for row in eval_sets:
        out.write(_eval_set_insert(row) + "\n")
    for n in net:
        for statement in statements(n):
            out.write(statement + "\n")
    for select in _conflict_selects(net):
        out.write(select + "\n")
    if not net:  # wrangler rejects a file without statements ("SQL code did not contain a statement")
        out.write("SELECT 0 WHERE 0; -- no label changes: a no-op so the file still applies\n")


def export_changes(source: LabelStore | Path, *, since: datetime | None = None, fmt: Format = "sql",
                   record: bool = True) -> str:
    """The patch as a string (``write_changes`` streams to a file instead)."""
    buf = io.StringIO()
    write_changes(source, buf, since=since, fmt=fmt, record=record)
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class CheckedChange:
    change: NetChange
    verdict: Verdict
    remote: RowState | None  # the row the other copy holds now


@dataclass(frozen=True, slots=True)
class CheckReport:
    items: list[CheckedChange]

    def count(self, verdict: Verdict) -> int:
        return sum(i.verdict == verdict for i in self.items)

    @property
    def conflicts(self) -> list[CheckedChange]:
        return [i for i in self.items if i.verdict in ("conflict", "trace missing", "eval set missing")]


def load_net_changes(source: LabelStore | Path, since: datetime | None = None) -> list[NetChange]:
    history = LabelHistory(source.history.path if isinstance(source, LabelStore) else Path(source))
    try:
        return list(net_changes(history, since))
    finally:
        history.close()


def check_against(net: list[NetChange], remote: sqlite3.Connection) -> CheckReport:
    """What applying ``net`` would do to the database ``remote`` (a newer export of the same D1 database):
    per change "apply", "done" (it already holds our row), "conflict" (changed there since) or
    "trace missing". Reads only."""
    items: list[CheckedChange] = []
    for n in net:
        row = remote.execute("SELECT id, rating, notes, updated_at FROM feedback WHERE eval_set_id = ? "
                             "AND trace_id = ?", (n.eval_set_id, n.trace_id)).fetchone()
        state = None if row is None else (row[0], row[1], row[2], row[3])
        exists = state is not None or n.final is None or remote.execute(
            "SELECT 1 FROM traces WHERE id = ?", (n.trace_id,)).fetchone() is not None
        items.append(CheckedChange(n, n.verdict(state, exists), state))
    return CheckReport(items)


def describe_state(state: RowState | None) -> str:
    if state is None:
        return "no label"
    notes = "" if state[2] is None else f" (note: {one_line(str(state[2]), 40)})"
    return f"{one_line(str(state[1]), 20)}{notes} [{one_line(str(state[0]), 40)}]"


def describe_conflict(item: CheckedChange) -> str:
    n = item.change
    ours = describe_state(n.final_state)
    what = {"trace missing": "the trace is not there", "eval set missing": "the eval set is not there"}.get(
        item.verdict, f"it holds {describe_state(item.remote)}"
    )
    return (f"{one_line(n.eval_set_id, 40)} / {one_line(n.trace_id, 60)}: ours is {ours}, but {what} "
            "(left as it is)")
