"""Find the local D1 databases wrangler keeps for a project (spec §7).

``<project>/.wrangler/state/v3/d1/miniflare-D1DatabaseObject/<hex>.sqlite`` (``--persist-to DIR``:
``DIR/v3/d1/...``). The databases are in WAL mode and after wrangler exits their rows usually sit in
the ``-wal`` file: always open the ``.sqlite`` in place (SQLite reads the WAL beside it), and copy it
only through ``copy_database`` (SQLite's backup API, which folds the WAL into the copy).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from iofold_tui.data import introspect
from iofold_tui.data.db import tolerant
from iofold_tui.data.errors import SourceError

MINIFLARE_DIR = "miniflare-D1DatabaseObject"
# Where the miniflare folder sits relative to what a user may point at: a project, a --persist-to
# dir, .wrangler, .wrangler/state, .wrangler/state/v3, .../d1, or the folder itself.
_RELATIVE = (
    Path(".wrangler/state/v3/d1"), Path("state/v3/d1"), Path("v3/d1"), Path("d1"), Path("."),
)
_INTERNAL = "metadata.sqlite"


@dataclass(frozen=True)
class D1Candidate:
    path: Path
    size: int  # bytes of .sqlite plus its -wal (where the data often is)
    has_traces: bool
    tables: int  # user tables (sqlite_* and _cf_* not counted)
    error: str | None = None  # set when SQLite could not read it

    def describe(self) -> str:
        if self.error:
            return f"{self.path.name} (unreadable: {self.error})"
        traces = "traces table" if self.has_traces else "no traces table"
        return f"{self.path.name} ({self.size / 1e6:.1f} MB, {self.tables} tables, {traces})"


def miniflare_dir(directory: Path) -> Path | None:
    """The ``miniflare-D1DatabaseObject`` folder for ``directory``, if there is one."""
    directory = Path(directory)
    if directory.name == MINIFLARE_DIR:
        return directory
    for rel in _RELATIVE:
        folder = directory / rel / MINIFLARE_DIR
        if folder.is_dir():
            return folder
    return None


def _size(path: Path) -> int:
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):  # no -wal after a checkpoint
            total += p.stat().st_size
    return total


def _probe(path: Path) -> D1Candidate:
    size = _size(path)
    try:
        # Read-only: a read-only connection never checkpoints, so wrangler's files stay as they were.
        conn = tolerant(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))
        try:
            names = introspect.table_names(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return D1Candidate(path, size, False, 0, str(exc))
    user = [n for n in names if not n.startswith(("sqlite_", "_cf_"))]
    return D1Candidate(path, size, "traces" in names, len(user))


def find_d1_databases(directory: Path) -> list[D1Candidate]:
    """Every D1 database wrangler keeps under ``directory``, largest first (``metadata.sqlite`` skipped)."""
    folder = miniflare_dir(directory)
    if folder is None:
        return []
    files = [p for p in folder.glob("*.sqlite") if p.name != _INTERNAL and p.is_file()]
    return sorted((_probe(p) for p in files), key=lambda c: (-c.size, c.path.name))


def pick_database(directory: Path) -> Path:
    """The one database with a ``traces`` table (or the only database). SourceError when none or ambiguous."""
    directory = Path(directory)
    candidates = find_d1_databases(directory)
    if not candidates:
        raise SourceError(directory, "directory has no D1 database (looked for .wrangler/state/v3/d1/"
                                     f"{MINIFLARE_DIR}/*.sqlite and a --persist-to layout)")
    with_traces = [c for c in candidates if c.has_traces]
    if len(with_traces) == 1:
        return with_traces[0].path
    if not with_traces and len(candidates) == 1 and candidates[0].error is None:
        return candidates[0].path  # schema detection then says what is missing
    which = with_traces or candidates
    listing = "; ".join(c.describe() for c in which)
    problem = (f"{len(which)} D1 databases have a traces table" if with_traces
               else "no D1 database here has a traces table")
    raise SourceError(
        directory, f"{problem}: {listing}; open one of the .sqlite files in {which[0].path.parent}"
    )


def copy_database(src: Path, dest: Path) -> Path:
    """A self-contained copy of a wrangler database, rows from its ``-wal`` included (never copy the file
    alone)."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".copying")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"{Path(src).resolve().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target)  # a consistent snapshot even if wrangler writes meanwhile
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal of its own
    except sqlite3.Error as exc:
        target.close()
        tmp.unlink(missing_ok=True)
        raise SourceError(src, f"cannot copy the D1 database: {exc}") from None
    finally:
        source.close()
    target.close()
    tmp.replace(dest)
    return dest
