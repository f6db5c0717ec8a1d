from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
def many_db(tmp_path: Path) -> Path:
    """The seed plus 250 traces (bulk_001 oldest … bulk_250 newest, all older than the seed's five)."""
    path = build_db(tmp_path / "many.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250) "
            "INSERT INTO traces(id, workspace_id, integration_id, trace_id, source, timestamp, steps, "
            "input_preview, output_preview) "
            "SELECT printf('bulk_%03d', i), workspace_id, id, 'ext_' || i, 'langsmith', "
            "printf('2024-01-01T00:%02d:%02dZ', i / 60, i % 60), '[]', 'bulk question ' || i, 'bulk answer' "
            "FROM n, integrations")
    return path


@pytest.fixture
def seed_conn(seed_db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(seed_db)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


# -- the live-D1 stand-in (tests/fixtures/d1_api_worker under ``wrangler dev --local``) ----------------
@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    """One seeded server per test module that asks for it (~10 s to start)."""
    from _d1_helpers import seed
    from d1_api_tools import D1Api

    server = D1Api().start()
    try:
        seed(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app pointed at ``api`` with a read-write token; no faults injected."""
    from d1_api_tools import ACCOUNT, TOKEN_RW

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN_RW)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("IOFOLD_D1_API_BASE", api.api_base)
    api.faults()
    return api


@pytest.fixture
def proxy(api: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A TCP proxy in front of ``api`` that can drop connections and take the network down."""
    from d1_api_tools import FaultProxy

    p = FaultProxy(api.port)
    monkeypatch.setenv("IOFOLD_D1_API_BASE", p.api_base)
    yield p
    p.close()
