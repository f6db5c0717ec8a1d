"""``pull``: a local working copy of a live D1 database; ``push``: its label changes back as conditional
statements.

Pull reads the schema from ``sqlite_master`` and each table in keyset pages through ``/raw`` (rows as arrays;
``WHERE rowid > ? ORDER BY rowid LIMIT n``, never OFFSET: D1 bills rows read). The page size adapts so a
response stays near PAGE_BYTES, far under D1's 5 MB response cap. Rowids are kept, so the copy pages exactly
like the remote. Indexes, views and triggers are created after the data (faster, as a dump does). The copy
is written to ``OUT.partial`` and renamed at the end: an interrupted pull never leaves a half copy named OUT.
Compared with ``wrangler d1 export --remote``: no server-side dump (D1 is unavailable to queries while an
export runs), no SQL text to parse; rows come as JSON arrays.

Push (``push COPY d1://DB``) sends the net label changes of the copy (labels/patch.py's conditional
statements: a row changed on D1 since the pull is a conflict, left as it is) as D1 batches, then reads
the keys back and reports applied / already there / conflicts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iofold_tui.data import introspect, paths
from iofold_tui.data.db import quote_ident
from iofold_tui.data.source.d1.client import D1Client

PAGE_BYTES = 2_000_000
FIRST_PAGE_ROWS = 500
MAX_PAGE_ROWS = 20_000


@dataclass
class PullReport:
    tables: dict[str, int]
    requests: int
    seconds: float
    bytes: int


# A labels-only copy: what annotator agreement and import-labels read (they ATTACH databases, which a live
# D1 cannot do). Traces by id only: their steps are most of the database and neither reads them.
LABEL_TABLES: dict[str, tuple[str, ...] | None] = {
    "workspaces": None, "eval_sets": None, "feedback": None, "evals": None, "eval_executions": None,
    "traces": ("id", "workspace_id"),
}


def pull(client: D1Client, out: Path, *, progress: Callable[[str, int], None] | None = None,
         only: dict[str, tuple[str, ...] | None] | None = None) -> PullReport:
    """Copy the database to ``out``; with ``only``, just those tables (name -> the columns to copy, None:
    all of them, with the table's own definition; views and triggers are then left out)."""
    t0 = time.monotonic()
    start_requests = client.stats.requests
    objects = client.raw("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                         "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                         "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY rowid").rows
    partial = out.with_name(out.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    conn = sqlite3.connect(partial, isolation_level=None)
    total_bytes = 0
    counts: dict[str, int] = {}
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        tables = [(name, sql) for kind, name, _, sql in objects if kind == "table"]
        if only is not None:
            tables = [(name, sql) for name, sql in tables if name in only]
        for name, sql in tables:
            cols = only.get(name) if only is not None else None
            if cols is None:
                conn.execute(sql)
            else:
                names = ", ".join(quote_ident(c) for c in cols)
                conn.execute(f"CREATE TABLE {quote_ident(name)} ({names})")
                conn.execute(f"CREATE INDEX {quote_ident(f'{name}_{cols[0]}_idx')} ON {quote_ident(name)} "
                             f"({quote_ident(cols[0])})")
        for name, sql in tables:
            n, b = _copy_table(client, conn, name, "WITHOUT ROWID" in str(sql).upper(), progress)
            counts[name] = n
            total_bytes += b
        for kind, _name, table, sql in objects:
            table_whole = only is None or (table in only and only[table] is None)
            if (kind == "index" and table_whole) or (kind in ("view", "trigger") and only is None):
                conn.execute(sql)
        conn.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        conn.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    conn.close()
    os.replace(partial, out)
    return PullReport(counts, client.stats.requests - start_requests, time.monotonic() - t0, total_bytes)


def labels_copy(client: D1Client, placeholder: Path,
                progress: Callable[[str, int], None] | None = None) -> Path:
    """A fresh labels-only copy (LABEL_TABLES) of the live database, in the cache dir: what annotator
    agreement and import-labels read on a live D1. Made anew each time (labels move)."""
    out = paths.cache_dir() / "d1" / f"{placeholder.stem}.labels-copy.sqlite"
    out.parent.mkdir(parents=True, exist_ok=True)
    pull(client, out, only=LABEL_TABLES, progress=progress)
    return out


def labels_file(source: Any) -> tuple[Path, bool]:  # an OpenedSource
    """The SQLite file to read ``source``'s labels from, for readers that open or ATTACH files (agreement,
    import-labels) and whether it is immutable: the source's own file, or for a live D1 a fresh
    labels-only copy."""
    if source.kind == "d1-remote":
        return labels_copy(source.db.remote.client, Path(source.db.path)), False
    return Path(source.db.path), bool(getattr(source.db, "immutable", False))


def _copy_table(client: D1Client, conn: sqlite3.Connection, table: str, without_rowid: bool,
                progress: Callable[[str, int], None] | None) -> tuple[int, int]:
    q = quote_ident(table)
    cols = introspect.columns(conn, table)
    col_list = ", ".join(quote_ident(c) for c in cols)
    if without_rowid:
        pk = introspect.primary_key(conn, table)
        key_cols = [quote_ident(c) for c in pk]
        select = f"SELECT {col_list} FROM {q}"
        key_at = [cols.index(c) for c in pk]
    else:
        key_cols = ["rowid"]
        select = f"SELECT rowid, {col_list} FROM {q}"
        key_at = [0]
    insert_cols = col_list if without_rowid else f"rowid, {col_list}"
    marks = ", ".join("?" * (len(cols) + (0 if without_rowid else 1)))
    insert = f"INSERT INTO {q} ({insert_cols}) VALUES ({marks})"
    order = ", ".join(key_cols)
    after: tuple[Any, ...] | None = None
    rows_per_page = FIRST_PAGE_ROWS
    copied = 0
    nbytes = 0
    while True:
        if after is None:
            res = client.raw(f"{select} ORDER BY {order} LIMIT ?", [rows_per_page])
        else:
            cond = f"({', '.join(key_cols)}) > ({', '.join('?' * len(key_cols))})" if len(key_cols) > 1 else \
                f"{key_cols[0]} > ?"
            res = client.raw(f"{select} WHERE {cond} ORDER BY {order} LIMIT ?", [*after, rows_per_page])
        if not res.rows:
            break
        conn.execute("BEGIN")
        conn.executemany(insert, res.rows)
        conn.execute("COMMIT")
        copied += len(res.rows)
        size = len(json.dumps(res.rows, default=lambda b: list(b)).encode())
        nbytes += size
        if progress:
            progress(table, copied)
        if len(res.rows) < rows_per_page:
            break
        after = tuple(res.rows[-1][i] for i in key_at)
        per_row = max(size / len(res.rows), 1.0)
        rows_per_page = int(max(1, min(MAX_PAGE_ROWS, PAGE_BYTES / per_row)))
    return copied, nbytes


# -- push --------------------------------------------------------------------------------------------

@dataclass
class PushReport:
    applied: int
    already: int
    conflicts: list[Any]  # patch.CheckedChange
    requests: int


KEYS_PER_READ = 45  # two parameters per key: under D1's 100 bound parameters


def remote_states(client: D1Client, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The D1 feedback row state (id, rating, notes, updated_at) of each key, in chunked reads."""
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    for i in range(0, len(keys), KEYS_PER_READ):
        chunk = keys[i:i + KEYS_PER_READ]
        where = " OR ".join("(eval_set_id = ? AND trace_id = ?)" for _ in chunk)
        params = [v for k in chunk for v in k]
        sql = f"SELECT eval_set_id, trace_id, id, rating, notes, updated_at FROM feedback WHERE {where}"
        for r in client.raw(sql, params).rows:
            found[(r[0], r[1])] = (r[2], r[3], r[4], r[5])
    return found


def push(client: D1Client, net: list[Any]) -> PushReport:
    """Send ``net`` (patch.NetChange list) to D1 as conditional statements; report what landed."""
    from iofold_tui.data.labels.patch import CheckedChange, statements

    start = client.stats.requests
    keys = [(n.eval_set_id, n.trace_id) for n in net]
    before = remote_states(client, keys)
    to_send = [n for n in net if n.verdict(before.get((n.eval_set_id, n.trace_id))) == "apply"]
    already = sum(1 for n in net if n.verdict(before.get((n.eval_set_id, n.trace_id))) == "done")
    stmts: list[tuple[str, list[Any]]] = [(s.rstrip(";"), []) for n in to_send for s in statements(n)]
    if stmts:
        client.batch(stmts, retries=3)
    after = remote_states(client, keys)
    applied = 0
    conflicts = []
    for n in net:
        state = after.get((n.eval_set_id, n.trace_id))
        verdict = n.verdict(state)
        if verdict == "done" and n in to_send:
            applied += 1
        elif verdict != "done":
            conflicts.append(CheckedChange(n, "conflict", state))
    return PushReport(applied, already, conflicts, client.stats.requests - start)
