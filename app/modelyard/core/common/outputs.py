"""Files written where the user asked (a bundle, a model card, a report, predictions, keys).

:func:`cannot_write` turns the ``OSError`` of such a write (a missing or read-only folder, a
full disk, a path through a file) into the one-line :class:`ModelyardError` every exporter
raises: it names the path, says why in words and what to do. :func:`file_error` does the same
for any file operation (the CLI's last resort for an ``OSError`` no command caught).
:func:`write_replacing` writes such a file whole or not at all (a temporary file, then renamed).
:func:`disk_full` tells whether a failed write (a file's or the database's) ran out of space.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from modelyard.core.common.errors import ModelyardError

_HINTS = {
    errno.EACCES: "Choose a folder you can write to (or check its permissions).",
    errno.EPERM: "Choose a folder you can write to (or check its permissions).",
    errno.EROFS: "The disk is read-only: choose a folder on another disk.",
    errno.ENOSPC: "The disk is full: free some space, or write somewhere else.",
    errno.EDQUOT: "Your disk quota is used up: free some space, or write somewhere else.",
    errno.ENOENT: "Create the folder first, or choose another path.",
    errno.ENOTDIR: "A part of the path is a file, not a folder: choose another path.",
    errno.EISDIR: "That is a folder: give a file name.",
    errno.ENAMETOOLONG: "Choose a shorter file name.",
}


def cannot_write(path: str | os.PathLike[str], exc: OSError, *, what: str = "") -> ModelyardError:
    """The error for ``exc``, raised writing ``path`` (``what``: e.g. "the bundle", shown first)."""
    reason = exc.strerror or type(exc).__name__
    subject = f"{what} to {path}" if what else str(path)
    return ModelyardError(f"Cannot write {subject}: {reason}.",
                          hint=_HINTS.get(exc.errno or 0, "Choose another path, or check the folder and the disk."))


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Refuse an output ``path`` whose folder does not exist, is not a folder or cannot be written
    into (tried with a temporary file, removed at once), before any long work; return the Path."""
    target = Path(path).expanduser()
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise ModelyardError(f"Cannot write {target}: the folder {folder} does not exist.",
                             hint=_HINTS[errno.ENOENT])
    if not folder.is_dir():
        raise ModelyardError(f"Cannot write {target}: {folder} is a file, not a folder.",
                             hint=_HINTS[errno.ENOTDIR])
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise cannot_write(target, exc) from None
    return target


_ANY_HINTS = {
    errno.EACCES: "Check the permissions of the file and its folder.",
    errno.EPERM: "Check the permissions of the file and its folder.",
    errno.EROFS: "The disk is read-only.",
    errno.ENOSPC: "The disk is full: free some space.",
    errno.EDQUOT: "Your disk quota is used up: free some space.",
    errno.ENOENT: "Check the path.",
    errno.ENOTDIR: "A part of the path is a file, not a folder: check the path.",
    errno.EISDIR: "That is a folder: give a file.",
    errno.ENAMETOOLONG: "Use a shorter path (a file name has at most 255 bytes on most systems).",
}


def file_error(exc: OSError) -> ModelyardError:
    """A one-line error for an ``OSError`` of any file operation, naming the file when it is known."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename is not None else ""
    if exc.filename is not None and len(str(exc.filename)) > 120:
        where = f" ({str(exc.filename)[:60]}...{str(exc.filename)[-40:]})"
    return ModelyardError(f"{reason}{where}.", hint=_ANY_HINTS.get(exc.errno or 0))


def disk_full(exc: BaseException) -> bool:
    """True for a write that failed because the disk (or a quota) is full: an ``OSError`` with
    ENOSPC/EDQUOT, or SQLite's "database or disk is full", found in ``exc`` or the errors it wraps
    (SQLAlchemy's ``orig``, ``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(e).lower()
        if "database or disk is full" in text or "no space left on device" in text or "disk quota exceeded" in text:
            return True
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return False


def write_replacing(path: str | os.PathLike[str], write: Callable[[Path], object], *, what: str = "") -> Path:
    """Write a file where the user asked, whole or not at all: ``write(tmp)`` fills a temporary
    file beside ``path`` (made with the user's umask, as a plain ``open`` would), which then
    replaces ``path`` in one rename. On any failure the temporary file is removed and ``path`` is
    untouched; an ``OSError`` becomes :func:`cannot_write`'s one-line error. Returns the path."""
    target = check_output_folder(path)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise cannot_write(target, exc, what=what) from None
        raise
    return target
