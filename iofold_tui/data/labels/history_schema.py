"""The label history sidecar's file (data/labels/history.py): its tables, its format version, its own
additive migration, and a read-only peek at its queue of intents (at launch: labels an earlier
session left unwritten).

``steps`` holds one row per user action and ``changes`` its feedback rows before and after; ``exported``
the final states written into D1 patches; ``queued`` the write-ahead log of label keys (see
history.py for the step statuses and the intent protocol).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from iofold_tui.data import introspect
from iofold_tui.data.db import write_txn

FORMAT_VERSION = "1"

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS steps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,          -- UTC, 'YYYY-MM-DD HH:MM:SS.ffffff'
  kind TEXT NOT NULL,                -- label | bulk | note
  status TEXT NOT NULL,
  status_at TEXT NOT NULL,           -- when status last changed (undo/redo time)
  session TEXT NOT NULL,             -- the LabelStore instance that made it
  n_changes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_status ON steps(status, id);
CREATE INDEX IF NOT EXISTS steps_status_at ON steps(status_at);
CREATE TABLE IF NOT EXISTS changes (
  step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  eval_set_id TEXT NOT NULL, trace_id TEXT NOT NULL,
  old_id TEXT, old_rating TEXT, old_notes TEXT, old_created_at TEXT, old_updated_at TEXT,
  new_id TEXT, new_rating TEXT, new_notes TEXT, new_created_at TEXT, new_updated_at TEXT,
  seconds_spent REAL,
  PRIMARY KEY (step_id, seq)
);
CREATE INDEX IF NOT EXISTS changes_key ON changes(eval_set_id, trace_id, step_id);
CREATE TABLE IF NOT EXISTS exported (  -- final states written into SQL patches: D1 may hold them now
  eval_set_id TEXT NOT NULL, trace_id TEXT NOT NULL,
  state TEXT NOT NULL,               -- JSON [id, rating, notes], or null for "no row"
  at TEXT NOT NULL,
  PRIMARY KEY (eval_set_id, trace_id, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queued (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  session TEXT NOT NULL,
  kind TEXT NOT NULL,                -- label | note | undo | redo
  eval_set_id TEXT, trace_id TEXT,
  rating TEXT,                       -- label: the rating (NULL clears)
  note_set INTEGER NOT NULL DEFAULT 0, note TEXT,
  seconds_spent REAL,
  force INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'queued',  -- queued | cancelled (undone before it was written)
  step_id INTEGER REFERENCES steps(id) ON DELETE SET NULL
);
"""


def queued_count(path: Path) -> int:
    """Label intents an earlier session left queued in the sidecar at ``path`` (a read-only peek: no
    schema work, 0 when the file is missing, older or unreadable)."""
    if not Path(path).is_file():
        return 0
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM queued WHERE status = 'queued'").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def add_annotator_column(conn: sqlite3.Connection) -> None:
    """The sidecar's own additive migration (issue 18): ``steps.annotator``, who made the step (NULL for
    steps written before it existed). Checked again under the write lock: another process may add it
    first."""
    if "annotator" in introspect.column_set(conn, "steps"):
        return
    with write_txn(conn):
        if "annotator" not in introspect.column_set(conn, "steps"):
            conn.execute("ALTER TABLE steps ADD COLUMN annotator TEXT")
