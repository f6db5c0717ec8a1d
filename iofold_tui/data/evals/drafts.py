"""New eval versions written on the user's machine, promotion, and their undo (headless core).

    new = create_version(conn, workbench_path(opened.history_path), "eval_x", code)   # a 'draft' row
    promote(conn, sidecar, new.id)                                                  # active; old one archived
    undo_last(conn, sidecar)                                                        # back, one step at a time

A new version is made the way iofold makes one: same eval set and name, ``version`` = the set's highest
+ 1 (``UNIQUE(eval_set_id, version)`` is per set, so the next free number is the set's, not the name's;
read and inserted in one ``BEGIN IMMEDIATE`` transaction so two writers cannot pick the same number),
``parent_eval_id`` = the source, status ``draft``, the prompt fields copied, ``model_used`` saying it
was written by hand, counters zero. An existing row is never overwritten: the insert has no conflict
clause, so a clash fails instead of replacing.

Code the sandbox's static checker refuses (syntax errors, forbidden imports, ...) is never saved: the
checker is the sandbox's own (``evalrun.static_check.analyse``), with its problems split into line numbers.

Undo: a sidecar file beside the label history (``<history>.workbench.sqlite``, never a table in the
user's database) records each action before the user's transaction commits:
  - ``create``  -> undo deletes the version (refused once it has executions, children, or other code);
  - ``promote`` -> the status and ``updated_at`` of every row it changed, restored exactly by undo.
Undo pops the most recent applied action; the export (``evals.patch``) lists the created versions.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iofold_tui.data import introspect
from iofold_tui.data.db import decode_text, write_txn
from iofold_tui.data.errors import ReadOnlyError
from iofold_tui.data.evalrun.static_check import analyse
from iofold_tui.data.labels.history import open_sidecar, utc_stamp

FORMAT_VERSION = "1"
MODEL_USED = "hand-edited (iofold-tui)"
CREATE, PROMOTE = "create", "promote"
APPLIED, UNDONE = "applied", "undone"
# Columns copied from the source version when they exist (a hostile or older schema may lack some).
COPIED = ("eval_set_id", "name", "description", "generation_prompt", "custom_instructions")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS actions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,                 -- create | promote
  eval_id TEXT NOT NULL,
  eval_set_id TEXT,
  source_id TEXT,                     -- create: the parent version
  version INTEGER,
  status TEXT NOT NULL,               -- applied | undone
  created_at TEXT NOT NULL, status_at TEXT NOT NULL   -- UTC 'YYYY-MM-DD HH:MM:SS.ffffff'
);
CREATE INDEX IF NOT EXISTS actions_status ON actions(status, id);
CREATE TABLE IF NOT EXISTS prev (      -- promote: rows as they were before it
  action_id INTEGER NOT NULL,
  eval_id TEXT NOT NULL,              -- these three as SQLite quote() literals: restored exactly
  status, updated_at,
  PRIMARY KEY (action_id, eval_id)
) WITHOUT ROWID;
"""


class DraftError(ValueError):
    """A version cannot be made, promoted or undone; ``problems`` lists each reason (``line N: ...``)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One static-check finding; ``line`` is 1-based, None when it concerns the whole code."""

    line: int | None
    message: str

    def text(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


_LINE = re.compile(r"line (\d+): (.*)", re.S)


def check(code: str, name: str | None = None) -> list[Problem]:
    """The sandbox's static check of ``code`` as problems with line numbers ([] = it may run)."""
    out = []
    for text in analyse(code, name)[1]:
        m = _LINE.match(text)
        out.append(Problem(int(m.group(1)), m.group(2)) if m else Problem(None, text))
    return out


def read_code_file(path: str | Path) -> str:
    """A ``.py`` file's text; ValueError naming the file when it is not UTF-8 (OSError when unreadable)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{path}: holds NUL bytes, not Python source")
    return text.removeprefix("\ufeff")


def workbench_path(history_path: Path) -> Path:
    """The workbench sidecar that belongs with a label history file (``x.sqlite`` ->
    ``x.workbench.sqlite``)."""
    history_path = Path(history_path)
    return history_path.with_name(f"{history_path.stem}.workbench.sqlite")


def _stamp() -> str:
    """'YYYY-MM-DD HH:MM:SS' UTC, as SQLite's CURRENT_TIMESTAMP (and iofold) writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Action:
    id: int
    kind: str
    eval_id: str
    eval_set_id: str | None
    source_id: str | None
    version: int | None
    status: str
    created_at: str
    status_at: str


class Workbench:
    """The sidecar file; each method is its own committed (fsynced) transaction."""

    _COLS = "id, kind, eval_id, eval_set_id, source_id, version, status, created_at, status_at"

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.conn = open_sidecar(self.path, _DDL, FORMAT_VERSION, busy_timeout_s=busy_timeout_s)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, kind: str, eval_id: str, eval_set_id: str | None, source_id: str | None,
               version: int | None, prev: list[tuple[str, Any, Any]] = ()) -> int:  # type: ignore[assignment]
        now = utc_stamp()
        with write_txn(self.conn):
            cur = self.conn.execute(
                "INSERT INTO actions (kind, eval_id, eval_set_id, source_id, version, status, created_at, "
                "status_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (kind, eval_id, eval_set_id, source_id, version, APPLIED, now, now),
            )
            action_id = int(cur.lastrowid or 0)
            self.conn.executemany("INSERT INTO prev VALUES (?,?,?,?)", ((action_id, *p) for p in prev))
        return action_id

    def drop(self, action_id: int) -> None:
        """Forget an action whose user transaction rolled back."""
        with write_txn(self.conn):
            self.conn.execute("DELETE FROM prev WHERE action_id = ?", (action_id,))
            self.conn.execute("DELETE FROM actions WHERE id = ?", (action_id,))

    def set_status(self, action_id: int, status: str) -> None:
        with write_txn(self.conn):
            self.conn.execute("UPDATE actions SET status = ?, status_at = ? WHERE id = ?",
                              (status, utc_stamp(), action_id))

    def _action(self, r: Any) -> Action:
        return Action(
            int(r[0]), r[1], r[2], r[3], r[4], None if r[5] is None else int(r[5]), r[6], r[7], r[8]
        )

    def last_applied(self) -> Action | None:
        row = self.conn.execute(f"SELECT {self._COLS} FROM actions WHERE status = ? ORDER BY id DESC LIMIT 1",
                                (APPLIED,)).fetchone()
        return None if row is None else self._action(row)

    def actions(
        self, kind: str | None = None, status: str | None = APPLIED, since: str | None = None
    ) -> list[Action]:
        where, params = ["1"], []
        for col, value in (("kind", kind), ("status", status)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        rows = self.conn.execute(
            f"SELECT {self._COLS} FROM actions WHERE {' AND '.join(where)} ORDER BY id", params
        )
        return [self._action(r) for r in rows]

    def prev(self, action_id: int) -> list[tuple[str, Any, Any]]:
        return [
            tuple(r)
            for r in self.conn.execute(
                "SELECT eval_id, status, updated_at FROM prev WHERE action_id = ? ORDER BY eval_id",
                (action_id,),
            )
        ]


# ---------------------------------------------------------------- the user's database

def _columns(conn: sqlite3.Connection) -> list[str]:
    return introspect.columns(conn, "evals")


def _text(value: object) -> str | None:
    """A value read as BLOB, shown as text (bytes that are not UTF-8 stay visible as ⟨\\xFF⟩)."""
    if value is None:
        return None
    return decode_text(bytes(value)) if isinstance(value, bytes | bytearray | memoryview) else str(value)


def _source_row(conn: sqlite3.Connection, eval_id: str) -> dict[str, Any]:
    """The source's set and name for display; SQL compares the stored values themselves (subqueries)."""
    row = conn.execute("SELECT CAST(eval_set_id AS BLOB), CAST(name AS BLOB) FROM evals WHERE id = ?",
                       (eval_id,)).fetchone()
    if row is None:
        raise DraftError(f"no eval {eval_id!r} in this database")
    return {"eval_set_id": _text(row[0]), "name": _text(row[1])}


_SAME_SET = "eval_set_id IS (SELECT eval_set_id FROM evals WHERE id = :e)"
_SAME_NAME = "name IS (SELECT name FROM evals WHERE id = :e)"


@dataclass(frozen=True)
class NewVersion:
    id: str
    eval_set_id: str
    name: str
    version: int
    parent_eval_id: str
    action_id: int
    promoted: bool = False


def create_version(conn: sqlite3.Connection, sidecar: Path, source_id: str, code: str, *,
                   model_used: str = MODEL_USED, activate: bool = False,
                   read_only_reason: str | None = None) -> NewVersion:
    """Insert the next version of ``source_id``'s eval with ``code`` (see the module docstring)."""
    if read_only_reason:
        raise ReadOnlyError(read_only_reason)
    if not isinstance(code, str):
        raise DraftError("the code is not text")
    source = _source_row(conn, source_id)
    problems = check(code, None if source.get("name") is None else str(source["name"]))
    if problems:
        raise DraftError(f"the code does not pass the sandbox's check ({len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''})", [p.text() for p in problems])
    new_id = f"eval_{uuid.uuid4().hex}"
    with Workbench(sidecar) as bench:
        with write_txn(conn):
            source = _source_row(conn, source_id)  # again, inside the write lock
            set_id = source.get("eval_set_id")
            top = conn.execute(f"SELECT max(CAST(version AS INTEGER)) FROM evals WHERE {_SAME_SET}",
                               {"e": source_id}).fetchone()[0]
            version = int(top or 0) + 1
            now = _stamp()
            values: dict[str, Any] = dict(
                id=new_id, version=version, parent_eval_id=source_id, code=code, model_used=model_used,
                status="draft", execution_count=0, contradiction_count=0, accuracy=None, test_results=None,
                training_trace_ids=None, created_at=now, updated_at=now)
            have = set(_columns(conn))
            copied = [c for c in COPIED if c in have]  # copied by SQLite itself: any type, any bytes, exactly
            cols = [c for c in values if c in have]
            action_id = bench.record(
                CREATE, new_id, None if set_id is None else str(set_id), source_id, version
            )
            try:
                conn.execute(f"INSERT INTO evals ({', '.join(copied + cols)}) SELECT {', '.join(copied)}"
                             f"{', ' if copied else ''}{', '.join('?' * len(cols))} FROM evals WHERE id = ?",
                             [*(values[c] for c in cols), source_id])
            except BaseException:
                bench.drop(action_id)
                raise
        new = NewVersion(new_id, str(set_id), str(source.get("name") or ""), version, source_id, action_id)
        if activate:
            _promote(conn, bench, new_id)
            new = NewVersion(
                new.id, new.eval_set_id, new.name, new.version, new.parent_eval_id, action_id, True
            )
    return new


def _promote(conn: sqlite3.Connection, bench: Workbench, eval_id: str) -> int:
    with write_txn(conn):
        source = _source_row(conn, eval_id)
        # quote(): the exact stored values (any type, any bytes) as SQL literals, for an exact undo.
        touched = conn.execute(
            f"SELECT quote(id), quote(status), quote(updated_at), id = :e, status = 'active' FROM evals "
            f"WHERE {_SAME_SET} AND {_SAME_NAME} AND ((status = 'active' AND id != :e) OR id = :e) ORDER BY "
            f"id",
            {"e": eval_id},
        ).fetchall()
        if all(r[3] and r[4] for r in touched):
            raise DraftError(f"{eval_id} is already the active version")
        prev = [(str(r[0]), r[1], r[2]) for r in touched]
        action_id = bench.record(PROMOTE, eval_id, source["eval_set_id"], None, None, prev)
        try:
            params = {"e": eval_id, "now": _stamp()}
            conn.execute(
                f"UPDATE evals SET status = 'archived', updated_at = :now WHERE {_SAME_SET} AND {_SAME_NAME} "
                "AND status = 'active' AND id != :e",
                params,
            )
            conn.execute("UPDATE evals SET status = 'active', updated_at = :now WHERE id = :e", params)
        except BaseException:
            bench.drop(action_id)
            raise
    return action_id


def promote(
    conn: sqlite3.Connection, sidecar: Path, eval_id: str, *, read_only_reason: str | None = None
) -> int:
    """Make ``eval_id`` the active version of its name in its set; the previously active one is archived."""
    if read_only_reason:
        raise ReadOnlyError(read_only_reason)
    with Workbench(sidecar) as bench:
        return _promote(conn, bench, eval_id)


@dataclass(frozen=True)
class UndoneAction:
    action: Action
    description: str


def undo_last(
    conn: sqlite3.Connection, sidecar: Path, *, read_only_reason: str | None = None
) -> UndoneAction:
    """Undo the most recent applied create/promote; DraftError when nothing (or nothing safe) can be
    undone."""
    if read_only_reason:
        raise ReadOnlyError(read_only_reason)
    if not Path(sidecar).exists():
        raise DraftError("no eval version change to undo")
    with Workbench(sidecar) as bench:
        action = bench.last_applied()
        if action is None:
            raise DraftError("no eval version change to undo")
        with write_txn(conn):
            if action.kind == CREATE:
                text = _undo_create(conn, action)
            else:
                for quoted_id, status, updated_at in bench.prev(action.id):
                    # quote() literals recorded by _promote (SQLite's own output, never user text)
                    conn.execute(
                        f"UPDATE evals SET status = {status}, updated_at = {updated_at} WHERE id = "
                        f"{quoted_id}"
                    )
                text = f"promotion of {action.eval_id} undone"
        bench.set_status(action.id, UNDONE)
        return UndoneAction(action, text)


def _undo_create(conn: sqlite3.Connection, action: Action) -> str:
    row = conn.execute("SELECT version FROM evals WHERE id = ?", (action.eval_id,)).fetchone()
    if row is None:
        return f"{action.eval_id} was already gone"
    if conn.execute("SELECT 1 FROM eval_executions WHERE eval_id = ? LIMIT 1", (action.eval_id,)).fetchone():
        raise DraftError(f"{action.eval_id} has executions: undo its runs first (iofold-tui undo-run)")
    if conn.execute("SELECT 1 FROM evals WHERE parent_eval_id = ? LIMIT 1", (action.eval_id,)).fetchone():
        raise DraftError(f"{action.eval_id} has later versions made from it")
    conn.execute("DELETE FROM evals WHERE id = ?", (action.eval_id,))
    return f"version {action.version} ({action.eval_id}) removed"
