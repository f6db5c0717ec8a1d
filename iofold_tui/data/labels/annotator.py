"""Who is labelling: the annotator name recorded with every label iofold-tui writes (in the label history,
never in the user's tables), carried by ``export-labels`` CSV / JSON lines and shown in the review header.

The first of: the ``IOFOLD_TUI_ANNOTATOR`` environment variable; the database's prefs (``annotator``);
iofold-tui's settings (``iofold-tui annotator NAME`` writes ``settings.json`` in its data dir); the OS user
(``getpass.getuser()``); "unknown".
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import tempfile
from pathlib import Path

from iofold_tui.data import introspect, paths
from iofold_tui.data.prefs import load_prefs

ENV = "IOFOLD_TUI_ANNOTATOR"
MAX_LENGTH = 100


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:MAX_LENGTH]  # one line, no control characters kept by split
    return text or None


def settings_path() -> Path:
    return paths.data_dir() / "settings.json"


def _settings() -> dict[str, object]:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve_annotator(db_path: Path | None = None) -> tuple[str, str]:
    """(name, where it comes from: env | prefs | settings | os user | unknown)."""
    name = _clean(os.environ.get(ENV))
    if name:
        return name, "env"
    if db_path is not None:
        name = _clean(load_prefs(Path(db_path)).get("annotator"))
        if name:
            return name, "prefs"
    name = _clean(_settings().get("annotator"))
    if name:
        return name, "settings"
    with contextlib.suppress(Exception):  # no user name in the environment or the password database
        name = _clean(getpass.getuser())
    return (name, "os user") if name else ("unknown", "unknown")


def annotator_name(db_path: Path | None = None) -> str:
    return resolve_annotator(db_path)[0]


def set_annotator(name: str | None) -> None:
    """Save (or with None, forget) the annotator name in iofold-tui's settings."""
    data = _settings()
    clean = _clean(name) if name is not None else None
    if name is not None and clean is None:
        raise ValueError("the annotator name is empty")
    if clean is None:
        data.pop("annotator", None)
    else:
        data["annotator"] = clean
    target = settings_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".settings-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def key_annotators(history_conn: object) -> dict[tuple[str, str], str]:
    """Who made the latest applied label step of each (eval set, trace) in a label history (an open
    sqlite3 connection on the sidecar); empty for a history that does not record annotators yet."""
    import sqlite3

    conn: sqlite3.Connection = history_conn  # type: ignore[assignment]
    try:
        if "annotator" not in introspect.column_set(conn, "steps"):
            return {}
        rows = conn.execute(
            "SELECT c.eval_set_id, c.trace_id, s.annotator, max(s.id) FROM changes c "
            "JOIN steps s ON s.id = c.step_id WHERE s.status = 'applied' GROUP BY c.eval_set_id, c.trace_id")
        return {(str(es), str(tid)): str(who) for es, tid, who, _ in rows if who is not None}
    except sqlite3.Error:
        return {}
