"""What the member's role lets them do, on the buttons and menu items themselves.

A panel marks its write actions once, where it builds them::

    rights.guard("write", self.import_button, self.train_button)
    rights.guard("approve", self.alias_button)

When the window learns who is using the store (``team.member``, read off the main thread on every
store switch) it calls :func:`apply`: every guarded button or action under it that the role may not
use is disabled, its tooltip saying which role it needs (:func:`team.allowed`). A panel that enables
a button later (a row was selected) does not undo that: the guard disables it again at once, and
gives back the panel's own state and tooltip when a store with more rights is opened. On a SQLite
store the member is an admin: nothing changes.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from modelyard.core.store.team import ACTIONS, Member, allowed

_PROPERTY = "modelyard_rights_action"
# who uses each window's store (weak: a closed window goes)
_MEMBERS: weakref.WeakKeyDictionary[QObject, Member] = weakref.WeakKeyDictionary()


class _Guard(QObject):
    """Keeps one button or action disabled while the member may not use it."""

    def __init__(self, target: QWidget | QAction, action: str) -> None:
        super().__init__(target)
        self.setObjectName("rightsGuard")
        self.target = target
        self.action = action
        self.reason = ""
        self._forcing = False
        self._wanted = self._asked()  # what the panel asked for
        self._tip = target.toolTip()
        if isinstance(target, QAction):
            target.changed.connect(self._action_changed)
        else:
            target.installEventFilter(self)

    def set_member(self, member: Member | None) -> None:
        ok, reason = allowed(member, self.action) if member is not None else (True, "")
        self.reason = "" if ok else reason
        self._force(enabled=self._wanted and ok, tip=self.reason or self._tip)
        if isinstance(self.target, QAction):
            for obj in self.target.associatedObjects():
                if isinstance(obj, QMenu):
                    obj.setToolTipsVisible(True)  # a menu shows why its item is greyed out

    def _asked(self) -> bool:
        """The panel's own wish (a widget greyed out only because its parent is counts as enabled)."""
        if isinstance(self.target, QAction):
            return self.target.isEnabled()
        return not self.target.testAttribute(Qt.WidgetAttribute.WA_ForceDisabled)

    def _force(self, *, enabled: bool, tip: str) -> None:
        self._forcing = True
        try:
            self.target.setEnabled(enabled)
            self.target.setToolTip(tip)
        finally:
            self._forcing = False

    def _note_panel_change(self) -> None:
        if self._forcing:
            return
        self._wanted = self._asked()
        if self.target.toolTip() != self.reason:
            self._tip = self.target.toolTip()
        if self.reason and (self._asked() or self.target.toolTip() != self.reason):
            self._force(enabled=False, tip=self.reason)

    def _action_changed(self) -> None:
        self._note_panel_change()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.target and event.type() in (QEvent.Type.EnabledChange, QEvent.Type.ToolTipChange):
            self._note_panel_change()
        return False


def guard(action: str, *targets: QWidget | QAction) -> None:
    """Mark ``targets`` as needing ``action`` ("write", "approve", "manage": core/store/team.py ACTIONS)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    for target in targets:
        existing = _guard_of(target)
        if existing is not None:
            existing.action = action
            continue
        target.setProperty(_PROPERTY, action)
        g = _Guard(target, action)
        g.set_member(member_near(target))


def _guard_of(target: QObject) -> _Guard | None:
    return next((c for c in target.children() if isinstance(c, _Guard)), None)


def apply(window: QObject, member: Member | None) -> None:
    """``member`` uses the store of ``window``: (re)apply every guard under it."""
    if member is None:
        _MEMBERS.pop(window, None)
    else:
        _MEMBERS[window] = member
    for g in window.findChildren(_Guard):
        g.set_member(member)


def member_near(obj: QObject | None) -> Member | None:
    """The member of the window ``obj`` belongs to (None: not known yet)."""
    while obj is not None:
        if obj in _MEMBERS:
            return _MEMBERS[obj]
        obj = obj.parent()
    return None


def reason(target: QObject) -> str:
    """Why ``target`` is disabled by its guard ('' when the role allows it or it has no guard)."""
    g = _guard_of(target)
    return g.reason if g is not None else ""
