"""``iofold-tui info``: what a source is, what it holds, what looks wrong."""

from __future__ import annotations

import sqlite3
from typing import Any

from iofold_tui.data import introspect
from iofold_tui.data.db import quote_ident
from iofold_tui.data.source.opened import OpenedSource


def source_info(opened: OpenedSource) -> dict[str, Any]:
    conn = opened.db.conn()
    tables = {}
    for name in sorted(introspect.table_names(conn)):
        try:
            tables[name] = int(conn.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])
        except sqlite3.DatabaseError:  # a virtual table whose module is not loaded
            tables[name] = -1
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
