"""What a launch of a live D1 database saw, kept so the next launch can open without the network.

The launch recording (``Remote.start_recording``: the reads of a launch's first seconds) is saved with its
results to the user's cache dir (mode 0600: trace text and label notes are the user's data). When the next
launch cannot reach D1 (network down, timeout, 429, 5xx), ``opening.warm_up`` fills the page cache from it
instead of failing: the catalog, the schema and the first page are on screen, the header says "D1 offline",
labels queue in the sidecar and land when the network returns; a read beyond what was saved fails with
its one-line message and the pane keeps what it shows. BLOBs are kept as ``{"$blob": hex}``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from iofold_tui.data import paths
from iofold_tui.data.source.d1.api import Result

Entry = tuple[str, list[Any], Result]


def offline_path(placeholder: Path) -> Path:
    return paths.cache_dir() / "d1" / f"{placeholder.stem}.offline.json"


def _value(v: Any) -> Any:  # any SQLite value -> JSON
    return {"$blob": bytes(v).hex()} if isinstance(v, (bytes, bytearray, memoryview)) else v


def _unvalue(v: Any) -> Any:
    if isinstance(v, dict) and isinstance(v.get("$blob"), str):
        return bytes.fromhex(v["$blob"])
    return v


def save_offline(path: Path, database_id: str, entries: list[Entry]) -> None:
    """Write ``entries`` atomically, readable by this user only. Failures are silent: it is a cache."""
    doc = {"database_id": database_id, "entries": [
        {"sql": sql, "params": [_value(p) for p in params], "columns": list(res.columns),
         "rows": [[_value(v) for v in row] for row in res.rows]} for sql, params, res in entries]}
    tmp = path.with_name(path.name + ".tmp")
    try:
        text = json.dumps(doc).encode("ascii")  # \u escapes: lone surrogates in a TEXT value come back too
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink()


def load_offline(path: Path, database_id: str) -> list[Entry]:
    """The saved entries for ``database_id`` ([] when there are none, they are another database's, or the
    file is unreadable)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict) or not database_id or doc.get("database_id") != database_id:
        return []
    out: list[Entry] = []
    for e in doc.get("entries") or []:
        try:
            params = [_unvalue(p) for p in e["params"]]
            rows = [tuple(_unvalue(v) for v in row) for row in e["rows"]]
            out.append((str(e["sql"]), params, Result([str(c) for c in e["columns"]], rows, {})))
        except (KeyError, TypeError, ValueError):
            continue
    return out
