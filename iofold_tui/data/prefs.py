"""What to restore when a database is reopened: last pane, eval set, trace filters, theme.

Kept in iofold-tui's own data dir (never in the user's database), one small JSON file per database.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from iofold_tui.data import paths


def _file(db_path: Path) -> Path:
    folder = paths.data_dir() / "state"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{paths.path_key(db_path)}.json"


def load_prefs(db_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_file(db_path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_prefs(db_path: Path, prefs: dict[str, Any]) -> None:
    """Atomic replace so a crash never leaves half a file."""
    target = _file(db_path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".prefs-")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(prefs, fh)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
