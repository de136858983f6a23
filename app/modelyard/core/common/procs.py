"""Process facts used to tell live work from work a crashed process left behind."""

from __future__ import annotations

import functools
import os
import socket
from functools import cache


@cache
def hostname() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie has exited; its row must not look alive
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def current_user() -> str:
    """Who is acting, for the audit log: ``MODELYARD_USER`` or the login name."""
    return os.environ.get("MODELYARD_USER") or _login_name()


@functools.cache
def _login_name() -> str:
    """The process's login name, asked of the OS once (asking costs more than a small write)."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"
