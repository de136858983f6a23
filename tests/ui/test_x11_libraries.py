"""Starting the window where X11 libraries Qt's xcb plugin needs are missing: one line naming them
and the install commands, exit code 1, no Qt error text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from modelyard.ui.common import x11_libraries as x11

HIDDEN = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1")
ROOT = Path(__file__).resolve().parents[2]


def _fake_library_folder(tmp_path: Path, hidden: tuple[str, ...]) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in x11.LIBRARIES:
        if name not in hidden:
            (folder / name).write_bytes(b"")
    return folder


def test_starting_the_app_without_x11_libraries_prints_one_line_and_exits_1(tmp_path):
    folder = _fake_library_folder(tmp_path, HIDDEN)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="xcb", DISPLAY=":99", PYTHONPATH=str(ROOT / "app"), MODELYARD_STORE=str(tmp_path / "s"),
               **{x11.PATH_ENV: str(folder)})
    done = subprocess.run([sys.executable, "-m", "modelyard"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in line
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in line
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms" in line
    assert "qt.qpa" not in done.stderr and "plugin" not in done.stderr
    assert not (tmp_path / "s").exists(), "nothing is made before the check"


def test_a_system_loader_that_cannot_open_a_library_names_it(capsys):
    refused = {"libxkbcommon-x11.so.0", "libxcb-render-util.so.0"}
    with pytest.raises(SystemExit) as stopped:
        x11.check_or_exit([], environ={"QT_QPA_PLATFORM": "xcb"}, load=lambda name: name not in refused)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "libxkbcommon-x11.so.0, libxcb-render-util.so.0 are missing" in err
    assert "sudo apt install libxkbcommon-x11-0 libxcb-render-util0" in err
    assert "sudo dnf install libxkbcommon-x11 xcb-util-renderutil" in err


def test_nothing_is_checked_off_x11_and_nothing_said_when_all_are_there(capsys):
    every = lambda name: True  # noqa: E731
    nothing = lambda name: False  # noqa: E731
    x11.check_or_exit([], environ={"QT_QPA_PLATFORM": "xcb"}, load=every)
    x11.check_or_exit([], environ={"QT_QPA_PLATFORM": "offscreen"}, load=nothing)
    x11.check_or_exit([], environ={"QT_QPA_PLATFORM": "wayland;xcb"}, load=nothing)
    x11.check_or_exit([], environ={"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, load=nothing)
    assert capsys.readouterr().err == ""
    assert x11.uses_xcb({}, platform="linux") and not x11.uses_xcb({}, platform="darwin")
    assert x11.uses_xcb({"QT_QPA_PLATFORM": "xcb:display=:1"}, platform="linux")
    assert not x11.uses_xcb({"QT_QPA_PLATFORM": "xcb"}, ["-platform", "offscreen"], platform="linux")
