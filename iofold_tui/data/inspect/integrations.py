"""The integrations list. ``api_key_encrypted`` is never selected: only whether it is set."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass

from iofold_tui.data.inspect.util import has_columns, literal, schema_columns, where, ws_cond
from iofold_tui.data.sanitize import clean

# Columns shown besides the key state; absent ones (older/newer schemas) read as NULL.
_COLUMNS = ("id", "workspace_id", "platform", "name", "base_url", "config", "status", "error_message",
            "last_synced_at", "created_at")


@dataclass(frozen=True)
class IntegrationInfo:
    """Raw DB values (pass through sanitize.one_line to display) except ``config_pretty`` (sanitized)."""

    id: str
    workspace_id: str | None
    platform: str | None
    name: str | None
    api_key: str  # "set" | "empty"
    base_url: str | None
    config_pretty: str
    config_valid: bool
    status: str | None
    error_message: str | None
    last_synced_at: str | None
    created_at: str | None
    trace_count: int | None  # None when not counted


# Config JSON sometimes carries credentials next to the encrypted key (secret keys, tokens): mask them.
_SECRET_KEY = re.compile(r"secret|passw|token|api[_-]?key|apikey|private|credential|authorization", re.I)
HIDDEN = "«hidden»"


def _mask(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: (HIDDEN if _SECRET_KEY.search(str(k)) and v not in (None, "") else _mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def pretty_json(text: object, *, mask_secrets: bool = False) -> tuple[str, bool]:
    """Indented, sanitized JSON and whether it parsed; invalid JSON comes back as its sanitized text."""
    if text is None or text == "":
        return "", True
    if isinstance(text, bytes | bytearray | memoryview):
        return clean(text), False
    try:
        value = json.loads(str(text))
    except (ValueError, RecursionError):
        return clean(HIDDEN if mask_secrets and _SECRET_KEY.search(str(text)) else text), False
    if mask_secrets:
        value = _mask(value)
    return clean(json.dumps(value, indent=2, ensure_ascii=False, default=str)), True


def list_integrations(
    conn: sqlite3.Connection, workspace_id: str | None, *, trace_counts: bool = True
) -> list[IntegrationInfo]:
    """Integrations of the workspace (all when None) with their trace counts.

    The trace count is a GROUP BY over ``traces(integration_id)``: an index-only scan, about a second
    on 1M traces, so call it from a worker; ``trace_counts=False`` skips it.
    """
    schema = schema_columns(conn)
    cols = schema.get("integrations")
    if cols is None or "id" not in cols:
        return []
    select = ", ".join(c if c in cols else f"NULL AS {c}" for c in _COLUMNS)
    # Only a boolean about the key ever leaves SQLite.
    key_state = (
        "(api_key_encrypted IS NOT NULL AND length(trim(CAST(api_key_encrypted AS TEXT))) > 0)"
        if "api_key_encrypted" in cols else "0"
    )
    scope = ws_cond("workspace_id", workspace_id) if "workspace_id" in cols else None
    rows = conn.execute(
        f"SELECT {select}, {key_state} AS key_set FROM integrations{where(scope)} ORDER BY platform, name, id"
    ).fetchall()
    counts: dict[str, int] = {}
    if trace_counts and rows and has_columns(schema, "traces", "integration_id"):
        ids = ", ".join(literal(r[0]) for r in rows)
        counts = {
            r[0]: int(r[1])
            for r in conn.execute(
                f"SELECT integration_id, count(*) FROM traces WHERE integration_id IN ({ids}) GROUP BY "
                f"integration_id"
            )
        }
    result: list[IntegrationInfo] = []
    for r in rows:
        config, valid = pretty_json(r[5], mask_secrets=True)
        result.append(
            IntegrationInfo(
                id=r[0],
                workspace_id=r[1],
                platform=r[2],
                name=r[3],
                api_key="set" if r[10] else "empty",
                base_url=r[4],
                config_pretty=config,
                config_valid=valid,
                status=r[6],
                error_message=r[7],
                last_synced_at=r[8],
                created_at=r[9],
                trace_count=counts.get(r[0], 0)
                if trace_counts and has_columns(schema, "traces", "integration_id")
                else None,
            )
        )
    return result
