"""Errors that carry a message written for the person using Modelyard.

Services raise :class:`ModelyardError` (or a subclass) with a sentence that names the file,
row, field or record involved and says what to do. The CLI prints ``message`` and exits
with ``exit_code``; the GUI shows it in a message box or the job's error pane. Anything else
that escapes is a bug and is shown with its traceback in the job log only.
"""

from __future__ import annotations


class ModelyardError(Exception):
    """A failure the user can act on. ``str(err)`` is the full, human message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n{hint}")


class StoreError(ModelyardError):
    """The store cannot be opened or used as asked."""


class StoreVersionError(StoreError):
    """The store was written by a newer Modelyard than this one."""


class StoreDamagedError(StoreError):
    """SQLite reports the store's database file as damaged (malformed pages)."""


class StoreReadOnlyError(StoreError):
    """A write was asked of a store this process may only read."""


class NotFoundError(ModelyardError):
    """A named record (job, dataset, run, model...) does not exist."""


class JobCancelled(Exception):
    """Raised inside a job when cancellation was requested; the job is recorded 'cancelled'."""


class GateFailed(ModelyardError):
    """A gate or check did not pass (CLI exit code 3)."""

    exit_code = 3


class PermissionRefused(StoreError):
    """A member's role on a team store does not allow this (the message names the role needed)."""

    def __init__(self, message: str, *, needed: str, role: str | None = None, hint: str | None = None) -> None:
        self.needed = needed  # the role that may (core/store/team.py ROLES)
        self.role = role  # the member's role, when known
        super().__init__(message, hint=hint)


class StaleEditError(ModelyardError):
    """A registry change was made from an out-of-date view: someone changed the model since."""

    def __init__(self, message: str, *, who: str | None, when: str | None, revision: int,
                 hint: str | None = None) -> None:
        self.who = who  # who made the change the editor did not see
        self.when = when  # ISO time of that change
        self.revision = revision  # the model's current revision (reload to get it)
        super().__init__(message, hint=hint)


class ReviewRequired(PermissionRefused):
    """A move of ``champion`` (or into Production) that needs an approved promotion request on this store:
    the member is not an approver of a team store, or the store requires a review of everyone
    (``review.required``). The message names the ``modelyard model request`` command that asks for it."""

    def __init__(self, message: str, *, ref: str, target: str, command: str, role: str | None = None,
                 hint: str | None = None) -> None:
        self.ref = ref  # the version to promote (NAME@vN as given)
        self.target = target  # "champion" or "Production"
        self.command = command  # the command that requests it
        super().__init__(message, needed="approver", role=role, hint=hint)
