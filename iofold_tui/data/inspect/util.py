"""Small SQL helpers shared by the inspection modules (overview, checks, jobs, integrations, presets).

Jump-to-rows queries are shown to the user and run in the SQL console, so values such as a workspace
id are written into them as quoted literals rather than bound parameters.
"""

from __future__ import annotations

import math
import sqlite3

from iofold_tui.data import introspect
from iofold_tui.data.values import to_count


def literal(value: str | int | float | None) -> str:
    """An SQL literal: strings single-quoted with '' escaping (safe for any text), NULL for None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "NULL"  # nan/inf have no SQL literal
    if isinstance(value, bytes | bytearray | memoryview):
        return f"X'{bytes(value).hex()}'"
    text = str(value)
    if "\x00" in text or any(0xD800 <= ord(c) < 0xE000 for c in text if c >= "\ud800"):
        # SQL text cannot hold NUL (sqlite3 refuses the query) or lone surrogates: the same bytes as hex
        return f"CAST(X'{text.encode('utf-8', 'surrogatepass').hex()}' AS TEXT)"
    return "'" + text.replace("'", "''") + "'"


def schema_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Tables and views with their columns (a view over a missing table maps to an empty set)."""
    return {name: set(cols) for name, cols in introspect.schema_columns(conn).items()}


def has_columns(schema: dict[str, set[str]], table: str, *columns: str) -> bool:
    cols = schema.get(table)
    return cols is not None and all(c in cols for c in columns)


def ws_cond(column: str, workspace_id: str | None) -> str | None:
    """``column = 'ws'``, or None when every workspace is in scope."""
    return None if workspace_id is None else f"{column} = {literal(workspace_id)}"


def where(*conditions: str | None) -> str:
    """`` WHERE a AND b`` from the conditions that are not None ("" when none are)."""
    conds = [c for c in conditions if c]
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def scalar(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return to_count(row[0]) if row is not None else 0
