"""SQL console history, one JSON line per statement, kept per database under ``paths.data_dir()``."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from iofold_tui.data import paths

KEEP = 500  # entries kept when the file is compacted
COMPACT_AT = 2 * KEEP


def history_path(db_path: Path) -> Path:
    return paths.data_dir() / "history" / f"{paths.path_key(db_path)}.jsonl"


class SqlHistory:
    """Append-only JSON-lines file; consecutive duplicates are stored once."""

    def __init__(self, db_path: Path) -> None:
        self.path = history_path(db_path)
        self._lock = threading.Lock()
        self._entries: list[str] | None = None
        self._lines = 0

    def _load(self) -> list[str]:
        if self._entries is None:
            entries: list[str] = []
            lines = 0
            try:
                with self.path.open(encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        lines += 1
                        try:
                            sql = json.loads(line).get("sql")
                        except (ValueError, AttributeError):
                            continue  # a torn or foreign line: skip it, keep the rest
                        if isinstance(sql, str) and sql and (not entries or entries[-1] != sql):
                            entries.append(sql)
            except OSError:
                pass
            self._entries = entries[-KEEP:]
            self._lines = lines
        return self._entries

    def entries(self) -> list[str]:
        """Statements, oldest first."""
        with self._lock:
            return list(self._load())

    def append(self, sql: str) -> None:
        with self._lock:
            entries = self._load()
            if entries and entries[-1] == sql:
                return
            entries.append(sql)
            del entries[:-KEEP]
            line = json.dumps(
                {"sql": sql, "at": datetime.now(UTC).isoformat(timespec="seconds")}, ensure_ascii=False
            )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self._lines + 1 >= COMPACT_AT:
                    self._rewrite(entries)
                else:
                    with self.path.open("a", encoding="utf-8") as fh:
                        fh.write(line + "\n")
                    self._lines += 1
            except OSError:
                pass  # history is a convenience: a read-only data dir must not break the console

    def _rewrite(self, entries: list[str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for sql in entries:
                fh.write(json.dumps({"sql": sql}, ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)
        self._lines = len(entries)
