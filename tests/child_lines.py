"""A child process that says what it does on stdout, one line at a time, and takes commands on
stdin (tests/live_window_child.py, tests/live_writer.py, tests/review_window_child.py)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from store_helpers import child_env

ROOT = Path(__file__).resolve().parents[1]


class Child:
    """A child process whose stdout lines arrive, stamped with when they did, in :attr:`lines`."""

    def __init__(self, script: str, location: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / script), str(location), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put((time.monotonic(), line.strip()))

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def _drain(self) -> list[tuple[float, str]]:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def said(self, line: str) -> float | None:
        """When the child said ``line`` (None: not yet)."""
        self._drain()
        return next((at for at, text in self.seen if text == line), None)

    def said_starting(self, prefix: str) -> str | None:
        """The first line the child said that starts with ``prefix`` (None: not yet)."""
        self._drain()
        return next((text for _, text in self.seen if text.startswith(prefix)), None)

    def wait_for(self, qtbot, line: str, timeout_ms: int = 60_000) -> float:  # type: ignore[no-untyped-def]
        """When the child said ``line``, waiting up to ``timeout_ms`` (Qt events keep flowing)."""
        qtbot.waitUntil(lambda: self.said(line) is not None or self.proc.poll() is not None, timeout=timeout_ms)
        at = self.said(line)
        assert at is not None, f"{self.proc.args[1]} ended without saying {line!r}: {[t for _, t in self.seen]}"
        return at

    def answer(self, qtbot, command: str) -> tuple[float, str]:  # type: ignore[no-untyped-def]
        """Send ``command`` and wait for the child's next ``ok`` answer: (when the command was sent,
        the answer). The write was committed in between: a delay counted from the sending is an
        upper bound of the delay from the commit."""
        start = len(self._drain())
        sent = time.monotonic()
        self.send(command)
        qtbot.waitUntil(lambda: len(self._drain()) > start or self.proc.poll() is not None, timeout=60_000)
        _, text = self.seen[start]
        assert text.startswith("ok "), text
        return sent, text[3:]

    def stop(self) -> None:
        try:
            self.send("quit")
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(15)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)
            self.proc.stdout.close()  # type: ignore[union-attr]
