"""Progress sub-ranges: a phase reports its own 0..1, the job's bar shows it in ``[start, end]``.

::

    load = ctx.sub(0.0, 0.2)            # a context-like object for the loading phase
    load.progress(0.5, "Reading")       # the job's bar shows 0.1 (and a cancel raises here too)
    fit = ctx.sub(0.2, 1.0)
    fold = fit.sub(0.0, 0.5)            # nests: fold 1.0 is the job's 0.6
    fold(1.0, "Fold 3 of 3")            # callable too, as a ``progress(fraction, message)`` argument
    fit.progress(None, "Fitting")       # unknown (a fit's length): the window shows a busy bar

Report ``None`` for a phase whose length cannot be known (one call into a library that does not
report back) rather than a fraction that would sit still for the whole phase: the window then
shows a busy bar and the elapsed time.

A slice passes for a :class:`~modelyard.core.jobs.runner.JobContext` where a job hands its
context to another job function (importing a batch inside a drift check): it has ``store``,
``job_id``, ``progress``, ``log``, ``check_cancelled`` and ``cancelled``. ``monotonic=True`` keeps
the bar from moving back when a phase reports less than what was shown (every slice taken from a
monotonic one reports through it).
"""

from __future__ import annotations

from typing import Any


class ProgressSlice:
    """``[start, end]`` of ``parent``'s progress (a JobContext or another slice)."""

    def __init__(self, parent: Any, start: float, end: float, *, monotonic: bool = False) -> None:
        self._parent = parent
        self.start, self.end = float(start), float(end)
        self._monotonic = monotonic
        self._shown: float | None = None
        self.store = parent.store
        self.job_id = parent.job_id

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        """Report this phase's progress (0..1, or None when unknown). Raises JobCancelled if cancelled."""
        f = None if fraction is None else self.start + (self.end - self.start) * min(1.0, max(0.0, float(fraction)))
        if self._monotonic:
            if f is not None:
                self._shown = f if self._shown is None else max(self._shown, f)
            f = self.start if self._shown is None else self._shown
        self._parent.progress(f, message)

    __call__ = progress

    def sub(self, start: float, end: float, *, monotonic: bool = False) -> ProgressSlice:
        """``[start, end]`` of this slice (fractions of this slice, not of the job)."""
        return ProgressSlice(self, start, end, monotonic=monotonic)

    def log(self, line: str) -> None:
        self._parent.log(line)

    def check_cancelled(self) -> None:
        self._parent.check_cancelled()

    @property
    def cancelled(self) -> bool:
        return bool(self._parent.cancelled)
