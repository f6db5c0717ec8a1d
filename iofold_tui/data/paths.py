"""Where iofold-tui keeps its own files (never inside the user's database).

``IOFOLD_TUI_CACHE_DIR`` / ``IOFOLD_TUI_DATA_DIR`` override the platform dirs (tests point them at tmp).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

APP_NAME = "iofold-tui"


def cache_dir() -> Path:
    path = Path(os.environ.get("IOFOLD_TUI_CACHE_DIR") or platformdirs.user_cache_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    path = Path(os.environ.get("IOFOLD_TUI_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_key(path: Path) -> str:
    """A stable short key for a database file, used to name sidecar files."""
    resolved = str(Path(path).resolve())
    return f"{Path(path).stem[:40]}-{hashlib.sha256(resolved.encode()).hexdigest()[:16]}"


def schema_dir() -> Path:
    """The bundled ``schema/`` folder: packaged as ``iofold_tui/_schema`` in a wheel, the repo's in a
    checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_schema", here.parent / "schema"):
        if (candidate / "schema.sql").is_file():
            return candidate
    raise FileNotFoundError("bundled schema/ not found: reinstall iofold-tui")
