"""Progress sub-ranges (JobContext.sub): mapping, nesting, unknown progress, monotonic bars, cancellation."""

from __future__ import annotations

import threading

import pytest
from modelyard.core.common.errors import JobCancelled
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext


class Parent:
    """A context that remembers what reaches it."""

    store, job_id, cancelled = "the store", 7, False

    def __init__(self) -> None:
        self.calls: list[tuple[float | None, str | None]] = []
        self.lines: list[str] = []

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        self.calls.append((None if fraction is None else round(fraction, 6), message))

    def log(self, line: str) -> None:
        self.lines.append(line)

    def check_cancelled(self) -> None:
        pass


def test_a_slice_maps_its_zero_to_one_into_its_range_and_nests() -> None:
    parent = Parent()
    part = ProgressSlice(parent, 0.2, 0.6)
    part.progress(0.0, "a")
    part.progress(0.5)
    part(1.0, "c")  # callable, as a progress(fraction, message) argument
    part.progress(2.0, "clamped")
    part.progress(None, "unknown")
    part.sub(0.5, 1.0).progress(0.5, "nested")
    part.log("a line")
    assert parent.calls == [(0.2, "a"), (0.4, None), (0.6, "c"), (0.6, "clamped"), (None, "unknown"),
                            (0.5, "nested")]
    assert parent.lines == ["a line"]
    assert (part.store, part.job_id, part.cancelled) == ("the store", 7, False)


def test_a_monotonic_slice_never_moves_the_bar_back() -> None:
    parent = Parent()
    bar = ProgressSlice(parent, 0.0, 1.0, monotonic=True)
    bar(None, "starting")
    bar.sub(0.0, 0.5)(1.0, "half")
    bar.sub(0.2, 0.4)(0.0, "a later phase that starts lower")
    bar(None, "unknown")
    bar(0.9, "on")
    assert parent.calls == [(0.0, "starting"), (0.5, "half"), (0.5, "a later phase that starts lower"),
                            (0.5, "unknown"), (0.9, "on")]


def test_job_context_sub_reports_to_the_job_and_is_a_cancellation_point() -> None:
    seen: list[tuple[float | None, str]] = []

    class Reporter:
        def progress(self, fraction: float | None, message: str) -> None:
            seen.append((fraction, message))

        def log(self, line: str) -> None:
            pass

    cancel = threading.Event()
    ctx = JobContext(None, 1, Reporter(), cancel, record=False)  # type: ignore[arg-type]
    phase = ctx.sub(0.5, 1.0)
    phase.progress(0.5, "three quarters")
    assert seen == [(0.75, "three quarters")]
    cancel.set()
    assert phase.cancelled
    with pytest.raises(JobCancelled):
        phase.progress(0.6, "no more")
    with pytest.raises(JobCancelled):
        phase.sub(0.0, 1.0).check_cancelled()
