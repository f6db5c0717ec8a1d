"""A local stand-in for Cloudflare's D1 REST API, for tests with no internet (issue 19).

``D1Api.start()`` copies tests/fixtures/d1_api_worker to a temp dir, loads schema/ + seed into its D1
binding with ``wrangler d1 execute --local --file`` and runs ``wrangler dev --local`` on a free port (offline:
metrics, error reports and cf.json fetches off; HOME/XDG_CONFIG_HOME in the temp dir). The Worker serves
the REST paths and envelopes; ``faults()`` injects 429/5xx/delays through its admin endpoint; ``exec()``
writes as a colleague would. ``FaultProxy`` sits in front for what a Worker cannot do: really dropped
connections and a network that is down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from wrangler_tools import require_wrangler

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "d1_api_worker"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
ACCOUNT = "0123456789abcdef0123456789abcdef"
DB_ID = "6f1c6a1e-0000-4000-8000-00000000d1d1"
TOKEN_RW = "test-token-rw-5f0c9e"
TOKEN_RO = "test-token-ro-77aa31"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class D1Api:
    def __init__(self) -> None:
        self.binary = require_wrangler()
        self.root = Path(tempfile.mkdtemp(prefix="iofold-d1api-"))
        self.project = self.root / "worker"
        shutil.copytree(FIXTURE, self.project)
        self.home = self.root / "home"
        self.home.mkdir()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "wrangler-dev.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/client/v4"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CF_", "WRANGLER_"))}
        env.update({"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                    "WRANGLER_SEND_METRICS": "false", "WRANGLER_SEND_ERROR_REPORTS": "false",
                    "CLOUDFLARE_CF_FETCH_ENABLED": "false", "NO_COLOR": "1", "CI": "1"})
        return env

    def _wrangler(self, *args: str) -> None:
        subprocess.run([str(self.binary), *args], cwd=self.project, env=self.env(), check=True,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)

    def start(self) -> D1Api:
        for name in ("schema.sql", "seed.sql"):
            self._wrangler("d1", "execute", "iofold", "--local", "--file", str(SCHEMA_DIR / name))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "dev", "--local", "--ip", "127.0.0.1", "--port", str(self.port),
                 "--inspector-port", str(free_port()), "--show-interactive-dev-session=false",
                 "--log-level", "warn"],
                cwd=self.project, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                self.stats()
                return self
            time.sleep(0.2)
        log_tail = self.log.read_text()[-2000:]
        raise RuntimeError(f"wrangler dev did not start in {START_TIMEOUT_S} s: {log_tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def _post(self, path: str, body: object) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path}: {exc.code} {exc.read()[:500]!r}") from None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode()

    def faults(self, **faults: object) -> None:
        """Replace the injected faults (``delay_ms``, ``fail=[{status, retry_after, times}]``).

        No faults given: clear them."""
        self._post("/__admin/faults", faults)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/__admin/stats", timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def exec(self, *statements: tuple[str, list[Any]] | str) -> list[dict[str, Any]]:
        """Run statements on the D1 binding directly (a colleague, or test setup)."""
        batch = [{"sql": s, "params": []} if isinstance(s, str) else {"sql": s[0], "params": s[1]}
                 for s in statements]
        return self._post("/__admin/exec", {"batch": batch})  # type: ignore[no-any-return]


class FaultProxy:
    """TCP proxy in front of the Worker. ``down = True``: connections are accepted and dropped at once
    (and open ones cut): the network is gone as far as the client can tell."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.down = False
        self.accepted = 0  # connections the client opened through the proxy
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            with self._lock:
                for s in list(self._open):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()
                self._open.clear()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._open.discard(s)

    def close(self) -> None:
        self._stop = True
        self.set_down(True)
        self._sock.close()
