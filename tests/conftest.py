from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from iofold_tui.data.paths import schema_dir

SCHEMA = schema_dir() / "schema.sql"
SEED = schema_dir() / "seed.sql"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write into the real user cache/data dirs from a test."""
    base = tmp_path_factory.mktemp("appdirs")
    monkeypatch.setenv("IOFOLD_TUI_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("IOFOLD_TUI_DATA_DIR", str(base / "data"))


def build_db(path: Path, *, seed: bool = True) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.read_text())
    if seed:
        conn.executescript(SEED.read_text())
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def schema_db(tmp_path: Path) -> Path:
    """An empty database with the v1.0 schema."""
    return build_db(tmp_path / "schema.sqlite", seed=False)


@pytest.fixture
def seed_db(tmp_path: Path) -> Path:
    """The v1.0 schema plus schema/seed.sql."""
    return build_db(tmp_path / "seed.sqlite")


@pytest.fixture
def seed_conn(seed_db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(seed_db)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()
