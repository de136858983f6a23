"""Where a stream's lines come from: a pipe (standard input) or a file that grows (``tail -F``).

Both are iterators of *chunks*: each chunk is the complete lines that were waiting when it was
read (a partial last line waits for its end), so the stream scores whatever has arrived at
once (micro-batching) and one line as soon as it arrives when they come one at a time.

:class:`PipeSource` reads a file descriptor (standard input) until its end; on POSIX it wakes
every :data:`POLL_S` to see whether it was asked to stop.

:class:`FollowSource` follows a path as ``tail -F`` does, and loses and duplicates nothing:

* it reads what the file holds, then waits for more (polling every 10-100 ms);
* **rotation** (the file renamed away, a new one created at the path): the old file is read to
  its end first, then the new one from its beginning. While no file is at the path it keeps
  reading the old one and waits;
* **truncation** (the same file cut shorter than what was read, as ``copytruncate`` does): it
  reads again from the beginning;
* a file that does not exist yet is waited for.

A last line without its line feed is handed on when its file is rotated away or truncated, or
at the end of the input (a pipe's end, ``idle_exit``); when the source is stopped it is not a
line yet and is left (``unfinished`` counts its bytes). The position lives in this process only: a
stream started again reads the file from its beginning (or from its end with ``from_end``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

READ_BYTES = 1 << 20
POLL_S = 0.25  # how often a blocked pipe read looks at the stop flag
FOLLOW_MIN_S = 0.01  # a followed file is polled this often while lines keep coming...
FOLLOW_MAX_S = 0.1  # ... and at most this long apart when it is quiet


def split_lines(buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """(complete lines of ``buffer + data`` without their line ends, the partial rest)."""
    data = buffer + data if buffer else data
    if b"\n" not in data:
        return [], data
    parts = data.split(b"\n")
    rest = parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts], rest


class PipeSource:
    """The lines of a file descriptor (standard input) until its end or :meth:`stop`."""

    def __init__(self, fd: int, *, stop: threading.Event | None = None) -> None:
        self.fd = fd
        self.stop_event = stop or threading.Event()
        self.bytes_read = 0
        self.unfinished = 0

    def stop(self) -> None:
        self.stop_event.set()

    def _wait_readable(self) -> bool:
        """True when the descriptor has data (or its end); False when asked to stop."""
        if os.name != "posix":
            return not self.stop_event.is_set()
        import select

        while not self.stop_event.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], POLL_S)
            except (OSError, ValueError):  # not selectable (a regular file): just read it
                return True
            if ready:
                return True
        return False

    def __iter__(self) -> Iterator[list[bytes]]:
        rest = b""
        while self._wait_readable():
            data = os.read(self.fd, READ_BYTES)
            if not data:
                if rest:  # the input ended without a last line feed
                    yield [rest[:-1] if rest.endswith(b"\r") else rest]
                return
            self.bytes_read += len(data)
            lines, rest = split_lines(rest, data)
            if lines:
                yield lines
        self.unfinished = len(rest)


class FollowSource:
    """The lines of ``path`` as it grows, rotates and is truncated (see the module docstring).

    Ends on :meth:`stop`, or after ``idle_exit`` seconds without a new byte (None: never).
    ``rotations`` and ``truncations`` count what was seen.
    """

    def __init__(self, path: str | Path, *, from_end: bool = False, idle_exit: float | None = None,
                 stop: threading.Event | None = None) -> None:
        self.path = Path(path).expanduser()
        self.from_end = from_end
        self.idle_exit = idle_exit
        self.stop_event = stop or threading.Event()
        self.rotations = 0
        self.truncations = 0
        self.bytes_read = 0
        self.unfinished = 0
        self._fd: int | None = None
        self._pos = 0

    def stop(self) -> None:
        self.stop_event.set()

    def _open(self, *, at_end: bool) -> bool:
        from modelyard.core.common.errors import ModelyardError

        if self.path.is_dir():
            raise ModelyardError(f"{self.path} is a folder; follow the file the events are written to.",
                                 hint="Give --follow a file, such as events.jsonl.")
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ModelyardError(f"Cannot read {self.path}: {exc.strerror or exc}.",
                                 hint="Check the file's permissions.") from None
        self._fd = fd
        self._pos = os.lseek(fd, 0, os.SEEK_END) if at_end else 0
        return True

    def _read_all(self) -> bytes:
        """Everything the open file holds past the position (until its current end)."""
        assert self._fd is not None
        chunks = []
        while True:
            data = os.pread(self._fd, READ_BYTES, self._pos) if hasattr(os, "pread") else self._read_at()
            if not data:
                break
            self._pos += len(data)
            chunks.append(data)
            if len(data) < READ_BYTES:
                break
        out = b"".join(chunks)
        self.bytes_read += len(out)
        return out

    def _read_at(self) -> bytes:  # Windows: no pread
        assert self._fd is not None
        os.lseek(self._fd, self._pos, os.SEEK_SET)
        return os.read(self._fd, READ_BYTES)

    def _replaced(self) -> bool:
        """The path now names another file than the open one (rotated)."""
        assert self._fd is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed away, nothing new yet: keep reading the old one
        mine = os.fstat(self._fd)
        return (st.st_ino, st.st_dev) != (mine.st_ino, mine.st_dev)

    def __iter__(self) -> Iterator[list[bytes]]:
        rest = b""
        wait = FOLLOW_MIN_S
        last_data = time.monotonic()
        first = True
        try:
            while not self.stop_event.is_set():
                if self._fd is None and not self._open(at_end=self.from_end and first):
                    pass  # not there yet
                else:
                    first = False
                    data = self._read_all()
                    if not data:
                        size = os.fstat(self._fd).st_size  # type: ignore[arg-type]
                        if size < self._pos:  # truncated in place: from the beginning again
                            self.truncations += 1
                            self._pos = 0
                            if rest:
                                yield [rest]
                                rest = b""
                            continue
                        if self._replaced():
                            data = self._read_all()  # whatever the old file got before it was replaced
                            lines, rest = split_lines(rest, data)
                            if rest:
                                lines.append(rest)
                                rest = b""
                            os.close(self._fd)  # type: ignore[arg-type]
                            self._fd = None
                            self.rotations += 1
                            if lines:
                                yield lines
                            continue
                    if data:
                        last_data = time.monotonic()
                        wait = FOLLOW_MIN_S
                        lines, rest = split_lines(rest, data)
                        if lines:
                            yield lines
                        continue
                if self.idle_exit is not None and time.monotonic() - last_data >= self.idle_exit:
                    if rest:  # the writer is done: its last line had no line feed
                        yield [rest[:-1] if rest.endswith(b"\r") else rest]
                    return
                self.stop_event.wait(wait)
                wait = min(FOLLOW_MAX_S, wait * 2)
            self.unfinished = len(rest)
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
