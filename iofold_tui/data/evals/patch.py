"""Send the eval versions made with iofold-tui back to D1: a conflict-safe, idempotent SQL patch.

    iofold-tui export-evals SOURCE -o evals.sql [--since T] [--with-executions]
    wrangler d1 execute DB --remote --file evals.sql

The versions are the ``create`` actions of the workbench sidecar (``drafts.py``) that still hold (not
undone, row present), oldest first so a parent made here lands before its child. Every statement is
conditional, so applying the file twice equals applying it once, and no statement can replace a version
D1 already holds with other code:
  - the version:  ``INSERT INTO evals ... SELECT ... WHERE <its eval set exists> ON CONFLICT DO NOTHING``
    (any clash — same id, or same ``(eval_set_id, version)`` — leaves D1's row alone); a parent D1 does
    not have becomes NULL instead of failing the foreign key;
  - its status:   ``UPDATE evals SET status ... WHERE id = ... AND code = <its code>`` (only our own row),
    and when it is active, the other active versions of its name are archived — again only when D1
    holds our row with our code;
  - executions (``--with-executions``): ``INSERT ... SELECT ... WHERE <our version is there> AND <the
    trace is there> ON CONFLICT(eval_id, trace_id) DO UPDATE``, then the counters recomputed *on D1* from
    D1's own executions and labels (scoped to the eval's set, errors apart, as the matrix counts);
  - last, one ``SELECT`` that lists every version of this patch that D1 does not hold as written (slot
    taken by another id, or other code): ``wrangler d1 execute --json`` prints it, so a conflict is
    reported, never silently overwritten.
No BEGIN/COMMIT (D1 rejects them). Text with control characters goes out as ``'a' || char(10) || 'b'``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from iofold_tui.data import introspect
from iofold_tui.data.evals.drafts import CREATE, Workbench
from iofold_tui.data.labels.history import utc_stamp
from iofold_tui.data.labels.patch import sql_literal
from iofold_tui.data.sanitize import one_line

EVAL_COLS = ("id", "eval_set_id", "name", "description", "version", "parent_eval_id", "code", "model_used",
             "generation_prompt", "custom_instructions", "accuracy", "test_results", "training_trace_ids",
             "execution_count", "contradiction_count", "status", "created_at", "updated_at")
EXEC_COLS = (
    "id",
    "eval_id",
    "trace_id",
    "result",
    "reason",
    "execution_time_ms",
    "error",
    "stdout",
    "stderr",
    "executed_at",
)
CONFLICT_MARK = "iofold_tui_conflict"
PAGE = 1000


@dataclass(frozen=True)
class EvalExportSummary:
    versions: int
    executions: int
    missing: int  # versions the sidecar lists that are no longer in the database (deleted elsewhere)


def lit(value: Any) -> str:
    """A literal for any SQLite value (BLOBs as X'..', booleans as 0/1, floats exact)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "X'" + bytes(value).hex() + "'"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "NULL"  # NaN / infinity have no SQL literal (D1 would reject the bare word)
    return sql_literal(value)


def _since_stamp(since: datetime | None) -> str | None:
    if since is None:
        return None
    return utc_stamp(since if since.tzinfo else since.replace(tzinfo=UTC))


def _version_rows(
    conn: sqlite3.Connection, sidecar: Path, since: datetime | None
) -> tuple[list[dict[str, Any]], int]:
    if not Path(sidecar).exists():
        return [], 0
    with Workbench(sidecar) as bench:
        actions = bench.actions(CREATE, since=_since_stamp(since))
    have = introspect.column_set(conn, "evals")
    select = ", ".join(c if c in have else f"NULL AS {c}" for c in EVAL_COLS)
    rows, missing = [], 0
    for action in actions:
        row = conn.execute(f"SELECT {select} FROM evals WHERE id = ?", (action.eval_id,)).fetchone()
        if row is None:
            missing += 1
            continue
        rows.append(dict(zip(EVAL_COLS, tuple(row), strict=True)))
    return rows, missing


def _insert_version(v: dict[str, Any]) -> str:
    cols = ", ".join(EVAL_COLS)
    values = []
    for c in EVAL_COLS:
        if c == "parent_eval_id" and v[c] is not None:  # NULL when D1 lacks the parent (no FK failure)
            values.append(f"(SELECT id FROM evals WHERE id = {lit(v[c])})")
        elif c in ("execution_count", "contradiction_count"):
            values.append("0")  # counters are recomputed on D1 from its own rows (with --with-executions)
        elif c == "accuracy":
            values.append("NULL")
        else:
            values.append(lit(v[c]))
    return (
        f"INSERT INTO evals ({cols}) SELECT {', '.join(values)} "
        f"WHERE EXISTS (SELECT 1 FROM eval_sets WHERE id = {lit(v['eval_set_id'])}) ON CONFLICT DO NOTHING;"
    )


def _ours(v: dict[str, Any]) -> str:
    """D1 holds this version as we wrote it (same id, slot and code)."""
    return (
        f"id = {lit(v['id'])} AND eval_set_id = {lit(v['eval_set_id'])} AND version = {lit(v['version'])} "
        f"AND code = {lit(v['code'])}"
    )


def _status(v: dict[str, Any]) -> list[str]:
    out = [f"UPDATE evals SET status = {lit(v['status'])}, updated_at = {lit(v['updated_at'])} "
           f"WHERE {_ours(v)} AND status IS NOT {lit(v['status'])};"]
    if v["status"] == "active":
        out.append(
            f"UPDATE evals SET status = 'archived', updated_at = {lit(v['updated_at'])} "
            f"WHERE eval_set_id = {lit(v['eval_set_id'])} AND name IS {lit(v['name'])} AND status = 'active' "
            f"AND id != {lit(v['id'])} AND EXISTS (SELECT 1 FROM evals WHERE {_ours(v)});")
    return out


def _executions(conn: sqlite3.Connection, v: dict[str, Any]) -> Iterator[str]:
    """One conditional upsert per execution, read in keyset pages (never all in memory)."""
    guard = (
        f"EXISTS (SELECT 1 FROM evals WHERE id = {lit(v['id'])} AND eval_set_id = {lit(v['eval_set_id'])} "
        f"AND version = {lit(v['version'])})"
    )
    cols = ", ".join(EXEC_COLS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in EXEC_COLS[3:])
    sql = f"SELECT {cols} FROM eval_executions WHERE eval_id = ? {{after}} ORDER BY trace_id LIMIT ?"
    rows = conn.execute(sql.format(after=""), (v["id"], PAGE)).fetchall()
    while rows:
        for row in rows:
            values = ", ".join(lit(x) for x in row)
            yield (f"INSERT INTO eval_executions ({cols}) SELECT {values} WHERE {guard} "
                   f"AND EXISTS (SELECT 1 FROM traces WHERE id = {lit(row[2])}) "
                   f"ON CONFLICT(eval_id, trace_id) DO UPDATE SET {sets};")
        if len(rows) < PAGE:
            return
        rows = conn.execute(sql.format(after="AND trace_id > ?"), (v["id"], rows[-1][2], PAGE)).fetchall()


def _counters(v: dict[str, Any]) -> str:
    """The counters recomputed on D1 (scoped to the eval's own set; errors and invalid results are not
    contradictions), as the matrix counts them."""
    eid, sid = lit(v["id"]), lit(v["eval_set_id"])
    judged = (f"FROM eval_executions e JOIN feedback f ON f.trace_id = e.trace_id AND f.eval_set_id = {sid} "
              f"WHERE e.eval_id = {eid} AND e.error IS NULL AND e.result IN (0, 1) "
              "AND f.rating IN ('positive', 'negative')")  # errors and invalid results are not judged
    contra = "((f.rating = 'positive' AND e.result = 0) OR (f.rating = 'negative' AND e.result = 1))"
    return (
        f"UPDATE evals SET execution_count = (SELECT count(*) FROM eval_executions WHERE eval_id = {eid}), "
        f"contradiction_count = (SELECT count(*) {judged} AND {contra}), "
        f"accuracy = (SELECT CASE WHEN count(*) = 0 THEN NULL ELSE 1.0 * sum(NOT {contra}) / count(*) END "
        f"{judged}) WHERE {_ours(v)};"
    )


def _report(versions: list[dict[str, Any]]) -> str:
    rows = ", ".join(f"({lit(v['id'])}, {lit(v['eval_set_id'])}, {lit(v['version'])}, {lit(v['code'])})"
                     for v in versions)
    return (
        f"SELECT '{CONFLICT_MARK}' AS problem, p.column1 AS eval_id, p.column2 AS eval_set_id, "
        "p.column3 AS version, (SELECT e.id FROM evals e WHERE e.eval_set_id = p.column2 AND "
        "e.version = p.column3) AS d1_eval_id FROM (VALUES " + rows + ") p WHERE NOT EXISTS (SELECT 1 FROM "
        "evals e WHERE e.id = p.column1 AND e.eval_set_id = p.column2 AND e.version = p.column3 "
        "AND e.code = p.column4);"
    )


def write_eval_patch(conn: sqlite3.Connection, sidecar: Path, out: TextIO, *, since: datetime | None = None,
                     with_executions: bool = False, source_name: str | None = None) -> EvalExportSummary:
    """Write the patch of the versions made with iofold-tui (see the module docstring)."""
    versions, missing = _version_rows(conn, sidecar, since)
    out.write(
        "-- iofold-tui eval versions patch (idempotent, conflict-safe; no BEGIN/COMMIT, as D1 requires)\n"
    )
    out.write(f"-- source: {one_line(source_name or 'unknown', None)}\n")
    out.write(f"-- generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC\n")
    if since is not None:
        out.write(f"-- since: {_since_stamp(since)} UTC\n")
    out.write(f"-- versions: {len(versions)}{' with their executions' if with_executions else ''}\n")
    out.write(
        f"-- the last statement lists versions D1 did not take (slot held by other code): '{CONFLICT_MARK}'\n"
    )
    out.write("-- apply: wrangler d1 execute <DATABASE> --remote --file <this file>\n")
    executions = 0
    for v in versions:
        out.write(f"-- {one_line(str(v['name']), 80)} v{v['version']} ({one_line(str(v['id']), 80)})\n")
        out.write(_insert_version(v) + "\n")
        for statement in _status(v):
            out.write(statement + "\n")
    if with_executions:
        for v in versions:
            for statement in _executions(conn, v):
                out.write(statement + "\n")
                executions += 1
            out.write(_counters(v) + "\n")
    if versions:
        out.write(_report(versions) + "\n")
    else:  # wrangler rejects a file without statements
        out.write("SELECT 0 WHERE 0; -- no eval versions: a no-op so the file still applies\n")
    return EvalExportSummary(len(versions), executions, missing)
