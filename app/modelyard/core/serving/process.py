"""``modelyard serve`` in a child process: what the window's Serve button and the tests use.

::

    from modelyard.core.serving import ServerProcess

    server = ServerProcess("churn@champion", store="/data/store", port=0).start()   # waits until ready
    server.url            # 'http://127.0.0.1:50123'
    server.stats()        # GET /stats: requests, errors, latency_ms {p50, p99}, served version...
    server.stop()         # graceful (the child records serve_stop), then terminate, then kill

The child is ``python -m modelyard serve REF --store DIR --host H --port N --ready-json
--stop-on-eof``: it prints one JSON line ``{"event": "ready", "url", "pid", ...}`` on stdout
when it listens (later lines are events: ``swapped``, ``swap_failed``, ``stopped``), and stops
gracefully when its stdin closes — which also happens when the parent dies, so a crashed
window leaves no server behind. Its stderr goes to a log file (``log_path``). ``max_body``,
``idle_timeout`` and ``max_connections`` become ``--max-body``, ``--idle-timeout`` and
``--max-connections`` (the server's defaults when None); ``token_file``, ``cert``, ``key``,
``canary`` and ``shadow`` become ``--token-file``, ``--cert``, ``--key``, ``--canary`` and
``--shadow`` (``stats()`` then sends the token and trusts the certificate), and ``options``
are passed as given (``["--log", "10%"]``).

Only the standard library is imported here, so the window can use it on its main thread;
:meth:`ServerProcess.start` blocks until the model is loaded (a second or two), so call it
from a worker.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import urlsplit

from modelyard.core.common.errors import ModelyardError

READY_TIMEOUT_S = 120.0


def http_get_json(url: str, path: str, *, timeout: float = 5.0, token: bytes | str | None = None,
                  cafile: str | os.PathLike[str] | None = None) -> Any:
    """``GET url+path`` as JSON, straight to the host (no proxy settings apply); ``token`` is sent
    as ``Authorization: Bearer``; an ``https`` URL is checked against ``cafile`` (its host name
    is not: the server's own certificate may name another)."""
    parts = urlsplit(url)
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + (token.decode() if isinstance(token, bytes) else token)
    if parts.scheme == "https":
        from modelyard.core.serving.auth import client_ssl_context

        context = client_ssl_context(cafile, check_hostname=False)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1", parts.port or 443, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise ModelyardError(f"GET {path} answered {resp.status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


class ServerProcess:
    """A model server in a child process (see the module docstring)."""

    def __init__(self, ref: str, *, store: str | os.PathLike[str], db_url: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, poll_interval: float | None = None,
                 python: str | None = None, env: dict[str, str] | None = None,
                 log_path: str | os.PathLike[str] | None = None, ready_timeout: float = READY_TIMEOUT_S,
                 max_body: int | None = None, idle_timeout: float | None = None,
                 max_connections: int | None = None, token_file: str | os.PathLike[str] | None = None,
                 cert: str | os.PathLike[str] | None = None, key: str | os.PathLike[str] | None = None,
                 canary: str | None = None, shadow: str | None = None,
                 options: tuple[str, ...] | list[str] = ()) -> None:
        self.ref = ref
        self.store = str(store)
        self.db_url = db_url
        self.host = host
        self.port = int(port)
        self.poll_interval = poll_interval
        self.limits = {"--max-body": max_body, "--idle-timeout": idle_timeout, "--max-connections": max_connections,
                       "--token-file": token_file, "--cert": cert, "--key": key, "--canary": canary,
                       "--shadow": shadow}
        self.token_file = token_file
        self._token: bytes | None = None  # the token_file's token, read at the first request
        self.cert = cert
        self.options = list(options)  # more `modelyard serve` options, as given
        self.python = python or sys.executable
        self.env = env
        self.log_path = Path(log_path) if log_path is not None else None
        self.ready_timeout = ready_timeout
        self.info: dict[str, Any] | None = None  # the ready line
        self.events: list[dict[str, Any]] = []  # every JSON line the child printed, in order
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._own_log = False

    # ------------------------------------------------------------------ life
    def command(self) -> list[str]:
        cmd = [self.python, "-m", "modelyard", "serve", self.ref, "--store", self.store, "--host", self.host,
               "--port", str(self.port), "--ready-json", "--stop-on-eof"]
        if self.db_url:
            cmd += ["--db-url", self.db_url]
        if self.poll_interval is not None:
            cmd += ["--poll", str(self.poll_interval)]
        for option, value in self.limits.items():
            if value is not None:
                cmd += [option, str(value)]
        return cmd + self.options

    def start(self) -> ServerProcess:
        """Start the child and wait until it listens (raises ModelyardError with its stderr if it
        exits or is not ready within ``ready_timeout`` seconds)."""
        if self.proc is not None:
            raise RuntimeError("this ServerProcess was started already")
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="modelyard-serve-", suffix=".log")
            os.close(fd)
            self.log_path, self._own_log = Path(name), True
        self._log = open(self.log_path, "w+b")  # noqa: SIM115 - closed in stop()
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) if os.name == "nt" else 0
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=self.env, creationflags=flags, start_new_session=os.name != "nt")
        self._reader = threading.Thread(target=self._read_stdout, name=f"modelyard-serve-reader-{self.proc.pid}",
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                event = self._lines.get(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                event = None
            else:
                if event is not None and event.get("event") == "ready":
                    self.info = event
                    return self
                if event is None:  # its stdout closed: it is exiting
                    try:
                        self.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        pass
            if event is None:
                code = self.proc.poll()
                tail = self.log_tail()
                self.stop(timeout=2.0)
                if code is None:
                    raise ModelyardError(f"The model server for {self.ref} was not ready after "
                                         f"{self.ready_timeout:.0f} s.", hint=tail or None)
                raise ModelyardError(f"The model server for {self.ref} exited (code {code}) before it was ready"
                                     + (f": {_last_error(tail)}" if tail else "."), hint=tail or None)

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.events.append(event)
                    self._lines.put(event)
        finally:
            self._lines.put(None)

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the child: close its stdin (it finishes requests in flight and records
        ``serve_stop``), then terminate, then kill. Returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        elif proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def cleanup(self) -> None:
        """Delete the log file this object created (after :meth:`stop`)."""
        if self._own_log and self.log_path is not None and self._log is None:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ reading
    @property
    def url(self) -> str:
        if self.info is None:
            raise RuntimeError("the server is not ready")
        return str(self.info["url"])

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's ``GET /stats``: requests, errors, latency_ms {p50, p99, ...}, served version."""
        return self.get_json("/stats", timeout=timeout)

    def metadata(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.get_json("/metadata", timeout=timeout)

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """``GET path`` of the child as JSON, with its token (read as the child reads it) and certificate."""
        if self.token_file and self._token is None:
            from modelyard.core.serving.auth import read_token_file

            self._token = read_token_file(self.token_file)
        return http_get_json(self.url, path, timeout=timeout, token=self._token, cafile=self.cert)

    def log_tail(self, n: int = 4000) -> str:
        if self.log_path is None:
            return ""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace").strip()


def _last_error(tail: str) -> str:
    for line in reversed(tail.splitlines()):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return tail.splitlines()[-1] if tail else ""
