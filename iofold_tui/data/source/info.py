"""``iofold-tui info``: what a source is, what it holds, what looks wrong."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from iofold_tui.data.source.loader import OpenedSource


def source_info(opened: OpenedSource) -> dict[str, Any]:
    conn = opened.db.conn()
    db = sqlite_utils.Database(conn)
    tables = {}
    for name in sorted(db.table_names()):
        if name.startswith("sqlite_"):
            continue
        tables[name] = db.table(name).count
    return {
        "source": str(opened.origin),
        "kind": opened.kind,
        "database": str(opened.db.path),
        "generation": opened.schema.generation,
        "view": opened.schema.view,
        "read_only_reason": opened.read_only_reason,
        "tables": tables,
        "missing": opened.schema.missing,
        "warnings": list(dict.fromkeys(opened.notes)),
    }
