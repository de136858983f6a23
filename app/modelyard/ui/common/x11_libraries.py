"""Before the window is made on a Linux X11 desktop: are the libraries Qt's xcb plugin needs there?

Where one is missing (``libxcb-cursor0`` on a plain Ubuntu desktop, ``libxcb-icccm4`` and
``libxcb-keysyms1`` on minimal systems), Qt prints "could not load the Qt platform plugin xcb …
Reinstalling the application may fix this problem" and aborts. :func:`check_or_exit` says instead,
in one line, which libraries are missing and the command that installs them, and exits 1.

Standard library only: nothing of Qt is loaded before the check. The list is what
``PySide6/Qt/plugins/platforms/libqxcb.so`` and ``libQt6XcbQpa.so.6`` of Qt 6 link against
(``readelf -d``), minus what every Linux has (libc, libstdc++, glib) and what Qt itself needs to
import at all (libGL). :data:`PATH_ENV` names folders to look in instead of the system's loader
(for tests and packagers: a library is there when a file of its name is in one of them).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

PATH_ENV = "MODELYARD_X11_LIBRARY_PATH"

# soname -> (Debian/Ubuntu package, Fedora package)
LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
}


def uses_xcb(environ: Mapping[str, str] | None = None, argv: Sequence[str] = (),
             platform: str | None = None) -> bool:
    """True when Qt would open the window through its xcb (X11) plugin: on Linux, unless
    ``-platform``/``QT_QPA_PLATFORM`` names another first (offscreen, wayland…) or the session is
    Wayland's (Qt 6 then takes its wayland plugin)."""
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    args = list(argv)
    chosen = args[args.index("-platform") + 1] if "-platform" in args[:-1] else env.get("QT_QPA_PLATFORM", "")
    if chosen.strip():
        return chosen.split(";")[0].split(":")[0].strip() == "xcb"
    return not (env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"))


def _system_loader(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_libraries(*, folders: Iterable[str] | None = None,
                      load: Callable[[str], bool] | None = None) -> list[str]:
    """The sonames of :data:`LIBRARIES` that cannot be loaded: with ``folders``, those with no file
    of their name in any of them; else those the system's loader (``load``) cannot open."""
    if folders is not None:
        dirs = [d for d in folders if d]
        return [name for name in LIBRARIES if not any(os.path.exists(os.path.join(d, name)) for d in dirs)]
    load = load or _system_loader
    return [name for name in LIBRARIES if not load(name)]


def message(missing: Sequence[str]) -> str:
    """One line: what is missing and how to install it, on Debian/Ubuntu and on Fedora."""
    debian = " ".join(dict.fromkeys(LIBRARIES[name][0] for name in missing))
    fedora = " ".join(dict.fromkeys(LIBRARIES[name][1] for name in missing))
    return (f"Modelyard cannot open its window: the X11 libraries {', '.join(missing)} are missing. "
            f"Install them with `sudo apt install {debian}` (Debian, Ubuntu) or `sudo dnf install {fedora}` "
            f"(Fedora), then start Modelyard again.")


def check_or_exit(argv: Sequence[str] = (), *, environ: Mapping[str, str] | None = None,
                  load: Callable[[str], bool] | None = None) -> None:
    """Before the QApplication is made: on X11, print :func:`message` to stderr and exit 1 when a
    library Qt's xcb plugin needs is missing. Elsewhere (offscreen, Wayland, macOS, Windows) nothing."""
    env = os.environ if environ is None else environ
    if not uses_xcb(env, argv):
        return
    path = env.get(PATH_ENV)
    missing = missing_libraries(folders=path.split(os.pathsep) if path else None, load=load)
    if missing:
        print(message(missing), file=sys.stderr, flush=True)
        raise SystemExit(1)
