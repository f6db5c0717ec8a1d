"""Run the real ``wrangler`` CLI in tests, offline (spec §9).

``wrangler_bin()`` finds it: ``$WRANGLER_BIN``, else ``<repo>/node_modules/.bin/wrangler`` (what CI
installs with npm), else — only outside CI — ``/tmp/wr/node_modules/.bin/wrangler``. Tests that need
it call ``require_wrangler()``: a skip normally, a failure when ``IOFOLD_REQUIRE_WRANGLER=1`` so CI
cannot silently stop testing against the real thing. Mark such tests ``@pytest.mark.wrangler``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCAL_FALLBACK = Path("/tmp/wr/node_modules/.bin/wrangler")
DB_NAME = "iofold"
TIMEOUT_S = 180


def wrangler_bin() -> Path | None:
    env = os.environ.get("WRANGLER_BIN")
    if env:
        path = Path(env)
        return path if path.is_file() else None
    candidates = [REPO / "node_modules" / ".bin" / "wrangler"]
    if not os.environ.get("CI"):
        candidates.append(LOCAL_FALLBACK)
    return next((p for p in candidates if p.is_file()), None)


def require_wrangler() -> Path:
    """The wrangler binary, or skip (fail when IOFOLD_REQUIRE_WRANGLER=1)."""
    found = wrangler_bin()
    if found is None:
        msg = "wrangler not found (set WRANGLER_BIN or run `npm install wrangler@4` in the repo)"
        if os.environ.get("IOFOLD_REQUIRE_WRANGLER") == "1":
            pytest.fail(msg + " and IOFOLD_REQUIRE_WRANGLER=1")
        pytest.skip(msg)
    return found


class WranglerError(RuntimeError):
    pass


class WranglerProject:
    """A throwaway wrangler project with one D1 binding, driven with ``--local`` only."""

    def __init__(self, root: Path, binary: Path | None = None, name: str = DB_NAME) -> None:
        self.root = Path(root)
        self.binary = binary or require_wrangler()
        self.name = name
        self.home = self.root / ".home"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.root / "wrangler.toml").write_text(
            'name = "iofold-test"\ncompatibility_date = "2024-09-01"\n\n'
            f'[[d1_databases]]\nbinding = "DB"\ndatabase_name = "{name}"\n'
            'database_id = "00000000-0000-4000-8000-000000000000"\n'
        )

    @property
    def d1_dir(self) -> Path:
        return self.root / ".wrangler" / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CF_", "WRANGLER_"))}
        env.update({
            "HOME": str(self.home),  # wrangler writes logs/config under HOME: never the user's
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "CLOUDFLARE_CF_FETCH_ENABLED": "false",
            "NO_COLOR": "1",
            "CI": "1",  # no interactive prompts
        })
        return env

    def run(self, *args: str) -> str:
        proc = subprocess.run([str(self.binary), *args], cwd=self.root, env=self.env(), capture_output=True,
                              text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise WranglerError(f"wrangler {' '.join(args)} failed ({proc.returncode}): {tail}")
        return proc.stdout

    def execute_file(self, sql_file: Path) -> list[dict[str, Any]]:
        return json.loads(self.run("d1", "execute", self.name, "--local", "--json", "--file", str(sql_file)))

    def execute(self, sql: str) -> list[dict[str, Any]]:
        return json.loads(self.run("d1", "execute", self.name, "--local", "--json", "--command", sql))

    def export(self, out: Path, *, no_data: bool = False, no_schema: bool = False,
               table: str | None = None) -> Path:
        args = ["d1", "export", self.name, "--local", "--output", str(out)]
        if no_data:
            args.append("--no-data")
        if no_schema:
            args.append("--no-schema")
        if table:
            args += ["--table", table]
        self.run(*args)
        return out

    def database_file(self) -> Path:
        files = [p for p in self.d1_dir.glob("*.sqlite") if p.name != "metadata.sqlite"]
        if len(files) != 1:
            raise WranglerError(f"expected one D1 database in {self.d1_dir}, found {len(files)}")
        return files[0]


def temp_project(prefix: str = "iofold-wrangler-") -> tuple[WranglerProject, Path]:
    """A project in a fresh temp dir (for module/session-scoped fixtures); remove with ``cleanup``."""
    binary = require_wrangler()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    return WranglerProject(root, binary), root


def cleanup(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
