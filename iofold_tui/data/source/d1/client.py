"""A plain client for Cloudflare D1's REST API (spec §11): ``/raw``, ``/query``, the database list.

Plain ``http.client`` rather than the ``cloudflare`` SDK: the SDK (httpx + pydantic + anyio, ~10 MB) hides
the parts this app must control itself — which failures are retried and for how long (its retries ignore
that a label writer has its own backoff), ``Retry-After``, one-line messages per failure kind, the round
trip of each request for the status line — and would be the only user of those dependencies.

The token comes from ``CLOUDFLARE_API_TOKEN`` only. It is held in a closure-free private attribute, never
in ``repr``/``str`` of anything, never in a message: :func:`scrub` removes it from any text that leaves
this module (error bodies echo requests in some proxies).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from iofold_tui.data.source.d1.api import (
    _UUID,
    API_BASE_ENV,
    DEFAULT_API_BASE,
    IDLE_CONNECTIONS,
    MAX_PARAMS,
    MAX_SQL_BYTES,
    MAX_STATEMENTS,
    TIMEOUT_S,
    TOKEN_ENV,
    D1Error,
    Result,
    Stats,
    register_secret,
    scrub,
)


class D1Client:
    """One D1 database over HTTP. Thread-safe: a small pool of kept-alive ``http.client`` connections."""

    def __init__(self, account_id: str, database: str, token: str, *, api_base: str | None = None,
                 timeout_s: float = TIMEOUT_S, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_base = (api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE).rstrip("/")
        parsed = urllib.parse.urlsplit(self.api_base)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise D1Error("config", f"--api-base {self.api_base!r}: expected http(s)://host[:port]/path")
        self._scheme, self._host, self._port = parsed.scheme, parsed.hostname, parsed.port
        self._prefix = parsed.path.rstrip("/")
        self.account_id = account_id
        self.__token = token
        register_secret(token)
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._busy: dict[int, http.client.HTTPConnection] = {}  # thread -> its request's connection
        self._aborted: set[int] = set()
        self.stats = Stats()
        self.cancelled = threading.Event()  # set: retries stop waiting (the app is closing)
        self._blocked_until = 0.0  # monotonic time a 429's Retry-After asked us to wait until
        self.database_name = database
        self.database_id = database if _UUID.match(database) else ""

    def __repr__(self) -> str:
        return f"D1Client({self.api_base!r}, account={self.account_id!r}, database={self.database_name!r})"

    # -- requests --------------------------------------------------------------------------------

    # Connections are pooled, not per thread: the UI's queries run on short-lived worker threads, and a
    # fresh connection per query would pay TCP + TLS set-up (2-3 round trips to the real API) every time.
    def _new_http(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout_s)

    def _take_http(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (True: it was used before) or a new one; registered as this thread's."""
        with self._lock:
            conn, reused = (self._idle.pop(), True) if self._idle else (None, False)
            if conn is None:
                conn = self._new_http()
            self._busy[threading.get_ident()] = conn
        return conn, reused

    def _give_http(self, conn: http.client.HTTPConnection, *, keep: bool) -> None:
        with self._lock:
            if self._busy.get(threading.get_ident()) is conn:
                del self._busy[threading.get_ident()]
            if keep and len(self._idle) < IDLE_CONNECTIONS and not self.cancelled.is_set():
                self._idle.append(conn)
                return
        conn.close()

    def abort(self, threads: set[int]) -> int:
        """Cut the requests ``threads`` have in flight (their sockets shut down): each raises D1Error
        ``cancelled`` at once instead of waiting out the timeout. Returns how many were cut."""
        with self._lock:
            conns = [c for t, c in self._busy.items() if t in threads]
            self._aborted.update(t for t, c in self._busy.items() if t in threads)
        for conn in conns:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        return len(conns)

    def close(self) -> None:
        """Close the idle connections (those in flight close when they end)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(self, method: str, path: str, body: object = None, *, retries: int = 3,
                max_wait_s: float = 30.0) -> dict[str, Any]:
        """One API call with retries (429 honouring Retry-After, 5xx, timeouts, network) and backoff;
        raises D1Error with a one-line message. ``retries=0``: one attempt (callers with their own
        backoff)."""
        delay = 0.25
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                left = self._blocked_until - time.monotonic()
                if left > 0:  # after a 429 the API blocks everything for Retry-After: no request until then
                    raise D1Error("rate", f"D1 rate limit (429): requests resume in {left:.0f} s",
                                  status=429, retry_after=left)
                return self._once(method, path, body)
            except D1Error as exc:
                if exc.kind == "rate" and exc.retry_after:
                    self._blocked_until = max(self._blocked_until, time.monotonic() + exc.retry_after)
                with self._lock:
                    self.stats.failures += 1
                    self.stats.last_error = str(exc)
                if not exc.retryable or attempt >= retries or self.cancelled.is_set():
                    raise
                wait = exc.retry_after if exc.retry_after is not None else delay
                if time.monotonic() - started + wait > max_wait_s:
                    raise
                attempt += 1
                self._sleep(wait)
                delay = min(delay * 2, 8.0)

    def _once(self, method: str, path: str, body: object) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Authorization": f"Bearer {self.__token}", "Accept": "application/json",
                   "User-Agent": "iofold-tui"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        t0 = time.monotonic()
        with self._lock:
            self.stats.requests += 1
            self.stats.times.append(t0)
            del self.stats.times[:-1000]
        conn, reused = self._take_http()
        keep = False
        try:
            while True:
                try:
                    conn.request(method, self._prefix + path, body=data, headers=headers)
                    resp = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused or self._was_aborted():
                        raise
                    # A kept-alive connection the server closed while idle: the request never reached it.
                    # Once more on a new connection (not a failure, no backoff).
                    conn.close()
                    conn, reused = self._new_http(), False
                    with self._lock:
                        self._busy[threading.get_ident()] = conn
            raw = resp.read()
            status = resp.status
            retry_after = resp.getheader("Retry-After")
            keep = not resp.will_close
        except TimeoutError:
            self._check_aborted()
            raise D1Error("timeout",
                          f"D1 did not answer within {self.timeout_s:g} s (network slow or down)") from None
        except socket.gaierror:
            raise D1Error("network", f"cannot resolve {self._host} (DNS: offline?)") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            self._check_aborted()
            dropped = (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead,
                       BrokenPipeError)
            what = "connection dropped" if isinstance(exc, dropped) else "cannot connect"
            raise D1Error("network", f"{what} to {self._host} (network down?)") from None
        finally:
            self._give_http(conn, keep=keep and not self._was_aborted(clear=True))
            with self._lock:
                self.stats.last_rtt_ms = (time.monotonic() - t0) * 1000
        return self._decode(status, raw, retry_after)

    def _was_aborted(self, *, clear: bool = False) -> bool:
        with self._lock:
            me = threading.get_ident()
            hit = me in self._aborted
            if clear:
                self._aborted.discard(me)
            return hit

    def _check_aborted(self) -> None:
        if self._was_aborted():
            raise D1Error("cancelled", "interrupted") from None

    def _decode(self, status: int, raw: bytes, retry_after: str | None) -> dict[str, Any]:
        try:
            doc = json.loads(raw.decode("utf-8", errors="replace")) if raw else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = None
        first = _first_error(doc)
        if status == 429:
            wait = _retry_after(retry_after)
            raise D1Error("rate", f"D1 rate limit (429): retrying in {wait:g} s" if wait is not None else
                          "D1 rate limit (429)", status=status, retry_after=wait if wait is not None else 1.0)
        if status >= 500:
            raise D1Error("server", f"D1 server error {status}{': ' + first if first else ''}", status=status,
                          retry_after=_retry_after(retry_after))
        if status == 401:
            raise D1Error("auth", f"{TOKEN_ENV} was refused (401: invalid or expired token)", status=status)
        if status == 403:
            raise D1Error("forbidden", f"the API token may not do this (403{': ' + first if first else ''})",
                          status=status)
        if doc is None:
            raise D1Error("protocol", f"not a Cloudflare API answer (HTTP {status})", status=status)
        if status >= 400 or not doc.get("success", False):
            message = first or f"HTTP {status}"
            limit = re.search(r"too (large|big|many)|exceed|limit", message, re.IGNORECASE)
            kind = "limit" if limit else "sql"
            if status == 404 and kind == "sql" and "D1_ERROR" not in message:
                kind = "config"
            raise D1Error(kind, f"D1: {message}", status=status)
        return doc

    # -- D1 endpoints ----------------------------------------------------------------------------

    def _db_path(self, verb: str) -> str:
        if not self.database_id:
            self.database_id = self.resolve_database(self.database_name)
        return f"/accounts/{self.account_id}/d1/database/{self.database_id}/{verb}"

    def resolve_database(self, name: str) -> str:
        """The uuid of database ``name`` (the list endpoint, filtered by name)."""
        query = f"name={urllib.parse.quote(name)}&per_page=100"
        doc = self.request("GET", f"/accounts/{self.account_id}/d1/database?{query}")
        for item in doc.get("result") or []:
            if isinstance(item, dict) and item.get("name") == name and item.get("uuid"):
                return str(item["uuid"])
        raise D1Error("config", f"no D1 database named {name!r} in account {self.account_id}")

    def raw(self, sql: str, params: Sequence[Any] = (), *, retries: int = 3) -> Result:
        """One statement through ``/raw`` (rows as arrays)."""
        _check_statement(sql, params)
        doc = self.request("POST", self._db_path("raw"), {"sql": sql, "params": [_param(p) for p in params]},
                           retries=retries)
        res = _results(doc, 1)[0]
        body = res.get("results") or {}
        cols = [str(c) for c in body.get("columns") or []]
        rows = [tuple(_value(v) for v in r) for r in body.get("rows") or []]
        self._count(res.get("meta") or {})
        return Result(cols, rows, res.get("meta") or {})

    def raw_batch(self, statements: Sequence[tuple[str, Sequence[Any]]], *, retries: int = 3) -> list[Result]:
        """Read statements through ``/raw`` as batches (``{"batch": [...]}``): one round trip per chunk."""
        out: list[Result] = []
        for res in self._batches("raw", statements, MAX_STATEMENTS, retries):
            rb = res.get("results") or {}
            meta = res.get("meta") or {}
            self._count(meta)
            out.append(Result([str(c) for c in rb.get("columns") or []],
                              [tuple(_value(v) for v in r) for r in rb.get("rows") or []], meta))
        return out

    def batch(self, statements: Sequence[tuple[str, Sequence[Any]]], *, retries: int = 3,
              atomic: bool = False) -> list[Result]:
        """Statements through ``/query`` as D1 batches (each atomic: all or none), in chunks of MAX_STATEMENTS
        (each chunk atomic on its own); ``atomic``: all in ONE request, never split."""
        out: list[Result] = []
        step = max(len(statements), 1) if atomic else MAX_STATEMENTS
        for res in self._batches("query", statements, step, retries):
            objs = res.get("results") or []
            cols = list(objs[0].keys()) if objs and isinstance(objs[0], dict) else []
            rows = [tuple(_value(o.get(c)) for c in cols) for o in objs if isinstance(o, dict)]
            meta = res.get("meta") or {}
            self._count(meta)
            out.append(Result(cols, rows, meta))
        return out

    def _batches(self, endpoint: str, statements: Sequence[tuple[str, Sequence[Any]]], step: int,
                 retries: int) -> Iterator[dict[str, Any]]:
        """Each statement's result object, sent ``step`` statements per ``{"batch": [...]}`` request to
        ``endpoint`` (raw | query); every statement is checked against D1's limits before its request."""
        for i in range(0, len(statements), step):
            chunk = statements[i:i + step]
            for sql, params in chunk:
                _check_statement(sql, params)
            body = {"batch": [{"sql": s, "params": [_param(p) for p in ps]} for s, ps in chunk]}
            doc = self.request("POST", self._db_path(endpoint), body, retries=retries)
            yield from _results(doc, len(chunk))

    def _count(self, meta: dict[str, Any]) -> None:
        with self._lock:
            self.stats.rows_read += int(meta.get("rows_read") or 0)
            self.stats.rows_written += int(meta.get("rows_written") or 0)

    def requests_per_minute(self) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for t in self.stats.times if now - t <= 60)


def _first_error(doc: dict[str, Any] | None) -> str:
    if not doc:
        return ""
    errors = doc.get("errors") or []
    parts = []
    for e in errors[:2]:
        if isinstance(e, dict):
            parts.append(f"{e.get('message', '')} [{e.get('code', '?')}]".strip())
    return scrub(" ".join(" ".join(parts).split()))[:300]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 600.0))  # Cloudflare blocks for up to 5 minutes
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, min(parsedate_to_datetime(value).timestamp() - time.time(), 600.0))
        except (TypeError, ValueError):
            return None


def _results(doc: dict[str, Any], expected: int) -> list[dict[str, Any]]:
    result = doc.get("result")
    if not isinstance(result, list) or len(result) < expected or not all(isinstance(r, dict) for r in result):
        raise D1Error("protocol", "D1 answered without one result per statement")
    for r in result:
        if r.get("success") is False:
            raise D1Error("sql", f"D1: {scrub(str(r.get('error') or 'statement failed'))[:300]}")
    return result


def _param(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise D1Error("sql", "BLOB parameters cannot be sent to D1 over JSON")
    if isinstance(value, bool):
        return int(value)
    return value


def _value(value: Any) -> Any:
    """D1 sends a BLOB as an array of byte values."""
    if isinstance(value, list):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            return json.dumps(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _check_statement(sql: str, params: Sequence[Any]) -> None:
    if len(sql.encode("utf-8")) > MAX_SQL_BYTES:
        size = len(sql.encode("utf-8"))
        raise D1Error("limit", f"statement of {size:,} bytes is over D1's 100 KB statement limit")
    if len(params) > MAX_PARAMS:
        raise D1Error("limit", f"{len(params)} parameters: D1 allows {MAX_PARAMS} per statement")
