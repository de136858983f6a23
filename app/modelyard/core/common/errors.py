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
