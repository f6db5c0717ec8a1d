"""Round trip with the REAL wrangler: D1 (local) -> export -> label with LabelStore -> patch -> D1.

Offline: wrangler needs no login for ``--local``; the env below stops it phoning home (spec §9).
tests/wrangler_tools.py did not exist when this was written, so a minimal runner lives here.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from _labels_helpers import ES

from iofold_tui.data.labels.patch import write_changes
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.export.cache import open_export

pytestmark = pytest.mark.wrangler
REPO = Path(__file__).resolve().parent.parent
ES_RT = "set_roundtrip"
NOTE = "line one\nit's \"two\"; -- three\r\nfour 🎉"


def wrangler_bin() -> Path | None:
    for candidate in (os.environ.get("WRANGLER_BIN"), REPO / "node_modules/.bin/wrangler",
                      "/tmp/wr/node_modules/.bin/wrangler"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


class Wrangler:
    """A throwaway wrangler project with one local D1 database named ``iofold``."""

    def __init__(self, root: Path, binary: Path) -> None:
        self.root, self.binary = root, binary
        root.mkdir(parents=True, exist_ok=True)
        (root / "wrangler.toml").write_text(
            'name = "roundtrip"\ncompatibility_date = "2025-01-01"\n\n[[d1_databases]]\nbinding = "DB"\n'
            'database_name = "iofold"\ndatabase_id = "00000000-0000-4000-8000-000000000000"\n')
        home = root / "home"
        home.mkdir(exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "WRANGLER_SEND_METRICS": "false", "WRANGLER_SEND_ERROR_REPORTS": "false",
                    "CLOUDFLARE_CF_FETCH_ENABLED": "false", "CI": "1", "NO_COLOR": "1"}

    def run(self, *args: str) -> str:
        proc = subprocess.run([str(self.binary), "d1", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"wrangler d1 {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def execute_file(self, path: Path) -> None:
        self.run("execute", "iofold", "--local", "--file", str(path))

    def export(self, path: Path) -> Path:
        self.run("export", "iofold", "--local", "--output", str(path))
        return path


def feedback(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, eval_set_id, trace_id, rating, notes, created_at, updated_at "
                            "FROM feedback ORDER BY eval_set_id, trace_id").fetchall()
    finally:
        conn.close()


def test_label_patch_round_trips_through_wrangler(tmp_path: Path) -> None:
    binary = wrangler_bin()
    if binary is None or shutil.which("node") is None:
        pytest.skip("wrangler not installed (set WRANGLER_BIN or npm install wrangler@4)")
    d1 = Wrangler(tmp_path / "project", binary)
    init = tmp_path / "init.sql"  # schema + seed + a second eval set, in one wrangler call
    init.write_text(
        (schema_dir() / "schema.sql").read_text()
        + "\n"
        + (schema_dir() / "seed.sql").read_text()
        + f"\nINSERT INTO eval_sets (id, workspace_id, name) VALUES ('{ES_RT}', 'ws_demo', 'rt');\n"
    )
    d1.execute_file(init)
    working, _report = open_export(d1.export(tmp_path / "export1.sql"))
    before = feedback(working)
    assert len(before) == 5  # the seed's labels came through D1

    with LabelStore(working, history_path=working.with_name(working.name + ".labels.sqlite")) as store:
        store.set_label(ES_RT, "trace_001", "positive", note=NOTE)  # insert with a hostile note
        store.set_label(ES, "trace_001", "negative")  # relabel
        store.set_label(ES, "trace_003", None)  # clear
        store.set_note(ES, "trace_002", "edited\nnote with 'quotes'")
        store.set_labels(ES_RT, ["trace_002", "trace_003", "trace_004"], "neutral")
        store.set_label(ES_RT, "trace_005", "negative")
        store.undo()  # net nothing for trace_005
        patch = tmp_path / "labels.sql"
        with patch.open("w", encoding="utf-8") as out:
            summary = write_changes(store, out, fmt="sql")
    expected = feedback(working)
    assert summary.count == 7 and expected != before

    d1.execute_file(patch)
    d1.execute_file(patch)  # idempotent on D1 too
    after, _ = open_export(d1.export(tmp_path / "export2.sql"))
    assert feedback(after) == expected
