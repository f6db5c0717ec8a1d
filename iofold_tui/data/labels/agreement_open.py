"""Opening an agreement session (data/labels/agreement.py): a read-only connection on the source with
every other annotator attached.

A copy of the database (SQLite file, ``wrangler d1 export`` .sql through its cached working copy, or a
wrangler project dir) is ATTACHed read-only and never written; a label file (``export-labels`` CSV / JSON
lines / .sql patch) is loaded into the in-memory ``scratch`` schema; the local label history gives one
annotator per name in its ``annotator`` column. Schemas are read through data/introspect.py.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from iofold_tui.data import introspect
from iofold_tui.data.db import quote_ident, tolerant
from iofold_tui.data.errors import SourceError
from iofold_tui.data.labels.agreement import AgreementSession, Annotator
from iofold_tui.data.labels.label_file import read_label_file, sniff_format

MAX_OTHERS = 8  # SQLite attaches at most 10 databases: the scratch schema, the history, 8 copies


def open_agreement(source: Any, others: Sequence[str | Path], *,  # an OpenedSource
                   history_annotators: bool = False) -> AgreementSession:
    """A session on ``source`` (an OpenedSource) with ``others`` attached. Raises SourceError /
    ValueError."""
    if len(others) > MAX_OTHERS:
        raise ValueError(f"at most {MAX_OTHERS} other annotators at once "
                         "(SQLite attaches at most 10 databases)")
    from iofold_tui.data.source.d1.pull import labels_file

    db_path, is_immutable = labels_file(source)  # a live D1: a fresh labels-only copy (it cannot ATTACH)
    immutable = "&immutable=1" if is_immutable else ""
    uri = f"{db_path.resolve().as_uri()}?mode=ro{immutable}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    tolerant(conn)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = 1")  # belt and braces: no statement may write (temp included)
        conn.execute("ATTACH ':memory:' AS scratch")
        label = str(source.origin) if source.kind != "demo" else "demo database"
        _require_feedback(conn, "main", label)
        mine = Annotator(_unique(source.label, []), str(source.origin), "source", "main.feedback",
                         schema="main")
        session = AgreementSession(conn, [mine], label)
        for i, other in enumerate(others, start=1):
            _add_other(session, str(other), i)
        if history_annotators:
            add_history_annotators(session, Path(source.history_path))
        return session
    except BaseException:
        conn.close()
        raise


def _unique(name: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if name not in taken:
        return name
    for n in itertools.count(2):
        if f"{name} ({n})" not in taken:
            return f"{name} ({n})"
    raise AssertionError("unreachable")


def _require_feedback(conn: sqlite3.Connection, schema: str, name: str) -> None:
    cols = set(introspect.attached_columns(conn, schema, "feedback"))
    missing = {"eval_set_id", "trace_id", "rating"} - cols
    if not cols:
        raise SourceError(name, "no feedback table: it holds no labels")
    if missing:
        raise SourceError(name, f"its feedback table lacks {', '.join(sorted(missing))}")


def _add_other(session: AgreementSession, other: str, index: int) -> None:
    path = Path(other).expanduser()
    if not path.exists():
        raise SourceError(path, "no such file or directory")
    fmt = None if path.is_dir() else sniff_format(path)
    if fmt is not None:
        _add_label_file(session, path, fmt, index)
    else:
        _attach_copy(session, path, index)


def _add_label_file(session: AgreementSession, path: Path, fmt: str, index: int) -> None:
    """A label file, loaded into ``scratch.ann_<index>`` (keyed like ``feedback``)."""
    parsed = read_label_file(path, fmt)
    if not parsed.ok:
        first = parsed.errors[0]
        more = f" (and {len(parsed.errors) - 1} more problems)" if len(parsed.errors) > 1 else ""
        raise SourceError(None, first.text(str(path)) + more)
    table = f"scratch.{quote_ident(f'ann_{index}')}"
    session.conn.execute("PRAGMA query_only = 0")  # the in-memory scratch schema only
    try:
        session.conn.execute(f"CREATE TABLE {table} (eval_set_id, trace_id, rating, notes, "
                             "PRIMARY KEY (eval_set_id, trace_id)) WITHOUT ROWID")
        session.conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
                                 ((r.eval_set_id, r.trace_id, r.rating, r.notes) for r in parsed.rows
                                  if r.rating is not None))
        session.conn.execute(f"CREATE INDEX scratch.{quote_ident(f'ann_{index}_r')} ON "
                             f"{quote_ident(f'ann_{index}')}(eval_set_id, rating)")
    finally:
        session.conn.execute("PRAGMA query_only = 1")
    who = {r.annotator for r in parsed.rows}
    name = path.name if len(who) != 1 or None in who else f"{next(iter(who))} ({path.name})"
    taken = [a.name for a in session.annotators]
    session.annotators.append(Annotator(_unique(name, taken), str(path), "file", table))


def _attach_copy(session: AgreementSession, path: Path, index: int) -> None:
    """Another copy of the database, ATTACHed read-only as ``copy<index>``."""
    from iofold_tui.data.source.loader import open_source

    opened = open_source(path, read_only=True)
    schema = f"copy{index}"
    immutable = "&immutable=1" if opened.db.immutable else ""
    uri = f"{Path(opened.db.path).resolve().as_uri()}?mode=ro{immutable}"
    session.conn.execute("ATTACH ? AS " + quote_ident(schema), (uri,))
    _require_feedback(session.conn, schema, str(path))
    taken = [a.name for a in session.annotators]
    session.annotators.append(Annotator(_unique(opened.label, taken), str(path), "database",
                                        f"{quote_ident(schema)}.feedback", schema=schema))
    with contextlib.suppress(Exception):
        opened.db.close()


def add_history_annotators(session: AgreementSession, history_path: Path) -> None:
    """One annotator per name in the local label history's ``annotator`` column: per key, the rating of
    the latest applied change that person made (a later relabel by someone else does not erase what
    they said). Nothing is added when the history has no such column yet."""
    if not history_path.is_file():
        return
    uri = f"{history_path.resolve().as_uri()}?mode=ro"
    session.conn.execute("ATTACH ? AS hist", (uri,))
    if "annotator" not in introspect.attached_columns(session.conn, "hist", "steps"):
        session.conn.execute("DETACH hist")
        return
    session.conn.execute("PRAGMA query_only = 0")
    try:
        session.conn.execute(
            "CREATE TABLE scratch.hist_labels (annotator, eval_set_id, trace_id, rating, notes, "
            "PRIMARY KEY (annotator, eval_set_id, trace_id)) WITHOUT ROWID")
        session.conn.execute(
            "INSERT INTO scratch.hist_labels "
            "SELECT annotator, eval_set_id, trace_id, new_rating, new_notes FROM ("
            "SELECT s.annotator, c.eval_set_id, c.trace_id, c.new_rating, c.new_notes, "
            "row_number() OVER (PARTITION BY s.annotator, c.eval_set_id, c.trace_id "
            "ORDER BY s.id DESC, c.seq DESC) AS k "
            "FROM hist.steps s JOIN hist.changes c ON c.step_id = s.id "
            "WHERE s.status = 'applied' AND s.annotator IS NOT NULL) WHERE k = 1 AND new_rating IS NOT NULL")
        session.conn.execute("CREATE INDEX scratch.hist_labels_set ON hist_labels(eval_set_id, trace_id)")
    finally:
        session.conn.execute("PRAGMA query_only = 1")
    names = [str(r[0]) for r in session.conn.execute(
        "SELECT DISTINCT annotator FROM scratch.hist_labels ORDER BY 1")]
    for name in names:
        taken = [a.name for a in session.annotators]
        session.annotators.append(Annotator(_unique(name, taken), f"label history ({name})", "history",
                                            "scratch.hist_labels", "AND {t}.annotator = ?", (name,)))
