"""Who you are on a store and what your role lets you do.

A team store (PostgreSQL) has members, each connecting as their own database login, in one of four
roles, each able to do what the one before it can and more:

========== =====================================================================================
viewer     reads everything
scientist  also imports, trains, registers, exports, runs pipelines and checks ("data scientist")
approver   also moves ``champion``, moves versions in and out of Production, edits gates, approves
admin      also manages members and the store's settings
========== =====================================================================================

The database enforces the roles (grants, and row-level security where a table needs it), so a
viewer's login cannot write even from a plain SQL client; the app reads the member's role to
disable what it may not do and to say why (:func:`allowed`), and the core refuses early with a
message naming the role needed (:func:`require`). A SQLite store has one user, with every right.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.core.common.errors import PermissionRefused

ROLES: tuple[str, ...] = ("viewer", "scientist", "approver", "admin")
ROLE_LABELS: dict[str, str] = {"viewer": "viewer", "scientist": "data scientist", "approver": "approver",
                               "admin": "admin"}

# What each kind of action needs (the lowest role allowed).
ACTIONS: dict[str, str] = {
    "write": "scientist",      # import, train, log runs, register, export, run pipelines and checks, serve
    "approve": "approver",     # move champion, Production stage in/out, gates, approvals
    "manage": "admin",         # members and roles, the store's settings (notifications)
}
ACTION_LABELS: dict[str, str] = {"write": "change the store", "approve": "approve models",
                                 "manage": "manage the team and the store's settings"}


@dataclass(frozen=True)
class Member:
    """The person using the store: their login, role and whether the store is a team store."""

    login: str
    role: str  # one of ROLES
    team: bool  # False: a SQLite store (one user, every right)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def may(self, action: str) -> bool:
        return role_at_least(self.role, ACTIONS[action])


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def allowed(member: Member, action: str) -> tuple[bool, str]:
    """Whether ``member`` may do ``action``, and, when not, the one-line reason for a tooltip."""
    needed = ACTIONS[action]
    if member.may(action):
        return True, ""
    return False, (f"Needs the {ROLE_LABELS[needed]} role; you ({member.login}) are "
                   f"{_article(member.role_label)} {member.role_label} on this store.")


def refusal(member: Member, action: str, what: str) -> PermissionRefused:
    """The error for ``member`` asking to do ``what`` (a phrase: "Moving 'champion'") when their role
    does not allow ``action``."""
    needed = ACTIONS[action]
    return PermissionRefused(
        f"{what} needs the {ROLE_LABELS[needed]} role; you ({member.login}) are "
        f"{_article(member.role_label)} {member.role_label} on this store.",
        needed=needed, role=member.role,
        hint="Ask an admin of the store to change your role (Store › Team…, or 'modelyard team set-role').")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
