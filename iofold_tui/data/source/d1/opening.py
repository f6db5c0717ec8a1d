"""Opening ``d1://DATABASE``: the client from the environment, the local placeholder the prefs and label
history key on, and the launch in (usually) one round trip — the schema and the reads a launch makes sent as
one ``/raw`` batch into the page cache (what the previous launch read, recorded by ``Remote.start_recording``;
on a first launch ever, FIRST_LAUNCH_READS)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, cast

from iofold_tui.data import paths
from iofold_tui.data.source.d1.api import D1Error, Result
from iofold_tui.data.source.d1.client import D1Client
from iofold_tui.data.source.d1.first_launch import (
    FIRST_LAUNCH_READS,
    app_eval_set,
    first_page_guess,
    page_key,
)
from iofold_tui.data.source.d1.offline import load_offline, offline_path
from iofold_tui.data.source.d1.params import is_read
from iofold_tui.data.source.d1.remote import WARM_MAX, Remote, RemoteDatabase


def placeholder_path(client: D1Client) -> Path:
    """A stable local name for this remote database (prefs, label history, SQL history key on it)."""
    folder = paths.data_dir() / "d1"
    folder.mkdir(parents=True, exist_ok=True)
    where = f"{client.api_base}|{client.account_id}|{client.database_name}"
    key = hashlib.sha256(where.encode()).hexdigest()[:16]
    path = folder / f"{client.database_name[:40].replace('/', '_')}-{key}.d1"
    if not path.exists():
        with contextlib.suppress(OSError):
            path.write_text(f"iofold-tui live D1 source: {client.database_name}\n")
    return path


# -- opening -----------------------------------------------------------------------------------------

D1_SCHEME = "d1://"


def is_d1_target(target: object) -> bool:
    return isinstance(target, str) and target.startswith(D1_SCHEME)


def connect_client(target: str, *, api_base: str | None = None, timeout_s: float | None = None,
                   resolve: bool = True) -> D1Client:
    """A client for ``d1://NAME-or-UUID`` (token and account from the environment / wrangler config)."""
    from iofold_tui.data.source.d1.api import TIMEOUT_S, account_from_env_or_wrangler, token_from_env

    name = target[len(D1_SCHEME):].strip().strip("/")
    if not name:
        raise D1Error("config", "d1:// needs a database name or id, e.g. d1://iofold")
    client = D1Client(account_from_env_or_wrangler(), name, token_from_env(), api_base=api_base,
                      timeout_s=timeout_s or TIMEOUT_S)
    if not client.database_id and resolve:
        client.database_id = client.resolve_database(name)
    return client


_SCHEMA_SQL = ("SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk "
               "FROM sqlite_master m, pragma_table_info(m.name) p "
               "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE '\\_cf\\_%' "
               "ESCAPE '\\' ORDER BY m.name, p.cid")


def _fill_schema(remote: Remote, res: Result) -> None:
    """Every table's ``PRAGMA table_info`` from one pragma_table_info read, into the page cache under the
    statements the app sends (one round trip instead of one per table)."""
    by: dict[str, list[tuple[Any, ...]]] = {}
    for r in res.rows:
        by.setdefault(str(r[0]), []).append(tuple(r[1:]))
    cols = ["cid", "name", "type", "notnull", "dflt_value", "pk"]
    for table, rows in by.items():
        quoted = '"' + table.replace('"', '""') + '"'
        forms = (f"PRAGMA table_info({quoted})", f"PRAGMA table_info({table})",
                 f"PRAGMA table_info('{table}')")
        for form in forms:
            remote.cache.put((form, ()), Result(cols, rows, {}))


def warm_up(remote: Remote, warm_path: Path) -> None:
    """The launch in (usually) ONE round trip: the schema and the reads the previous launch made (recorded in
    ``warm_path``) go as one ``/raw`` batch and land in the page cache; the panes then find them there.
    The database id comes from the same file (no list request). Anything odd: the plain path."""
    client = remote.client
    saved: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(warm_path.read_text())
        saved = loaded if isinstance(loaded, dict) else {}
    statements: list[tuple[str, list[Any]]] = [(_SCHEMA_SQL, [])]
    guess = None
    if isinstance(saved.get("statements"), list):
        statements += [(str(sql), list(params)) for sql, params in saved["statements"][:WARM_MAX]
                       if isinstance(params, list) and is_read(str(sql))]
    else:  # a first launch ever: what every launch reads, and a guess at the first page (first_launch.py)
        statements += [(sql, list(params)) for sql, params in FIRST_LAUNCH_READS]
        guess = first_page_guess()
        if guess is not None:
            statements.append((guess[2], guess[3]))
    if not client.database_id:
        client.database_id = (str(saved.get("database_id") or "")
                              or client.resolve_database(client.database_name))
    # With what the last launch saw kept for offline use, one retry: opening on it beats waiting out backoff.
    has_offline = offline_path(placeholder_path(client)).exists()
    try:
        results = client.raw_batch(statements, retries=1 if has_offline else 3)
    except D1Error as exc:
        if exc.retryable and open_offline(remote, str(exc)):
            return
        if exc.retryable or exc.kind in ("auth", "forbidden"):
            raise
        if saved.get("database_id"):  # the database was replaced, or a recorded read no longer runs
            client.database_id = client.resolve_database(client.database_name)
        with contextlib.suppress(OSError):
            warm_path.unlink()
        try:
            results = [client.raw(_SCHEMA_SQL)]
        except D1Error as again:
            if again.kind not in ("sql", "limit"):
                raise
            return  # pragma_table_info not allowed there: each PRAGMA goes on its own
        statements, guess = statements[:1], None
    _fill_schema(remote, results[0])
    if guess is not None and len(results) == len(statements):
        statements.pop()
        page = results.pop()
        chosen = app_eval_set(results)
        if chosen is not None:
            remote.cache.put(page_key(guess, chosen), page)
    for (sql, params), res in zip(statements[1:], results[1:], strict=False):
        remote.cache.put((sql, tuple(params)), res)


def open_offline(remote: Remote, why: str) -> bool:
    """D1 is unreachable: open on what the previous launch saw (d1/offline.py), if it saved anything."""
    placeholder = placeholder_path(remote.client)
    entries = load_offline(offline_path(placeholder), remote.client.database_id)
    if not entries:
        return False
    for sql, params, res in entries:
        remote.cache.put((sql, tuple(params)), res)
    remote.offline = why
    return True


def open_remote(target: str, *, read_only: bool = False, api_base: str | None = None) -> Any:
    """Open ``d1://DATABASE`` as an ``OpenedSource`` (raises SourceError with one line)."""
    from iofold_tui.data.errors import SourceError
    from iofold_tui.data.source.opened import OpenedSource
    from iofold_tui.data.source.schema import detect

    origin = Path(target)
    try:
        client = connect_client(target, api_base=api_base, resolve=False)
        remote = Remote(client, read_only_reason="opened with --read-only" if read_only else None)
        path = placeholder_path(client)
        warm = path.with_name(path.name + ".warm.json")
        warm_up(remote, warm)
        remote.start_recording(warm, client.database_id, offline_path(path))
        db = RemoteDatabase(remote, path)
        info = detect(cast(sqlite3.Connection, db.conn()), origin)
    except D1Error as exc:
        raise SourceError(target, str(exc)) from None
    history = db.path.with_name(db.path.name + ".labels.sqlite")
    notes = [f"live D1 database {client.database_name} ({client.database_id}) via {client.api_base}",
             *info.warnings]
    opened = OpenedSource(kind="d1-remote", origin=origin, db=db, schema=info, history_path=history,
                          notes=notes)
    opened.target = target  # type: ignore[attr-defined]
    return opened
