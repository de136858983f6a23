"""The content-addressed artifact folder.

Every file is named by the sha256 of its bytes (``ab/cdef0123...``), written to a temporary
file in the store's ``tmp/`` folder first and renamed into place, so a reader never sees a
half-written artifact and the same bytes are stored once however often they are saved. On a team
store's share, members writing the same bytes at once each rename a whole file onto the same name
(tests/core/store/test_artifacts_concurrent.py).

When ``put_*`` is given the write session of the record that uses the artifact, the
:class:`~modelyard.core.store.models.Artifact` row is added in that same transaction, and a
file the call created is removed again if the transaction rolls back: a failed or cancelled
write leaves no orphan file behind.

A file can still be left without a row (a process killed between the rename and the commit, or
a put without a session whose row never came). ``modelyard store gc``
(:func:`modelyard.core.jobs.housekeeping.collect_garbage`) removes such files, safely while others
use the store: with a session, a put takes the database's write lock *before* it looks for or
renames the file, and gc removes a file only while holding that lock and after re-checking that
no row names it, so the two never interleave; a file younger than gc's grace period is left
alone too (a put that finds its bytes already stored refreshes the file's time), which covers
puts without a session and databases without SQLite's lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CHUNK = 1 << 20
NEW_FILES_KEY = "modelyard.new_artifact_files"


@dataclass(frozen=True)
class ArtifactRef:
    sha256: str
    size: int
    created: bool


def lock_artifact(session: Session, sha: str, *, wait: bool = True) -> bool:
    """Keep garbage collection and puts of the bytes ``sha`` apart until this transaction ends.

    On SQLite a write transaction holds the database's one write lock, which does that already.
    On PostgreSQL a put and gc take an advisory lock on the hash (:func:`server.xact_lock`); gc
    does not wait (``wait=False``: False when a put holds it, and gc keeps the file), so the two
    never deadlock.
    """
    from modelyard.core.store.server import xact_lock

    return xact_lock(session, "artifact", sha, wait=wait)


class ArtifactStore:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp

    # ------------------------------------------------------------------ paths
    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> IO[bytes]:
        return self.path(sha256).open("rb")

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def read_json(self, sha256: str | None, *, what: str | None = None, missing_ok: bool = False) -> Any:
        """The JSON value stored as artifact ``sha256`` (a run's plots, a plan, a profile...).

        A file that is missing, unreadable or not JSON raises the one
        :class:`~modelyard.core.common.errors.NotFoundError` (``what`` names the artifact in its
        message); with ``missing_ok`` it gives None instead (also for no ``sha256`` at all), for
        artifacts a caller can do without.
        """
        import json

        if not sha256 and missing_ok:
            return None

        try:
            return json.loads(self.path(sha256).read_bytes())
        except (OSError, ValueError) as exc:
            if missing_ok:
                return None
            from modelyard.core.common.errors import NotFoundError

            state = "missing from" if isinstance(exc, FileNotFoundError) else "damaged or unreadable in"
            raise NotFoundError(f"{what or f'Artifact {sha256[:12]}'} is {state} the store ({exc}).",
                                hint="'modelyard store verify' checks every artifact file.") from None

    @staticmethod
    def is_digest(name: str) -> bool:
        return len(name) == 64 and all(c in "0123456789abcdef" for c in name)

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        for sub in sorted(self.root.iterdir()) if self.root.is_dir() else ():
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    yield sub.name + f.name, f

    def hash_file(self, path: Path) -> str:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    # ------------------------------------------------------------------ writing
    @contextmanager
    def temp_path(self, suffix: str = "") -> Iterator[Path]:
        """A fresh path in the store's tmp folder (same file system, so rename is atomic).

        The name starts with this process id so stale files of dead processes can be swept.
        """
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=suffix, dir=self.tmp)
        except PermissionError as exc:
            from modelyard.core.common.errors import StoreReadOnlyError

            raise StoreReadOnlyError(
                f"Cannot write in the store's folder: {self.tmp} is read-only for you ({exc.strerror}).",
                hint="Reading works. To change the store, get write permission on its folder, or work on a copy.",
            ) from exc
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, *, session: Session | None = None, media_type: str | None = None) -> ArtifactRef:
        sha = hashlib.sha256(data).hexdigest()
        with self.temp_path() as tmp:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())  # the row may commit right after: the bytes must be on disk
            return self._commit_temp(tmp, sha, len(data), session, media_type)

    def put_file(self, src: str | os.PathLike[str], *, session: Session | None = None, media_type: str | None = None) -> ArtifactRef:
        """Copy a file into the store, hashing while copying (one read of the source)."""
        h = hashlib.sha256()
        size = 0
        with self.temp_path() as tmp:
            with open(src, "rb") as fin, tmp.open("wb") as fout:
                while chunk := fin.read(CHUNK):
                    h.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            return self._commit_temp(tmp, h.hexdigest(), size, session, media_type)

    def adopt(self, tmp: Path, *, session: Session | None = None, media_type: str | None = None) -> ArtifactRef:
        """Move a finished file from :meth:`temp_path` into the store under its hash."""
        return self._commit_temp(tmp, self.hash_file(tmp), tmp.stat().st_size, session, media_type)

    def _commit_temp(self, tmp: Path, sha: str, size: int, session: Session | None, media_type: str | None) -> ArtifactRef:
        dest = self.path(sha)
        created = False
        if session is not None:
            # take the write lock first (SQLite), or this hash's lock (PostgreSQL): gc cannot
            # remove dest until we commit
            lock_artifact(session, sha)
        if dest.is_file():
            try:  # the bytes are stored already: make the file young again, out of gc's reach
                os.utime(dest)
            except OSError:
                pass
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, dest)
                created = True
            except OSError:
                # another member renamed the same bytes into place first, and this file system (a
                # Windows share) will not replace a file someone has open: theirs is ours, byte for byte
                if not dest.is_file():
                    raise
        if session is not None:
            self.register(session, sha, size, media_type)
            if created:
                session.info.setdefault(NEW_FILES_KEY, []).append(sha)
        return ArtifactRef(sha, size, created)

    @staticmethod
    def register(session: Session, sha: str, size: int, media_type: str | None = None) -> None:
        from modelyard.core.store.models import Artifact

        if session.get(Artifact, sha) is not None:
            return
        # INSERT .. ON CONFLICT DO NOTHING: on PostgreSQL another member may record the same bytes
        # between our look and our insert (SQLite's writers queue, so there it is only a shortcut)
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            session.add(Artifact(sha256=sha, size=size, media_type=media_type))
            session.flush()
            return
        session.execute(insert(Artifact).values(sha256=sha, size=size, media_type=media_type)
                        .on_conflict_do_nothing(index_elements=["sha256"]))

    def discard_new_files(self, shas: list[str], still_referenced: set[str]) -> None:
        """After a rolled-back write: remove files that write created and nothing else uses."""
        for sha in shas:
            if sha not in still_referenced:
                self.path(sha).unlink(missing_ok=True)

    def stale_temp_files(self, other_hosts_after_s: float | None = None) -> list[Path]:
        """Temp files and folders no write will finish: those of this machine's processes that no
        longer run, and, with ``other_hosts_after_s``, those in other machines' temp folders
        untouched for that many seconds (their pids mean nothing here)."""
        from modelyard.core.common.procs import pid_alive

        stale: list[Path] = []
        if self.tmp.is_dir():
            for f in self.tmp.iterdir():
                pid_text = f.name.split("-", 1)[0]
                if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
                    stale.append(f)
        tmp_root = self.tmp.parent
        if other_hosts_after_s is not None and tmp_root.is_dir():
            cutoff = time.time() - other_hosts_after_s
            for host in tmp_root.iterdir():
                if host == self.tmp or not host.is_dir():
                    continue
                for f in host.iterdir():
                    if f.name.split("-", 1)[0].isdigit() and newest_mtime(f) < cutoff:
                        stale.append(f)
        return stale

    def sweep_tmp(self) -> int:
        """Remove temp files left by processes of this machine that no longer run. Returns how many."""
        stale = self.stale_temp_files()
        for f in stale:
            remove_path(f)
        return len(stale)


def newest_mtime(path: Path) -> float:
    """The latest modification time of a file, or of anything inside a folder."""
    try:
        newest = path.stat().st_mtime
        if path.is_dir():
            for sub in path.rglob("*"):
                newest = max(newest, sub.stat().st_mtime)
    except OSError:  # removed meanwhile: as good as new, leave it to the next look
        return time.time()
    return newest


def tree_size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
