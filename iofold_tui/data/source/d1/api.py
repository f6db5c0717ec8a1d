"""The vocabulary of Cloudflare D1's REST API as this app uses it (spec §11): its limits, one error type
with one-line messages per failure kind, a statement's ``Result``, request ``Stats``, and the credentials —
the token from ``CLOUDFLARE_API_TOKEN`` only (known to :func:`scrub`, which removes it from any text that
leaves the client) and the account from ``CLOUDFLARE_ACCOUNT_ID`` or the project's wrangler config. The
client itself is d1/client.py."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
API_BASE_ENV = "IOFOLD_D1_API_BASE"
TIMEOUT_S = 30.0
IDLE_CONNECTIONS = 8  # kept-alive connections kept for reuse
MAX_STATEMENTS = 50  # statements per /query batch (D1 allows more; small batches keep each under its limits)
MAX_SQL_BYTES = 90_000  # D1 caps one statement's text at 100 KB
MAX_PARAMS = 100  # D1 caps bound parameters per statement at 100
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class D1Error(sqlite3.OperationalError):
    """One failure of the remote, with a one-line message. A subclass of ``sqlite3.OperationalError`` so
    every pane's existing handling of a failed query (message, keep what is shown) applies unchanged.

    kind: ``auth`` (401), ``forbidden`` (403: token lacks permission), ``rate`` (429), ``server`` (5xx),
    ``timeout``, ``network`` (DNS / refused / dropped), ``sql`` (D1 refused the statement), ``limit``
    (response size / statement limits), ``protocol`` (not D1's envelope), ``config``, ``cancelled`` (the
    request was cut by ``abort``: message "interrupted", as SQLite's ``interrupt()`` gives)."""

    RETRYABLE = frozenset({"rate", "server", "timeout", "network"})

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


_SECRETS: set[str] = set()


def register_secret(secret: str) -> None:
    """``scrub`` removes ``secret`` from every text from now on."""
    _SECRETS.add(secret)


def scrub(text: str) -> str:
    """``text`` with every token this process knows replaced by ``***``."""
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def token_from_env() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise D1Error("config", f"set {TOKEN_ENV} to an API token with 'D1 Read' (and 'D1 Write' to label)")
    _SECRETS.add(token)
    return token


def account_from_env_or_wrangler(start: Path | None = None) -> str:
    """``CLOUDFLARE_ACCOUNT_ID``, else ``account_id`` in the wrangler config of the current project."""
    account = os.environ.get(ACCOUNT_ENV, "").strip()
    if account:
        return account
    folder = (start or Path.cwd()).resolve()
    for d in (folder, *folder.parents):
        for name in ("wrangler.toml", "wrangler.json", "wrangler.jsonc"):
            f = d / name
            if f.is_file():
                found = _account_in(f)
                if found:
                    return found
    raise D1Error("config", f"set {ACCOUNT_ENV} (or account_id in the project's wrangler.toml)")


def _account_in(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if path.suffix == ".toml":
        import tomllib

        try:
            value = tomllib.loads(text).get("account_id")
        except tomllib.TOMLDecodeError:
            return None
    else:
        m = re.search(r'"account_id"\s*:\s*"([^"]+)"', text)
        value = m.group(1) if m else None
    return value if isinstance(value, str) and value.strip() else None


@dataclass
class Stats:
    requests: int = 0
    failures: int = 0
    rows_read: int = 0
    rows_written: int = 0
    last_rtt_ms: float | None = None
    last_error: str | None = None
    times: list[float] = field(default_factory=list)  # monotonic start of each request (last 1000)


@dataclass(frozen=True)
class Result:
    """One statement's answer: ``columns`` and ``rows`` (tuples), and D1's ``meta``."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    meta: dict[str, Any]

    @property
    def changes(self) -> int:
        return int(self.meta.get("changes") or 0)
