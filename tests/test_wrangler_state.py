"""Finding wrangler's local D1 file, with its rows still in the -wal."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from wrangler_tools import WranglerProject, cleanup, temp_project

from iofold_tui.data.errors import SourceError
from iofold_tui.data.source.wrangler_state import copy_database, find_d1_databases, pick_database

HEX_A, HEX_B = "a" * 64, "b" * 64


def make_wal_db(path: Path, tables: dict[str, int]) -> Path:
    """A WAL database whose rows are only in its -wal, as wrangler leaves it (files copied while open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.parent / f".work-{path.name}"
    conn = sqlite3.connect(work)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE _cf_METADATA (key INTEGER PRIMARY KEY, value BLOB)")
    for table, n in tables.items():
        conn.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY)")
        conn.executemany(f"INSERT INTO {table} VALUES (?)", [(f"{table}_{i}",) for i in range(n)])
    conn.commit()
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(f"{work}{suffix}", f"{path}{suffix}")
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    return path


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_persist_to_layout_and_the_folder_itself(tmp_path: Path) -> None:
    folder = tmp_path / "persist" / "v3" / "d1" / "miniflare-D1DatabaseObject"
    db = make_wal_db(folder / f"{HEX_A}.sqlite", {"traces": 3, "feedback": 1})
    make_wal_db(folder / "metadata.sqlite", {"traces": 1})  # wrangler's own bookkeeping: never a candidate
    for target in (tmp_path / "persist", folder):
        (cand,) = find_d1_databases(target)
        assert cand.path == db and cand.has_traces and cand.tables == 2 and cand.error is None
        assert cand.size == db.stat().st_size + Path(f"{db}-wal").stat().st_size
        assert pick_database(target) == db
    assert count(db, "traces") == 3  # opened in place: SQLite reads the -wal


def test_several_databases_pick_the_one_with_traces(tmp_path: Path) -> None:
    folder = tmp_path / ".wrangler" / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
    make_wal_db(folder / f"{HEX_A}.sqlite", {"sessions": 2})
    with_traces = make_wal_db(folder / f"{HEX_B}.sqlite", {"traces": 1})
    assert pick_database(tmp_path) == with_traces
    make_wal_db(folder / f"{'c' * 64}.sqlite", {"traces": 5})
    with pytest.raises(SourceError) as err:
        pick_database(tmp_path)
    msg = str(err.value)
    assert (
        "2 D1 databases have a traces table" in msg and HEX_B in msg and "c" * 64 in msg and HEX_A not in msg
    )


def test_no_database_or_no_traces(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="directory has no D1 database"):
        pick_database(tmp_path)
    folder = tmp_path / "v3" / "d1" / "miniflare-D1DatabaseObject"
    only = make_wal_db(folder / f"{HEX_A}.sqlite", {"other": 1})
    assert pick_database(tmp_path) == only  # the only database: schema detection explains what is missing
    make_wal_db(folder / f"{HEX_B}.sqlite", {"other": 1})
    with pytest.raises(SourceError, match="no D1 database here has a traces table"):
        pick_database(tmp_path)


def test_unreadable_candidate_is_listed_not_raised(tmp_path: Path) -> None:
    folder = tmp_path / "miniflare-D1DatabaseObject"
    folder.mkdir()
    (folder / f"{HEX_A}.sqlite").write_bytes(b"not a database at all" * 100)
    (cand,) = find_d1_databases(folder)
    assert cand.error and not cand.has_traces
    with pytest.raises(SourceError, match="unreadable"):
        pick_database(folder)


# ---------------------------------------------------------------------------------------------- wrangler

@pytest.fixture(scope="module")
def project() -> Iterator[WranglerProject]:
    proj, root = temp_project()
    try:
        proj.execute("CREATE TABLE traces (id TEXT PRIMARY KEY, steps TEXT NOT NULL); "
                     "INSERT INTO traces VALUES ('t1', '[]'), ('t2', '[{\"step_id\": \"s\"}]');")
        yield proj
    finally:
        cleanup(root)


@pytest.mark.wrangler
def test_finds_what_wrangler_wrote_and_reads_rows_only_in_the_wal(
    project: WranglerProject, tmp_path: Path
) -> None:
    db = project.database_file()
    assert pick_database(project.root) == db
    (cand,) = find_d1_databases(project.root)
    wal = Path(f"{db}-wal")
    assert cand.has_traces and cand.size == db.stat().st_size + wal.stat().st_size
    # The rows are only in the -wal: the .sqlite copied alone has no traces table at all...
    alone = tmp_path / "alone.sqlite"
    shutil.copyfile(db, alone)
    conn = sqlite3.connect(alone)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'traces'").fetchone() == (0,)
    conn.close()
    # ...while opening it in place, or copying it properly, sees them.
    assert count(db, "traces") == 2
    copy = copy_database(db, tmp_path / "copy.sqlite")
    assert count(copy, "traces") == 2 and not Path(f"{copy}-wal").exists()
    assert wal.stat().st_size > 0  # probing and copying did not checkpoint wrangler's files
